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

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('attention', 'elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """Elementwise product, `lanes` elements per cycle (attention.rows inside attention, where it is the
        score scaling fused in the scores process; elementwise.par elsewhere):
          compute = ceil(elements/lanes) + depth
          per lane: one multiplier of the centred operands (a constant factor folds into the requantiser's
          multiplier: none) and one requantiser; a constant tensor operand is stored on chip
        """
        import math

        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        y = graph.tensors[node.outputs[0]]
        facts = ctx.facts(node)
        in_attn = facts.get("attn") is not None
        lanes = ctx.knobs(node, "attention").rows if in_attn else ctx.knobs(node, "elementwise").par
        ts = [graph.tensors[i] for i in node.inputs]
        bits = [cm.centred_bits(t.qtype) for t in ts]
        acc = sum(bits) + 1
        lane = cm.requantiser(acc, ctx.board)
        if len(ts) > 1:
            lane += cm.Resources(dsp=cm.dsp_per_mult(bits[0], bits[1], ctx.board), lut=acc)
        extra = cm.ZERO
        for t in ts:
            if t.is_const and t.size > 1:
                extra += cm.memory(cm.op_bits(t.qtype), t.size / lanes, lanes, ctx.design.memory.storage, ctx.board)
        kernel = ctx.kernel("attention.scale" if in_attn else "mul", node)
        elements = y.size * ctx.row_scale
        ins = [] if in_attn else [t.size * ctx.row_scale * cm.op_bits(t.qtype) / 8 for t in ts if not t.is_const]
        outs = [] if in_attn else [elements * cm.op_bits(y.qtype) / 8]
        rows = elements / max(y.shape[-1] if y.shape else 1, 1)
        return cm.elementwise(ctx, node, self.name, kernel, elements, lanes, lane, 6 + acc // 8, rows, ins, outs,
                              extra, formula=f"ceil({elements:g}/{lanes})")

    def params(self, graph: Graph, node: Node) -> dict:
        """Per operand (scale, zero point); the product's real scale (a folded factor included, its sign
        carried by `sign`) and its requantisation into the output type."""
        out = graph.tensors[node.outputs[0]].qtype
        operands, scale = [], 1.0
        for name in node.inputs:
            t = graph.tensors[name]
            width = t.shape[-1] if t.shape else 1
            s, z = t.qtype.channel_params(width) if t.qtype.per_channel else (float(t.qtype.scale), int(t.qtype.zero_point))
            operands.append(z)
            scale = scale * s
        sign, factor = 1, node.attrs.get("factor")
        if factor is not None:
            sign, scale = (-1, scale * -factor) if factor < 0 else (1, scale * factor)
        if np.ndim(scale) == 0:
            scale = float(scale)
        m0, shift = common.requant_params(scale, out)
        params = {"zero_points": operands, "sign": sign, "_rescale": common.rescaler(out, [sign * m0], shift)}
        consts = [graph.tensors[name].is_const for name in node.inputs]
        if len(consts) == 2 and consts.count(True) == 1:
            params["_by_const"] = _by_const(graph, node, consts.index(True), operands, sign * m0, shift, out)
        return params

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        if "_by_const" in p:  # (x - zx) * c * m as x * (c*m) - zx * c * m: one pass, no centred copy
            i, rescale = p["_by_const"]
            return [common.rescale(rescale, [inputs[1 - i]], stats, node.outputs[0])]
        prod = None
        for name, x, z in zip(node.inputs, inputs, p["zero_points"]):
            c = np.asarray(x, dtype=np.int64) - z
            if graph.tensors[name].is_const:
                c = c[None]  # constants have no batch axis
            prod = c if prod is None else prod * c
        return [common.rescale(p["_rescale"], [prod], stats, node.outputs[0])]

    # -- C++ kernel (templates/kernels/mul.h) -----------------------------------------------------------
    kernel_header = "mul.h"

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::mul<cfg> / mul_const<cfg> with simulate's arithmetic (requant_params of the scales'
        product, a constant factor folded in, its sign as `negate`)."""
        from hwgen.codegen.cpp import bcast_pattern, c_array, c_bool, c_int, int_ctype, modes

        out = graph.tensors[node.outputs[0]]
        n_chan = out.shape[-1] if out.shape else 1
        scale, zps = 1.0, []
        for name in node.inputs:
            t = graph.tensors[name]
            s, z = common.operand_params(t, t.shape[-1] if t.shape else 1)
            scale = scale * s
            zps.append(z)
        factor = node.attrs.get("factor")
        negate = factor is not None and factor < 0
        if factor is not None:
            scale = scale * abs(factor)
        if np.ndim(scale) == 0:
            scale = float(scale)
        m0, shift = common.requant_params(scale, out.qtype)
        pc = np.ndim(m0) > 0 or any(np.ndim(z) > 0 for z in zps)
        exp = (lambda v: common.expand(v, n_chan)) if pc else (lambda v: np.asarray(v).reshape(1))
        fields, arrays, args = [], [], []
        k_in = 0
        for j, name in enumerate(node.inputs):
            t = graph.tensors[name]
            inner, size = bcast_pattern(t.shape, out.shape)
            c = "ab"[j]
            fields.append(f"  typedef {t.qtype.c_type()} {c}_t;\n  static const int {c}_inner = {inner}, {c}_size = {size};\n")
            arrays.append(c_array(f"z{c}", exp(zps[j]), "cfg::zp_t"))
            if t.is_const:
                arrays.append(c_array(f"k{c}", t.data, t.qtype))
                args.append(f"k{c}")
            else:
                args.append(f"in{k_in}")
                k_in += 1
        arrays.append(c_array("m0", exp(m0), "cfg::mult_t") + c_array("sh", exp(shift), "cfg::shift_t"))
        all_z = np.concatenate([np.atleast_1d(z) for z in zps])
        decls = (
            "struct cfg {\n" + "".join(fields)
            + f"  typedef {int_ctype(all_z)} zp_t;\n  typedef ap_uint<{common.MULT_BITS}> mult_t;\n"
            f"  typedef {int_ctype(shift)} shift_t;\n  typedef {out.qtype.c_type()} out_t;\n"
            f"  static const int n_elem = {out.size}, n_chan = {n_chan};\n"
            f"  static const bool per_channel = {c_bool(pc)}, negate = {c_bool(negate)};\n"
            f"  static const long long out_zero_point = {c_int(common.scalar_zp(out.qtype))};\n"
            + modes(out.qtype) + "};\n" + "".join(arrays))
        if len(node.inputs) == 1:
            call = f"hwgen::mul_const<cfg>({args[0]}, out0, za, m0, sh);"
        else:
            call = f"hwgen::mul<cfg>({args[0]}, {args[1]}, out0, za, zb, m0, sh);"
        return decls, call


def _by_const(graph: Graph, node: Node, const_index: int, zero_points: list, mult, shift, out):
    """(index of the constant operand, the requantisation of x * constant with the constant's centred codes
    and x's zero point folded into the multipliers and the offset)."""
    x = graph.tensors[node.inputs[1 - const_index]].qtype
    c = np.asarray(graph.tensors[node.inputs[const_index]].data, dtype=np.int64) - np.asarray(
        zero_points[const_index], dtype=np.int64)
    mults = c * np.asarray(mult, dtype=np.int64)
    offset = -np.asarray(zero_points[1 - const_index], dtype=np.int64) * mults
    return const_index, common.rescaler(out, [mults], shift, [max(abs(x.qmin), abs(x.qmax))], offset)
