"""linear: y = requant((x - zx) @ (W - zw) + b), W a constant [K, N].

Lowers MatMul with a constant right operand and Gemm. The same op (and, in hardware, the same
reusable kernel) serves Q/K/V/projections, FFNs, MoE experts and the classifier head.
"""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.ir import Graph, Node, QType
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, get, register


@register
class Linear(OpDef):
    name = "linear"
    onnx_types = ("MatMul", "Gemm")

    def lower(self, graph: Graph, node: Node) -> None:
        a, b = node.inputs[0], node.inputs[1]
        if node.op == "onnx.MatMul":
            if not graph.tensors[b].is_const:
                if graph.tensors[a].is_const:
                    raise self.unsupported(node, "MatMul with a constant left operand")
                get("matmul").lower(graph, node)
                return
            if len(graph.shape(b)) != 2:
                raise self.unsupported(node, "MatMul weight must be 2-D")
            node.op, node.inputs, node.attrs = self.name, [a, b], {}
            return
        # Gemm
        if node.attrs.get("transA", 0):
            raise self.unsupported(node, "Gemm with transA=1")
        if float(node.attrs.get("alpha", 1.0)) != 1.0 or float(node.attrs.get("beta", 1.0)) != 1.0:
            raise self.unsupported(node, "Gemm with alpha/beta other than 1")
        if not graph.tensors[b].is_const:
            raise self.unsupported(node, "Gemm with a non-constant weight")
        if node.attrs.get("transB", 0):
            b = _transpose_const(graph, b)
        c = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        if c is not None and not graph.tensors[c].is_const:
            raise self.unsupported(node, "Gemm with a non-constant bias")
        node.op, node.inputs, node.attrs = self.name, [a, b] + ([c] if c else []), {}

    def check(self, graph: Graph, node: Node) -> None:
        w = graph.tensors[node.inputs[1]]
        if w.qtype.per_channel and w.qtype.axis != 1:
            raise self.unsupported(node, "per-channel weight scales must be along the output axis")
        x = graph.tensors[node.inputs[0]].qtype
        if x.per_channel:
            raise self.unsupported(node, "per-channel activation scales")
        if len(node.inputs) > 2:
            bias = graph.tensors[node.inputs[2]]
            if bias.size != w.shape[1]:
                raise self.unsupported(node, f"bias of {bias.size} elements for {w.shape[1]} outputs")

    # -- integer parameters: shared by the simulator and the code generator ------------------------
    def params(self, graph: Graph, node: Node) -> dict:
        x = graph.tensors[node.inputs[0]].qtype
        w = graph.tensors[node.inputs[1]]
        y = graph.tensors[node.outputs[0]].qtype
        k, n = w.shape
        sw, zw = w.qtype.channel_params(n)
        weight = np.asarray(w.data, dtype=np.int64) - zw[None, :]
        acc_scale = float(x.scale) * sw
        bias = np.zeros(n, dtype=np.int64)
        if len(node.inputs) > 2:
            bt = graph.tensors[node.inputs[2]]
            sb, zb = bt.qtype.channel_params(n)
            real = (np.asarray(bt.data, dtype=np.int64).reshape(-1) - zb) * sb
            bias = np.rint(real / acc_scale).astype(np.int64)  # exact when sb == sx*sw (onnxruntime's int32 bias)
        m0, shift = common.requant_params(acc_scale, y)
        xmax = max(abs(x.qmin - int(x.zero_point)), abs(x.qmax - int(x.zero_point)))
        acc_bound = xmax * int(np.abs(weight).max(initial=0)) * k + int(np.abs(bias).max(initial=0))
        return {"weight": weight, "bias": bias, "m0": m0, "shift": shift, "x_zero_point": int(x.zero_point),
                "acc_bits": max(int(acc_bound).bit_length() + 1, 2), "in_features": k, "out_features": n}

    def emit(self, graph: Graph, node: Node, ctx) -> None:
        """hwgen::linear<cfg>(x, y, w, b, m0, shift) (templates/kernels/linear.h); W off chip when streaming."""
        from hwgen.codegen.context import int_ctype

        p = self.params(graph, node)
        n_rows = int(np.prod(graph.shape(node.inputs[0])[:-1], dtype=np.int64))
        cfg = ctx.config(node.name, linear_config_fields(graph, node, ctx, p, n_rows))
        n = p["out_features"]
        ctx.include("linear.h")
        w = ctx.weights(f"w_{node.name}", p["weight"], int_ctype(p["weight"]))
        b = ctx.array(f"b_{node.name}", p["bias"], int_ctype(p["bias"]))
        m0 = ctx.array(f"m0_{node.name}", np.broadcast_to(p["m0"], (n,)), "ap_uint<32>")
        sh = ctx.array(f"sh_{node.name}", np.broadcast_to(p["shift"], (n,)), int_ctype(p["shift"]))
        ctx.call(f"hwgen::linear<hwgen_cfg::{cfg}>({ctx.tensor(node.inputs[0])}, {ctx.tensor(node.outputs[0])}, "
                 f"{w}, {b}, {m0}, {sh});", node)

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        x = np.asarray(inputs[0], dtype=np.int64) - p["x_zero_point"]
        acc = numerics.matmul_int(x, p["weight"]) + p["bias"]
        y = graph.tensors[node.outputs[0]].qtype
        return [common.apply_requant(acc, p["m0"], p["shift"], y, stats, node.outputs[0])]


