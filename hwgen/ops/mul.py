"""mul: y = requant((a - za) * (b - zb)); a constant scalar factor (Mul/Div by a number) folds into
the requantisation multiplier instead."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register


@register
class Mul(OpDef):
    name = "mul"
    onnx_types = ("Mul", "Div")

    def lower(self, graph: Graph, node: Node) -> None:
        a, b = node.inputs
        if graph.tensors[a].is_const and not graph.tensors[b].is_const and node.op == "onnx.Mul":
            a, b = b, a
        bt = graph.tensors[b]
        factor = None
        if bt.is_const and bt.qtype is None and np.asarray(bt.data).size == 1:
            factor = float(np.asarray(bt.data, dtype=np.float64).reshape(()))
            if node.op == "onnx.Div":
                if factor == 0:
                    raise self.unsupported(node, "division by zero")
                factor = 1.0 / factor
        elif node.op == "onnx.Div":
            raise self.unsupported(node, "Div by a tensor (only by a constant number)")
        if factor is not None:
            if not np.isfinite(factor):
                raise self.unsupported(node, "non-finite constant factor")
            node.op, node.inputs, node.attrs = self.name, [a], {"factor": factor}
        else:
            node.op, node.inputs, node.attrs = self.name, [a, b], {}

    def check(self, graph: Graph, node: Node) -> None:
        if "factor" in node.attrs and node.attrs["factor"] == 0:
            raise self.unsupported(node, "multiplication by zero")
        for i in node.inputs:
            t = graph.tensors[i]
            if t.qtype.per_channel and t.qtype.axis != len(t.shape) - 1:
                raise self.unsupported(node, "per-channel scales must be along the last axis")

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        out = graph.tensors[node.outputs[0]].qtype
        prod, scale = None, 1.0
        for name, x in zip(node.inputs, inputs):
            t = graph.tensors[name]
            width = t.shape[-1] if t.shape else 1
            s, z = t.qtype.channel_params(width) if t.qtype.per_channel else (float(t.qtype.scale), int(t.qtype.zero_point))
            c = np.asarray(x, dtype=np.int64) - z
            if t.is_const:
                c = c[None]
            prod = c if prod is None else prod * c
            scale = scale * s
        factor = node.attrs.get("factor")
        if factor is not None:
            if factor < 0:
                prod, factor = -prod, -factor
            scale = scale * factor
        if np.ndim(scale) == 0:
            scale = float(scale)
        return [common.to_type(prod, scale, out, stats, node.outputs[0])]
