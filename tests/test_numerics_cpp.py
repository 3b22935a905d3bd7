"""hwgen.numerics == real ap_fixed / ap_int C++ == hwgen_numerics.h, bit for bit.

One C++ program (compiled once, cached by content hash) casts integers through real ap_fixed<W,I,Q,O> /
ap_ufixed types for every rounding x overflow mode over a set of (source, target) formats chosen to hit the
corner cases (negative and over-wide integer bits, 1-bit targets, 64-bit types, huge shifts), and runs
hwgen_numerics.h's requantize / shift_round / cast_fixed.  Small source types are enumerated exhaustively.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from hwgen import numerics as nm
from hwgen.codegen import gxx
from hwgen.numerics import Overflow, Rounding

pytestmark = [
    pytest.mark.cpp,
    pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed"),
]

QS = list(Rounding)
OS = list(Overflow)

ALL_MODES = [(q, o) for q in QS for o in OS]
# left shifts / equal frac never round: the rounding mode cannot matter, so fewer combinations suffice
OVF_MODES = [(q, o) for q in (Rounding.TRN, Rounding.RND_CONV) for o in OS]
# wide (random-valued) formats: the mode logic itself is covered exhaustively on the small formats
SOME_MODES = [(q, Overflow.SAT) for q in QS] + [(Rounding.RND, o) for o in OS if o is not Overflow.SAT]

# ((W2, I2, S2) source, (W, I, S) target, modes); frac = W - I.  Sources up to 12 bits are exhaustive.
CAST_PAIRS = [
    ((9, 4, True), (6, 3, True), ALL_MODES),  # right shift 2, fewer integer bits
    ((9, 4, True), (5, 3, False), ALL_MODES),  # signed -> unsigned
    ((8, 8, False), (6, 9, True), ALL_MODES),  # unsigned int -> I > W (negative frac)
    ((10, -2, True), (4, -4, True), ALL_MODES),  # I < 0 on both sides
    ((8, 2, True), (10, 5, True), ALL_MODES),  # wider target, shift 1 (overflow only via rounding)
    ((9, 3, True), (1, 1, True), ALL_MODES),  # 1-bit signed target
    ((12, 12, True), (3, 13, False), ALL_MODES),  # shift 10 into I > W unsigned
    ((11, 5, False), (7, 3, False), ALL_MODES),  # unsigned -> unsigned
    ((16, 4, True), (2, 2, True), ALL_MODES),  # 2-bit signed (SAT_SYM range [-1, 1])
    ((40, 20, True), (16, 4, True), SOME_MODES),  # > 32-bit source
    ((64, 10, True), (64, 40, True), SOME_MODES),  # 64-bit both
    ((64, 0, True), (8, 8, True), ALL_MODES),  # right shift by the whole width (x = -2**63 is a tie)
    ((48, 30, True), (64, 70, True), SOME_MODES),  # I > W on a 64-bit target
    ((9, 3, True), (1, 0, False), SOME_MODES),  # 1-bit unsigned target
    ((32, 32, False), (20, 10, False), SOME_MODES),
    ((7, 7, True), (4, 2, True), OVF_MODES),  # left shift 2 with overflow
    ((6, 2, True), (4, 0, True), OVF_MODES),  # same frac: pure overflow
    ((64, 64, True), (63, 1, False), OVF_MODES),  # left shift 62 from 64-bit ints
    ((20, 5, True), (4, -60, True), OVF_MODES),  # left shift 49, target I << 0
]
# Not covered: right shifts by more than the source width (e.g. ap_fixed<64,-1> -> ap_fixed<8,8>): the
# open ap_fixed headers read a bit beyond the source MSB there and abort on an assertion in C simulation.

REQ_TARGETS = [(8, True), (8, False), (4, True), (16, True), (1, True), (3, False), (32, True)]

EXHAUSTIVE_MAX_BITS = 12


def _cast_values(rng, w2: int, s2: bool, shift: int) -> np.ndarray:
    lo, hi = nm.int_range(w2, s2)
    if w2 <= EXHAUSTIVE_MAX_BITS:
        return np.arange(lo, hi + 1, dtype=np.int64)
    vals = [lo, lo + 1, -1, 0, 1, hi - 1, hi]
    vals += rng.integers(lo, hi, size=600, endpoint=True, dtype=np.int64).tolist()
    # small magnitudes and values around the target LSB, incl. exact ties
    vals += rng.integers(-(1 << 12), 1 << 12, size=200).tolist()
    if 0 < shift < 63:
        k = rng.integers(-(1 << 10), 1 << 10, size=300)
        for d in (-1, 0, 1):
            vals += ((k << shift) + (1 << (shift - 1)) + d).tolist()
    # powers of two and their neighbours
    for p in range(w2):
        for v in (1 << p, -(1 << p)):
            vals += [v - 1, v, v + 1]
    a = np.array([int(v) for v in vals if lo <= int(v) <= hi], dtype=np.int64)
    return np.unique(a)


def _req_cases(rng, bits: int, signed: bool):
    acc, m0, sh, zp = [], [], [], []
    lo, hi = nm.int_range(bits, signed)
    zps = [0, 1, -3, lo, hi, (lo + hi) // 2]
    # typical requantisation: 32-bit accumulators, 31-bit multipliers
    reals = np.exp(rng.uniform(np.log(1e-6), np.log(4.0), size=200))
    m, s = nm.quantize_multiplier(reals)
    for i in range(200):
        n = 4
        acc += rng.integers(-(1 << 31), 1 << 31, size=n).tolist()
        m0 += [int(m[i])] * n
        sh += [int(s[i])] * n
        zp += rng.choice(zps, size=n).tolist()
    # ties: small multipliers and shifts, every residue
    for s_ in range(0, 6):
        for a in range(-40, 41):
            for mm in (1, 3):
                acc.append(a)
                m0.append(mm)
                sh.append(s_)
                zp.append(int(rng.choice(zps)))
    # shift_round extremes: m0 = 1, big shifts (incl. >= 64) and small negative shifts
    ext = [-(2**63), -(2**63) + 1, -(2**62), -3, -1, 0, 1, 2**62, 2**63 - 1]
    for a in ext:
        for s_ in (1, 2, 31, 62, 63, 64, 65, 100):
            acc.append(a)
            m0.append(1)
            sh.append(s_)
            zp.append(0)
    for a in (-5, -1, 0, 7, 1000):
        for s_ in (-1, -3, -20):
            acc.append(a)
            m0.append(1)
            sh.append(s_)
            zp.append(0)
    return (np.array(acc, dtype=np.int64), np.array(m0, dtype=np.int64), np.array(sh, dtype=np.int64),
            np.array(zp, dtype=np.int64))


CPP_HEAD = r"""
#pragma once
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <ap_fixed.h>
#include <ap_int.h>
#include "hwgen_numerics.h"

