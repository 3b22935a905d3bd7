"""matmul: product of two activations (Q*K^T, P*V): y = requant((a - za) @ (b - zb))."""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.ir import Graph, Node, QType
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
        inner = graph.shape(node.inputs[0])[-1]
        za, zb = int(a.zero_point), int(b.zero_point)
        amax = max(abs(a.qmin - za), abs(a.qmax - za))
        bmax = max(abs(b.qmin - zb), abs(b.qmax - zb))
        bound = amax * bmax * inner
        return {"m0": m0, "shift": shift, "a_zero_point": za, "b_zero_point": zb, "inner": inner,
                "acc_bits": numerics.bits_for_range(-bound, bound), "_rescale": common.rescaler(y, [m0], shift, [bound]), "_bound": bound}

    def exact_output_type(self, graph: Graph, node: Node) -> QType | None:
        """An integer type on the output's exact grid when the operands are quantised but the output is left
        in float (QONNX), as wide as the output's range needs (None: not exact, or too wide)."""
        a, b = (common.typed_or_none(graph, i) for i in node.inputs[:2])
        if a is None or b is None or a.per_channel or b.per_channel:
            return None
        inner = graph.shape(node.inputs[0])[-1]
        (al, ah), (bl, bh) = common.centred_range(a), common.centred_range(b)
        corners = [al * bl, al * bh, ah * bl, ah * bh]
        return common.exact_type(inner * min(corners), inner * max(corners), float(a.scale) * float(b.scale))

    # -- C++ kernel (templates/kernels/matmul.h: linear.h's tiled core, b in the weight role) -----------
    kernel_header = "matmul.h"

    def schedule(self, graph: Graph, node: Node, design) -> tuple[int, int, int]:
        from hwgen.ops.linear import linear_schedule

        *_, m, kk = graph.shape(node.inputs[0])
        n = graph.shape(node.inputs[1])[-1]
        return linear_schedule(design, node.name, m, kk, n)

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::matmul<cfg>(a, b, y); knobs = (tile_in, tile_out, n_lanes) over (K, N, M)."""
        from hwgen.codegen.cpp import c_bool, c_int, int_ctype, modes

        p = self.params(graph, node)
        a, b = (graph.tensors[i] for i in node.inputs)
        y = graph.tensors[node.outputs[0]].qtype
        *lead_a, m, kk = a.shape
        *lead_b, _, n = b.shape
        na, nb = int(np.prod(lead_a, dtype=np.int64)), int(np.prod(lead_b, dtype=np.int64))
        if na != nb and 1 not in (na, nb):
            raise ValueError("matmul kernel: leading dims must match or one operand must have a single matrix")
        ti, to, nl = knobs if knobs is not None else (min(16, kk), min(16, n), 1)
        decls = (
            "struct cfg {\n"
            f"  typedef {a.qtype.c_type()} a_t;\n  typedef {b.qtype.c_type()} b_t;\n  typedef {y.c_type()} out_t;\n"
            f"  typedef ap_int<{p['acc_bits']}> accum_t;\n  typedef ap_uint<{common.MULT_BITS}> mult_t;\n"
            f"  typedef {int_ctype(p['shift'])} shift_t;\n"
            f"  static const int n_batch = {max(na, nb)}, n_rows = {m}, n_inner = {kk}, n_cols = {n};\n"
            f"  static const bool a_bcast = {c_bool(na < nb)}, b_bcast = {c_bool(nb < na)};\n"
            f"  static const int tile_in = {ti}, tile_out = {to}, n_lanes = {nl};\n"
            f"  static const long long a_zero_point = {c_int(p['a_zero_point'])}, b_zero_point = "
            f"{c_int(p['b_zero_point'])};\n"
            f"  static const long long m0 = {c_int(p['m0'])}, out_zero_point = {c_int(common.scalar_zp(y))};\n"
            f"  static const int shift = {int(p['shift'])};\n" + modes(y) + "};\n")
        return decls, "hwgen::matmul<cfg>(in0, in1, out0);"

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('linear', 'attention', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """A [H, M, Kd] x B [H, Kd, N] (H = heads and other leading dims).

        Inside an attention region (Q*K^T or P*V, found by hwgen.cost.analysis) it is a process of the
        streaming attention kernel: P = attention.rows query rows at a time, W = attention.dot elements of the
        head dimension per row per cycle (default min(Kd, N), the head dimension):
          compute = H * ceil(M/P) * ceil(Kd*N/W)         (QK: N keys x ceil(dh/W); PV: Kd keys x ceil(dv/W))
          kv_buffer:  + H * ceil(Kd*N/W) cycles to fill the on-chip B buffer of each head (B in W banks)
          otherwise:  B re-streamed once per group of P rows (H*ceil(M/P)*Kd*N elements read)
          DSP = P*W multipliers of centred operand widths, + requantisers for the outputs per cycle
        Elsewhere it runs on the linear kernel's tiled core with B on chip:
          compute = H * ceil(M/L) * ceil(N/T_OUT) * ceil(Kd/T_IN)
        """
        import math

        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        d = ctx.design
        a_t, b_t, y_t = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]], graph.tensors[node.outputs[0]]
        m, kd = a_t.shape[-2], a_t.shape[-1]
        n = b_t.shape[-1]
        h = max(1, y_t.size // max(m * n, 1)) * ctx.row_scale
        a_bits, b_bits = cm.centred_bits(a_t.qtype), cm.centred_bits(b_t.qtype)
        acc = a_bits + b_bits + math.ceil(math.log2(max(kd, 2))) + 1
        facts = ctx.facts(node)
        macs = h * m * kd * n
        a_bytes, b_bytes, y_bytes = (h * m * kd * cm.op_bits(a_t.qtype) / 8, h * kd * n * cm.op_bits(b_t.qtype) / 8,
                                     h * m * n * cm.op_bits(y_t.qtype) / 8)
        if facts.get("attn") is not None:
            kn = ctx.knobs(node, "attention")
            p = min(kn.rows, m)
            w = min(kn.dot or min(kd, n), kd * n)
            per_group = cm.ceil_div(kd * n, w)
            compute = h * cm.ceil_div(m, p) * per_group
            fill = h * per_group if kn.kv_buffer else 0.0
            role = facts["role"]
            a_internal = facts.get("a_internal") is True or (facts.get("a_internal") == "fused" and d.attention.fused)
            ins = [] if a_internal else [a_bytes]
            ins.append(b_bytes if kn.kv_buffer else b_bytes * cm.ceil_div(m, p))
            internal_out = role == "qk"
            io, ab = cm.act_io(ctx, node, ins, [] if internal_out else [y_bytes])
            depth = 10 + math.ceil(math.log2(max(w, 2)))
            cycles = max(compute + fill, io) + depth
            outs_per_cycle = h * m * n / max(compute, 1)
            res = cm.mac_array(p * w, a_bits, b_bits, acc, ctx.board, d.linear.pack_int8, outputs=p * max(1, w // kd),
                               reduce=min(w, kd))
            res += cm.requantiser(acc, ctx.board, math.ceil(outs_per_cycle))
            res += cm.Resources(ff=p * kd * a_bits)  # the P query rows (or probability rows) in registers
            if kn.kv_buffer:
                res += cm.memory(b_bits, per_group, w, d.memory.storage, ctx.board)
            res += cm.control()
            kernel = ctx.kernel(f"attention.{role}", node, f"P{p}W{w}" if node.name in d.overrides else "")
            return cm.Cost(node.name, self.name, kernel, cycles, compute=compute + fill, io=io, depth=depth,
                           macs=macs, act_bytes=ab, res=res, rows=h * cm.ceil_div(m, p), blocking=False,
                           formula=f"{h:g} x {cm.ceil_div(m, p)} groups x {per_group} (P={p}, W={w}); fill {fill:g}")
        kn = ctx.knobs(node, "linear")
        ti, to, nl = min(kn.tile_in, kd), min(kn.tile_out, n), min(kn.lanes, m)
        if ctx.unrolled:
            ti, to, nl = kd, n, m
        compute = h * cm.groups(m, nl) * cm.ceil_div(n, to) * cm.ceil_div(kd, ti)
        io, ab = cm.act_io(ctx, node, [a_bytes, b_bytes], [y_bytes])
        depth = 8 + math.ceil(math.log2(max(ti, 2)))
        res = cm.mac_array(ti * to * nl, a_bits, b_bits, acc, ctx.board, kn.pack_int8, outputs=to * nl, reduce=ti)
        res += cm.requantiser(acc, ctx.board) + cm.memory(b_bits, cm.ceil_div(kd * n, ti * to), ti * to,
                                                          d.memory.storage, ctx.board) + cm.control()
        return cm.Cost(node.name, self.name, ctx.kernel("matmul", node), max(compute, io) + depth, compute=compute,
                       io=io, depth=depth, macs=macs, act_bytes=ab, res=res, rows=h * m, blocking=True,
                       formula=f"{h:g} x {cm.groups(m, nl):g} x {cm.ceil_div(n, to)} x {cm.ceil_div(kd, ti)}")

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        acc = numerics.matmul_codes(inputs[0], p["a_zero_point"], inputs[1], p["b_zero_point"], p["_bound"])
        return [common.rescale(p["_rescale"], [acc], stats, node.outputs[0])]
