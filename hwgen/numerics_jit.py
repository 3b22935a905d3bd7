"""Compiled (numba) twins of the simulator's hottest numpy code, each one pass over the data.

The numpy versions are the reference and stay in place: numerics.Rescale's float path (the requantisation of
every op: multiply, add, round, min/max, clip, cast, each a pass over the whole tensor), LayerNorm's
statistics and normalisation, softmax's exp/sum/reciprocal, the lut op's table lookup and the MoE combine's
scatter-add.  The compiled versions do the same integer arithmetic, or the same float64 operations on the
same exact integers (every product, partial sum and rounding operand an integer below 2**53 times a power of
two, as Rescale's static bound proves), element by element, so results are equal bit for bit:
tests/test_sim_jit.py runs op cases and whole models both ways and compares codes and saturation counts.
Each wrapper returns None (or False) for a case it does not cover, and the caller runs the numpy version.

numba is imported on first use (it costs about half a second); without it, or with HWGEN_SIM_JIT=0, the
numpy path runs.
"""

from __future__ import annotations

import contextlib
import os
import types

import numpy as np

_KERNELS = None  # the compiled kernels (a namespace) once built; False when numba is missing or disabled


@contextlib.contextmanager
def disabled():
    """Run the numpy versions inside the block (tests compare the two)."""
    global _KERNELS
    saved = _kernels()
    _KERNELS = False
    try:
        yield
    finally:
        _KERNELS = saved


def enabled() -> bool:
    """Whether the compiled kernels are in use (numba importable and HWGEN_SIM_JIT not 0)."""
    return _kernels() is not False


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = False
        if os.environ.get("HWGEN_SIM_JIT", "1") != "0":
            try:
                _KERNELS = _compile()
            except ImportError:
                pass
    return _KERNELS


