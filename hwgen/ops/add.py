"""add: y = requant(sum of inputs), each input in its own scale (residuals, biases, position embeddings).

Also lowers Sub (the second term negated). One rounding at the end, like the float reference."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node, QType
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register


@register
class Add(OpDef):
    name = "add"
    onnx_types = ("Add", "Sub", "Sum")
    requantises_inputs = True

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

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """Sum of n terms, each rescaled (common.sum_params: 31-bit multipliers), rounded once:
          compute = ceil(elements/PAR) + depth                         (PAR = elementwise.par)
          per lane: n multipliers of (bits+1) x 31 bits, an n-input adder and rounding/saturation
          (n*A + 3*A LUTs, 4*A FFs, A = 48); constant terms (position embeddings) on chip in PAR banks
        """
        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        y = graph.tensors[node.outputs[0]]
        par = max(1, ctx.knobs(node, "elementwise").par)
        ts = [graph.tensors[i] for i in node.inputs]
        acc = 48
        lane = cm.Resources(lut=(len(ts) + 3) * acc, ff=4 * acc)
        extra = cm.ZERO
        for t in ts:
            lane += cm.Resources(dsp=cm.dsp_per_mult(cm.centred_bits(t.qtype), 31, ctx.board))
            if t.is_const:
                extra += cm.memory(cm.op_bits(t.qtype), t.size / par, par, ctx.design.memory.storage, ctx.board)
        elements = y.size * ctx.row_scale
        ins = [t.size * ctx.row_scale * cm.op_bits(t.qtype) / 8 for t in ts if not t.is_const]
        outs = [elements * cm.op_bits(y.qtype) / 8]
        rows = elements / max(y.shape[-1] if y.shape else 1, 1)
        return cm.elementwise(ctx, node, self.name, ctx.kernel("add", node), elements, par, lane, 8, rows, ins, outs,
                              extra, formula=f"ceil({elements:g}/{par})")

    def params(self, graph: Graph, node: Node) -> dict:
        """The sum's requantisation: sum_i sign_i * (x_i - z_i) * m_i, rounded once by `shift` (sum_params).
        The simulator folds signs into the multipliers and the zero points into one integer offset, so it
        reads each input's codes once; the integer sum is the same."""
        out = graph.tensors[node.outputs[0]].qtype
        scales, zps, bounds = [], [], []
        for name in node.inputs:
            t = graph.tensors[name]
            s, z = common.operand_params(t, t.shape[-1] if t.shape else 1)
            scales.append(s)
            zps.append(np.asarray(z, dtype=np.int64))
            bounds.append(max(abs(t.qtype.qmin), abs(t.qtype.qmax)))
        mults, shift = common.sum_params(scales, out)
        signs = node.attrs.get("signs", [1] * len(node.inputs))
        signed = [sg * np.asarray(m, dtype=np.int64) for sg, m in zip(signs, mults)]
        offset = -sum(m * z for m, z in zip(signed, zps))
        return {"_rescale": common.rescaler(out, signed, shift, bounds, offset)}

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        terms = [x[None] if graph.tensors[name].is_const else x for name, x in zip(node.inputs, inputs)]
        return [common.rescale(self.params(graph, node)["_rescale"], terms, stats, node.outputs[0])]

    def exact_output_type(self, graph: Graph, node: Node) -> QType | None:
        """An integer type on the output's exact grid when the operands are quantised but the output is left
        in float (QONNX), as wide as the output's range needs (None: not exact, or too wide)."""
        types = [common.typed_or_none(graph, i) for i in node.inputs]
        if any(t is None for t in types):
            return None
        scales = np.concatenate([np.asarray(t.scale, dtype=np.float64).reshape(-1) for t in types])
        step = float(scales.min())
        signs = node.attrs.get("signs", [1] * len(node.inputs))
        lo = hi = 0
        for name, t, sign in zip(node.inputs, types, signs):
            ratios = common.integer_ratios(np.asarray(t.scale, dtype=np.float64).reshape(-1), step)
            if ratios is None:
                return None
            tensor = graph.tensors[name]
            if t.per_channel or np.ndim(t.scale) or np.ndim(t.zero_point):
                if not tensor.is_const:  # per-channel activations: bound by the type, channel by channel
                    zps = np.broadcast_to(np.asarray(t.zero_point, dtype=np.int64).reshape(-1), ratios.shape)
                    tl = int(min((t.qmin - zps) * ratios))
                    th = int(max((t.qmax - zps) * ratios))
                else:
                    real = t.dequantize(np.asarray(tensor.data, dtype=np.int64), t.axis)
                    c = real / step
                    if not np.all(c == np.rint(c)):
                        return None
                    tl, th = int(np.rint(c).min()), int(np.rint(c).max())
            else:
                cl, ch = common.centred_range(t, tensor.data if tensor.is_const else None)
                r = int(ratios[0])
                tl, th = cl * r, ch * r
            if sign < 0:
                tl, th = -th, -tl
            lo, hi = lo + tl, hi + th
        return common.exact_type(lo, hi, step)

    # -- C++ kernel (templates/kernels/add.h) -----------------------------------------------------------
    kernel_header = "add.h"

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::add<cfg> / add1<cfg> with simulate's arithmetic: sum_params multipliers, signs folded in."""
        from hwgen import numerics
        from hwgen.codegen.cpp import bcast_pattern, c_array, c_bool, c_int, int_ctype, modes

        if len(node.inputs) > 2:
            raise ValueError("add kernel: more than two terms")
        out = graph.tensors[node.outputs[0]]
        signs = node.attrs.get("signs", [1] * len(node.inputs))
        scales, zps = [], []
        for name in node.inputs:
            t = graph.tensors[name]
            s, z = common.operand_params(t, t.shape[-1] if t.shape else 1)
            scales.append(s)
            zps.append(z)
        mults, shift = common.sum_params(scales, out.qtype)
        n_chan = out.shape[-1] if out.shape else 1
        fields, arrays, args = [], [], []
        acc_bound, k_in = 0, 0
        for j, name in enumerate(node.inputs):
            t = graph.tensors[name]
            inner, size = bcast_pattern(t.shape, out.shape)
            pc = np.ndim(mults[j]) > 0 or np.ndim(zps[j]) > 0
            m = signs[j] * (common.expand(mults[j], n_chan) if pc else np.asarray(mults[j]).reshape(1))
            z = common.expand(zps[j], n_chan) if pc else np.asarray(zps[j]).reshape(1)
            xmax = max(abs(t.qtype.qmin - int(z.min())), abs(t.qtype.qmax - int(z.min())),
                       abs(t.qtype.qmin - int(z.max())), abs(t.qtype.qmax - int(z.max())))
            acc_bound += xmax * int(np.abs(m).max())
            c = "ab"[j]
            fields.append(f"  typedef {t.qtype.c_type()} {c}_t;\n"
                          f"  static const int {c}_inner = {inner}, {c}_size = {size};\n"
                          f"  static const bool {c}_per_channel = {c_bool(pc)};\n")
            arrays.append(c_array(f"m{c}", m, "cfg::mult_t") + c_array(f"z{c}", z, "cfg::zp_t"))
            if t.is_const:
                arrays.append(c_array(f"k{c}", t.data, t.qtype))
                args.append((f"k{c}", f"m{c}", f"z{c}"))
            else:
                args.append((f"in{k_in}", f"m{c}", f"z{c}"))
                k_in += 1
        all_m = np.concatenate([np.atleast_1d(np.asarray(m)) for m in mults] + [-np.atleast_1d(np.asarray(m)) for m in mults])
        all_z = np.concatenate([np.atleast_1d(np.asarray(z)) for z in zps])
        decls = (
            "struct cfg {\n" + "".join(fields)
            + f"  typedef {int_ctype(all_m, min_bits=2)} mult_t;\n  typedef {int_ctype(all_z)} zp_t;\n"
            f"  typedef {out.qtype.c_type()} out_t;\n"
            f"  typedef ap_int<{numerics.bits_for_range(-acc_bound, acc_bound)}> accum_t;\n"
            f"  static const int n_elem = {out.size}, n_chan = {n_chan}, shift = {shift};\n"
            f"  static const long long out_zero_point = {c_int(common.scalar_zp(out.qtype))};\n"
            + modes(out.qtype) + "};\n" + "".join(arrays))
        if len(node.inputs) == 1:
            call = f"hwgen::add1<cfg>({args[0][0]}, out0, {args[0][1]}, {args[0][2]});"
        else:
            call = "hwgen::add<cfg>({}, {}, out0, {}, {}, {}, {});".format(args[0][0], args[1][0], *args[0][1:],
                                                                         *args[1][1:])
        return decls, call
