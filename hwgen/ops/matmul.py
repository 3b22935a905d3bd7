"""matmul: product of two activations (Q*K^T, P*V): y = requant((a - za) @ (b - zb))."""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register


@register
class MatMul(OpDef):
    name = "matmul"

    def lower(self, graph: Graph, node: Node) -> None:
        if len(graph.shape(node.inputs[0])) < 2 or len(graph.shape(node.inputs[1])) < 2:
            raise self.unsupported(node, "MatMul of 1-D operands")
        node.op, node.attrs = self.name, {}

    def check(self, graph: Graph, node: Node) -> None:
        for i in node.inputs:
            if graph.tensors[i].qtype.per_channel:
                raise self.unsupported(node, "per-channel scales on an activation matmul")

    def params(self, graph: Graph, node: Node) -> dict:
        a, b = (graph.tensors[i].qtype for i in node.inputs)
        y = graph.tensors[node.outputs[0]].qtype
        m0, shift = common.requant_params(float(a.scale) * float(b.scale), y)
        return {"m0": m0, "shift": shift, "a_zero_point": int(a.zero_point), "b_zero_point": int(b.zero_point),
                "inner": graph.shape(node.inputs[0])[-1]}

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        a = np.asarray(inputs[0], dtype=np.int64) - p["a_zero_point"]
        b = np.asarray(inputs[1], dtype=np.int64) - p["b_zero_point"]
        acc = numerics.matmul_int(a, b)
        y = graph.tensors[node.outputs[0]].qtype
        return [common.apply_requant(acc, p["m0"], p["shift"], y, stats, node.outputs[0])]
