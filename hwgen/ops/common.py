"""Integer building blocks shared by the op modules: requantising an accumulator into a tensor type,
and summing terms of different scales into one type. Every rounding and saturation goes through
hwgen.numerics; these only choose multipliers."""

from __future__ import annotations

import math

import numpy as np

from hwgen import numerics
from hwgen.ir import Graph, QType
from hwgen.ops.base import SimStats

MULT_BITS = 31  # width of requantisation multipliers (fits a DSP-friendly 32-bit signed operand)


def channel_vector(qtype: QType, channels: int, axis_is_last: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return qtype.channel_params(channels)


def requant_params(real_scale, out: QType) -> tuple[np.ndarray, np.ndarray]:
    """Multiplier and shift for converting an accumulator of `real_scale` into `out`."""
    ratio = np.asarray(real_scale, dtype=np.float64) / np.asarray(out.scale, dtype=np.float64)
    return numerics.quantize_multiplier(ratio, MULT_BITS)


def to_type(acc: np.ndarray, real_scale, out: QType, stats: SimStats | None = None, name: str = "") -> np.ndarray:
    """Codes of `out` for accumulator `acc` whose real value is acc * real_scale (per last axis)."""
    m0, shift = requant_params(real_scale, out)
    return apply_requant(acc, m0, shift, out, stats, name)


def apply_requant(acc, m0, shift, out: QType, stats: SimStats | None, name: str, bias=None,
                  acc_bound: int | None = None) -> np.ndarray:
    """Codes of `out` for (acc + bias) * m0 * 2**-shift (acc may be a float matmul result, exact integers;
    `acc_bound`, when known statically, bounds |acc|)."""
    terms, mults, bounds = [acc], [m0], [acc_bound]
    if bias is not None:
        terms, mults, bounds = [acc, bias], [m0, m0], [acc_bound, None]
    return _rescale(terms, mults, shift, out, stats, name, bounds)


def _rescale(terms, mults, shift, out: QType, stats: SimStats | None, name: str, bounds=None) -> np.ndarray:
    try:
        y, n_out = numerics.rescale_sum(terms, mults, shift, out.zero_point, out.bits, out.signed,
                                        out.rounding, out.overflow, bounds)
    except OverflowError as exc:
        raise OverflowError(f"requantisation of {name}: {exc}") from exc
    if stats is not None and name:
        stats.count(name, n_out, y.size)
    return y


def rescaler(out: QType, mults: list, shift, bounds: list | None = None, offset=0) -> numerics.Rescale:
    """A node's requantisation into `out`, prepared once (kept in the op's params)."""
    return numerics.Rescale(mults, shift, out.zero_point, out.bits, out.signed, out.rounding, out.overflow,
                            bounds, offset)


def rescale(r: numerics.Rescale, terms: list, stats: SimStats | None, name: str) -> np.ndarray:
    """Apply a prepared requantisation and count its saturations."""
    try:
        y, n_out = r(terms)
    except OverflowError as exc:
        raise OverflowError(f"requantisation of {name}: {exc}") from exc
    if stats is not None and name:
        stats.count(name, n_out, y.size)
    return y


def saturate(y: np.ndarray, out: QType, stats: SimStats | None, name: str) -> np.ndarray:
    if stats is not None and name:
        stats.count(name, numerics.overflow_count(y, out.bits, out.signed), y.size)
    return numerics.overflow(y, out.bits, out.signed, out.overflow)


def sum_params(scales: list, out: QType) -> tuple[list[np.ndarray], int]:
    """Integer multipliers m_i and one shift S with s_i / s_out ~= m_i * 2**-S, all m_i < 2**31.

    Summing (q_i - z_i) * m_i exactly and rounding once by S is how adds, concatenations and the MoE
    combine requantise: one rounding, like the float reference, and exact when scales are powers of two.
    """
    ratios = [np.asarray(s, dtype=np.float64) / np.asarray(out.scale, dtype=np.float64) for s in scales]
    top = max(float(np.max(r)) for r in ratios)
    shift = MULT_BITS - 1 - math.ceil(math.log2(top)) if top > 0 else 0
    shift = max(shift, 0)
    mults = [np.rint(np.ldexp(r, shift)).astype(np.int64) for r in ratios]
    return mults, shift


def weighted_sum(terms: list[np.ndarray], scales: list, out: QType, stats: SimStats | None = None,
                 name: str = "") -> np.ndarray:
    """Codes of `out` for sum_i terms_i * scales_i (terms already zero-point corrected integers)."""
    mults, shift = sum_params(scales, out)
    return _rescale(terms, mults, shift, out, stats, name)


def centered(codes: np.ndarray, qtype: QType, axis: int | None = None) -> np.ndarray:
    """q - zero_point as int64 (per-channel zero points along `axis` of the array)."""
    codes = np.asarray(codes, dtype=np.int64)
    zp = np.asarray(qtype.zero_point, dtype=np.int64)
    if zp.ndim and axis is not None:
        shape = [1] * codes.ndim
        shape[axis] = -1
        zp = zp.reshape(shape)
    return codes - zp


def scalar_scale(qtype: QType, what: str, node, op) -> float:
    if qtype.scale.ndim and qtype.scale.size > 1:
        raise op.unsupported(node, f"{what} must have a per-tensor scale")
    return float(qtype.scale)


def scalar_zp(qtype: QType) -> int:
    zp = np.asarray(qtype.zero_point)
    if zp.ndim and zp.size > 1:
        if np.all(zp == zp.flat[0]):
            return int(zp.flat[0])
        raise ValueError("per-channel zero point")
    return int(zp)


def operand_params(t, width: int):
    """(scale, zero point) of an elementwise operand as add/mul simulate it: per-channel arrays over the
    last axis (`width` channels) or scalars."""
    if t.qtype.per_channel:
        return t.qtype.channel_params(width)
    return float(t.qtype.scale), int(t.qtype.zero_point)


def expand(v, n_chan: int, dtype=np.int64) -> np.ndarray:
    """A scalar or per-channel vector as `n_chan` values (for per-channel kernel arrays)."""
    a = np.asarray(v)
    return np.broadcast_to(a.reshape(-1) if a.ndim else a, (n_chan,)).astype(dtype)


# -- exact types for what a QONNX graph leaves in float (hwgen/passes/exact.py, ops' exact_output_type) --

EXACT_MAX_BITS = 31  # an exact type times a 31-bit requantisation multiplier stays within int64 (sim and C++)
GRID_RTOL = 2.0**-20  # a bias "on the accumulator grid" up to float32 rounding of its scale


def typed_or_none(graph: Graph, name: str) -> QType | None:
    """The integer/fixed type of `name`, None when it has none yet (or is float)."""
    t = graph.tensors.get(name) if name else None
    if t is None or t.qtype is None or t.qtype.is_float:
        return None
    return t.qtype


def integer_ratios(scales: np.ndarray, base: float) -> np.ndarray | None:
    """scales / base as integers when they all are (powers of two apart, or equal); else None."""
    r = np.asarray(scales, dtype=np.float64) / base
    k = np.rint(r)
    return k.astype(np.int64) if np.all(k >= 1) and np.all(r == k) else None


def on_grid(values: np.ndarray, grid: np.ndarray) -> bool:
    """Every real value an integer multiple of its column's grid step (to float32 precision of the scales)."""
    k = np.asarray(values, dtype=np.float64) / grid
    return bool(np.all(np.abs(k - np.rint(k)) <= GRID_RTOL * np.maximum(np.abs(k), 1.0)))


def centred_range(qt: QType, data=None) -> tuple[int, int]:
    """Range of q - zero_point: of a constant's codes when given (per-tensor zero point), else of the type."""
    if data is not None and np.ndim(qt.zero_point) == 0:
        c = np.asarray(data, dtype=np.int64) - int(qt.zero_point)
        return (int(c.min()), int(c.max())) if c.size else (0, 0)
    zps = np.asarray(qt.zero_point, dtype=np.int64).reshape(-1)
    return qt.qmin - int(zps.max()), qt.qmax - int(zps.min())


def exact_type(lo: int, hi: int, scale: float) -> QType | None:
    bits = numerics.bits_for_range(min(lo, 0), max(hi, 0))
    if bits > EXACT_MAX_BITS:
        return None
    return QType.integer(max(bits, 2), True, scale, 0)


def bias_on_grid(x: QType, w: QType, n: int, bias) -> bool:
    """The bias of a linear layer lies on its accumulator grid s_x * s_w (so the fused integer bias is exact)."""
    sw, _ = w.channel_params(n)
    sb, zb = bias.qtype.channel_params(n)
    real = (np.asarray(bias.data, dtype=np.int64).reshape(-1) - zb) * sb
    return on_grid(real, float(x.scale) * sw)
