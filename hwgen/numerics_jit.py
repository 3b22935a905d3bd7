"""Compiled (numba) twins of the simulator's hottest numpy code, each one pass over the data.

The numpy versions are the reference and stay in place: numerics.Rescale's float path (the requantisation of
every op: multiply, add, round, min/max, clip, cast, each a pass over the whole tensor), LayerNorm's
statistics and normalisation, softmax's exp/sum/reciprocal, the lut op's table lookup and the MoE combine's
scatter-add.  The compiled versions do the same integer arithmetic, or the same float64 operations on the
same exact integers (every product, partial sum and rounding operand an integer below 2**53 times a power of
two, as Rescale's static bound proves), element by element, so results are equal bit for bit:
tests/test_sim_jit.py runs op cases and whole models both ways and compares codes and saturation counts.
Each wrapper returns None (or False) for a case it does not cover, and the caller runs the numpy version.

numba is imported on first use.  Without it, with HWGEN_SIM_JIT=0, or for runs too small to repay loading
the kernels (HWGEN_SIM_JIT=auto, the default: see AUTO_MIN_WORK), the numpy versions run; HWGEN_SIM_JIT=1
uses the kernels whatever the size.
"""

from __future__ import annotations

import contextlib
import os
import types

import numpy as np

_KERNELS = None  # the compiled kernels (a namespace) once built; False when numba is missing or disabled
_SUSPENDED = 0  # > 0 inside `disabled()`

# `HWGEN_SIM_JIT=auto` (the default) uses the kernels for runs of at least this many element results (the
# sizes of every node output, times the images): loading them costs about 0.8 s once per process (a few
# seconds the first time on a machine, when numba compiles them), which smaller runs do not win back.
AUTO_MIN_WORK = 400_000_000


@contextlib.contextmanager
def disabled():
    """Run the numpy versions inside the block."""
    global _SUSPENDED
    _SUSPENDED += 1
    try:
        yield
    finally:
        _SUSPENDED -= 1


def mode() -> str:
    """'on', 'off' or 'auto', from $HWGEN_SIM_JIT (1, 0, or anything else / unset)."""
    value = os.environ.get("HWGEN_SIM_JIT", "auto").strip().lower()
    return {"1": "on", "on": "on", "0": "off", "off": "off"}.get(value, "auto")


def wanted(work: int) -> bool:
    """Whether a simulation producing `work` element results should use the compiled kernels."""
    m = mode()
    return m == "on" or (m == "auto" and work >= AUTO_MIN_WORK)


def enabled() -> bool:
    """Whether the compiled kernels are in use here (numba importable, HWGEN_SIM_JIT not 0, not inside
    `disabled()`)."""
    return _kernels() is not False


def _kernels():
    global _KERNELS
    if _SUSPENDED or mode() == "off":
        return False
    if _KERNELS is None:
        try:
            _KERNELS = _compile()
        except ImportError:
            _KERNELS = False
    return _KERNELS


def _compile():
    from hwgen import _jit_kernels as k

    return types.SimpleNamespace(requant1=k.requant1, requant2=k.requant2, requant1_rows=k.requant1_rows,
                                 layernorm_rows=k.layernorm_rows, softmax_rows=k.softmax_rows,
                                 scatter_weighted=k.scatter_weighted, lut_interp=k.lut_interp)


def _rows_of(codes: np.ndarray, max_itemsize: int) -> np.ndarray | None:
    """Integer codes as a C-contiguous 2-D (rows, last axis) array, or None when not compiled for them."""
    if _kernels() is False or codes.ndim == 0 or codes.dtype.kind not in "iu" or codes.dtype.itemsize > max_itemsize:
        return None
    return np.ascontiguousarray(codes).reshape(-1, codes.shape[-1])


def layernorm_rows(codes: np.ndarray, zero_point: int, eps_int: int, table: np.ndarray, index_bits: int,
                   frac_shift: int) -> np.ndarray | None:
    """LayerNorm's normalised rows z = RND((n*x - S1) * r * 2**-(frac_shift + e)), x = codes - zero_point,
    S1 = sum x, S2 = sum x*x, (r, e) = the rsqrt table's value for max(n*S2 - S1**2 + eps_int, 1)
    (tables.RsqrtTable.lookup), computed per row in int64 (integer-valued float64 result, as
    hwgen/ops/layernorm.py's numpy version, which is the reference).  None when not compiled: codes over
    16 bits, or where the bound below does not prove the kernel's float64 arithmetic exact)."""
    rows = _rows_of(codes, 2)
    if rows is None:
        return None
    n, info = codes.shape[-1], np.iinfo(codes.dtype)
    code_abs, zp_abs = max(-int(info.min), int(info.max)), abs(int(zero_point))
    # |code * n*r| + |(n*zp + S1) * r| + 2**(sh-1), with sh <= frac_shift + 32 (v < 2**64)
    bound = (n * code_abs + n * zp_abs + n * (code_abs + zp_abs)) * int(table.max()) + (1 << (frac_shift + 32))
    if bound >= 1 << 53:
        return None
    out = np.empty(rows.shape, dtype=np.float64)
    _kernels().layernorm_rows(rows, np.int64(zero_point), np.int64(eps_int), table, index_bits, frac_shift, out)
    return out.reshape(codes.shape)