typedef long long ll;
typedef unsigned long long ull;

template <int W, bool S>
ll sext(ull u) {  // raw W-bit pattern -> integer value
  if (W < 64) {
    u &= (~0ULL) >> (64 - W);
    if (S && ((u >> (W - 1)) & 1)) u |= ~((~0ULL) >> (64 - W));
  }
  return (ll)u;
}

// q (raw integer of the source type) -> assign to the target through real ap_fixed types;
// prints "<ap_fixed raw> <hwgen::cast_fixed raw>" per value.
template <int W2, int I2, bool S2, int W, int I, bool S, ap_q_mode Q, ap_o_mode O>
void cast_case(FILE* in, FILE* out, int n) {
  typedef typename std::conditional<S2, ap_fixed<W2, I2>, ap_ufixed<W2, I2> >::type Src;
  typedef typename std::conditional<S, ap_fixed<W, I, Q, O>, ap_ufixed<W, I, Q, O> >::type Dst;
  for (int i = 0; i < n; i++) {
    ll q;
    if (fscanf(in, "%lld", &q) != 1) std::exit(3);
    Src s;
    s.setBits((ull)q);
    Dst d = s;
    ll hw = hwgen::cast_fixed<W2 - I2, W, W - I, S, Q, O>(q);
    fprintf(out, "%lld %lld\n", sext<W, S>(d.bits_to_uint64()), hw);
  }
}

