"""C++ kernels of the linear family == their ops' Python ``simulate``, bit for bit.

Covers templates/kernels/{linear,matmul,patch_embed,add,mul,requant,reduce_mean}.h against
hwgen/ops/{linear,matmul,patch_embed,add,mul,quantize,movement(concat),reduce_mean}.py on random shapes,
types (int8 / uint8 with zero points, int4, per-channel weight scales, int32 biases, ap_fixed with
TRN/WRAP, RND/SAT and other modes) and schedule knobs.  Every case is a one-node hwgen graph (see
tests/kernel_harness.py); all cases go into one C++ program, compiled once per module (and cached by
content), and each test checks its op's cases.

Each op's ``kernel_config`` (in its module) spells the kernel's config struct and call from the graph:
the code generator emits exactly that (OpDef.emit).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from hwgen.codegen.cpp import bcast_pattern
from hwgen.ir import QType
from hwgen.numerics import Overflow, Rounding
from hwgen.ops import get
from kernel_harness import KernelCase, Spec, one_op_graph, random_codes, run_cases, simulate

pytestmark = [
    pytest.mark.cpp,
    pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed"),
]

HEADERS = ["linear.h", "matmul.h", "patch_embed.h", "add.h", "mul.h", "requant.h", "reduce_mean.h"]
BATCH = 3  # samples per case

# (tile_in, tile_out, n_lanes): the results must not depend on them
LINEAR_KNOBS = [(1, 1, 1), (4, 8, 2), (16, 3, 3), (7, 16, 4)]


# ------------------------------------------------------------------------------------- random types


def in_type(rng, kind: str) -> QType:
    s = float(10 ** rng.uniform(-2.5, -0.5))
    if kind == "i8":
        return QType.integer(8, True, s, int(rng.integers(-12, 13)))
    if kind == "u8":
        return QType.integer(8, False, s, int(rng.integers(90, 160)))
    if kind == "u8z":  # unsigned without a zero point (e.g. a product of ReLU-like activations)
        return QType.integer(8, False, s, 0)
    if kind == "i4":
        return QType.integer(4, True, s, int(rng.integers(-2, 3)))
    if kind == "fx":
        return QType.fixed(int(rng.integers(8, 13)), int(rng.integers(1, 5)), True)
    if kind == "ufx":
        return QType.fixed(int(rng.integers(6, 11)), int(rng.integers(0, 3)), False, Rounding.RND, Overflow.SAT)
    raise ValueError(kind)


INT_ROUNDINGS = [Rounding.RND_CONV, Rounding.RND_CONV, Rounding.RND, Rounding.TRN, Rounding.RND_INF,
                 Rounding.RND_ZERO, Rounding.TRN_ZERO, Rounding.RND_MIN_INF]


def out_type(rng, kind: str, real: np.ndarray) -> QType:
    """An output type for values ``real``: mostly in range, with some saturation / wrap-around."""
    a = np.abs(np.asarray(real, dtype=np.float64))
    top = float(np.percentile(a, 97)) if a.size else 1.0
    top = top if top > 0 else 1.0
    rnd = INT_ROUNDINGS[int(rng.integers(len(INT_ROUNDINGS)))]
    if kind == "i8":
        return QType.integer(8, True, top / 110, int(rng.integers(-8, 9)), rounding=rnd)
    if kind == "u8":
        lo, hi = float(np.min(real)), float(np.max(real))
        s = (hi - lo) / 240 if hi > lo else 1.0
        return QType.integer(8, False, s, int(np.clip(round(-lo / s), 0, 255)), rounding=rnd)
    if kind == "i4":
        return QType.integer(4, True, top / 6, 0, rounding=rnd, overflow=Overflow.SAT_SYM)
    if kind == "i16":
        return QType.integer(16, True, top / 20000, int(rng.integers(-50, 51)), rounding=rnd)
    ib = int(math.ceil(math.log2(top))) + 1
    if kind == "fx_trn_wrap":
        return QType.fixed(int(rng.integers(8, 17)), ib, True, Rounding.TRN, Overflow.WRAP)
    if kind == "fx_rnd_sat":
        return QType.fixed(int(rng.integers(8, 17)), ib, True, Rounding.RND, Overflow.SAT)
    if kind == "fx_conv_sym":
        return QType.fixed(int(rng.integers(6, 12)), ib - 1, True, Rounding.RND_CONV, Overflow.SAT_SYM)
    if kind == "ufx_zero":
        return QType.fixed(int(rng.integers(6, 12)), ib - 1, False, Rounding.RND_ZERO, Overflow.SAT_ZERO)
    raise ValueError(kind)


OUT_KINDS = ["i8", "u8", "i4", "i16", "fx_trn_wrap", "fx_rnd_sat", "fx_conv_sym", "ufx_zero"]


def _real(codes, qt: QType, axis=None) -> np.ndarray:
    return qt.dequantize(np.asarray(codes), axis)


def _with_out(g, node, name: str, qt: QType) -> None:
    g.tensors[name].qtype = qt


# ------------------------------------------------------------------------------------- case builders


def _case(op_label, g, node, feeds, decls, call, **meta) -> KernelCase:
    exp = simulate(g, node, feeds)
    ins = [g.tensors[n].qtype.c_type() for n in node.inputs if n and not g.tensors[n].is_const]
    outs = [g.tensors[o].qtype.c_type() for o in node.outputs]
    label = f"{op_label}: " + ", ".join(f"{n}:{g.tensors[n].qtype}{list(g.tensors[n].shape)}"
                                        for n in list(node.inputs) + list(node.outputs) if n)
    return KernelCase(label, decls, call, list(feeds), ins, exp, outs, meta={"op": node.op, **meta})


def _weight(rng, k: int, n: int, kind: str):
    """Weight codes [k, n] and their type: per-channel int8 (axis 1), per-tensor uint8 with a zero point,
    per-channel with per-channel zero points, or ap_fixed."""
    if kind == "pc_i8":
        qt = QType.integer(8, True, 10 ** rng.uniform(-3, -1, size=n), 0, axis=1)
    elif kind == "pt_u8":
        qt = QType.integer(8, False, float(10 ** rng.uniform(-3, -1)), int(rng.integers(100, 156)))
    elif kind == "pc_zp":
        qt = QType.integer(8, True, 10 ** rng.uniform(-3, -1, size=n), rng.integers(-5, 6, size=n), axis=1)
    elif kind == "fx":
        qt = QType.fixed(8, 1, True)
    elif kind == "pt_i4":
        qt = QType.integer(4, True, float(10 ** rng.uniform(-2, -1)), 0)
    else:
        raise ValueError(kind)
    return random_codes(rng, qt, (k, n)), qt


def _real_acc(x, xq: QType, w, wq: QType) -> np.ndarray:
    sw, zw = wq.channel_params(w.shape[1])
    return ((np.asarray(x, np.float64) - int(xq.zero_point)) * float(xq.scale)) @ ((w - zw) * sw)


def _linear_case_group(rng, lead, k, n, xk, wk, bk, ok, knob_list) -> list[KernelCase]:
    """One random linear layer, one case per schedule in ``knob_list``."""
    xq = in_type(rng, xk)
    w, wq = _weight(rng, k, n, wk)
    x = random_codes(rng, xq, (BATCH,) + tuple(lead) + (k,))
    real = _real_acc(x, xq, w, wq)
    inputs = [Spec("x", tuple(lead) + (k,), xq), Spec("w", (k, n), wq, data=w)]
    if bk != "none":
        sw, _ = wq.channel_params(n)
        if bk == "exact":  # onnxruntime's int32 bias: scale sx * sw
            bq = QType.integer(32, True, float(xq.scale) * sw, 0, axis=0)
        else:  # another scale: rounded into accumulator units
            bq = QType.integer(16, True, float(xq.scale) * float(sw.mean()) * 3.7, 0)
        bias = random_codes(rng, bq, (n,), -20000, 20000)
        inputs.append(Spec("b", (n,), bq, data=bias))
        real = real + _real(bias, bq, 0)
    yq = out_type(rng, ok, real)
    g, node = one_op_graph("linear", inputs, [Spec("y", tuple(lead) + (n,), yq)])
    cases = []
    for knobs in knob_list:
        decls, call = get(node.op).kernel_config(g, node, knobs)
        cases.append(_case(f"linear knobs={knobs}", g, node, [x], decls, call, knobs=knobs))
    return cases


X_KINDS = ["i8", "u8", "i4", "fx", "ufx"]
W_KINDS = ["pc_i8", "pt_u8", "pc_zp", "fx", "pt_i4"]


def linear_cases(rng) -> list[KernelCase]:
    cases = []
    specs = [  # (leading dims, K, N, x kind, weight kind, bias kind, out kind)
        ((1, 5), 16, 8, "i8", "pc_i8", "exact", "i8"),
        ((1, 7), 24, 13, "u8", "pt_u8", "exact", "u8"),
        ((9,), 10, 17, "i8", "pc_zp", "other", "fx_trn_wrap"),
        ((1, 4), 33, 6, "fx", "fx", "none", "fx_rnd_sat"),
        ((1, 6), 12, 20, "u8", "pc_i8", "exact", "i4"),
        ((2, 3), 40, 9, "i4", "pt_i4", "other", "i16"),
        ((1, 1), 64, 10, "i8", "pc_i8", "exact", "fx_conv_sym"),   # classifier head: one row
        ((1, 11), 8, 32, "ufx", "pc_zp", "exact", "ufx_zero"),
    ]
    for j, (lead, k, n, xk, wk, bk, ok) in enumerate(specs):
        knob_list = LINEAR_KNOBS if j < 4 else [LINEAR_KNOBS[1], LINEAR_KNOBS[3]]
        cases += _linear_case_group(rng, lead, k, n, xk, wk, bk, ok, knob_list)
    # random shapes (incl. K = 1 / N = 1 / one row), types and schedules
    for _ in range(8):
        lead = (1, int(rng.integers(1, 13)))
        k, n = int(rng.choice([1, rng.integers(2, 80)])), int(rng.choice([1, rng.integers(2, 40)]))
        knobs = (int(rng.integers(1, 20)), int(rng.integers(1, 20)), int(rng.integers(1, 6)))
        cases += _linear_case_group(rng, lead, k, n, str(rng.choice(X_KINDS)), str(rng.choice(W_KINDS)),
                                    str(rng.choice(["exact", "other", "none"])), str(rng.choice(OUT_KINDS)),
                                    [knobs, (1, 1, 1)])
    return cases


def patch_embed_cases(rng) -> list[KernelCase]:
    cases = []
    for (c, h, w, kh, kw, d, xk, wk, ok), knobs in zip(
            [(3, 8, 12, 4, 4, 10, "i8", "pc_i8", "i8"), (2, 6, 6, 3, 2, 7, "u8", "pt_u8", "fx_rnd_sat"),
             (1, 4, 8, 2, 4, 5, "fx", "pc_zp", "u8")],
            [(4, 8, 2), (5, 3, 3), (1, 16, 1)]):
        xq = in_type(rng, xk)
        w2, wq = _weight(rng, c * kh * kw, d, wk)
        x = random_codes(rng, xq, (BATCH, 1, c, h, w))
        sw, _ = wq.channel_params(d)
        bq = QType.integer(32, True, float(xq.scale) * sw, 0, axis=0)
        bias = random_codes(rng, bq, (d,), -3000, 3000)
        gh, gw = h // kh, w // kw
        patches = x.reshape(BATCH, c, gh, kh, gw, kw).transpose(0, 2, 4, 1, 3, 5).reshape(BATCH, gh * gw, -1)
        yq = out_type(rng, ok, _real_acc(patches, xq, w2, wq) + _real(bias, bq, 0))
        g, node = one_op_graph("patch_embed", [Spec("x", (1, c, h, w), xq), Spec("w", w2.shape, wq, data=w2),
                                               Spec("b", (d,), bq, data=bias)],
                               [Spec("y", (1, d, gh, gw), yq)], attrs={"kernel": [kh, kw], "channels": c})
        decls, call = get(node.op).kernel_config(g, node, knobs)
        cases.append(_case(f"patch_embed knobs={knobs}", g, node, [x], decls, call, knobs=knobs))
    return cases


def matmul_cases(rng) -> list[KernelCase]:
    cases = []
    specs = [  # (a shape, b shape, a kind, b kind, out kind, knobs)
        ((1, 2, 5, 8), (1, 2, 8, 5), "i8", "i8", "i8", (4, 8, 2)),   # Q K^T per head
        ((1, 3, 6, 6), (1, 3, 6, 4), "u8", "i8", "u8", (1, 1, 1)),   # P V, uint8 probabilities
        ((1, 7, 9), (1, 9, 3), "u8", "u8", "fx_trn_wrap", (16, 2, 3)),
        ((1, 2, 4, 5), (1, 1, 5, 6), "fx", "i8", "fx_rnd_sat", (3, 4, 1)),  # b broadcast over heads
        ((1, 1, 3, 7), (1, 2, 7, 2), "i4", "u8", "i16", (2, 2, 2)),         # a broadcast
        ((1, 2, 4, 6), (1, 2, 6, 3), "i8", "u8z", "i8", (2, 2, 1)),         # unsigned b, zero point 0
        ((1, 3, 5), (1, 5, 4), "u8z", "ufx", "fx_rnd_sat", (4, 4, 2)),     # unsigned fixed-point b
    ]
    for sa, sb, ak, bk, ok, knobs in specs:
        aq, bq = in_type(rng, ak), in_type(rng, bk)
        a = random_codes(rng, aq, (BATCH,) + sa)
        b = random_codes(rng, bq, (BATCH,) + sb)
        real = np.matmul(_real(a, aq), _real(b, bq))
        yq = out_type(rng, ok, real)
        g, node = one_op_graph("matmul", [Spec("a", sa, aq), Spec("b", sb, bq)], [Spec("y", real.shape[1:], yq)])
        decls, call = get("matmul").kernel_config(g, node, knobs)
        cases.append(_case(f"matmul knobs={knobs}", g, node, [a, b], decls, call))
    return cases


def add_cases(rng) -> list[KernelCase]:
    cases = []
    # (a shape, a kind, b shape or None, b kind, b const?, b per-channel?, signs, out kind)
    specs = [
        ((1, 6, 8), "i8", (1, 6, 8), "i8", False, False, [1, 1], "i8"),          # residual
        ((1, 5, 7), "u8", (1, 5, 7), "i8", False, False, [1, -1], "u8"),         # Sub
        ((1, 4, 9), "i8", (9,), "i8", True, True, [1, 1], "i8"),                 # per-channel bias add
        ((1, 5, 6), "fx", (1, 5, 6), "i8", True, False, [1, 1], "fx_rnd_sat"),   # position embedding
        ((1, 3, 10), "fx", (1, 3, 10), "fx", False, False, [1, 1], "fx_trn_wrap"),
        ((1, 4, 5), "i8", (1, 4, 1), "u8", False, False, [1, 1], "i16"),         # column broadcast
        ((2, 3, 4), "i4", None, None, False, False, [1], "i8"),                  # one-term sum (Sum)
        ((1, 6, 3), "u8", (1, 6, 3), "u8", False, False, [-1, 1], "fx_conv_sym"),
    ]
    for sa, ak, sb, bk, bconst, bpc, signs, ok in specs:
        aq = in_type(rng, ak)
        a = random_codes(rng, aq, (BATCH,) + sa)
        inputs, feeds = [Spec("a", sa, aq)], [a]
        real = signs[0] * _real(a, aq)
        if sb is not None:
            if bpc:
                bq = QType.integer(8, True, 10 ** rng.uniform(-2.5, -0.5, size=sb[-1]),
                                   rng.integers(-4, 5, size=sb[-1]), axis=len(sb) - 1)
            else:
                bq = in_type(rng, bk)
            if bconst:
                b = random_codes(rng, bq, sb)
                inputs.append(Spec("b", sb, bq, data=b))
                real = real + signs[1] * _real(b, bq, len(sb) - 1)[None]
            else:
                b = random_codes(rng, bq, (BATCH,) + sb)
                inputs.append(Spec("b", sb, bq))
                feeds.append(b)
                real = real + signs[1] * _real(b, bq)
        yq = out_type(rng, ok, real)
        g, node = one_op_graph("add", inputs, [Spec("y", real.shape[1:], yq)], attrs={"signs": signs})
        decls, call = get("add").kernel_config(g, node)
        cases.append(_case("add", g, node, feeds, decls, call))
    return cases


def mul_cases(rng) -> list[KernelCase]:
    cases = []
    # (a shape, a kind, b shape or None, b kind, b const?, b per-channel?, factor, out kind)
    specs = [
        ((1, 5, 6), "i8", (1, 5, 6), "u8", False, False, None, "i8"),
        ((1, 4, 8), "u8", (8,), None, True, True, None, "i16"),                   # gamma-like scale vector
        ((1, 3, 7), "fx", (1, 3, 1), "fx", False, False, None, "fx_rnd_sat"),    # column broadcast
        ((1, 6, 5), "i8", None, None, False, False, -0.125, "i8"),               # Mul by a negative number
        ((2, 4, 3), "u8", None, None, False, False, 1 / 0.3, "fx_trn_wrap"),     # Div by a number
        ((1, 5, 4), "i4", (1, 5, 4), "i8", True, False, None, "u8"),
    ]
    for sa, ak, sb, bk, bconst, bpc, factor, ok in specs:
        aq = in_type(rng, ak)
        a = random_codes(rng, aq, (BATCH,) + sa)
        inputs, feeds = [Spec("a", sa, aq)], [a]
        real = _real(a, aq)
        if sb is not None:
            if bpc:
                bq = QType.integer(8, True, 10 ** rng.uniform(-2, 0, size=sb[-1]), rng.integers(-4, 5, size=sb[-1]),
                                   axis=len(sb) - 1)
            else:
                bq = in_type(rng, bk)
            if bconst:
                b = random_codes(rng, bq, sb)
                inputs.append(Spec("b", sb, bq, data=b))
                real = real * _real(b, bq, len(sb) - 1)[None]
            else:
                b = random_codes(rng, bq, (BATCH,) + sb)
                inputs.append(Spec("b", sb, bq))
                feeds.append(b)
                real = real * _real(b, bq)
        if factor is not None:
            real = real * factor
        yq = out_type(rng, ok, real)
        attrs = {} if factor is None else {"factor": factor}
        g, node = one_op_graph("mul", inputs, [Spec("y", real.shape[1:], yq)], attrs=attrs)
        decls, call = get("mul").kernel_config(g, node)
        cases.append(_case("mul", g, node, feeds, decls, call))
    return cases


def quantize_cases(rng) -> list[KernelCase]:
    cases = []
    for ik, ok in [("i8", "u8"), ("u8", "i8"), ("i8", "fx_trn_wrap"), ("fx", "i8"), ("fx", "fx_rnd_sat"),
                   ("ufx", "fx_conv_sym"), ("i4", "i16"), ("u8", "ufx_zero")]:
        xq = in_type(rng, ik)
        shape = (1, 4, int(rng.integers(3, 9)))
        x = random_codes(rng, xq, (BATCH,) + shape)
        yq = out_type(rng, ok, _real(x, xq) * rng.uniform(0.5, 2.0))
        g, node = one_op_graph("quantize", [Spec("x", shape, xq)], [Spec("y", shape, yq)])
        decls, call = get("quantize").kernel_config(g, node)
        cases.append(_case("quantize", g, node, [x], decls, call))
    return cases


def concat_cases(rng) -> list[KernelCase]:
    cases = []
    # class token (constant, own scale) + patch tokens (same type as the output), along the token axis
    d, t = 6, 5
    out_q = in_type(rng, "i8")
    cls_q = in_type(rng, "i8")
    cls = random_codes(rng, cls_q, (1, 1, d))
    x = random_codes(rng, out_q, (BATCH, 1, t, d))
    g, node = one_op_graph("concat", [Spec("cls", (1, 1, d), cls_q, data=cls), Spec("x", (1, t, d), out_q)],
                           [Spec("y", (1, t + 1, d), out_q)], attrs={"axis": 1})
    decls, call = get("concat").kernel_config(g, node)
    cases.append(_case("concat", g, node, [x], decls, call))
    # three activations along the last axis, two of them requantised (uint8, fixed) into the output type
    for ok in ("i8", "fx_rnd_sat"):
        q1, q2 = in_type(rng, "u8"), in_type(rng, "fx")
        out_q = out_type(rng, ok, np.array([-3.0, 3.0]))
        shapes = [(1, 3, 4), (1, 3, 2), (1, 3, 5)]
        feeds = [random_codes(rng, q, (BATCH,) + s) for q, s in zip((q1, out_q, q2), shapes)]
        g, node = one_op_graph("concat", [Spec(f"x{i}", s, q) for i, (s, q) in enumerate(zip(shapes, (q1, out_q, q2)))],
                               [Spec("y", (1, 3, 11), out_q)], attrs={"axis": 2})
        decls, call = get("concat").kernel_config(g, node)
        cases.append(_case("concat", g, node, feeds, decls, call))
    return cases


def reduce_mean_cases(rng) -> list[KernelCase]:
    cases = []
    specs = [((1, 7, 6), [1], 0, "i8", "i8"),        # token pooling
             ((1, 5, 9), [2], 1, "u8", "fx_rnd_sat"),
             ((1, 3, 4, 4), [2, 3], 1, "fx", "u8"),   # GlobalAveragePool
             ((1, 6, 10), [1, 2], 0, "i4", "fx_trn_wrap")]
    for shape, axes, keep, ik, ok in specs:
        xq = in_type(rng, ik)
        x = random_codes(rng, xq, (BATCH,) + shape)
        real = _real(x, xq).mean(axis=tuple(a + 1 for a in axes), keepdims=bool(keep))
        yq = out_type(rng, ok, real)
        g, node = one_op_graph("reduce_mean", [Spec("x", shape, xq)], [Spec("y", real.shape[1:], yq)],
                               attrs={"axes": axes, "keepdims": keep})
        decls, call = get("reduce_mean").kernel_config(g, node)
        cases.append(_case("reduce_mean", g, node, [x], decls, call))
    return cases


BUILDERS = [linear_cases, patch_embed_cases, matmul_cases, add_cases, mul_cases, quantize_cases, concat_cases,
            reduce_mean_cases]


# ---------------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    rng = np.random.default_rng(20240611)
    cases = [c for build in BUILDERS for c in build(rng)]
    got = run_cases(cases, HEADERS, tmp_path_factory.mktemp("kernels_linear"))
    return cases, got


def _check(results, op: str, min_cases: int) -> None:
    cases, got = results
    picked = [(c, g) for c, g in zip(cases, got) if c.meta["op"] == op]
    assert len(picked) >= min_cases
    failures = []
    for c, outs in picked:
        for g, e in zip(outs, c.expected):
            bad = np.argwhere(g != e)
            if bad.size:
                idx = [tuple(int(v) for v in b) for b in bad[:3]]
                failures.append(f"{c.label}: {len(bad)}/{e.size} differ ("
                                + ", ".join(f"{i}: C++ {int(g[i])} py {int(e[i])}" for i in idx) + ")")
    assert not failures, "\n".join(failures)
    # the cases must exercise the arithmetic, not only saturate: outputs take many values
    for c, _ in picked:
        assert len(np.unique(c.expected[0])) > 2, f"degenerate case {c.label}"


def test_linear_kernel(results):
    _check(results, "linear", 20)
    knobs = {c.meta["knobs"] for c in results[0] if c.meta["op"] == "linear"}
    assert len(knobs) >= 3


def test_patch_embed_kernel(results):
    _check(results, "patch_embed", 3)


def test_matmul_kernel(results):
    _check(results, "matmul", 5)


def test_add_kernel(results):
    _check(results, "add", 8)


def test_mul_kernel(results):
    _check(results, "mul", 6)


def test_quantize_kernel(results):
    _check(results, "quantize", 8)


def test_concat_kernel(results):
    _check(results, "concat", 3)


def test_reduce_mean_kernel(results):
    _check(results, "reduce_mean", 4)


def test_bcast_pattern():
    assert bcast_pattern((1, 5, 7), (1, 5, 7)) == (1, 35)
    assert bcast_pattern((7,), (1, 5, 7)) == (1, 7)
    assert bcast_pattern((1, 5, 1), (1, 5, 7)) == (7, 5)
    assert bcast_pattern((1, 1, 1), (1, 5, 7)) == (1, 1)
    with pytest.raises(ValueError):
        bcast_pattern((5, 1, 7), (5, 3, 7))
