"""quantize: convert a tensor into another numeric type.

From float (the model's input, on the host) it follows ONNX QuantizeLinear exactly; between integer or
fixed-point types it is an integer requantisation (multiplier and shift)."""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register


@register
class Quantize(OpDef):
    name = "quantize"
    requantises_inputs = True

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """Type conversion, PAR = elementwise.par elements per cycle:
          compute = ceil(elements/PAR) + depth
          per lane from float (the model input, read from off-chip memory): a float32 multiply by 1/scale
          (3 DSPs), rounding and saturation (300 LUTs, 400 FFs); between integer types: a requantiser
        """
        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        par = max(1, ctx.knobs(node, "elementwise").par)
        if x.qtype is None or x.qtype.is_float:
            lane = cm.Resources(dsp=3, lut=300, ff=400)
        else:
            lane = cm.requantiser(cm.centred_bits(x.qtype) + 1, ctx.board)
        elements = y.size * ctx.row_scale
        ins = [elements * cm.op_bits(x.qtype) / 8]
        outs = [elements * cm.op_bits(y.qtype) / 8]
        rows = elements / max(y.shape[-1] if y.shape else 1, 1)
        return cm.elementwise(ctx, node, self.name, ctx.kernel("quantize", node), elements, par, lane, 10, rows, ins,
                              outs, formula=f"ceil({elements:g}/{par})")

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        src = graph.tensors[node.inputs[0]].qtype
        out = graph.tensors[node.outputs[0]].qtype
        x = inputs[0]
        if src.is_float:
            axis = None if out.axis is None else out.axis + 1
            if out.kind == "fixed":
                scaled = np.asarray(x, dtype=np.float64) * 2.0 ** out.frac_bits
                codes = _round_float(scaled, out.rounding)
                return [common.saturate(codes, out, stats, node.outputs[0])]
            raw = np.rint(np.divide(np.asarray(x, np.float32), np.asarray(out.scale, np.float32), dtype=np.float32))
            if stats is not None:
                stats.count(node.outputs[0], numerics.overflow_count(
                    np.clip(raw, -2**62, 2**62).astype(np.int64) + int(common.scalar_zp(out)), out.bits, out.signed), raw.size)
            codes = numerics.quantize_linear(x, out.scale, out.zero_point, out.bits, out.signed, axis=axis)
            # already in range; a narrow type (AP_SAT_SYM) still maps the asymmetric minimum to -max
            return [numerics.overflow(codes, out.bits, out.signed, out.overflow)]
        if src.per_channel or out.per_channel:
            raise self.unsupported(node, "per-channel requantisation between activations")
        return [common.to_type(common.centered(x, src), float(src.scale), out, stats, node.outputs[0])]

    # -- C++ kernel (templates/kernels/requant.h) -------------------------------------------------------
    kernel_header = "requant.h"

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::requant<cfg>: integer/fixed -> integer/fixed (a float source is quantised on the host)."""
        from hwgen.codegen.cpp import c_int, modes

        src = graph.tensors[node.inputs[0]]
        out = graph.tensors[node.outputs[0]].qtype
        if src.qtype.is_float:
            raise ValueError("a quantize from float must take a model input (it runs on the host)")
        if src.qtype.per_channel or out.per_channel:
            raise ValueError("per-channel requantisation between activations")
        m0, shift = common.requant_params(float(src.qtype.scale), out)
        decls = (
            "struct cfg {\n"
            f"  typedef {src.qtype.c_type()} in_t;\n  typedef {out.c_type()} out_t;\n"
            f"  typedef ap_uint<{common.MULT_BITS}> mult_t;\n"
            f"  static const int n_elem = {src.size}, shift = {int(shift)};\n"
            f"  static const long long in_zero_point = {c_int(common.scalar_zp(src.qtype))}, m0 = {c_int(m0)}, "
            f"out_zero_point = {c_int(common.scalar_zp(out))};\n" + modes(out) + "};\n")
        return decls, "hwgen::requant<cfg>(in0, out0);"


def _round_float(x: np.ndarray, mode) -> np.ndarray:
    """Round host-side floats to integers per an ap_fixed rounding mode (input conversion only)."""
    from hwgen.numerics import Rounding

    mode = Rounding(mode)
    if mode == Rounding.TRN:
        return np.floor(x).astype(np.int64)
    if mode == Rounding.TRN_ZERO:
        return np.trunc(x).astype(np.int64)
    if mode == Rounding.RND_CONV:
        return np.rint(x).astype(np.int64)
    if mode == Rounding.RND:
        return np.floor(x + 0.5).astype(np.int64)
    if mode == Rounding.RND_ZERO:
        return (np.sign(x) * np.ceil(np.abs(x) - 0.5)).astype(np.int64)
    if mode == Rounding.RND_MIN_INF:
        return np.ceil(x - 0.5).astype(np.int64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)  # RND_INF
