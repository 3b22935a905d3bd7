"""add: y = requant(sum of inputs), each input in its own scale (residuals, biases, position embeddings).

Also lowers Sub (the second term negated). One rounding at the end, like the float reference."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register


@register
class Add(OpDef):
    name = "add"
    onnx_types = ("Add", "Sub", "Sum")

    def lower(self, graph: Graph, node: Node) -> None:
        signs = [1] * len(node.inputs)
        if node.op == "onnx.Sub":
            signs = [1, -1]
        node.op, node.attrs = self.name, {"signs": signs}

    def check(self, graph: Graph, node: Node) -> None:
        for i in node.inputs:
            t = graph.tensors[i]
            if t.qtype.per_channel and t.qtype.axis != len(t.shape) - 1:
                raise self.unsupported(node, "per-channel scales must be along the last axis")

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        out_t = graph.tensors[node.outputs[0]]
        terms, scales = [], []
        for name, x, sign in zip(node.inputs, inputs, node.attrs.get("signs", [1] * len(inputs))):
            t = graph.tensors[name]
            width = t.shape[-1] if t.shape else 1
            s, z = t.qtype.channel_params(width) if t.qtype.per_channel else (float(t.qtype.scale), int(t.qtype.zero_point))
            c = np.asarray(x, dtype=np.int64) - z
            if t.is_const:
                c = c[None]  # constants have no batch axis
            terms.append(sign * c)
            scales.append(s)
        shape = np.broadcast_shapes(*(np.shape(t) for t in terms))
        terms = [np.broadcast_to(t, shape) for t in terms]
        return [common.weighted_sum(terms, scales, out_t.qtype, stats, node.outputs[0])]