def _compile():
    import numba

    # nogil: the simulator's chunk threads run these in parallel; cache: compiled once per machine
    jit = numba.njit(cache=True, nogil=True, fastmath=False)

    @jit
    def finish(y, c, z, use_rint, lo, hi, clip):
        """Round y + c (floor, or rint then + z), then count and clip to [lo, hi]."""
        if use_rint:
            y = np.rint(y + c) + z
        else:
            y = np.floor(y + c)
        if y < lo:
            return (lo if clip else y), 1
        if y > hi:
            return (hi if clip else y), 1
        return y, 0

    @jit
    def requant1(t, f, c, z, use_rint, lo, hi, clip, out):
        rows, cols = t.shape
        n_out = 0
        for i in range(rows):
            for j in range(cols):
                y, o = finish(t[i, j] * f[j], c[j], z[j], use_rint, lo, hi, clip)
                out[i, j] = y
                n_out += o
        return n_out

    @jit
    def requant2(t0, f0, t1, f1, c, z, use_rint, lo, hi, clip, out):
        rows, cols = t0.shape
        n_out = 0
        for i in range(rows):
            for j in range(cols):
                y, o = finish(t0[i, j] * f0[j] + t1[i, j] * f1[j], c[j], z[j], use_rint, lo, hi, clip)
                out[i, j] = y
                n_out += o
        return n_out

    @jit
    def requant1_rows(t, f, c, z, use_rint, lo, hi, clip, out):
        rows, cols = t.shape
        n_out = 0
        for i in range(rows):
            fi, ci, zi = f[i], c[i], z[i]
            for j in range(cols):
                y, o = finish(t[i, j] * fi, ci, zi, use_rint, lo, hi, clip)
                out[i, j] = y
                n_out += o
        return n_out

    @jit
    def layernorm_rows(codes, zero_point, eps_int, table, index_bits, frac_shift, out):
        rows, n = codes.shape
        base = 1 << (index_bits - 2)
        for i in range(rows):
            s1, s2 = 0, 0
            for j in range(n):
                d = np.int64(codes[i, j]) - zero_point
                s1 += d
                s2 += d * d
            v = max(n * s2 - s1 * s1 + eps_int, 1)
            bits, rest = 0, v
            while rest > 0:
                rest >>= 1
                bits += 1
            k2 = bits - index_bits
            k2 += k2 & 1  # even: v = m * 4**(k2/2)
            m = v >> k2 if k2 >= 0 else v << -k2
            r = np.int64(table[m - base])
            sh = frac_shift + k2 // 2
            half = (np.int64(1) << (sh - 1)) if sh > 0 else np.int64(0)
            for j in range(n):
                p = (n * (np.int64(codes[i, j]) - zero_point) - s1) * r
                out[i, j] = (p + half) >> sh if sh >= 0 else p << -sh

    @jit
    def softmax_rows(codes, table, index_shift, recip_bits, prob_shift, out):
        rows, n = codes.shape
        last = table.shape[0] - 1
        e = np.empty(n, dtype=np.int64)
        for i in range(rows):
            top = np.int64(codes[i, 0])
            for j in range(1, n):
                top = max(top, np.int64(codes[i, j]))
            total = 0
            for j in range(n):
                idx = (top - np.int64(codes[i, j])) >> index_shift
                e[j] = table[min(idx, last)]
                total += e[j]
            recip = (np.int64(1) << recip_bits) // total
            for j in range(n):
                out[i, j] = (e[j] * recip) >> prob_shift

    @jit
    def scatter_weighted(acc, rows, y, zero_point, weight):
        for i in range(rows.shape[0]):
            r, w = rows[i], weight[i]
            for j in range(y.shape[1]):
                acc[r, j] += (y[i, j] - zero_point) * w

    @jit
    def lut_interp(codes, qmin, table, shift, frac, mode, lo, hi, out):
        mask, half, last = (1 << shift) - 1, np.int64(1) << (frac - 1), table.shape[0] - 1
        n_out = 0
        for k in range(codes.shape[0]):
            idx = np.int64(codes[k]) - qmin
            i = idx >> shift
            if idx < 0 or i > last or (shift and i == last):
                return -1  # outside the table: the numpy version raises
            if shift == 0:  # an exact table: its entries are codes of the output already
                out[k] = table[idx]
                continue
            a = np.int64(table[i])
            y = a + (((np.int64(table[i + 1]) - a) * (idx & mask)) >> shift)
            q = y >> frac  # TRN
            if mode == 1:  # RND
                q = (y + half) >> frac
            elif mode == 2:  # RND_CONV
                r = y - (q << frac)
                if r > half or (r == half and (q & 1) == 1):
                    q += 1
            if q < lo:
                q, n_out = lo, n_out + 1
            elif q > hi:
                q, n_out = hi, n_out + 1
            out[k] = q
        return n_out

    return types.SimpleNamespace(requant1=requant1, requant2=requant2, requant1_rows=requant1_rows,
                                 layernorm_rows=layernorm_rows, softmax_rows=softmax_rows,
                                 scatter_weighted=scatter_weighted, lut_interp=lut_interp)


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
    16 bits or rows over 2**16 elements (where the int64 products are not proven to fit)."""
    rows = _rows_of(codes, 2)
    if rows is None or codes.shape[-1] >= 1 << 16:
        return None
    out = np.empty(rows.shape, dtype=np.float64)
    _kernels().layernorm_rows(rows, np.int64(zero_point), np.int64(eps_int), table, index_bits, frac_shift, out)
    return out.reshape(codes.shape)


def softmax_rows(codes: np.ndarray, table: np.ndarray, index_shift: int, recip_bits: int,
                 prob_shift: int) -> np.ndarray | None:
    """Softmax's probabilities floor(e * floor(2**recip_bits / sum e) / 2**prob_shift) per row, e = the exp
    table's entries at min((row max - code) >> index_shift, last) (tables.ExpTable.lookup), in int64
    (integer-valued float64 result, as hwgen/ops/softmax.py's numpy version, which is the reference).
    None when not compiled (codes over 32 bits, recip_bits over 62)."""
    rows = _rows_of(codes, 4)
    if rows is None or recip_bits > 62 or codes.shape[-1] == 0:
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
