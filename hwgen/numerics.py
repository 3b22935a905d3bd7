"""The one place where hwgen defines integer / fixed-point arithmetic.

Every rounding, saturation, wrap-around and requantisation step of the simulator goes through this module,
and ``templates/kernels/hwgen_numerics.h`` spells the same functions in C++.  Both are tested bit for bit
against the real ``ap_fixed`` / ``ap_int`` headers (tests/test_numerics_cpp.py).

Conventions
-----------
* Integer arrays are ``int64``.  Fixed-point operations never go through floating point; passing a float
  array where an integer array is expected raises ``TypeError``.
* A fixed-point value is an integer ``q`` with ``f`` fractional bits: real value ``q * 2**-f``.  ``f`` may be
  negative (``ap_fixed<W, I>`` with ``I > W``) or larger than the width (``I < 0``).
* Widths: signed types up to 64 bits, unsigned up to 63 bits (values live in int64).
* Only ``quantize_linear`` / ``dequantize_linear`` (which mirror onnxruntime's float kernels) and
  ``quantize_multiplier`` (which turns a float scale into integers once, at compile time) use floats as
  floats.  ``matmul_int`` and ``rescale_sum`` use float64 only as an exact carrier of integers: each checks
  first that every product and partial sum it forms is an integer (times a power of two) below 2**53, and
  otherwise takes the int64 path.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from hwgen import numerics_jit

__all__ = [
    "Rounding",
    "Overflow",
    "int_range",
    "bits_for_range",
    "shift_round",
    "overflow",
    "overflow_count",
    "cast_fixed",
    "quantize_multiplier",
    "requantize",
    "requant_product_bits",
    "accumulator_bits",
    "quantize_linear",
    "dequantize_linear",
    "matmul_int",
    "rescale_sum",
    "Rescale",
    "WeightMatmul",
    "max_abs",
    "matmul_codes",
]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


class Rounding(str, Enum):
    """ap_fixed quantisation modes (value = the C++ enumerator name)."""

    TRN = "AP_TRN"  # floor (toward -inf)
    TRN_ZERO = "AP_TRN_ZERO"  # toward 0
    RND = "AP_RND"  # nearest, ties toward +inf
    RND_ZERO = "AP_RND_ZERO"  # nearest, ties toward 0
    RND_INF = "AP_RND_INF"  # nearest, ties away from 0
    RND_MIN_INF = "AP_RND_MIN_INF"  # nearest, ties toward -inf
    RND_CONV = "AP_RND_CONV"  # nearest, ties to even


class Overflow(str, Enum):
    """ap_fixed overflow modes (value = the C++ enumerator name)."""

    WRAP = "AP_WRAP"  # two's complement wrap-around
    SAT = "AP_SAT"  # clamp to [min, max]
    SAT_ZERO = "AP_SAT_ZERO"  # 0 on overflow
    SAT_SYM = "AP_SAT_SYM"  # signed: clamp to [-max, max] (min itself also maps to -max); unsigned: = SAT


# ----------------------------------------------------------------------------------------------- helpers


def _as_int64(x, name: str = "x") -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype.kind == "i":
        return a.astype(np.int64, copy=False)
    if a.dtype.kind == "u":
        if a.size and a.dtype.itemsize >= 8 and int(a.max()) > _I64_MAX:
            raise OverflowError(f"{name}: unsigned value does not fit in int64")
        return a.astype(np.int64)
    if a.dtype.kind == "O":
        try:
            return a.astype(np.int64)
        except (OverflowError, TypeError) as e:
            raise TypeError(f"{name}: cannot convert object array to int64: {e}") from None
    raise TypeError(f"{name} must be an integer array, got dtype {a.dtype} (fixed-point ops never use floats)")


def _check_width(bits: int, signed: bool) -> None:
    bits = int(bits)
    if bits < 1:
        raise ValueError(f"bit width must be >= 1, got {bits}")
    if bits > (64 if signed else 63):
        raise ValueError(f"{'signed' if signed else 'unsigned'} width {bits} does not fit in int64")


def max_abs(a: np.ndarray) -> int:
    """max |a| as a Python int (no int64 overflow on INT64_MIN)."""
    if a.size == 0:
        return 0
    return max(abs(int(a.max())), abs(int(a.min())))


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """(min, max) of a ``bits``-wide integer, as Python ints."""
    bits = int(bits)
    if bits < 1:
        raise ValueError(f"bit width must be >= 1, got {bits}")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def bits_for_range(lo: int, hi: int, signed: bool = True) -> int:
    """Smallest width of the given signedness that holds every integer in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if not signed:
        if lo < 0:
            raise ValueError(f"unsigned type cannot hold {lo}")
        return max(1, hi.bit_length())
    # signed b bits holds [-2**(b-1), 2**(b-1)-1]; v >= 0 needs bit_length(v)+1, v < 0 needs bit_length(~v)+1
    return max(1, (hi if hi >= 0 else ~hi).bit_length() + 1, (lo if lo >= 0 else ~lo).bit_length() + 1)


