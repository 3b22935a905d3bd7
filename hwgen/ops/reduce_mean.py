"""reduce_mean: average over axes (token pooling), y = requant(sum(x - z) * s / count)."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register


@register
class ReduceMean(OpDef):
    name = "reduce_mean"
    onnx_types = ("ReduceMean", "GlobalAveragePool")

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.inputs[0]))
        if node.op == "onnx.GlobalAveragePool":
            axes, keep = list(range(2, rank)), 1
        else:
            axes = node.attrs.get("axes")
            if axes is None and len(node.inputs) > 1 and node.inputs[1]:
                axes = graph.const(node.inputs[1])
                if axes is None:
                    raise self.unsupported(node, "non-constant axes")
            if axes is None or len(axes) == 0:
                axes = list(range(rank))
            keep = int(node.attrs.get("keepdims", 1))
        axes = sorted(int(a) + rank if int(a) < 0 else int(a) for a in axes)
        node.op, node.inputs, node.attrs = self.name, node.inputs[:1], {"axes": axes, "keepdims": keep}

    def check(self, graph: Graph, node: Node) -> None:
        if graph.tensors[node.inputs[0]].qtype.per_channel:
            raise self.unsupported(node, "per-channel input scales")

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        x = graph.tensors[node.inputs[0]]
        axes = tuple(a + 1 for a in node.attrs["axes"])
        count = int(np.prod([x.shape[a - 1] for a in axes]))
        total = common.centered(inputs[0], x.qtype).sum(axis=axes, keepdims=bool(node.attrs["keepdims"]))
        out = graph.tensors[node.outputs[0]]
        return [common.to_type(total, float(x.qtype.scale) / count, out.qtype, stats, node.outputs[0])]
