"""Passes are tiny objects: `apply(graph) -> changed`. One driver runs them to a fixed point and
lints the graph after each one (qonnx style)."""

from __future__ import annotations

from typing import Iterable

from hwgen.ir import Graph


class Pass:
    name = "pass"
    fixed_point = True  # re-run until it reports no change

    def apply(self, graph: Graph) -> bool:
        raise NotImplementedError


def run_passes(graph: Graph, passes: Iterable[Pass], require_types: bool = False, max_rounds: int = 50) -> Graph:
    for p in passes:
        for _ in range(max_rounds if p.fixed_point else 1):
            changed = p.apply(graph)
            graph.lint(require_types=require_types)
            if not changed:
                break
    return graph