# -------------------------------------------------------------------------------------- rounding/shift


def _round_parts(x: np.ndarray, s: np.ndarray):
    """For x (int64) and s >= 1 (int64, broadcast): floor(x / 2**s) and flags describing the dropped part
    r = x - floor * 2**s in [0, 2**s): gt (r > half), eq (r == half), nz (r != 0)."""
    x, s = np.broadcast_arrays(x, s)
    sc = np.minimum(s, 63)
    fl = x >> sc  # arithmetic shift == floor; for s >= 63 this is 0 or -1, still the floor
    su = sc.astype(np.uint64)
    xu = x.view(np.uint64)  # two's complement bits; same itemsize, so fine on broadcast views
    mask = (np.uint64(1) << su) - np.uint64(1)
    rem = xu & mask
    half = np.uint64(1) << (su - np.uint64(1))
    gt = rem > half
    eq = rem == half
    nz = rem != 0
    big = s >= 64
    if np.any(big):
        # |x| <= 2**63 <= half: nonnegative x is below the half; negative x is above it, except the single
        # exact tie x = -2**63, s = 64.
        neg = x < 0
        tie = big & (s == 64) & (x == _I64_MIN)
        nz = np.where(big, x != 0, nz)
        eq = np.where(big, tie, eq)
        gt = np.where(big, neg & ~tie, gt)
    return fl, gt, eq, nz


def _round_increment(x, fl, gt, eq, nz, mode: Rounding) -> np.ndarray:
    neg = x < 0
    if mode is Rounding.TRN:
        return np.zeros(fl.shape, dtype=bool)
    if mode is Rounding.TRN_ZERO:
        return neg & nz
    if mode is Rounding.RND:
        return gt | eq
    if mode is Rounding.RND_ZERO:
        return gt | (eq & neg)
    if mode is Rounding.RND_INF:
        return gt | (eq & ~neg)
    if mode is Rounding.RND_MIN_INF:
        return gt
    if mode is Rounding.RND_CONV:
        return gt | (eq & ((fl & 1) == 1))
    raise ValueError(f"unknown rounding mode {mode!r}")


def shift_round(x: np.ndarray, shift, mode: Rounding) -> np.ndarray:
    """``x * 2**-shift`` rounded to an integer per ``mode`` (ap_fixed quantisation semantics).

    ``shift`` is an int or an int array broadcastable against ``x`` (per-channel shifts).  ``shift`` may be
    arbitrarily large.  ``shift < 0`` is an exact left shift; OverflowError if that leaves int64.
    """
    mode = Rounding(mode)
    x = _as_int64(x)
    s = _as_int64(shift, "shift")
    if s.size and int(s.min()) < 0:
        ls = np.maximum(-s, 0)
        if max_abs(x) and max_abs(x) << int(ls.max()) > _I64_MAX:
            # exact check per element only when the cheap global bound fails
            xb, lb = np.broadcast_arrays(x, ls)
            for xv, lv in zip(xb.ravel().tolist(), lb.ravel().tolist()):
                if not (_I64_MIN <= (xv << lv) <= _I64_MAX):
                    raise OverflowError(f"left shift of {xv} by {lv} leaves int64")
        rs = np.maximum(s, 0)
    else:
        ls = None
        rs = s
    out = _shift_right_round(x, rs, mode)
    if ls is not None:
        out = np.where(s < 0, np.broadcast_to(x, out.shape) << np.minimum(ls, 63), out)
    return out


_FAST_MODES = (Rounding.TRN, Rounding.RND, Rounding.RND_CONV)


def _shift_right_round(x: np.ndarray, s: np.ndarray, mode: Rounding) -> np.ndarray:
    """shift_round for s >= 0."""
    if s.size and int(s.max()) == 0:
        return np.broadcast_arrays(x, s)[0].copy()
    if mode in _FAST_MODES and s.size and int(s.min()) >= 1 and int(s.max()) <= 61 and max_abs(x) < (1 << 61):
        # The simulator's hot path, exact without overflow in this range: floor is an arithmetic shift;
        # half up adds half first; half to even adds half - 1 plus the floor's lowest bit (a tie then
        # carries exactly when the floor is odd).
        if mode is Rounding.TRN:
            return x >> s
        half = np.int64(1) << (s - 1)
        if mode is Rounding.RND:
            return (x + half) >> s
        return (x + (half - 1) + ((x >> s) & 1)) >> s
    s1 = np.maximum(s, 1)
    fl, gt, eq, nz = _round_parts(x, s1)
    xb = np.broadcast_to(x, fl.shape)
    out = fl + _round_increment(xb, fl, gt, eq, nz, mode)
    if np.any(s == 0):
        out = np.where(np.broadcast_to(s == 0, out.shape), xb, out)
    return out