def linear_schedule(graph: Graph, node: Node, ctx, n_rows: int, k: int, n: int) -> tuple[int, int, int]:
    """(tile_in, tile_out, lanes) from the Design; the unrolled regime makes everything parallel."""
    if ctx.design.regime == "unrolled":
        return k, n, n_rows
    knobs = ctx.design.knobs_for(node.name, "linear")
    return min(knobs.tile_in, k), min(knobs.tile_out, n), min(knobs.lanes, n_rows)


def linear_config_fields(graph: Graph, node: Node, ctx, p: dict, n_rows: int) -> list[str]:
    from hwgen.codegen.context import int_ctype

    x = graph.tensors[node.inputs[0]].qtype
    y = graph.tensors[node.outputs[0]].qtype
    k, n = p["in_features"], p["out_features"]
    tile_in, tile_out, lanes = linear_schedule(graph, node, ctx, n_rows, k, n)
    return [f"typedef {x.c_type()} in_t;", f"typedef {int_ctype(p['weight'])} weight_t;",
            f"typedef {int_ctype(p['bias'])} bias_t;", f"typedef ap_int<{p['acc_bits']}> accum_t;",
            "typedef ap_uint<32> mult_t;", f"typedef {int_ctype(p['shift'])} shift_t;", f"typedef {y.c_type()} out_t;",
            f"static const int n_rows = {n_rows};", f"static const int n_in = {k};", f"static const int n_out = {n};",
            f"static const int tile_in = {tile_in};", f"static const int tile_out = {tile_out};",
            f"static const int n_lanes = {lanes};", f"static const long long x_zero_point = {p['x_zero_point']};",
            f"static const long long out_zero_point = {int(y.zero_point)};",
            f"static const ap_q_mode rounding = {y.rounding.value};", f"static const ap_o_mode overflow = {y.overflow.value};"]


def _transpose_const(graph: Graph, name: str) -> str:
    t = graph.tensors[name]
    qt = t.qtype
    if qt is not None and qt.axis is not None:
        qt = QType.integer(qt.bits, qt.signed, qt.scale, qt.zero_point, 1 - qt.axis, qt.rounding, qt.overflow)
    new = graph.add_const(name + "_T", np.ascontiguousarray(np.asarray(t.data).T), qt, source=t.source)
    return new.name