def softmax_rows(codes: np.ndarray, table: np.ndarray, index_shift: int, recip_bits: int,
                 prob_shift: int) -> np.ndarray | None:
    """Softmax's probabilities floor(e * floor(2**recip_bits / sum e) / 2**prob_shift) per row, e = the exp
    table's entries at min((row max - code) >> index_shift, last) (tables.ExpTable.lookup), in int64
    (integer-valued float64 result, as hwgen/ops/softmax.py's numpy version, which is the reference).
    None when not compiled (codes over 32 bits, recip_bits over 52: e * recip <= 2**recip_bits must be exact
    in float64)."""
    rows = _rows_of(codes, 4)
    if rows is None or recip_bits > 52 or codes.shape[-1] == 0:
        return None
    out = np.empty(rows.shape, dtype=np.float64)
    _kernels().softmax_rows(rows, table, index_shift, recip_bits, prob_shift, out)
    return out.reshape(codes.shape)


def scatter_weighted(acc: np.ndarray, rows: np.ndarray, y: np.ndarray, zero_point: int,
                     weight: np.ndarray) -> bool:
    """acc[rows[i]] += (y[i] - zero_point) * weight[i] in acc's type (integer-valued float64 proven exact by
    the caller, or int64), rows distinct; False when not compiled (the caller does it in numpy)."""
    if _kernels() is False or acc.ndim != 2 or y.ndim != 2:
        return False
    _kernels().scatter_weighted(acc, rows, np.ascontiguousarray(y), acc.dtype.type(zero_point), weight.astype(acc.dtype))
    return True


_LUT_MODES = {"AP_TRN": 0, "AP_RND": 1, "AP_RND_CONV": 2}


def lut_interp(codes: np.ndarray, qmin: int, table: np.ndarray, shift: int, frac: int, rounding: str, lo: int,
               hi: int, out_dtype) -> tuple[np.ndarray, int] | None:
    """The interpolating table of hwgen/ops/lut.py (its numpy version is the reference): idx = code - qmin,
    y = t[i] + ((t[i+1] - t[i]) * (idx mod 2**shift) >> shift) with i = idx >> shift, rounded by `frac`
    bits (TRN, RND or RND_CONV), counted against and clipped to [lo, hi] (AP_SAT), as (codes, out-of-range
    count); with shift 0 an exact table: y = t[idx] as it is.  None when not compiled (another rounding mode,
    frac of 0, an index outside the table)."""
    mode = _LUT_MODES.get(getattr(rounding, "value", rounding))
    if _kernels() is False or mode is None or shift < 0 or frac <= 0 or codes.dtype.kind not in "iu":
        return None
    flat = np.ascontiguousarray(codes).reshape(-1)
    out = np.empty(flat.shape, dtype=out_dtype)
    n_out = _kernels().lut_interp(flat, np.int64(qmin), table, shift, frac, mode, np.int64(lo), np.int64(hi), out)
    return None if n_out < 0 else (out.reshape(codes.shape), int(n_out))


def along_columns(a, cols: int) -> np.ndarray | None:
    """`a` (broadcasting against [..., cols]) as a float64 vector of length cols, or None when it varies
    along another axis."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 1:
        return np.full(cols, a.reshape(-1)[0])
    if a.ndim == 0 or a.shape[-1] != cols or a.size != cols:
        return None
    return np.ascontiguousarray(a.reshape(cols))


def along_rows(a, shape: tuple) -> np.ndarray | None:
    """`a` (broadcasting against `shape`, constant along its last axis) as a float64 vector with one value
    per row (all axes but the last), or None when it varies along the last axis."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim and a.shape[-1] != 1:
        return None
    lead = shape[:-1]
    return np.ascontiguousarray(np.broadcast_to(a.reshape(a.shape[:-1]) if a.ndim else a, lead).reshape(-1))


def prepare(factors: list, c, z, shape: tuple):
    """('columns' | 'rows', factors, c, z) as vectors for results of `shape` (see requant), or None when
    they vary along both axes."""
    arrays = [*factors, c, z]
    cols = [along_columns(a, shape[-1]) for a in arrays]
    if all(v is not None for v in cols):
        return "columns", cols[:-2], cols[-2], cols[-1]
    rows = [along_rows(a, shape) for a in arrays]
    if len(factors) == 1 and all(v is not None for v in rows):
        return "rows", rows[:-2], rows[-2], rows[-1]
    return None


def requant(terms: list, consts: tuple, shape: tuple, use_rint: bool, lo: float, hi: float, clip: bool,
            out_dtype) -> tuple[np.ndarray, int] | None:
    """sum_i terms_i * factors_i, rounded as Rescale's float path does (floor(y + c), or rint(y + c) + z),
    counted against and (clip) clipped to [lo, hi], as (codes, out-of-range count), for results of `shape`
    (the broadcast of everything, not scalar, not empty).  `consts`: prepare(factors, c, z, shape), not None.
    Call only when enabled()."""
    kernels = _kernels()
    kind, fs, c, z = consts
    cols = shape[-1]
    ts = [np.ascontiguousarray(np.broadcast_to(t, shape) if np.shape(t) != shape else t).reshape(-1, cols)
          for t in terms]  # a copy only for a broadcast term
    out = np.empty(ts[0].shape, dtype=out_dtype)
    if kind == "rows":
        n_out = kernels.requant1_rows(ts[0], fs[0], c, z, use_rint, lo, hi, clip, out)
    elif len(terms) == 1:
        n_out = kernels.requant1(ts[0], fs[0], c, z, use_rint, lo, hi, clip, out)
    else:
        n_out = kernels.requant2(ts[0], fs[0], ts[1], fs[1], c, z, use_rint, lo, hi, clip, out)
    return out.reshape(shape), int(n_out)