# ------------------------------------------------------------------------------------------ overflow


def _apply_overflow(x: np.ndarray, above: np.ndarray, below: np.ndarray, bits: int, signed: bool,
                    mode: Overflow) -> np.ndarray:
    """Resolve out-of-range elements (flagged by ``above``/``below``) per ap_fixed overflow mode."""
    lo, hi = int_range(bits, signed)
    if mode is Overflow.WRAP:
        if signed and bits == 64:
            return x.copy()
        m = np.int64((1 << bits) - 1) if bits < 64 else np.int64(-1)
        u = x & m  # in [0, 2**bits)
        if signed:
            u = np.where(u > hi, u - np.int64(1 << bits), u)
        return u
    if mode is Overflow.SAT:
        return np.where(above, np.int64(hi), np.where(below, np.int64(lo), x))
    if mode is Overflow.SAT_ZERO:
        return np.where(above | below, np.int64(0), x)
    if mode is Overflow.SAT_SYM:
        if not signed or bits == 1:
            # ap_fixed: unsigned SAT_SYM is plain SAT; 1-bit signed has max 0, and ap_fixed saturates
            # negatives to -1 (its "min + 1" on one bit wraps back to min), i.e. plain SAT as well.
            return np.where(above, np.int64(hi), np.where(below, np.int64(lo), x))
        return np.where(above, np.int64(hi), np.where(below | (x == lo), np.int64(-hi), x))
    raise ValueError(f"unknown overflow mode {mode!r}")


def overflow(x: np.ndarray, bits: int, signed: bool, mode: Overflow) -> np.ndarray:
    """Fit integer ``x`` into a ``bits``-wide (un)signed integer per ap_fixed overflow mode."""
    mode = Overflow(mode)
    _check_width(bits, signed)
    x = _as_int64(x)
    lo, hi = int_range(bits, signed)
    above = x > hi if hi < _I64_MAX else np.zeros(x.shape, dtype=bool)
    below = x < lo if lo > _I64_MIN else np.zeros(x.shape, dtype=bool)
    return _apply_overflow(x, above, below, bits, signed, mode)


def overflow_count(x, bits: int, signed: bool) -> int:
    """Number of elements of ``x`` outside the range of a ``bits``-wide (un)signed integer."""
    x = _as_int64(x)
    lo, hi = int_range(bits, signed)
    n = 0
    if hi < _I64_MAX:
        n += int(np.count_nonzero(x > hi))
    if lo > _I64_MIN:
        n += int(np.count_nonzero(x < lo))
    return n


# ---------------------------------------------------------------------------------------- fixed cast


def cast_fixed(q: np.ndarray, frac_in, bits_out: int, frac_out: int, signed_out: bool,
               rounding: Rounding, ovf: Overflow) -> np.ndarray:
    """Integer ``q`` with ``frac_in`` fractional bits, cast to
    ``ap_fixed<bits_out, bits_out - frac_out, rounding, ovf>`` (``ap_ufixed`` when not ``signed_out``).

    Returns the raw integer of the result (value * 2**frac_out).  ``frac_in`` may be an int array
    (broadcast against ``q``).  Exactly the ap_fixed assignment semantics: round the exact value to the
    target LSB, then resolve overflow on the exact rounded value.  Left shifts (frac_out > frac_in) are
    checked without ever leaving int64, so saturation is exact even for huge shifts.
    """
    rounding, ovf = Rounding(rounding), Overflow(ovf)
    _check_width(bits_out, signed_out)
    q = _as_int64(q, "q")
    shift = _as_int64(frac_in, "frac_in") - np.int64(frac_out)
    q, shift = np.broadcast_arrays(q, shift)
    lo, hi = int_range(bits_out, signed_out)

    rs = np.maximum(shift, 0)
    ls = np.minimum(np.maximum(-shift, 0), 63)  # |q| < 2**63, so shifting by >= 63 only matters for q == 0
    left = shift < 0

    r = _shift_right_round(q, rs, rounding)  # for right shifts / no shift
    # Bounds on q for the left-shifted value q << ls to stay within [lo, hi]:
    #   q <= floor(hi / 2**ls) = hi >> ls ;  q >= ceil(lo / 2**ls) = -((-lo) >> ls)
    hi_q = np.int64(hi) >> ls if hi <= _I64_MAX else np.full(ls.shape, _I64_MAX, dtype=np.int64)
    neg_lo = -lo  # Python int, may be 2**63
    if neg_lo <= _I64_MAX:
        lo_q = -(np.int64(neg_lo) >> ls)
    else:  # lo == -2**63: -(2**63 >> ls) computed without overflow
        lo_q = np.where(ls == 0, np.int64(_I64_MIN), -(np.int64(1) << (np.int64(63) - np.maximum(ls, 1))))
    lo_q = np.where(-shift >= 64, np.int64(0), lo_q)  # 2**64 exceeds every range: only q == 0 fits
    # exact where in range; out of range it is the value modulo 2**64, which is what WRAP needs
    shifted = np.where(-shift >= 64, np.int64(0), q << ls)
    l_above = left & (q > hi_q)
    l_below = left & (q < lo_q)

    above = np.where(left, l_above, r > hi if hi < _I64_MAX else False)
    below = np.where(left, l_below, r < lo if lo > _I64_MIN else False)
    val = np.where(left, shifted, r)
    # WRAP: modulo 2**64 is also correct modulo 2**bits_out (bits_out <= 64)
    return _apply_overflow(val, np.asarray(above), np.asarray(below), bits_out, signed_out, ovf)


