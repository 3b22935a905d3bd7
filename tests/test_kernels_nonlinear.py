"""Nonlinear C++ kernels (softmax.h, layernorm.h, lut.h, moe.h, attention.h) == the ops' Python simulation,
bit for bit; and lut.h / requant.h into narrow-range (AP_SAT_SYM) types.

Every case builds a tiny hwgen graph (one op, or the attention chain matmul -> mul -> softmax -> matmul, or a
moe node with its gate and expert subgraphs), simulates it, takes the kernel's config struct (with the
Python-built tables as `static const` member arrays) and call from the op's own `kernel_config`, and runs the
kernel through tests/kernel_harness.py.
All cases are compiled into one program (built once per module, cached by content); each test item checks
one case.  Shapes and types are random-ish but seeded (int8, uint8 with zero points, 16-bit fixed point,
13/16-bit integers), and the knobs (lut `parallel`, attention `parallel` P) take several values.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hwgen import tables
from hwgen.ir import Graph, QType
from hwgen.numerics import Overflow, Rounding
from hwgen.ops import get
from hwgen.passes.attention import FuseAttention

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_harness import KernelCase, Spec, one_op_graph, random_codes, run_cases, simulate  # noqa: E402

pytestmark = pytest.mark.cpp

ROOT = Path(__file__).resolve().parents[1]
ONNX = ROOT / "models" / "onnx"
HEADERS = ["softmax.h", "layernorm.h", "lut.h", "linear.h", "moe.h", "attention.h", "requant.h"]


# ------------------------------------------------------------------------------------- C++ spelling
# Every config struct and call comes from the op's own kernel_config (hwgen/ops/<op>.py), exactly what the code
# generator emits (OpDef.emit); the MoE's gate and experts run on the real linear.h (linear_rows), lut.h and
# softmax.h kernels.


def _kernel(g: Graph, node, knobs=None) -> tuple[str, str]:
    return get(node.op).kernel_config(g, node, knobs)


# ------------------------------------------------------------------------------------------- cases

I8_PROB = QType.integer(8, True, 1 / 255, -128)


def _softmax_case(label, rng, shape, qx, qy, batch=3, special=True) -> KernelCase:
    g, node = one_op_graph("softmax", [Spec("x", shape, qx)], [Spec("y", shape, qy)])
    x = random_codes(rng, qx, (batch,) + tuple(shape))
    if special:  # a constant row (uniform probabilities), a row of extremes, a row with a spread of 2 codes
        flat = x.reshape(-1, shape[-1])
        flat[0] = qx.qmin + rng.integers(0, qx.qmax - qx.qmin)
        flat[1] = np.where(rng.random(shape[-1]) < 0.5, qx.qmin, qx.qmax)
        flat[2] = int(qx.zero_point) + rng.integers(0, 2, shape[-1])
        flat[3] = qx.qmin  # one dominant element: p = 1 (saturates a u8 output of scale 1/256)
        flat[3, rng.integers(0, shape[-1])] = qx.qmax
    return KernelCase(label, *_kernel(g, node), [x], [qx.c_type()], simulate(g, node, [x]), [qy.c_type()])


def softmax_cases(rng):
    fx16 = QType.fixed(16, 6, True, Rounding.TRN, Overflow.WRAP)
    return [
        _softmax_case("softmax i8 vit scores [2,17,17]", rng, (1, 2, 17, 17),
                      QType.integer(8, True, 0.02978, -12), I8_PROB),
        _softmax_case("softmax u8 z=131 [4,33] -> u8 1/256 RND (saturates p=1)", rng, (4, 33),
                      QType.integer(8, False, 0.05, 131), QType.integer(8, False, 1 / 256, 0, rounding=Rounding.RND)),
        _softmax_case("softmax fixed<16,6> [4,64] index_shift 4 -> fixed<16,1,RND_CONV,SAT>", rng, (4, 64), fx16,
                      QType.fixed(16, 1, True, Rounding.RND_CONV, Overflow.SAT)),
        _softmax_case("softmax i8 s=0.5 (short table) [5,3]", rng, (5, 3), QType.integer(8, True, 0.5, 3),
                      QType.integer(8, True, 1 / 127, 0)),
        _softmax_case("softmax i16 s=1e-3 [3,40] index_shift 4 -> i16", rng, (3, 40),
                      QType.integer(16, True, 1e-3, 0), QType.integer(16, True, 2.0**-15, 0, rounding=Rounding.RND_INF)),
    ]


def _z_ties(g, node, x) -> int:
    """Elements whose normalised value z = round(c * r * 2^-(24+e-16)) is an exact tie (where the rounding
    mode of that step decides)."""
    p = get("layernorm").params(g, node)
    n = p["n"]
    xc = np.asarray(x, dtype=np.int64).reshape(-1, n) - p["x_zero_point"]
    s1, s2 = xc.sum(-1, keepdims=True), (xc * xc).sum(-1, keepdims=True)
    r, e = p["rsqrt"].lookup(np.maximum(n * s2 - s1 * s1 + p["eps_int"], 1))
    prod, sh = (n * xc - s1) * r, tables.RSQRT_FRAC + e - 16
    return int(np.count_nonzero((prod & ((1 << sh) - 1)) == (1 << (sh - 1))))


def _layernorm_case(label, rng, shape, qx, qy, gamma, beta, eps=1e-6, batch=3, const_row=True,
                    spread=None) -> KernelCase:
    n = shape[-1]
    ins = [Spec("x", shape, qx), Spec("gamma", (n,), gamma[0], data=gamma[1])]
    if beta is not None:
        ins.append(Spec("beta", (n,), beta[0], data=beta[1]))
    g, node = one_op_graph("layernorm", ins, [Spec("y", shape, qy)], attrs={"epsilon": eps})
    zp = int(qx.zero_point)
    x = random_codes(rng, qx, (batch,) + tuple(shape), *((zp - spread, zp + spread) if spread else ()))
    if const_row:
        x.reshape(-1, n)[0] = int(qx.zero_point) + 3  # variance 0: V = eps_int (or 1)
        x.reshape(-1, n)[1, : n // 2] = qx.qmin  # extremes
        x.reshape(-1, n)[1, n // 2:] = qx.qmax
    return KernelCase(label, *_kernel(g, node), [x], [qx.c_type()], simulate(g, node, [x]), [qy.c_type()],
                      meta={"z_ties": _z_ties(g, node, x)})


def layernorm_cases(rng):
    i8g = lambda n, s: (QType.integer(8, True, s), rng.integers(40, 128, n))  # noqa: E731
    cases = [
        _layernorm_case("layernorm i8 vit [17,32] gamma i8, beta i32", rng, (1, 17, 32),
                        QType.integer(8, True, 0.006161, 19), QType.integer(8, True, 0.01661, 14),
                        i8g(32, 0.00672), (QType.integer(32, True, 4.14e-5), rng.integers(-9000, 9000, 32))),
        _layernorm_case("layernorm u8 z=120 [5,48] per-channel gamma, no beta -> u8 RND", rng, (5, 48),
                        QType.integer(8, False, 0.02, 120), QType.integer(8, False, 0.03, 128, rounding=Rounding.RND),
                        (QType.integer(8, True, rng.uniform(0.002, 0.02, 48), 0, axis=0), rng.integers(-128, 128, 48)),
                        None),
        _layernorm_case("layernorm fixed<16,4> [3,20] per-channel beta i8 -> fixed<16,4,RND,SAT>", rng, (3, 20),
                        QType.fixed(16, 4, True), QType.fixed(16, 4, True, Rounding.RND, Overflow.SAT),
                        i8g(20, 0.01), (QType.integer(8, True, rng.uniform(0.001, 0.01, 20), 0, axis=0),
                                        rng.integers(-128, 128, 20)), eps=1e-5),
        _layernorm_case("layernorm i8 [4,7] eps 0.1 (eps_int large)", rng, (4, 7), QType.integer(8, True, 0.05, -3),
                        QType.integer(8, True, 0.02, 0), i8g(7, 0.01), (QType.integer(8, True, 0.01, 5),
                                                                        rng.integers(-128, 128, 7)), eps=0.1),
        _layernorm_case("layernorm i8 [6,8] low variance (ties in the normalised value) -> i32 fine scale", rng,
                        (6, 8), QType.integer(8, True, 0.01, 2), QType.integer(32, True, 1e-6, 7), i8g(8, 0.02),
                        (QType.integer(32, True, 1e-4), rng.integers(-3000, 3000, 8)), eps=1e-9, batch=4,
                        spread=1),
    ]
    return cases


def _region(fn: str, consts: dict | None = None, nodes=None):
    nodes = nodes or [(fn, ["x"], ["y"], {})]
    return {"nodes": nodes, "input": "x", "output": "y", "consts": consts or {}, "fakequant": {}}


def _lut_case(label, rng, fn, qx, qy, shape, parallel, batch=2, region=None, all_codes=False) -> KernelCase:
    g, node = one_op_graph("lut", [Spec("x", shape, qx)], [Spec("y", shape, qy)],
                           attrs={"function": fn.lower(), "_region": region or _region(fn)})
    size = int(np.prod(shape))
    if all_codes:  # every input code once (exhaustive), spread over the batch
        codes = np.arange(qx.qmin, qx.qmax + 1, dtype=np.int64)
        batch = -(-codes.size // size)
        x = np.resize(codes, batch * size).reshape((batch,) + tuple(shape))
    else:
        x = random_codes(rng, qx, (batch,) + tuple(shape))
    decls, call = _kernel(g, node, parallel)
    assert f"parallel = {parallel};" in decls
    return KernelCase(label, decls, call, [x], [qx.c_type()], simulate(g, node, [x]), [qy.c_type()])


def lut_cases(rng):
    c = np.float32
    erf_gelu = _region("gelu", {"s2": np.array(1.4142135, c), "one": np.array(1.0, c), "half": np.array(0.5, c)}, [
        ("Div", ["x", "s2"], ["a"], {}), ("Erf", ["a"], ["b"], {}), ("Add", ["b", "one"], ["d"], {}),
        ("Mul", ["x", "d"], ["e"], {}), ("Mul", ["e", "half"], ["y"], {})])
    return [
        _lut_case("lut gelu i8 -> i8 exact, all codes, parallel 1", rng, "Gelu",
                  QType.integer(8, True, 0.02881, 46), QType.integer(8, True, 0.009766, -111), (1, 4, 64), 1,
                  all_codes=True),
        _lut_case("lut erf-gelu region u8 z=128 -> i8, parallel 4", rng, "gelu",
                  QType.integer(8, False, 0.03, 128), QType.integer(8, True, 0.01, -100), (17, 64), 4, region=erf_gelu),
        _lut_case("lut tanh u8 z=100 -> i8 1/127, parallel 2", rng, "Tanh",
                  QType.integer(8, False, 0.03, 100), QType.integer(8, True, 1 / 127, 0), (6, 10), 2),
        _lut_case("lut gelu fixed<16,5> -> fixed<16,6,RND_CONV,SAT> interpolated, all codes, parallel 4", rng,
                  "Gelu", QType.fixed(16, 5, True), QType.fixed(16, 6, True, Rounding.RND_CONV, Overflow.SAT),
                  (1, 4096), 4, all_codes=True),
        _lut_case("lut sigmoid i13 -> u8 1/256 interpolated (shift 3), parallel 1", rng, "Sigmoid",
                  QType.integer(13, True, 0.004, 0), QType.integer(8, False, 1 / 256, 0), (8, 128), 1, batch=8),
        _lut_case("lut gelu u16 z=30000 -> i8 RND interpolated (shift 6), parallel 2", rng, "Gelu",
                  QType.integer(16, False, 4e-4, 30000), QType.integer(8, True, 0.05, -20, rounding=Rounding.RND),
                  (16, 64), 2, batch=4),
    ]


# ----- attention -----

def _attention_graph(qq, qk, qs, qt, qp, qv, qo, heads, n_q, n_kv, d, dv, mul=None):
    """matmul(Q, K^T) -> [mul] -> softmax -> matmul(P, V) as a lowered graph, fused by the FuseAttention pass
    into one `attention` node: (graph, node).  mul: None, ('const', QType, code) or ('factor', float)."""
    g = Graph("attention")
    lead = (1, heads)
    g.add_tensor("q", lead + (n_q, d), qq)
    g.add_tensor("kt", lead + (d, n_kv), qk)
    g.add_tensor("v", lead + (n_kv, dv), qv)
    g.add_tensor("s", lead + (n_q, n_kv), qs)
    g.add_tensor("p", lead + (n_q, n_kv), qp)
    g.add_tensor("o", lead + (n_q, dv), qo)
    g.inputs, g.outputs = ["q", "kt", "v"], ["o"]
    nodes = [g.add_node("matmul", ["q", "kt"], ["s"])]
    sm_in = "s"
    if mul is not None:
        g.add_tensor("t", lead + (n_q, n_kv), qt)
        if mul[0] == "const":
            g.add_tensor("c", (), mul[1], np.array(mul[2], dtype=np.int64))
            nodes.append(g.add_node("mul", ["s", "c"], ["t"]))
        else:
            nodes.append(g.add_node("mul", ["s"], ["t"], attrs={"factor": mul[1]}))
        sm_in = "t"
    nodes.append(g.add_node("softmax", [sm_in], ["p"]))
    nodes.append(g.add_node("matmul", ["p", "v"], ["o"]))
    g.lint()
    assert FuseAttention().apply(g)
    g.lint()
    node = next(g.find("attention"))
    get("attention").check(g, node)
    return g, node


def _vit_attention():
    """The first attention node of the lowered vit_digits QDQ model."""
    from hwgen.frontend import load_graph

    full = load_graph(ONNX / "vit_digits.qdq.dynamo.onnx")
    return full, next(full.find("attention"))


def _attention_case(label, rng, g, node, parallel, batch=2) -> KernelCase:
    q, kt, v = (g.tensors[n] for n in node.inputs)
    feeds = [random_codes(rng, x.qtype, (batch,) + x.shape) for x in (q, kt, v)]
    feeds[0].reshape(batch, -1, q.shape[-1])[0, :] = int(q.qtype.zero_point)  # a query row of zeros
    expected = simulate(g, node, feeds)
    out = g.tensors[node.outputs[0]].qtype
    decls, call = _kernel(g, node, parallel)
    call += ('\nif (!q_s.empty() || !k_s.empty() || !v_s.empty() || !o_s.empty()) '
             '{ std::fprintf(stderr, "stream left over\\n"); std::exit(5); }')
    return KernelCase(label, decls, call, feeds, [x.qtype.c_type() for x in (q, kt, v)], expected, [out.c_type()])


def attention_cases(rng):
    cases = []
    g, node = _vit_attention()
    for p in (1, 2, 4):
        cases.append(_attention_case(f"attention vit_digits block0 (2 heads, 17x16) P={p}", rng, g, node, p))
    u8 = lambda s, z: QType.integer(8, False, s, z)  # noqa: E731
    g, node = _attention_graph(u8(0.02, 120), u8(0.03, 90), QType.integer(8, True, 0.05, 5), None,
                                QType.integer(8, False, 1 / 256, 0), u8(0.01, 140), u8(0.008, 128),
                                heads=3, n_q=10, n_kv=10, d=8, dv=6)
    cases.append(_attention_case("attention u8 zps, no scale, 3 heads, P=3 (10 rows: partial group)", rng, g, node, 3))
    g, node = _attention_graph(QType.integer(8, True, 0.03, -4), QType.integer(8, True, 0.02, 7),
                                QType.integer(8, True, 0.1, 2), QType.integer(16, True, 2e-3, 0),
                                I8_PROB, QType.integer(8, True, 0.015, -9), QType.integer(8, True, 0.01, 3),
                                heads=1, n_q=7, n_kv=9, d=5, dv=4, mul=("factor", -0.125))
    cases.append(_attention_case("attention i8, mul by -0.125 into i16 (index_shift > 0), 7x9 cross, P=2",
                                 rng, g, node, 2))
    g, node = _attention_graph(QType.integer(8, True, 0.05, 0), QType.integer(8, True, 0.05, 0),
                                QType.integer(8, True, 0.2, 0), QType.integer(8, True, 0.03, 10),
                                QType.integer(8, True, 1 / 255, -128, rounding=Rounding.RND), QType.integer(8, True, 0.02, 0),
                                QType.integer(8, True, 0.01, -1), heads=2, n_q=12, n_kv=12, d=16, dv=16,
                                mul=("const", QType.integer(8, False, 0.002, 0), 125))
    cases.append(_attention_case("attention i8, quantised scale constant, 2 heads 12x16, P=4", rng, g, node, 4))
    return cases


# ----- moe -----

def _vit_moe():
    from hwgen.frontend import load_graph

    full = load_graph(ONNX / "moe_vit_digits.qdq.dynamo.onnx")
    return full, next(full.find("moe"))


def _synthetic_moe(rng, tokens, d_in, hidden, d_out, n_exp, k, qx, gate_scale, fn="Tanh"):
    """A moe node built by hand: gate linear (no bias) -> softmax, experts linear -> lut -> linear."""
    g = Graph("moe")
    g.add_tensor("x", (1, tokens, d_in), qx)
    qy = QType.integer(8, True, 0.004, 3)
    g.add_tensor("y", (1, tokens, d_out), qy)

    def sub(name):
        sg = Graph(name)
        sg.tensors["x"] = g.tensors["x"]
        sg.inputs = ["x"]
        return sg

    gate = sub("gate")
    gate.add_tensor("wg", (d_in, n_exp), QType.integer(8, True, gate_scale), rng.integers(-127, 128, (d_in, n_exp)))
    gate.add_tensor("logits", (1, tokens, n_exp), QType.integer(8, True, 0.05, -7))
    gate.add_tensor("probs", (1, tokens, n_exp), I8_PROB)
    gate.add_node("linear", ["x", "wg"], ["logits"])
    gate.add_node("softmax", ["logits"], ["probs"])
    gate.outputs = ["probs"]
    experts = []
    for e in range(n_exp):
        sg = sub(f"expert{e}")
        sg.add_tensor("w1", (d_in, hidden), QType.integer(8, True, rng.uniform(0.002, 0.01, hidden), 0, axis=1),
                      rng.integers(-127, 128, (d_in, hidden)))
        sg.add_tensor("b1", (hidden,), QType.integer(32, True, 1e-4), rng.integers(-2000, 2000, hidden))
        sg.add_tensor("h", (1, tokens, hidden), QType.integer(8, True, 0.03, int(rng.integers(-20, 20))))
        sg.add_tensor("a", (1, tokens, hidden), QType.integer(8, True, 1 / 127, int(rng.integers(-5, 5))))
        sg.add_tensor("w2", (hidden, d_out), QType.integer(8, True, 0.005), rng.integers(-127, 128, (hidden, d_out)))
        sg.add_tensor(f"y{e}", (1, tokens, d_out), QType.integer(8, True, float(rng.uniform(0.01, 0.03)),
                                                                 int(rng.integers(-10, 10))))
        sg.add_node("linear", ["x", "w1", "b1"], ["h"])
        sg.add_node("lut", ["h"], ["a"], attrs={"function": fn.lower(), "_region": {
            "nodes": [(fn, ["h"], ["a"], {})], "input": "h", "output": "a", "consts": {}, "fakequant": {}}})
        sg.add_node("linear", ["a", "w2"], [f"y{e}"])
        sg.outputs = [f"y{e}"]
        experts.append(sg)
    node = g.add_node("moe", ["x"], ["y"], attrs={"k": k, "experts": n_exp, "_gate": gate, "_experts": experts})
    g.inputs, g.outputs = ["x"], ["y"]
    return g, node


def _moe_case(label, rng, g, node, batch=3) -> KernelCase:
    x_t = g.tensors[node.inputs[0]]
    x = random_codes(rng, x_t.qtype, (batch,) + x_t.shape)
    expected = simulate(g, node, [x])
    return KernelCase(label, *_kernel(g, node), [x], [x_t.qtype.c_type()], expected,
                      [g.tensors[node.outputs[0]].qtype.c_type()])


def _topk_ties(g, node, x) -> int:
    """How many tokens of `x` have a tie at the top-k boundary of the router (the case ties-to-lower-index
    decides)."""
    from hwgen.ops.moe import run_rows

    probs = run_rows(node.attrs["_gate"], x.reshape(-1, x.shape[-1]), None)
    k = node.attrs["k"]
    srt = -np.sort(-probs, axis=-1)
    return int(np.count_nonzero(srt[:, k - 1] == srt[:, k]))


def moe_cases(rng):
    full, node = _vit_moe()
    cases = [_moe_case("moe moe_vit_digits layer 1 (17 tokens, 4 experts, top-2)", rng, full, node)]
    g, node = _synthetic_moe(rng, 9, 12, 16, 10, 6, 3, QType.integer(8, False, 0.02, 100), gate_scale=2e-4)
    case = _moe_case("moe u8 z=100, 6 experts top-3, near-uniform router (top-k ties)", rng, g, node)
    case.meta["ties"] = _topk_ties(g, node, case.inputs[0])
    cases.append(case)
    g, node = _synthetic_moe(rng, 5, 8, 12, 8, 3, 1, QType.integer(8, True, 0.05, -3), gate_scale=0.02, fn="Gelu")
    cases.append(_moe_case("moe i8, 3 experts top-1, gelu experts", rng, g, node))
    return cases


# ----- narrow range (AP_SAT_SYM outputs: QONNX narrow=1) -----


def _sat(qt: QType) -> QType:
    """`qt` with plain (asymmetric) saturation: what a narrow type would be without its narrow range."""
    return QType(qt.kind, qt.bits, qt.signed, qt.scale, qt.zero_point, qt.axis, qt.rounding, Overflow.SAT,
                 qt.int_bits)


def _narrow_case(label, rng, op, qx, qy, shape, attrs=None, parallel=None, all_codes=False, batch=3,
                 wide=None) -> KernelCase:
    """One op into a narrow type. The same op with plain saturation instead (`wide`: the attrs of that variant,
    default the same): meta["asym_min"], how many of its outputs are the asymmetric minimum -2^(b-1), and
    meta["differ"], how many differ from the narrow case's."""
    def build(out_q, attrs):
        return one_op_graph(op, [Spec("x", shape, qx)], [Spec("y", shape, out_q)], attrs=attrs)

    g, node = build(qy, attrs)
    size = int(np.prod(shape))
    if all_codes:
        codes = np.arange(qx.qmin, qx.qmax + 1, dtype=np.int64)
        batch = -(-codes.size // size)
        x = np.resize(codes, batch * size).reshape((batch,) + tuple(shape))
    else:
        x = random_codes(rng, qx, (batch,) + tuple(shape))
    gw, nw = build(_sat(qy), wide if wide is not None else attrs)
    plain = simulate(gw, nw, [x])[0]
    decls, call = _kernel(g, node, parallel)
    expected = simulate(g, node, [x])
    return KernelCase(label, decls, call, [x], [qx.c_type()], expected, [qy.c_type()],
                      meta={"asym_min": int(np.count_nonzero(plain == -(1 << (qy.bits - 1)))),
                            "differ": int(np.count_nonzero(plain != expected[0])), "min": -(1 << (qy.bits - 1))})


def narrow_cases(rng):
    c = np.float32
    n8 = QType.integer(8, True, 1 / 128, 0, overflow=Overflow.SAT_SYM)  # tanh = -1 would be code -128
    fq_region = lambda ovf: {  # noqa: E731  tanh, fake-quantised to i8 (narrow or not), times 2
        "nodes": [("Tanh", ["x"], ["t"], {}), ("Mul", ["t", "two"], ["y"], {})], "input": "x", "output": "y",
        "consts": {"two": np.array(2.0, c)}, "fakequant": {"t": (np.array(1 / 128), np.array(0), 8, True, ovf)}}
    return [
        _narrow_case("narrow lut tanh i8 -> i8n 1/128 exact, all codes, parallel 2", rng, "lut",
                     QType.integer(8, True, 0.05, 0), n8, (1, 64), {"function": "tanh", "_region": _region("Tanh")},
                     parallel=2, all_codes=True),
        _narrow_case("narrow lut tanh i13 -> i8n 1/128 interpolated (shift 3), parallel 1", rng, "lut",
                     QType.integer(13, True, 0.004, 0), n8, (8, 128), {"function": "tanh", "_region": _region("Tanh")},
                     parallel=1),
        _narrow_case("narrow lut region tanh -> fake-quant i8n -> *2 -> i10n 1/128, all codes", rng, "lut",
                     QType.integer(8, True, 0.05, 0), QType.integer(10, True, 1 / 128, 0, overflow=Overflow.SAT_SYM),
                     (1, 64), {"function": "tanh", "_region": fq_region(Overflow.SAT_SYM)}, parallel=4,
                     all_codes=True, wide={"function": "tanh", "_region": fq_region(Overflow.SAT)}),
        _narrow_case("narrow quantize i16 -> i8n (saturating both ends)", rng, "quantize",
                     QType.integer(16, True, 0.01, 0), QType.integer(8, True, 0.5, 0, overflow=Overflow.SAT_SYM),
                     (4, 9)),
        _narrow_case("narrow quantize fixed<16,6> -> i4n 0.25", rng, "quantize", QType.fixed(16, 6, True),
                     QType.integer(4, True, 0.25, 0, overflow=Overflow.SAT_SYM), (3, 10)),
    ]


# ------------------------------------------------------------------------------------------ running

FAMILIES = {"softmax": softmax_cases, "layernorm": layernorm_cases, "lut": lut_cases,
            "attention": attention_cases, "moe": moe_cases, "narrow": narrow_cases}
COUNTS = {"softmax": 5, "layernorm": 5, "lut": 6, "attention": 6, "moe": 3, "narrow": 5}
IDS = [f"{fam}-{i}" for fam, n in COUNTS.items() for i in range(n)]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Build every case, compile them into one program, run it once: {id: (case, outputs)}."""
    cases, ids = [], []
    for fam, build in FAMILIES.items():
        rng = np.random.default_rng(sum(map(ord, fam)))
        built = build(rng)
        assert len(built) == COUNTS[fam], f"{fam}: update COUNTS"
        cases += built
        ids += [f"{fam}-{i}" for i in range(len(built))]
    outs = run_cases(cases, HEADERS, tmp_path_factory.mktemp("nonlinear"), units=2)
    return {i: (c, o) for i, c, o in zip(ids, cases, outs)}


@pytest.mark.parametrize("case_id", IDS)
def test_kernel_matches_simulator(results, case_id):
    case, got = results[case_id]
    for j, (g, e) in enumerate(zip(got, case.expected)):
        bad = np.argwhere(g != e)
        detail = ", ".join(f"{tuple(int(v) for v in b)}: C++ {int(g[tuple(b)])} py {int(e[tuple(b)])}" for b in bad[:5])
        assert not bad.size, f"{case.label} out{j}: {len(bad)}/{e.size} differ ({detail})"


def test_cases_exercise_what_they_claim(results):
    """The cases hit the paths they are named for (so a passing run means something)."""
    sm = {k: c for k, (c, _) in results.items() if k.startswith("softmax")}
    assert "index_shift = 4" in sm["softmax-2"].decls and "index_shift = 4" in sm["softmax-4"].decls
    assert results["layernorm-4"][0].meta["z_ties"] > 0, "the low-variance rows should produce rounding ties"
    luts = {k: c for k, (c, _) in results.items() if k.startswith("lut")}
    assert "shift = 0" in luts["lut-0"].decls and "shift = 6" in luts["lut-3"].decls
    assert "shift = 3" in luts["lut-4"].decls
    assert results["moe-1"][0].meta["ties"] > 0, "the near-uniform router should produce top-k ties"
    att = results["attention-4"][0].decls
    assert "scale_c = -1" in att and "index_shift = 4" in att
    # saturation corner: a u8 output of scale 1/256 with p = 1 must saturate at 255
    assert int(results["softmax-1"][0].expected[0].max()) == 255
    # narrow range: with plain saturation the outputs would take -2^(b-1); the narrow types never do
    for k in (k for k in results if k.startswith("narrow")):
        case = results[k][0]
        assert case.meta["differ"] > 0 and int(case.expected[0].min()) > case.meta["min"], case.label
        if k != "narrow-2":  # the region's narrow step is inside it: -127/128 * 2 = code -254 of 10 bits
            assert case.meta["asym_min"] > 0 and int(case.expected[0].min()) == case.meta["min"] + 1, case.label
    assert int(results["narrow-2"][0].expected[0].min()) == -254
    assert "shift = 3" in results["narrow-1"][0].decls and "AP_SAT_SYM" in results["narrow-3"][0].decls
