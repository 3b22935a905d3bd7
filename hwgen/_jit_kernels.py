"""The numba kernels of hwgen/numerics_jit.py (see there), at module level so that numba's on-disk cache
finds them again in the next process (it does not cache functions defined inside another function).
Imported only through numerics_jit, on first use."""

import numpy as np
from numba import njit

# nogil: the simulator's chunk threads run these in parallel; cache: compiled once per machine
jit = njit(cache=True, nogil=True, fastmath=False)


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


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def row_moments(codes, i, zero_point):
    """(sum d, sum d*d) of row i, d = code - zero_point, in float64: every term and partial sum is an
    integer below 2**53 (the callers bound the row), so any summation order (reassoc: vectorised) is
    exact."""
    a, b = 0.0, 0.0
    for j in range(codes.shape[1]):
        d = np.float64(codes[i, j]) - zero_point
        a += d
        b += d * d
    return np.int64(a), np.int64(b)


@jit
def layernorm_rows(codes, zero_point, eps_int, table, index_bits, frac_shift, out):
    rows, n = codes.shape
    base = 1 << (index_bits - 2)
    for i in range(rows):
        s1, s2 = row_moments(codes, i, np.float64(zero_point))
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
        # RND((n*(code - zp) - S1) * r / 2**sh) = floor((code * a + b) * 2**-sh), exact in float64
        a = np.float64(n * r)
        b = np.float64(half - (n * zero_point + s1) * r)
        scale = np.ldexp(1.0, -sh)
        for j in range(n):
            out[i, j] = np.floor((codes[i, j] * a + b) * scale)


@jit
def softmax_rows(codes, table, index_shift, recip_bits, prob_shift, out):
    rows, n = codes.shape
    last = table.shape[0] - 1
    e = np.empty(n, dtype=np.float64)
    scale = np.ldexp(1.0, -prob_shift)
    for i in range(rows):
        top = np.int64(codes[i, 0])
        for j in range(1, n):
            top = max(top, np.int64(codes[i, j]))
        total = 0
        for j in range(n):
            entry = table[min((top - np.int64(codes[i, j])) >> index_shift, last)]
            e[j] = entry
            total += entry
        recip = np.float64((np.int64(1) << recip_bits) // total)
        for j in range(n):  # e * recip <= 2**recip_bits <= 2**52: exact in float64
            out[i, j] = np.floor(e[j] * recip * scale)


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