# ---------------------------------------------------------------------------------- requantisation


def quantize_multiplier(real, bits: int = 31) -> tuple[np.ndarray, np.ndarray]:
    """Approximate positive ``real`` (scalar or array) as ``m0 * 2**-shift``.

    ``m0`` is normalised into [2**(bits-1), 2**bits) (rounded half to even from the exact float64 mantissa,
    so the relative error is <= 2**-bits); ``shift`` may be large, or negative for real >= 2**bits.
    Both returned as int64 arrays of the input's shape.  ValueError for real <= 0, nan or inf.
    """
    bits = int(bits)
    if not 1 <= bits <= 62:
        raise ValueError(f"multiplier bits must be in [1, 62], got {bits}")
    r = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise ValueError(f"quantize_multiplier needs finite real > 0, got {real!r}")
    mant, exp = np.frexp(r)  # r = mant * 2**exp, mant in [0.5, 1)
    m = np.rint(np.ldexp(mant, bits))  # exact float64 scaling; rint = half to even
    m0 = m.astype(np.int64)
    exp = exp.astype(np.int64)
    carry = m0 == (np.int64(1) << np.int64(bits))  # rounded up to 2**bits: renormalise
    m0 = np.where(carry, m0 >> 1, m0)
    exp = np.where(carry, exp + 1, exp)
    shift = np.int64(bits) - exp
    return m0.astype(np.int64), shift.astype(np.int64)


def requantize(acc: np.ndarray, m0, shift, zero_point, bits: int, signed: bool,
               rounding: Rounding = Rounding.RND_CONV, ovf: Overflow = Overflow.SAT) -> np.ndarray:
    """``overflow(shift_round(acc * m0, shift, rounding) + zero_point, bits, signed, ovf)``.

    Per-channel ``m0`` / ``shift`` / ``zero_point`` broadcast along the last axis (ordinary numpy
    broadcasting).  The product ``acc * m0`` is computed in int64; if the extreme values of ``acc`` actually
    present times the extreme ``m0`` could leave int64 (or adding the zero point could), OverflowError is
    raised instead of wrapping silently.  For C++ widths use the static bound :func:`requant_product_bits`.

    The zero point is added after rounding, as onnxruntime does (rint, then + zero point).  For TRN, RND
    and RND_MIN_INF that equals an ap_fixed cast of ``acc*m0 + zp*2**shift``; for the sign- or
    parity-dependent modes (TRN_ZERO, RND_ZERO, RND_INF, RND_CONV) it does not when zp != 0.
    """
    rounding, ovf = Rounding(rounding), Overflow(ovf)
    _check_width(bits, signed)
    acc = _as_int64(acc, "acc")
    m0 = _as_int64(m0, "m0")
    shift = _as_int64(shift, "shift")
    zp = _as_int64(zero_point, "zero_point")
    if acc.size == 0 or m0.size == 0:
        return overflow(np.broadcast_arrays(acc, m0, shift, zp)[0].copy(), bits, signed, ovf)
    amin, amax, mmin, mmax = int(acc.min()), int(acc.max()), int(m0.min()), int(m0.max())
    corners = (amin * mmin, amin * mmax, amax * mmin, amax * mmax)
    if min(corners) < _I64_MIN or max(corners) > _I64_MAX:
        raise OverflowError(f"acc * m0 may leave int64: acc in [{amin}, {amax}], m0 in [{mmin}, {mmax}]")
    y = shift_round(acc * m0, shift, rounding)  # OverflowError itself if a negative shift overflows
    if y.size and zp.size and (int(y.max()) + int(zp.max()) > _I64_MAX or int(y.min()) + int(zp.min()) < _I64_MIN):
        raise OverflowError("requantize: adding the zero point leaves int64")
    y = y + zp
    return overflow(y, bits, signed, ovf)


