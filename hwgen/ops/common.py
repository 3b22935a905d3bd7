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
