"""layernorm over the last axis, in integers.

With x = q - z over n elements: S1 = sum x, S2 = sum x^2 (exact), c_i = n*x_i - S1 and
V = n*S2 - S1^2 + round(eps*n^2/s^2), so (x_i - mean)/sqrt(var + eps) = c_i / sqrt(V) exactly.
1/sqrt(V) comes from a table on V's top 12 bits (normalised by an even shift); the normalised value is
kept with 16 fraction bits, then gamma and beta are applied and the sum rounded once into the output."""

from __future__ import annotations

import numpy as np

from hwgen import numerics, tables
from hwgen.ir import Graph, Node
from hwgen.numerics import Rounding
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register

NORM_FRAC = 16
_RSQRT = tables.rsqrt_table()


@register
class LayerNorm(OpDef):
    name = "layernorm"
    onnx_types = ("LayerNormalization",)

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.inputs[0]))
        axis = int(node.attrs.get("axis", -1))
        if axis not in (-1, rank - 1):
            raise self.unsupported(node, "normalisation over more than the last axis")
        for extra in node.outputs[1:]:
            if extra and graph.consumers(extra):
                raise self.unsupported(node, "mean/inv-std outputs are not supported")
        eps = float(node.attrs.get("epsilon", 1e-5))
        node.op, node.outputs, node.attrs = self.name, node.outputs[:1], {"epsilon": eps}

    def check(self, graph: Graph, node: Node) -> None:
        if graph.tensors[node.inputs[0]].qtype.per_channel:
            raise self.unsupported(node, "per-channel input scales")
        for i in node.inputs[1:]:
            if i and not graph.tensors[i].is_const:
                raise self.unsupported(node, "scale and bias must be constants")

    def params(self, graph: Graph, node: Node) -> dict:
        x = graph.tensors[node.inputs[0]].qtype
        n = graph.shape(node.inputs[0])[-1]
        eps_int = int(round(node.attrs["epsilon"] * n * n / float(x.scale) ** 2))
        gamma = _const_channel(graph, node.inputs[1] if len(node.inputs) > 1 else None, n)
        if gamma is None:
            gamma = (np.ones(n, dtype=np.int64), np.ones(n))
        beta = _const_channel(graph, node.inputs[2] if len(node.inputs) > 2 else None, n)
        return {"n": n, "x_zero_point": int(x.zero_point), "eps_int": eps_int, "rsqrt": _RSQRT,
                "gamma": gamma, "beta": beta}

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        n = p["n"]
        x = np.asarray(inputs[0], dtype=np.int64) - p["x_zero_point"]
        s1 = x.sum(axis=-1, keepdims=True)
        s2 = (x * x).sum(axis=-1, keepdims=True)
        c = n * x - s1
        v = np.maximum(n * s2 - s1 * s1 + p["eps_int"], 1)
        r, e = p["rsqrt"].lookup(v)
        z = numerics.shift_round(c * r, tables.RSQRT_FRAC + e - NORM_FRAC, Rounding.RND)
        out = graph.tensors[node.outputs[0]].qtype
        g_codes, g_scale = p["gamma"]
        terms, scales = [z * g_codes], [g_scale * 2.0**-NORM_FRAC]
        if p["beta"] is not None:
            b_codes, b_scale = p["beta"]
            terms.append(np.broadcast_to(b_codes, z.shape))
            scales.append(b_scale)
        return [common.weighted_sum(terms, scales, out, stats, node.outputs[0])]


def _const_channel(graph: Graph, name: str | None, n: int):
    """Zero-point-corrected codes and per-channel scales of gamma/beta (None when absent)."""
    if not name:
        return None
    t = graph.tensors[name]
    scale, zp = t.qtype.channel_params(n)
    codes = np.broadcast_to(np.asarray(t.data, dtype=np.int64).reshape(-1), (n,)) - zp
    return codes, scale