def requant_product_bits(acc_bits: int, m_bits: int = 31) -> int:
    """Signed width that holds ``acc * m0`` for a signed ``acc_bits`` accumulator and an unsigned (positive)
    ``m_bits`` multiplier: |acc| <= 2**(acc_bits-1) and m0 < 2**m_bits, so the product lies in
    (-2**(acc_bits+m_bits-1), 2**(acc_bits+m_bits-1))."""
    acc_bits, m_bits = int(acc_bits), int(m_bits)
    if acc_bits < 1 or m_bits < 1:
        raise ValueError("widths must be >= 1")
    return acc_bits + m_bits


def accumulator_bits(in_bits: int, in_signed: bool, w_bits: int, w_signed: bool, fan_in: int) -> int:
    """Smallest signed width that can hold any sum of ``fan_in`` products x*w (x, w of the given types).

    Derived exactly from the extreme products: the sum lies in [fan_in * min(x*w), fan_in * max(x*w)].
    (Add the bias / zero-point correction terms separately with :func:`bits_for_range` if present.)
    """
    fan_in = int(fan_in)
    if fan_in < 1:
        raise ValueError(f"fan_in must be >= 1, got {fan_in}")
    xl, xh = int_range(in_bits, in_signed)
    wl, wh = int_range(w_bits, w_signed)
    prods = [xl * wl, xl * wh, xh * wl, xh * wh]
    return bits_for_range(fan_in * min(prods), fan_in * max(prods), signed=True)


# ------------------------------------------------------------------------- ONNX Quantize/Dequantize


def _per_axis(param, ndim: int, axis: int | None, name: str) -> np.ndarray:
    """Reshape a per-tensor (scalar / size-1) or per-axis (1-D) parameter for broadcasting."""
    p = np.asarray(param)
    if p.ndim == 0 or (p.ndim == 1 and p.size == 1 and axis is None):
        return p.reshape(())
    if p.ndim != 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {p.shape}")
    ax = 1 if axis is None else int(axis)  # ONNX default axis = 1
    if ax < 0:
        ax += ndim
    if not 0 <= ax < ndim:
        raise ValueError(f"axis {axis} out of range for rank {ndim}")
    shape = [1] * ndim
    shape[ax] = p.size
    return p.reshape(shape)


def quantize_linear(x: np.ndarray, scale, zero_point, bits: int = 8, signed: bool = True,
                    axis: int | None = None) -> np.ndarray:
    """ONNX QuantizeLinear as onnxruntime computes it (float input):
    ``saturate(rint(float32(x) / float32(scale)) + zero_point)``, float32 division, ties to even.

    Per-axis when ``scale`` is 1-D (``axis`` defaults to 1 like ONNX).  Returns int64.  +-inf saturate;
    NaN gives the minimum of the range (what onnxruntime's CPU kernel returns on x86).
    """
    lo, hi = int_range(bits, signed)
    x = np.asarray(x, dtype=np.float32)
    s = _per_axis(np.asarray(scale, dtype=np.float32), x.ndim, axis, "scale")
    zp = _per_axis(_as_int64(zero_point, "zero_point"), x.ndim, axis, "zero_point")
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        v = np.rint(np.divide(x, s, dtype=np.float32)).astype(np.float64)
    v = np.clip(v + zp.astype(np.float64), lo, hi)  # exact in float64 for any int64-representable range here
    v = np.where(np.isnan(v), float(lo), v)  # NaN -> minimum, as onnxruntime's CPU kernel (x86) gives
    return v.astype(np.int64)


def dequantize_linear(q, scale, zero_point, axis: int | None = None) -> np.ndarray:
    """ONNX DequantizeLinear as onnxruntime computes it: ``float32(q - zero_point) * float32(scale)``
    (the difference taken in integers).  Per-axis when ``scale`` is 1-D (``axis`` defaults to 1)."""
    q = _as_int64(q, "q")
    s = _per_axis(np.asarray(scale, dtype=np.float32), q.ndim, axis, "scale")
    zp = _per_axis(_as_int64(zero_point, "zero_point"), q.ndim, axis, "zero_point")
    return np.multiply((q - zp).astype(np.float32), s, dtype=np.float32)


# ------------------------------------------------------------------------------------------ matmul

_F64_EXACT = 2**53
_F32_EXACT = 2**24


