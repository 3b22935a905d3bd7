"""Lookup tables, built once in Python and written verbatim into the generated C++.

Each builder returns plain integer arrays plus the constants that say how the index is formed; the
simulator and the C++ kernels index them the same way. Nothing here runs in hardware as float math.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXP_FRAC = 17          # exp table entries: e^-x * 2**17 (entry 0 is exactly 2**17)
MAX_EXP_ENTRIES = 4096
RSQRT_INDEX_BITS = 12   # rsqrt mantissa taken from the top 12 bits: index in [2**10, 2**12)
RSQRT_FRAC = 24         # rsqrt entries: 2**24 / sqrt(m)


@dataclass(frozen=True)
class ExpTable:
    """exp(-d * step) for integer d >= 0, d = (row max - code) >> index_shift."""

    values: np.ndarray   # uint, EXP_FRAC fractional bits
    index_shift: int     # drop this many low bits of d before indexing
    frac: int = EXP_FRAC

    def lookup(self, d: np.ndarray) -> np.ndarray:
        """Entries for differences d >= 0 (index min(d >> index_shift, last), as the C++ takes it)."""
        idx = np.asarray(d, dtype=np.int64)
        if self.index_shift:
            idx = idx >> self.index_shift
        return np.take(self.values, idx, mode="clip")  # d >= 0: clip only caps the index at the last entry


def exp_table(input_scale: float, input_levels: int) -> ExpTable:
    """Table of e^(-d * input_scale) over every difference d in [0, input_levels).

    For 8-bit inputs that is every possible difference, exactly rounded. Wider inputs index by the top
    bits of d (index_shift) so the table stays at most MAX_EXP_ENTRIES long. Trailing zeros are cut and
    one zero entry is kept at the end, where all larger differences land."""
    shift = 0
    while (input_levels >> shift) > MAX_EXP_ENTRIES:
        shift += 1
    step = input_scale * (1 << shift)
    n = min((input_levels + (1 << shift) - 1) >> shift, MAX_EXP_ENTRIES)
    d = np.arange(n, dtype=np.float64) * step
    values = np.rint(np.exp(-d) * 2.0**EXP_FRAC).astype(np.int64)
    nz = int(np.count_nonzero(values))
    values = np.concatenate([values[:nz], [0]]) if nz < n else values
    return ExpTable(values, shift)


@dataclass(frozen=True)
class RsqrtTable:
    """2**RSQRT_FRAC / sqrt(m) for m in [2**(B-2), 2**B), B = RSQRT_INDEX_BITS."""

    values: np.ndarray
    index_bits: int = RSQRT_INDEX_BITS
    frac: int = RSQRT_FRAC

    def lookup(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For integers v > 0: (r, e) with 1/sqrt(v) ~= r * 2**-(frac + e). Normalises v by an even shift
        so that its top bits index the table (v = m * 4**k)."""
        v = np.asarray(v, dtype=np.int64)
        if np.any(v <= 0):
            raise ValueError("rsqrt of a non-positive value")
        bl = _bit_length(v)
        # even shift k2 so that m = v >> k2 lies in [2**(B-2), 2**B)
        k2 = bl - self.index_bits
        k2 = k2 + (k2 & 1)
        m = np.where(k2 >= 0, v >> np.maximum(k2, 0), v << np.maximum(-k2, 0))
        r = self.values[m - (1 << (self.index_bits - 2))]
        return r, k2 // 2


def rsqrt_table() -> RsqrtTable:
    lo, hi = 1 << (RSQRT_INDEX_BITS - 2), 1 << RSQRT_INDEX_BITS
    m = np.arange(lo, hi, dtype=np.float64)
    return RsqrtTable(np.rint(2.0**RSQRT_FRAC / np.sqrt(m)).astype(np.int64))


def _bit_length(v: np.ndarray) -> np.ndarray:
    """Bit length of positive int64 values, exactly (no float log)."""
    if v.size and int(v.max()) < 2**53:  # exactly representable: frexp's exponent is the bit length
        return np.frexp(v.astype(np.float64))[1].astype(np.int64)
    out = np.zeros(v.shape, dtype=np.int64)
    x = v.copy()
    for s in (32, 16, 8, 4, 2, 1):
        big = x >= (np.int64(1) << s)
        out = out + np.where(big, s, 0)
        x = np.where(big, x >> s, x)
    return out + (x > 0)


def recip_bits(frac: int, max_terms: int) -> int:
    """Fraction bits R of the per-row reciprocal floor(2**R / sum) keeping >= 16 significant bits."""
    return frac + 16 + max(1, math.ceil(math.log2(max(max_terms, 2))))
