"""Integer building blocks shared by the op modules: requantising an accumulator into a tensor type,
and summing terms of different scales into one type. Every rounding and saturation goes through
hwgen.numerics; these only choose multipliers."""

from __future__ import annotations

import math

import numpy as np

from hwgen import numerics
from hwgen.ir import QType
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


def apply_requant(acc, m0, shift, out: QType, stats: SimStats | None, name: str) -> np.ndarray:
    acc = np.asarray(acc, dtype=np.int64)
    m0 = np.asarray(m0, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    amax = int(np.abs(acc).max()) if acc.size else 0
    if amax * int(np.abs(m0).max()) >= 2**62:
        raise OverflowError(f"requantisation of {name} leaves 64 bits")
    y = numerics.shift_round(acc * m0, shift, out.rounding) + np.asarray(out.zero_point, dtype=np.int64)
    return saturate(y, out, stats, name)


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
    acc = None
    for t, m in zip(terms, mults):
        t = np.asarray(t, dtype=np.int64)
        if int(np.abs(t).max(initial=0)) * int(np.abs(m).max(initial=0)) >= 2**61:
            raise OverflowError(f"weighted sum of {name} leaves 64 bits")
        acc = t * m if acc is None else acc + t * m
    y = numerics.shift_round(acc, shift, out.rounding) + np.asarray(out.zero_point, dtype=np.int64)
    return saturate(y, out, stats, name)


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