def matmul_int(a: np.ndarray, b: np.ndarray, exact_float: bool = False) -> np.ndarray:
    """Exact integer ``np.matmul`` (same broadcasting), int64 result.

    Uses float BLAS when max|a| * max|b| * K < 2**53 (float32 below 2**24): then every product and every
    partial sum is an integer below 2**53, exactly representable, so the float result is exact whatever the
    summation order.  Otherwise int64 matmul (OverflowError if even int64 could overflow).  With
    ``exact_float`` a float result is returned as is (integer-valued; for ``rescale_sum``).
    """
    a = _as_int64(a, "a")
    b = _as_int64(b, "b")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul_int: operands must be at least 1-D")
    k = a.shape[-1]
    bound = max_abs(a) * max_abs(b) * k
    if bound < _F32_EXACT:  # int8 x int8 up to fan-in 1024: float32 is exact too, and twice as fast
        out = np.matmul(a.astype(np.float32), b.astype(np.float32))
    elif bound < _F64_EXACT:
        out = np.matmul(a.astype(np.float64), b.astype(np.float64))
    elif bound > _I64_MAX:
        raise OverflowError(f"matmul_int: partial sums may exceed int64 (bound {bound})")
    else:
        return np.matmul(a, b)
    return out if exact_float else out.astype(np.int64)


def matmul_codes(a, a_zero_point: int, b, b_zero_point: int, bound: int) -> np.ndarray:
    """``(a - za) @ (b - zb)`` exactly, for two activations whose types bound every partial sum by
    ``bound`` (max|a - za| * max|b - zb| * K): float32 or float64 BLAS when that is below 2**24 / 2**53,
    int64 otherwise.  Returns integer-valued floats (or int64)."""
    dtype = np.float32 if bound < _F32_EXACT else np.float64 if bound < _F64_EXACT else np.int64
    if dtype == np.int64 and bound > _I64_MAX:
        raise OverflowError(f"matmul_codes: partial sums may exceed int64 (bound {bound})")
    return np.matmul(np.subtract(a, a_zero_point, dtype=dtype), np.subtract(b, b_zero_point, dtype=dtype))


class WeightMatmul:
    """``(codes - zero_point) @ w + bias`` for a constant integer ``w`` (and ``bias``) and codes in
    [code_min, code_max], exactly, with the float copy of ``w`` made once.

    The exactness check is static (from the tensor types, as the C++ accumulator width is): float32 when every
    partial sum stays below 2**24, float64 below 2**53, int64 otherwise.  Calling returns integer-valued
    floats (or int64) that still lack ``column_offset``, a per-column integer the caller adds (a Rescale
    offset: no pass of its own); ``bound`` bounds |result|.  When the raw codes allow the same float type
    as centred ones, the codes are multiplied as they are (a plain cast, the fastest input pass) and the
    zero point and bias move into column_offset = bias - zero_point * sum(w); otherwise they are centred
    first and the bias rides along as one more row of ``w`` against a column of ones."""

    def __init__(self, w: np.ndarray, zero_point: int, code_min: int, code_max: int,
                 bias: np.ndarray | None = None, allow_raw: bool = True):
        w = _as_int64(w, "w")
        bias = np.zeros(w.shape[-1], dtype=np.int64) if bias is None else _as_int64(bias, "bias")
        k, w_abs = (w.shape[-2] if w.ndim >= 2 else 1), max_abs(w)
        self.zero_point = int(zero_point)
        centred = max(abs(code_min - self.zero_point), abs(code_max - self.zero_point)) * w_abs * k + max_abs(bias)
        raw = max(abs(code_min), abs(code_max)) * w_abs * k
        self.dtype = self._dtype(centred)
        self.raw = allow_raw and w.ndim == 2 and self.dtype != np.int64 and self._dtype(raw) == self.dtype
        if self.raw:
            self.bound, self.column_offset = raw, bias - self.zero_point * w.sum(axis=0)
            self.w, self.bias = w.astype(self.dtype), None
        else:
            self.bound, self.column_offset = centred, np.zeros(w.shape[-1], dtype=np.int64)
            self.fold_bias = self.dtype != np.int64 and w.ndim == 2
            self.w = (np.vstack([w, bias[None, :]]) if self.fold_bias else w).astype(self.dtype)
            self.bias = None if self.fold_bias else bias

    @staticmethod
    def _dtype(bound: int):
        if bound < _F32_EXACT:
            return np.float32
        if bound < _F64_EXACT:
            return np.float64
        if bound <= _I64_MAX:
            return np.int64
        raise OverflowError(f"partial sums may exceed int64 (bound {bound})")

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        k = codes.shape[-1]
        if self.raw:  # one 2-D GEMM over every row: BLAS is faster on it than on a stack of small ones
            acc = np.matmul(codes.reshape(-1, k).astype(self.dtype), self.w)
            return acc.reshape(codes.shape[:-1] + self.w.shape[1:])
        if self.w.ndim != 2 or codes.ndim < 2:
            acc = np.matmul(np.subtract(codes, self.zero_point, dtype=self.dtype), self.w)
            return acc + self.bias
        rows = codes.reshape(-1, k)
        x = np.empty((rows.shape[0], k + self.fold_bias), dtype=self.dtype)
        # computed in the float type (dtype=): codes may be stored narrow (int8), where the difference would wrap
        np.subtract(rows, self.zero_point, out=x[:, :k], dtype=self.dtype, casting="unsafe")
        if self.fold_bias:
            x[:, k] = 1
        acc = np.matmul(x, self.w)
        if self.bias is not None:
            acc += self.bias
        return acc.reshape(codes.shape[:-1] + self.w.shape[1:])