// "acc m0 shift zp" -> hwgen::requantize and requantize_t (typed) results.
template <int BITS, bool S, ap_q_mode Q, ap_o_mode O>
void req_case(FILE* in, FILE* out, int n) {
  for (int i = 0; i < n; i++) {
    ll acc, m0, zp;
    int sh;
    if (fscanf(in, "%lld %lld %d %lld", &acc, &m0, &sh, &zp) != 4) std::exit(3);
    ll r = hwgen::requantize<BITS, S, Q, O>(acc, m0, sh, zp);
    typename hwgen::int_type<BITS, S>::type t = hwgen::requantize_t<BITS, S, Q, O>(acc, m0, sh, zp);
    fprintf(out, "%lld %lld\n", r, (ll)t.to_int64());
  }
}

// shift_round alone at full 64-bit range: m0 = 1, no saturation.
template <ap_q_mode Q>
void sr_case(FILE* in, FILE* out, int n) {
  for (int i = 0; i < n; i++) {
    ll x;
    int sh;
    if (fscanf(in, "%lld %d", &x, &sh) != 2) std::exit(3);
    fprintf(out, "%lld\n", hwgen::shift_round<Q>(x, sh));
  }
}

typedef void (*fn_t)(FILE*, FILE*, int);
"""

CPP_MAIN = r"""
int main() {
  FILE* in = fopen("in.txt", "r");
  FILE* out = fopen("out.txt", "w");
  if (!in || !out) return 2;
  char kind;
  int id, n;
  while (fscanf(in, " %c %d %d", &kind, &id, &n) == 3) {
    if (kind == 'C') cast_fn(id)(in, out, n);
    else if (kind == 'R') REQ[id](in, out, n);
    else SR[id](in, out, n);
  }
  fclose(out);
  return 0;
}
"""


def _b(v: bool) -> str:
    return "true" if v else "false"


@pytest.fixture(scope="module")
def cpp_results(tmp_path_factory):
    rng = np.random.default_rng(1234)
    wd = tmp_path_factory.mktemp("numerics_cpp")

    cast_cfgs = [(src, dst, q, o) for src, dst, modes in CAST_PAIRS for q, o in modes]
    req_cfgs = [(b, s, q, o) for b, s in REQ_TARGETS for q in QS for o in OS]

    # the ap_fixed instantiations dominate compile time: spread them over translation units built in parallel
    n_tu = 4
    files = {"check_common.h": CPP_HEAD}
    for t in range(n_tu):
        ids = range(t, len(cast_cfgs), n_tu)
        fns = ",\n  ".join(
            "&cast_case<{},{},{},{},{},{},{},{}>".format(
                w2, i2, _b(s2), w, i, _b(s), q.value, o.value)
            for (w2, i2, s2), (w, i, s), q, o in (cast_cfgs[k] for k in ids)
        )
        files[f"check_cast{t}.cpp"] = (
            '#include "check_common.h"\n'
            f"static const fn_t TABLE[] = {{\n  {fns}\n}};\n"
            f"fn_t cast_fn{t}(int k) {{ return TABLE[k / {n_tu}]; }}\n"
        )
    req_fns = ",\n  ".join(f"&req_case<{b},{_b(s)},{q.value},{o.value}>" for b, s, q, o in req_cfgs)
    sr_fns = ",\n  ".join(f"&sr_case<{q.value}>" for q in QS)
    decls = "".join(f"fn_t cast_fn{t}(int k);\n" for t in range(n_tu))
    cases = " ".join(f"case {t}: return cast_fn{t}(k);" for t in range(n_tu))
    files["check_main.cpp"] = (
        '#include "check_common.h"\n' + decls
        + f"static fn_t cast_fn(int k) {{ switch (k % {n_tu}) {{ {cases} }} return 0; }}\n"
        + f"static const fn_t REQ[] = {{\n  {req_fns}\n}};\n"
        + f"static const fn_t SR[] = {{\n  {sr_fns}\n}};\n" + CPP_MAIN
    )

    lines, expected = [], []  # expected: list of (label, np.ndarray of expected rows, ncols)
    values_by_pair = {}
    for k, ((w2, i2, s2), (w, i, s), q, o) in enumerate(cast_cfgs):
        key = ((w2, i2, s2), (w, i, s))
        if key not in values_by_pair:
            values_by_pair[key] = _cast_values(rng, w2, s2, (w2 - i2) - (w - i))
        v = values_by_pair[key]
        lines.append(f"C {k} {len(v)}\n" + "\n".join(map(str, v.tolist())))
        exp = nm.cast_fixed(v, w2 - i2, w, w - i, s, q, o)
        expected.append((f"cast ap_fixed<{w2},{i2},{'s' if s2 else 'u'}> -> <{w},{i},{'s' if s else 'u'}>"
                         f" {q.value} {o.value}", v, exp, 2))
    req_inputs = {}
    for k, (b, s, q, o) in enumerate(req_cfgs):
        if (b, s) not in req_inputs:
            acc, m0, sh, zp = _req_cases(rng, b, s)
            # keep only cases whose product fits int64 (the C++ contract)
            ok = np.array([abs(int(a) * int(m)) < 2**63 for a, m in zip(acc.tolist(), m0.tolist())])
            req_inputs[(b, s)] = acc[ok], m0[ok], sh[ok], zp[ok]
        acc, m0, sh, zp = req_inputs[(b, s)]
        rows = np.stack([acc, m0, sh, zp], axis=1)
        lines.append(f"R {k} {len(acc)}\n" + "\n".join(" ".join(map(str, r)) for r in rows.tolist()))
        # vectorised per group whose int64 bounds hold (m0 == 1 rows carry the extreme accumulators)
        exp = np.empty(len(acc), dtype=np.int64)
        for grp in (m0 != 1, (m0 == 1) & (sh >= 0), (m0 == 1) & (sh < 0)):
            exp[grp] = nm.requantize(acc[grp], m0[grp], sh[grp], zp[grp], b, s, q, o)
        expected.append((f"requantize<{b},{s},{q.value},{o.value}>", rows, exp, 2))
    xs = np.array([-(2**63), -(2**63) + 1, -(2**62) - 1, -12345678901, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3,
                   4, 5, 6, 98765432101, 2**62 + 1, 2**63 - 2, 2**63 - 1], dtype=np.int64)
    xs = np.concatenate([xs, rng.integers(-(2**63), 2**63 - 1, size=50, dtype=np.int64)])
    shifts = np.array(list(range(0, 67)) + [80, 127, 1000], dtype=np.int64)
    X, S = np.meshgrid(xs, shifts, indexing="ij")
    X, S = X.ravel(), S.ravel()
    for k, q in enumerate(QS):
        rows = np.stack([X, S], axis=1)
        lines.append(f"S {k} {len(X)}\n" + "\n".join(f"{a} {b}" for a, b in rows.tolist()))
        expected.append((f"shift_round {q.value}", rows, nm.shift_round(X, S, q), 1))

    (wd / "in.txt").write_text("\n".join(lines) + "\n")
    res = gxx.compile_and_run(files, wd, opt="-O0", timeout=300)
    assert res.returncode == 0, res.stderr
    out = np.array((wd / "out.txt").read_text().split(), dtype=np.int64)
    return expected, out


def _compare(expected, out, kinds):
    pos = 0
    checked, failures = 0, []
    for label, inputs, exp, ncols in expected:
        n = len(exp)
        got = out[pos:pos + n * ncols].reshape(n, ncols)
        pos += n * ncols
        if not label.startswith(kinds):
            continue
        for c in range(ncols):
            bad = np.nonzero(got[:, c] != exp)[0]
            checked += n
            if bad.size:
                j = bad[0]
                failures.append(f"{label} col{c}: {bad.size}/{n} differ, e.g. input {inputs[j].tolist()}: "
                                f"C++ {got[j, c]} python {exp[j]}")
    assert pos == out.size, "output length mismatch"
    return checked, failures


def test_cast_fixed_matches_ap_fixed(cpp_results):
    """Python cast_fixed == real ap_fixed assignment (col 0) == hwgen::cast_fixed (col 1)."""
    checked, failures = _compare(*cpp_results, kinds=("cast",))
    assert checked > 100_000
    assert not failures, "\n".join(failures[:30])


def test_requantize_matches_cpp(cpp_results):
    checked, failures = _compare(*cpp_results, kinds=("requantize",))
    assert checked > 10_000
    assert not failures, "\n".join(failures[:30])


def test_shift_round_matches_cpp(cpp_results):
    checked, failures = _compare(*cpp_results, kinds=("shift_round",))
    assert checked > 10_000
    assert not failures, "\n".join(failures[:30])


def test_gxx_compile_error_is_reported(tmp_path):
    with pytest.raises(RuntimeError, match="g\\+\\+ failed"):
        gxx.compile_and_run({"bad.cpp": "int main() { return undefined_symbol; }\n"}, tmp_path, cache=False)


def test_gxx_runs_with_args_and_cache(tmp_path):
    src = {"hello.cpp": '#include <cstdio>\n#include <ap_int.h>\n#include "hwgen_numerics.h"\n'
                        "int main(int c, char** v) { ap_int<8> x = 100; x += 100;\n"
                        '  std::printf("%d %d %lld\\n", c, (int)x, hwgen::requantize<8, true>(1000, 1 << 30, 33, 1));'
                        " return 0; }\n"}
    r1 = gxx.compile_and_run(src, tmp_path, args=["a", "b"])
    r2 = gxx.compile_and_run(src, tmp_path, args=["a"])
    assert r1.returncode == 0 and r2.returncode == 0
    # ap_int<8> wraps 200 -> -56; 1000 * 2**30 * 2**-33 = 125, +1
    expect = int(nm.requantize(np.array([1000]), 1 << 30, 33, 1, 8, True)[0])
    assert r1.stdout.split() == ["3", "-56", str(expect)]
    assert r2.stdout.split()[0] == "2"


def test_gxx_cache_follows_included_headers(tmp_path, monkeypatch):
    monkeypatch.setenv("HWGEN_GXX_CACHE", str(tmp_path / "cache"))
    (tmp_path / "src").mkdir()
    main = tmp_path / "src" / "main.cpp"
    main.write_text('#include <cstdio>\n#include "val.h"\nint main() { std::printf("%d\\n", VAL); }\n')
    (tmp_path / "src" / "val.h").write_text("#define VAL 1\n")
    assert gxx.compile_and_run([main], tmp_path / "run").stdout.strip() == "1"
    (tmp_path / "src" / "val.h").write_text("#define VAL 2\n")  # header change must invalidate the cache
    assert gxx.compile_and_run([main], tmp_path / "run").stdout.strip() == "2"
    assert len(list((tmp_path / "cache").glob("prog_*"))) == 2
    assert gxx.compile_and_run([main], tmp_path / "run2").stdout.strip() == "2"  # cache hit
    assert len(list((tmp_path / "cache").glob("prog_*"))) == 2
