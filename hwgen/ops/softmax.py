"""softmax over the last axis, "safe" form in integers.

d = row_max - q; e = EXP[d] (table of e^(-d*s_in), 17 fraction bits); sum e exactly; one reciprocal
per row, recip = floor(2**R / sum) (an integer divider: a fixed number of iterations in hardware);
p = (e * recip) >> (R - 24) gives the probability with 24 fraction bits, then requantised to the output
type. The streaming attention kernel keeps this order of operations."""

from __future__ import annotations

import numpy as np

from hwgen import tables
from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register

PROB_FRAC = 24


@register
class Softmax(OpDef):
    name = "softmax"
    onnx_types = ("Softmax",)

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.inputs[0]))
        axis = int(node.attrs.get("axis", -1))
        if axis not in (-1, rank - 1):
            raise self.unsupported(node, "softmax over an axis other than the last")
        node.op, node.attrs = self.name, {}

    def check(self, graph: Graph, node: Node) -> None:
        if graph.tensors[node.inputs[0]].qtype.per_channel:
            raise self.unsupported(node, "per-channel input scales")

    def params(self, graph: Graph, node: Node) -> dict:
        x = graph.tensors[node.inputs[0]].qtype
        n = graph.shape(node.inputs[0])[-1]
        table = tables.exp_table(float(x.scale), x.qmax - x.qmin + 1)
        recip_bits = tables.recip_bits(tables.EXP_FRAC, n)
        return {"exp": table, "recip_bits": recip_bits, "row": n}

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        q = np.asarray(inputs[0], dtype=np.int64)
        e = p["exp"].lookup(q.max(axis=-1, keepdims=True) - q)
        total = e.sum(axis=-1, keepdims=True)
        recip = (np.int64(1) << p["recip_bits"]) // total
        prob = (e * recip) >> (p["recip_bits"] - PROB_FRAC)
        out = graph.tensors[node.outputs[0]].qtype
        return [common.to_type(prob, 2.0**-PROB_FRAC, out, stats, node.outputs[0])]
