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
            return [numerics.quantize_linear(x, out.scale, out.zero_point, out.bits, out.signed, axis=axis)]
        if src.per_channel or out.per_channel:
            raise self.unsupported(node, "per-channel requantisation between activations")
        return [common.to_type(common.centered(x, src), float(src.scale), out, stats, node.outputs[0])]


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
