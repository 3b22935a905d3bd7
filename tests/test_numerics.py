"""hwgen.numerics: hand-checked corner cases and properties against exact Python-int references.

(Bit-exactness against the real ap_fixed C++ types is in test_numerics_cpp.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from hwgen import numerics as nm
from hwgen.numerics import Overflow, Rounding

R = Rounding
O = Overflow


# --------------------------------------------------------------------------- exact Python-int references


def ref_shift_round(x: int, s: int, mode: Rounding) -> int:
    if s <= 0:
        return x << -s
    fl = x >> s
    rem2 = 2 * (x - (fl << s))  # twice the dropped part, compared against 2**s (one LSB)
    one = 1 << s
    gt, eq, nz, neg = rem2 > one, rem2 == one, rem2 != 0, x < 0
    inc = {
        R.TRN: False,
        R.TRN_ZERO: neg and nz,
        R.RND: gt or eq,
        R.RND_ZERO: gt or (eq and neg),
        R.RND_INF: gt or (eq and not neg),
        R.RND_MIN_INF: gt,
        R.RND_CONV: gt or (eq and fl % 2 == 1),
    }[mode]
    return fl + int(inc)


def ref_overflow(v: int, bits: int, signed: bool, mode: Overflow) -> int:
    lo, hi = nm.int_range(bits, signed)
    if mode is O.WRAP:
        v &= (1 << bits) - 1
        return v - (1 << bits) if signed and v > hi else v
    sym = mode is O.SAT_SYM and signed and bits > 1
    if v > hi:
        return 0 if mode is O.SAT_ZERO else hi
    if v < lo:
        return 0 if mode is O.SAT_ZERO else (-hi if sym else lo)
    return -hi if sym and v == lo else v


# ------------------------------------------------------------------------------------------- ranges


def test_int_range():
    assert nm.int_range(8, True) == (-128, 127)
    assert nm.int_range(8, False) == (0, 255)
    assert nm.int_range(1, True) == (-1, 0)
    assert nm.int_range(64, True) == (-(2**63), 2**63 - 1)
    with pytest.raises(ValueError):
        nm.int_range(0, True)


def test_bits_for_range():
    assert nm.bits_for_range(-128, 127) == 8
    assert nm.bits_for_range(-129, 0) == 9
    assert nm.bits_for_range(0, 128) == 9
    assert nm.bits_for_range(0, 255, signed=False) == 8
    assert nm.bits_for_range(-1, 0) == 1
    for lo in range(-70, 70):
        for hi in range(lo, 70, 7):
            b = nm.bits_for_range(lo, hi)
            l, h = nm.int_range(b, True)
            assert l <= lo and hi <= h
            if b > 1:
                l, h = nm.int_range(b - 1, True)
                assert lo < l or hi > h


# ------------------------------------------------------------------------------------------ rounding

TIES = np.array([-5, -3, -1, 1, 3, 5])  # / 2 -> -2.5, -1.5, -0.5, 0.5, 1.5, 2.5 LSB
TIE_EXPECT = {
    R.TRN: [-3, -2, -1, 0, 1, 2],
    R.TRN_ZERO: [-2, -1, 0, 0, 1, 2],
    R.RND: [-2, -1, 0, 1, 2, 3],
    R.RND_ZERO: [-2, -1, 0, 0, 1, 2],
    R.RND_INF: [-3, -2, -1, 1, 2, 3],
    R.RND_MIN_INF: [-3, -2, -1, 0, 1, 2],
    R.RND_CONV: [-2, -2, 0, 0, 2, 2],
}


@pytest.mark.parametrize("mode", list(R))
def test_shift_round_ties(mode):
    assert nm.shift_round(TIES, 1, mode).tolist() == TIE_EXPECT[mode]
    # same ties expressed with more fractional bits: x * 2**-3 with x = 4 * (2k+1)
    assert nm.shift_round(TIES * 4, 3, mode).tolist() == TIE_EXPECT[mode]


def test_shift_round_non_ties_and_truncation():
    x = np.array([-7, -6, -5, -1, 1, 5, 6, 7])  # / 4: -1.75 -1.5 -1.25 -0.25 0.25 1.25 1.5 1.75
    assert nm.shift_round(x, 2, R.TRN).tolist() == [-2, -2, -2, -1, 0, 1, 1, 1]
    assert nm.shift_round(x, 2, R.TRN_ZERO).tolist() == [-1, -1, -1, 0, 0, 1, 1, 1]
    for m in (R.RND, R.RND_ZERO, R.RND_INF, R.RND_MIN_INF, R.RND_CONV):
        got = nm.shift_round(x, 2, m).tolist()
        assert [got[i] for i in (0, 2, 3, 4, 5, 7)] == [-2, -1, 0, 0, 1, 2]  # non-ties: plain nearest


@pytest.mark.parametrize("mode", list(R))
def test_shift_round_matches_reference(mode):
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.integers(-(2**63), 2**63 - 1, size=300, dtype=np.int64),
        rng.integers(-1000, 1000, size=300),
        np.array([-(2**63), 2**63 - 1, 0, -1, 1]),
    ])
    s = rng.integers(0, 70, size=x.size)
    s[:20] = [63, 64, 65, 100, 0] * 4
    got = nm.shift_round(x, s, mode)
    exp = [ref_shift_round(int(a), int(b), mode) for a, b in zip(x, s)]
    assert got.tolist() == exp


def test_shift_round_int64_min_tie_at_64():
    x = np.array([-(2**63)])
    assert nm.shift_round(x, 64, R.RND).tolist() == [0]  # exactly -0.5
    assert nm.shift_round(x, 64, R.RND_INF).tolist() == [-1]
    assert nm.shift_round(x, 64, R.RND_CONV).tolist() == [0]
    assert nm.shift_round(x, 63, R.TRN).tolist() == [-1]


def test_shift_round_per_channel_and_left_shift():
    x = np.arange(-12, 12).reshape(4, 6)
    s = np.array([0, 1, 2, 3, -1, -2])
    got = nm.shift_round(x, s, R.RND_CONV)
    exp = [[ref_shift_round(int(x[i, j]), int(s[j]), R.RND_CONV) for j in range(6)] for i in range(4)]
    assert got.tolist() == exp
    with pytest.raises(OverflowError):
        nm.shift_round(np.array([2**62]), -2, R.TRN)


def test_float_input_rejected():
    with pytest.raises(TypeError):
        nm.shift_round(np.array([1.5]), 1, R.TRN)
    with pytest.raises(TypeError):
        nm.overflow(np.array([1.0]), 8, True, O.SAT)


# ------------------------------------------------------------------------------------------ overflow


def test_overflow_modes():
    x = np.array([-300, -129, -128, -127, 0, 127, 128, 300])
    assert nm.overflow(x, 8, True, O.SAT).tolist() == [-128, -128, -128, -127, 0, 127, 127, 127]
    assert nm.overflow(x, 8, True, O.SAT_SYM).tolist() == [-127, -127, -127, -127, 0, 127, 127, 127]
    assert nm.overflow(x, 8, True, O.SAT_ZERO).tolist() == [0, 0, -128, -127, 0, 127, 0, 0]
    assert nm.overflow(x, 8, True, O.WRAP).tolist() == [-44, 127, -128, -127, 0, 127, -128, 44]
    assert nm.overflow(x, 8, False, O.SAT).tolist() == [0, 0, 0, 0, 0, 127, 128, 255]
    assert nm.overflow(x, 8, False, O.SAT_SYM).tolist() == [0, 0, 0, 0, 0, 127, 128, 255]  # unsigned: SAT
    assert nm.overflow(x, 8, False, O.WRAP).tolist() == [212, 127, 128, 129, 0, 127, 128, 44]
    # 1-bit signed: ap_fixed's SAT_SYM degenerates to SAT (range [-1, 0])
    assert nm.overflow(np.array([-5, -1, 0, 3]), 1, True, O.SAT_SYM).tolist() == [-1, -1, 0, 0]
    assert nm.overflow(np.array([-(2**63), 2**63 - 1]), 64, True, O.SAT_SYM).tolist() == [-(2**63) + 1, 2**63 - 1]
    assert nm.overflow_count(x, 8, True) == 4
    assert nm.overflow_count(x, 8, False) == 5
    assert nm.overflow_count(np.array([-(2**63)]), 64, True) == 0


@pytest.mark.parametrize("mode", list(O))
@pytest.mark.parametrize("bits,signed", [(1, True), (2, True), (5, True), (1, False), (4, False), (63, False)])
def test_overflow_matches_reference(mode, bits, signed):
    rng = np.random.default_rng(bits)
    x = np.concatenate([np.arange(-70, 70), rng.integers(-(2**63), 2**63 - 1, 200, dtype=np.int64)])
    assert nm.overflow(x, bits, signed, mode).tolist() == [ref_overflow(int(v), bits, signed, mode) for v in x]


def test_overflow_width_limits():
    with pytest.raises(ValueError):
        nm.overflow(np.array([1]), 64, False, O.SAT)
    with pytest.raises(ValueError):
        nm.overflow(np.array([1]), 65, True, O.SAT)


# ----------------------------------------------------------------------------------------- cast_fixed


def ref_cast(q, frac_in, bits, frac_out, signed, rnd, ovf):
    return ref_overflow(ref_shift_round(q, frac_in - frac_out, rnd), bits, signed, ovf)


def test_cast_fixed_examples():
    # ap_fixed<8,4> value -2.5625 (raw -41, frac 4) -> ap_fixed<6,4> (frac 2): -10.25 LSB
    assert nm.cast_fixed(np.array([-41]), 4, 6, 2, True, R.TRN, O.SAT).tolist() == [-11]
    assert nm.cast_fixed(np.array([-41]), 4, 6, 2, True, R.TRN_ZERO, O.SAT).tolist() == [-10]
    assert nm.cast_fixed(np.array([-42]), 4, 6, 2, True, R.RND_CONV, O.SAT).tolist() == [-10]  # -10.5 -> even
    assert nm.cast_fixed(np.array([-42]), 4, 6, 2, True, R.RND, O.SAT).tolist() == [-10]
    assert nm.cast_fixed(np.array([-42]), 4, 6, 2, True, R.RND_INF, O.SAT).tolist() == [-11]
    # I > W: ap_fixed<4,6> has LSB 4 (frac -2); 22 -> 5.5 LSB -> 6 under RND -> saturates to 7
    assert nm.cast_fixed(np.array([22, 300]), 0, 4, -2, True, R.RND, O.SAT).tolist() == [6, 7]
    # I < 0: ap_fixed<4,-2> (frac 6) from frac 8
    assert nm.cast_fixed(np.array([29, -40]), 8, 4, 6, True, R.RND_CONV, O.WRAP).tolist() == [7, -10 + 16]
    # left shifts: exact saturation decision even for huge shifts
    big = np.array([0, 1, -1, 5])
    assert nm.cast_fixed(big, 0, 64, 70, True, R.TRN, O.SAT).tolist() == [0, 2**63 - 1, -(2**63), 2**63 - 1]
    assert nm.cast_fixed(big, 0, 64, 70, True, R.TRN, O.WRAP).tolist() == [0, 0, 0, 0]
    assert nm.cast_fixed(big, 0, 16, 3, False, R.TRN, O.SAT).tolist() == [0, 8, 0, 40]


@pytest.mark.parametrize("rnd", list(R))
@pytest.mark.parametrize("ovf", list(O))
def test_cast_fixed_matches_reference(rnd, ovf):
    rng = np.random.default_rng(7)
    q = np.concatenate([np.arange(-300, 300), rng.integers(-(2**63), 2**63 - 1, 300, dtype=np.int64)])
    for frac_in, bits, frac_out, signed in [(5, 6, 3, True), (0, 4, -2, True), (8, 4, 6, False), (3, 8, 10, True),
                                            (2, 1, 0, True), (64, 64, 0, True), (0, 63, 62, False), (1, 20, 90, True)]:
        got = nm.cast_fixed(q, frac_in, bits, frac_out, signed, rnd, ovf)
        exp = [ref_cast(int(v), frac_in, bits, frac_out, signed, rnd, ovf) for v in q]
        assert got.tolist() == exp, (frac_in, bits, frac_out, signed)


def test_cast_fixed_per_channel_frac():
    q = np.arange(-20, 20).reshape(10, 4)
    fin = np.array([0, 1, 2, 5])
    got = nm.cast_fixed(q, fin, 4, 1, True, R.RND_CONV, O.SAT)
    exp = [[ref_cast(int(q[i, j]), int(fin[j]), 4, 1, True, R.RND_CONV, O.SAT) for j in range(4)] for i in range(10)]
    assert got.tolist() == exp


# ------------------------------------------------------------------------------------- requantisation


def test_quantize_multiplier_accuracy():
    rng = np.random.default_rng(1)
    reals = np.concatenate([np.exp(rng.uniform(np.log(1e-12), np.log(1e6), 5000)),
                            [1.0, 0.5, 2.0**-40, 1 - 2.0**-40, 3e9, np.nextafter(1.0, 0)]])
    m0, sh = nm.quantize_multiplier(reals)
    assert m0.dtype == np.int64 and sh.dtype == np.int64 and m0.shape == reals.shape
    assert np.all(m0 >= 2**30) and np.all(m0 < 2**31)
    approx = np.array([float(int(m)) * 2.0 ** (-int(s)) for m, s in zip(m0, sh)])
    assert np.max(np.abs(approx / reals - 1)) < 2.0**-30
    assert tuple(map(int, nm.quantize_multiplier(1.0))) == (2**30, 30)
    m, s = nm.quantize_multiplier(1 - 2.0**-40)  # rounds up to 2**31: renormalised
    assert (int(m), int(s)) == (2**30, 30)
    m, s = nm.quantize_multiplier(3e9)  # real >= 2**31: negative shift
    assert int(s) < 0 and int(m) << -int(s) == 3_000_000_000
    m, s = nm.quantize_multiplier(0.3, bits=15)
    assert 2**14 <= int(m) < 2**15 and abs(int(m) * 2.0 ** -int(s) / 0.3 - 1) < 2.0**-15


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), [0.5, -0.1]])
def test_quantize_multiplier_errors(bad):
    with pytest.raises(ValueError):
        nm.quantize_multiplier(bad)


def test_requantize_vs_float_reference():
    """Integer requantisation == float64 rint(acc * real) + zp, except on (near-)ties."""
    rng = np.random.default_rng(2)
    n_total = n_diff = 0
    for _ in range(40):
        real = float(np.exp(rng.uniform(np.log(1e-5), np.log(0.5))))
        zp = int(rng.integers(-20, 20))
        acc = rng.integers(-(2**24), 2**24, size=2000)
        acc[:50] = np.rint((np.arange(50) + 0.5) / real).astype(np.int64)  # values near ties
        m0, sh = nm.quantize_multiplier(real)
        got = nm.requantize(acc, m0, sh, zp, 8, True)
        v = acc.astype(np.float64) * real
        exp = np.clip(np.rint(v) + zp, -128, 127).astype(np.int64)
        diff = got != exp
        # differences allowed only where acc*real is within the multiplier's error of a .5 tie
        dist = np.abs(v - np.floor(v) - 0.5)
        tol = np.abs(acc) * real * 2.0**-30 + 1e-9
        assert np.all(dist[diff] <= tol[diff])
        assert np.all(np.abs(got - exp) <= 1)
        n_total += acc.size
        n_diff += int(diff.sum())
    assert n_diff < n_total * 0.01


def test_requantize_equals_fixed_cast():
    """requantize(acc, m0, n, zp) == ap_fixed cast of acc*m0 + zp*2**n (n fractional bits) to an integer type.

    For the translation-invariant modes (TRN, RND, RND_MIN_INF) adding an integer number of LSBs before
    rounding cannot change the rounding, so requantize inherits the ap_fixed semantics verified in
    test_numerics_cpp.py.  The others depend on the sign (TRN_ZERO, RND_ZERO, RND_INF) or on the parity
    (RND_CONV) of the rounded value; requantize rounds acc*m0 first and adds the zero point afterwards
    (like onnxruntime: rint, then + zero point), so the identity needs zp = 0 there."""
    rng = np.random.default_rng(3)
    not_invariant = (R.TRN_ZERO, R.RND_ZERO, R.RND_INF, R.RND_CONV)
    for rnd in R:
        for ovf in O:
            for bits, signed in [(8, True), (8, False), (4, True)]:
                acc = rng.integers(-(2**20), 2**20, size=500)
                m0 = rng.integers(1, 2**20, size=500)
                sh = rng.integers(0, 40, size=500)
                zp = rng.integers(-10, 10, size=500) * (rnd not in not_invariant)
                got = nm.requantize(acc, m0, sh, zp, bits, signed, rnd, ovf)
                exp = nm.cast_fixed(acc * m0 + (zp << sh), sh, bits, 0, signed, rnd, ovf)
                assert got.tolist() == exp.tolist()


def test_requantize_per_channel():
    rng = np.random.default_rng(4)
    acc = rng.integers(-(2**20), 2**20, size=(3, 5, 8))
    m0, sh = nm.quantize_multiplier(np.exp(rng.uniform(-12, -2, size=8)))
    zp = rng.integers(-5, 5, size=8)
    got = nm.requantize(acc, m0, sh, zp, 8, False)
    for c in range(8):
        assert got[..., c].tolist() == nm.requantize(acc[..., c], m0[c], sh[c], zp[c], 8, False).tolist()


def test_requantize_overflow_checks():
    m0, sh = nm.quantize_multiplier(0.01)
    with pytest.raises(OverflowError):
        nm.requantize(np.array([2**40]), m0, sh, 0, 8, True)
    with pytest.raises(OverflowError):
        nm.requantize(np.array([2**62]), 4, 0, 0, 8, True)
    # -2**63 * 1 is representable
    assert nm.requantize(np.array([-(2**63)]), 1, 70, 0, 8, True).tolist() == [0]


def test_static_widths():
    assert nm.requant_product_bits(32) == 63
    assert nm.requant_product_bits(24, 31) == 55
    # extremes of acc * m0 fit exactly in requant_product_bits
    for a_bits, m_bits in [(8, 4), (5, 7), (32, 31)]:
        lo, hi = nm.int_range(nm.requant_product_bits(a_bits, m_bits), True)
        alo, ahi = nm.int_range(a_bits, True)
        mhi = 2**m_bits - 1
        assert lo <= alo * mhi and ahi * mhi <= hi
    assert nm.accumulator_bits(8, True, 8, True, 1) == 16  # (-128)*(-128) = 16384 needs 16 bits
    assert nm.accumulator_bits(8, True, 8, True, 2) == 17  # 2 * 16384 = 32768 > 2**15 - 1
    assert nm.accumulator_bits(8, False, 8, True, 768) == 26  # 768 * 255 * -128 = -25067520


@pytest.mark.parametrize("in_bits,in_s,w_bits,w_s", [(3, True, 3, True), (3, False, 4, True), (4, True, 2, False),
                                                     (2, False, 2, False), (1, True, 3, True)])
def test_accumulator_bits_brute_force(in_bits, in_s, w_bits, w_s):
    xl, xh = nm.int_range(in_bits, in_s)
    wl, wh = nm.int_range(w_bits, w_s)
    prods = [x * w for x in range(xl, xh + 1) for w in range(wl, wh + 1)]
    for fan_in in (1, 2, 3, 7, 100, 4096):
        lo, hi = fan_in * min(prods), fan_in * max(prods)
        b = nm.accumulator_bits(in_bits, in_s, w_bits, w_s, fan_in)
        rl, rh = nm.int_range(b, True)
        assert rl <= lo and hi <= rh
        if b > 1:
            rl, rh = nm.int_range(b - 1, True)
            assert lo < rl or hi > rh  # minimal


# ------------------------------------------------------------------------- QuantizeLinear vs onnxruntime

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _run_ort(op: str, x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int | None):
    from onnx import TensorProto, helper, numpy_helper

    in_type = helper.np_dtype_to_tensor_dtype(x.dtype)
    out_type = helper.np_dtype_to_tensor_dtype(zp.dtype) if op == "QuantizeLinear" else TensorProto.FLOAT
    kw = {} if axis is None else {"axis": axis}
    node = helper.make_node(op, ["x", "scale", "zp"], ["y"], **kw)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", in_type, list(x.shape))],
        [helper.make_tensor_value_info("y", out_type, None)],
        initializer=[numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(zp, "zp")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _test_inputs(rng, shape, scale):
    x = rng.normal(0, 60, size=shape).astype(np.float32) * np.float32(np.max(scale))
    flat = x.reshape(-1)
    k = flat.size // 4
    # exact ties k + 0.5 (in units of a per-tensor scale), saturating values, zeros, infinities, NaN
    flat[:k] = ((rng.integers(-200, 200, size=k) + 0.5) * np.float32(np.min(scale))).astype(np.float32)
    flat[k:k + 4] = [0.0, -0.0, np.inf, -np.inf]
    flat[k + 4:k + 10] = [1e30, -1e30, 3e-7, -3e-7, np.nan, -np.nan]
    return x


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("per_axis", [False, True])
def test_quantize_linear_matches_onnxruntime(dtype, per_axis):
    rng = np.random.default_rng(5)
    signed = dtype == np.int8
    if per_axis:
        scale = np.exp(rng.uniform(-6, 0, size=6)).astype(np.float32)
        zp = rng.integers(-10 if signed else 100, 10 if signed else 150, size=6).astype(dtype)
        axis = 1
    else:
        scale = np.array(0.0173, dtype=np.float32)
        zp = np.array(3 if signed else 128, dtype=dtype)
        axis = None
    x = _test_inputs(rng, (40, 6, 5), scale)
    got = nm.quantize_linear(x, scale, zp.astype(np.int64), bits=8, signed=signed, axis=axis)
    exp = _run_ort("QuantizeLinear", x, scale, zp, axis)
    assert got.tolist() == exp.astype(np.int64).tolist()

    # dequantize of the same integers
    got_dq = nm.dequantize_linear(got, scale, zp.astype(np.int64), axis=axis)
    exp_dq = _run_ort("DequantizeLinear", exp, scale, zp, axis)
    assert got_dq.dtype == np.float32
    np.testing.assert_array_equal(got_dq, exp_dq)


def test_quantize_linear_negative_axis_and_int16():
    rng = np.random.default_rng(6)
    scale = np.exp(rng.uniform(-4, 0, size=5)).astype(np.float32)
    zp = np.zeros(5, dtype=np.int16)
    x = _test_inputs(rng, (7, 3, 5), scale) * np.float32(200)
    got = nm.quantize_linear(x, scale, zp, bits=16, signed=True, axis=-1)
    exp = _run_ort("QuantizeLinear", x, scale, zp, -1)
    assert got.tolist() == exp.astype(np.int64).tolist()


def test_dequantize_linear_int32_bias():
    rng = np.random.default_rng(8)
    q = rng.integers(-(2**31), 2**31 - 1, size=(4, 9), dtype=np.int64).astype(np.int32)
    scale = np.float32(1.37e-5)
    zp = np.int32(0)
    exp = _run_ort("DequantizeLinear", q, np.array(scale), np.array(zp), None)
    np.testing.assert_array_equal(nm.dequantize_linear(q, scale, 0), exp)


# ------------------------------------------------------------------------------------------- matmul


def _ref_matmul(a, b):
    return np.matmul(a.astype(object), b.astype(object))


def test_matmul_int_blas_path_exact():
    rng = np.random.default_rng(9)
    a = rng.integers(-128, 128, size=(2, 3, 17, 300))
    b = rng.integers(-128, 128, size=(300, 11))
    got = nm.matmul_int(a, b)
    assert got.dtype == np.int64
    assert (got == _ref_matmul(a, b)).all()
    # near the 2**53 bound: 2**26 * 2**26 * 1 ... still exact
    a = np.full((2, 1), 2**26 - 1)
    b = np.full((1, 3), -(2**26) + 1)
    assert (nm.matmul_int(a, b) == _ref_matmul(a, b)).all()


def test_matmul_int_int64_fallback_exact():
    rng = np.random.default_rng(10)
    a = rng.integers(-(2**28), 2**28, size=(5, 64))
    b = rng.integers(-(2**28), 2**28, size=(64, 7))
    a[0, 0] = 2**28  # bound 2**28 * 2**28 * 64 = 2**62: beyond float64, within int64
    got = nm.matmul_int(a, b)
    assert (got == _ref_matmul(a, b)).all()
    # the float64 path would not be exact here: show the fallback mattered
    f = np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    assert not (f == got).all()
    with pytest.raises(OverflowError):
        nm.matmul_int(np.full((1, 4), 2**31), np.full((4, 1), 2**31))


def test_matmul_int_1d_and_broadcast():
    a = np.array([1, -2, 3])
    b = np.arange(12).reshape(2, 3, 2)
    assert (nm.matmul_int(a, b) == np.matmul(a, b)).all()
    assert nm.matmul_int(a, a).tolist() == 14