# -------------------------------------------------------------------------------- fused requantisation

_RESCALE_FAST = (Rounding.TRN, Rounding.RND, Rounding.RND_CONV)


def _max_abs_any(a) -> int:
    """max |a| of an integer-valued int or float array, as a Python int."""
    a = np.asarray(a)
    if a.size == 0:
        return 0
    return max(abs(int(a.max())), abs(int(a.min())))  # Python ints: abs(int8(-128)) would wrap


class Rescale:
    """``overflow(shift_round(sum_i t_i * m_i + offset, shift, rounding) + zero_point)``: the requantisation of
    every op (one term: an accumulator times its multiplier; several: a residual add, LayerNorm's gamma and
    beta), with everything that does not depend on the data prepared once per node.

    ``mults``, ``shift``, ``zero_point`` and the integer ``offset`` (a bias times its multiplier, zero-point
    corrections) broadcast along the last axis; terms are integer-valued arrays (int, or float from an exact
    matmul).  ``bounds`` (per term, optional) bound |t_i| statically, from the tensor types; missing ones are
    read from the data.  When the total bound allows it the work is done in float64 with every intermediate
    exact: every product t*m*2**-s, partial sum and y + zp + 1/2 is an integer below 2**53 times 2**-s, hence
    representable, so floor(y + zp + 1/2), floor(y + zp) and rint(y) + zp are exactly RND, TRN and RND_CONV
    (+ zp).
    Otherwise (and for the other rounding modes) the int64 path of ``shift_round`` / ``overflow`` runs.
    Calling returns the codes (int64) and how many elements were out of range before the overflow mode
    resolved them.
    """

    def __init__(self, mults: list, shift, zero_point, bits: int | None, signed: bool, rounding: Rounding,
                 ovf: Overflow, bounds: list | None = None, offset=0):
        self.rounding, self.ovf = Rounding(rounding), Overflow(ovf)
        self.bits, self.signed = bits, bool(signed)  # bits None: an intermediate, rounded but not fitted
        if bits is not None:
            _check_width(bits, signed)
            self.lo, self.hi = int_range(bits, signed)
            self.store = storage_dtype(self.lo, self.hi)
        self.shift = _as_int64(shift, "shift")
        self.zp = _as_int64(zero_point, "zero_point")
        self.offset = _as_int64(offset, "offset")
        self.mults = [_as_int64(m, "mult") for m in mults]
        self.bounds = list(bounds) if bounds is not None else [None] * len(mults)
        smin, smax = (int(self.shift.min()), int(self.shift.max())) if self.shift.size else (0, 0)
        self._grow = max(-smin, 0)  # a negative shift multiplies by 2**-s
        self._room = (max_abs(self.zp) + 1) << max(smax, 0)  # adding zp and 1/2 before rounding
        self._mult_abs = [max_abs(m) for m in self.mults]
        self._offset_abs = max_abs(self.offset)
        self._eligible = self.rounding in _RESCALE_FAST and -60 <= smin and smax <= 60
        if self._eligible:
            self._factors = [np.ldexp(m.astype(np.float64), -self.shift) for m in self.mults]  # exact
            self._offset_f = np.ldexp(self.offset.astype(np.float64), -self.shift) if self._offset_abs else None
        self.static_fast = self._eligible and None not in self.bounds and self._fits(self.bounds)
        self.use_jit = self._eligible and len(mults) <= 2
        self._jit_cz, self._jit_consts = None, {}  # c, z; the 2-D forms of factors, c, z per term shapes

    def _fits(self, term_bounds) -> bool:
        total = sum(int(b) * m for b, m in zip(term_bounds, self._mult_abs)) + self._offset_abs
        return self._offset_abs < 2**53 and (total << self._grow) + self._room < 2**53

    def __call__(self, terms: list, keep_float: bool = False) -> tuple[np.ndarray, int]:
        """(codes, out-of-range count); `keep_float`: codes of the float path stay integer-valued float64
        (for a next Rescale or matmul to consume without a conversion)."""
        fast = self.static_fast
        if not fast and self._eligible:
            fast = self._fits([_max_abs_any(t) if b is None else b for t, b in zip(terms, self.bounds)])
        return self._float_path(terms, keep_float) if fast else self._int_path(terms)

    def _int_path(self, terms) -> tuple[np.ndarray, int]:
        ints = [t.astype(np.int64) if np.asarray(t).dtype.kind == "f" else _as_int64(t, "term") for t in terms]
        if sum(max_abs(t) * ma for t, ma in zip(ints, self._mult_abs)) + self._offset_abs > _I64_MAX:
            raise OverflowError("the sum of products leaves 64 bits")
        acc = None
        for t, m in zip(ints, self.mults):
            acc = t * m if acc is None else acc + t * m
        if self._offset_abs:
            acc = acc + self.offset
        y = shift_round(acc, self.shift, self.rounding) + self.zp
        if self.bits is None:
            return y, 0
        return overflow(y, self.bits, self.signed, self.ovf), overflow_count(y, self.bits, self.signed)

    def _jit_path(self, terms, keep_float: bool):
        """Rescale's float path compiled (numerics_jit), or None when that case is not compiled."""
        if self.bits is not None and self.ovf is not Overflow.SAT:
            return None
        rnd = self.rounding is Rounding.RND_CONV
        if self._jit_cz is None:
            c = (0.0 if self._offset_f is None else self._offset_f) + (
                0.0 if rnd else self.zp + (0.5 if self.rounding is Rounding.RND else 0.0))
            self._jit_cz = (c, self.zp if rnd else 0.0)
        c, z = self._jit_cz
        if self.bits is None:
            lo, hi, dtype = -np.inf, np.inf, np.float64 if keep_float else np.int64
        else:
            lo, hi, dtype = float(self.lo), float(self.hi), np.float64 if keep_float else self.store
        key = tuple(np.shape(t) for t in terms)
        if key not in self._jit_consts:  # (shape, prepared vectors) per term shapes, None when not compiled
            try:
                shape = np.broadcast_shapes(*key, *(np.shape(f) for f in self._factors), np.shape(c), np.shape(z))
            except ValueError:
                shape = ()
            consts = numerics_jit.prepare(self._factors, c, z, shape) if shape and 0 not in shape else None
            self._jit_consts[key] = None if consts is None else (shape, consts)
        prepared = self._jit_consts[key]
        if prepared is None:
            return None
        return numerics_jit.requant(terms, prepared[1], prepared[0], rnd, lo, hi, True, dtype)

    def _float_path(self, terms, keep_float: bool) -> tuple[np.ndarray, int]:
        if self.use_jit and numerics_jit.enabled():
            done = self._jit_path(terms, keep_float)
            if done is not None:
                return done
        y = None
        for t, f in zip(terms, self._factors):
            part = np.multiply(t, f, dtype=np.float64)
            if y is None:
                y = part
            elif y.shape == np.broadcast_shapes(y.shape, part.shape):
                np.add(y, part, out=y)
            else:
                y = y + part
        if self._offset_f is not None:
            np.add(y, self._offset_f, out=y)
        if self.rounding is Rounding.RND_CONV:
            np.rint(y, out=y)
            if self.zp.any():
                np.add(y, self.zp, out=y)
        else:
            np.add(y, self.zp + (0.5 if self.rounding is Rounding.RND else 0.0), out=y)
            np.floor(y, out=y)
        if self.bits is None:
            return (y if keep_float else y.astype(np.int64)), 0
        ymin, ymax = (float(y.min()), float(y.max())) if y.size else (0.0, 0.0)
        n_out = 0
        if ymin < self.lo or ymax > self.hi:
            n_out = int(np.count_nonzero(y < self.lo)) + int(np.count_nonzero(y > self.hi))
        if n_out and self.ovf is Overflow.SAT:
            np.clip(y, self.lo, self.hi, out=y)
        elif n_out or (self.ovf is Overflow.SAT_SYM and self.signed and ymin <= self.lo):
            return overflow(y.astype(np.int64), self.bits, self.signed, self.ovf), n_out
        return (y if keep_float else y.astype(self.store)), n_out


def storage_dtype(lo: int, hi: int) -> np.dtype:
    """The narrowest numpy integer type holding [lo, hi]: the simulator stores codes in it (less memory
    traffic; consumers widen to int64 or to an exact float before any arithmetic)."""
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def rescale_sum(terms: list, mults: list, shift, zero_point, bits: int, signed: bool,
                rounding: Rounding, ovf: Overflow, bounds: list | None = None) -> tuple[np.ndarray, int]:
    """One-off ``Rescale(mults, shift, zero_point, ...)(terms)`` (ops that run per batch keep a Rescale in
    their parameters instead)."""
    return Rescale(mults, shift, zero_point, bits, signed, rounding, ovf, bounds)(terms)
