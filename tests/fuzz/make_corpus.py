"""Generate a corpus of malformed and adversarial ONNX models (issue 5: untrusted input).

    python tests/fuzz/make_corpus.py DIR        # writes DIR/<NNN>_<kind>/<file> and DIR/corpus.json

Nothing here is committed as binaries: every model is generated, deterministically (fixed seeds), from
onnx.helper or from copies of the bundled models in models/onnx/ (read, never modified). Each case lives in
a folder of its own so a test can check that running hwgen leaves that folder untouched.

`make_corpus(dir)` returns [(path, kind, expect)]:
  expect "error"  hwgen must refuse it: exit code 2, one line on stderr naming the file (and node/op)
         "ok"     a valid model (often with hostile names): every command must succeed
         "any"    either a success or a clean refusal (exit 2, one line); never a traceback or a hang
DIR/corpus.json also records, per case, `locate`: strings of which at least one must appear in the error
line (a node or tensor name), and a short description.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "models" / "onnx"
OPSET = 17
QONNX_DOMAIN = "qonnx.custom_op.general"

# Distinctive hostile names: if any of these ever shows up as a file outside OUT, a test finds it by "pwned".
H_DOTS = "../../pwned_x"
H_CPP = '"; system("id"); //'
H_TCL = "[exec rm -rf pwned_tcl]"
H_SH = "$(id)`id`pwned_sh"
H_COMMENT = "*/ pwned_c /*"
H_ABS = "/tmp/pwned_abs"
H_NL = "line\nbreak\r\\"
H_UNI = "ünïcødé_模型_\u202e_pwned"
H_ANSI = "\x1b[31mred\x1b[0m\x07"
H_RICH = "[/bold][red]pwned_markup[/]"
HOSTILE = [H_DOTS, H_CPP, H_TCL, H_SH, H_COMMENT, H_ABS, H_NL, H_UNI, H_ANSI, H_RICH]


class Case(NamedTuple):
    path: Path
    kind: str
    expect: str


# ---- building blocks ------------------------------------------------------------------------------

def vi(name, shape, dtype=T.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def vu(name, rank, dtype=T.FLOAT):
    """A graph output of known rank but unknown dimensions (the checker wants a shape field)."""
    return helper.make_tensor_value_info(name, dtype, [f"{name}_d{i}" for i in range(rank)])


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def model(nodes, inputs, outputs, inits=(), opset=OPSET, name="g", extra_opsets=(), ir=10, **kw):
    g = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(inits), **kw)
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=opsets)
    m.ir_version = ir
    return m


def rng(seed):
    return np.random.default_rng(seed)


def toy_float(names=None, seed=0) -> onnx.ModelProto:
    """A valid float graph of ops with C++ kernels: MatMul -> Transpose -> Reshape -> Gemm."""
    n = {"x": "x", "w1": "w1", "h": "h", "t": "t", "r": "r", "w2": "w2", "y": "y", "shape": "shape",
         "mm": "mm", "tr": "tr", "rs": "rs", "gemm": "gemm", "graph": "g"}
    n.update(names or {})
    r = rng(seed)
    nodes = [helper.make_node("MatMul", [n["x"], n["w1"]], [n["h"]], name=n["mm"]),
             helper.make_node("Transpose", [n["h"]], [n["t"]], name=n["tr"], perm=[0, 2, 1]),
             helper.make_node("Reshape", [n["t"], n["shape"]], [n["r"]], name=n["rs"]),
             helper.make_node("Gemm", [n["r"], n["w2"]], [n["y"]], name=n["gemm"])]
    inits = [const(n["w1"], r.standard_normal((8, 16)) * 0.3), const(n["shape"], [16, 4], np.int64),
             const(n["w2"], r.standard_normal((4, 6)) * 0.3)]
    return model(nodes, [vi(n["x"], [1, 4, 8])], [vi(n["y"], [16, 6])], inits, name=n["graph"])


def toy_qdq(scale=0.05, zp=None, w_scale=0.02, w_zp=None, zp_dtype=np.int8, seed=1, act_scale_const=True,
            names=None, scale_dtype=np.float32, axis=None, w_dtype=np.int8) -> onnx.ModelProto:
    """A QDQ graph: Q/DQ(x) -> MatMul(DQ(int8 W)) -> Q/DQ -> output. Parameters are the fuzzed bits."""
    r = rng(seed)
    n = {"x": "x", "q": "q_x", "dq": "dq_x", "wdq": "dq_w", "mm": "mm", "qh": "q_h", "dqh": "dq_h", "y": "y"}
    n.update(names or {})
    zp = np.zeros((), zp_dtype) if zp is None else zp
    w_zp = np.zeros((), np.int8) if w_zp is None else w_zp
    inits = [numpy_helper.from_array(np.asarray(zp), "zx"),
             const("sw", w_scale, scale_dtype), numpy_helper.from_array(np.asarray(w_zp), "zw"),
             numpy_helper.from_array(r.integers(-100, 100, (8, 16)).astype(w_dtype), "W"),
             const("sh", 0.1), numpy_helper.from_array(np.zeros((), np.int8), "zh")]
    if act_scale_const:
        inits.append(const("sx", scale, scale_dtype))
    qa = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("QuantizeLinear", [n["x"], "sx", "zx"], ["xq"], name=n["q"], **qa),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"], name=n["dq"], **qa),
             helper.make_node("DequantizeLinear", ["W", "sw", "zw"], ["wd"], name=n["wdq"]),
             helper.make_node("MatMul", ["xd", "wd"], ["h"], name=n["mm"]),
             helper.make_node("QuantizeLinear", ["h", "sh", "zh"], ["hq"], name=n["qh"]),
             helper.make_node("DequantizeLinear", ["hq", "sh", "zh"], [n["y"]], name=n["dqh"])]
    inputs = [vi(n["x"], [1, 4, 8])]
    if not act_scale_const:
        inputs.append(vi("sx", []))
    return model(nodes, inputs, [vi(n["y"], [1, 4, 16])], inits, opset=21)


def toy_qonnx(scale=0.05, zp=0.0, bits=8.0, seed=2, **attrs) -> onnx.ModelProto:
    r = rng(seed)
    inits = [const("s", scale), const("z", zp), const("b", bits), const("W", r.standard_normal((8, 16)) * 0.3),
             const("sw", 0.02), const("zw", 0.0), const("bw", 8.0)]
    a = {"signed": 1, "narrow": 0, "rounding_mode": "ROUND"}
    a.update(attrs)
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], name="quant_x", domain=QONNX_DOMAIN, **a),
             helper.make_node("Quant", ["W", "sw", "zw", "bw"], ["wq"], name="quant_w", domain=QONNX_DOMAIN,
                              signed=1, narrow=0, rounding_mode="ROUND"),
             helper.make_node("MatMul", ["xq", "wq"], ["y"], name="mm")]
    return model(nodes, [vi("x", [1, 4, 8])], [vi("y", [1, 4, 16])], inits, extra_opsets=[(QONNX_DOMAIN, 1)],
                 value_info=[vi("xq", [1, 4, 8]), vi("wq", [8, 16])])


def unary(op, x_shape=(1, 4, 8), y_shape=None, node_name=None, inits=(), extra_inputs=(), y_dtype=T.FLOAT,
          domain="", extra_opsets=(), opset=OPSET, outputs=("y",), **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, ["x", *extra_inputs], list(outputs), name=node_name or f"my_{op.lower()}",
                            domain=domain, **attrs)
    outs = [vi(o, list(y_shape) if y_shape is not None else list(x_shape), y_dtype) for o in outputs]
    if y_shape is None and y_dtype != T.FLOAT:
        outs = [vu(o, 2, y_dtype) for o in outputs]
    return model([node], [vi("x", list(x_shape))], outs, inits, opset=opset, extra_opsets=extra_opsets)


# ---- the corpus -----------------------------------------------------------------------------------

class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases: list[Case] = []
        self.meta: dict[str, dict] = {}

    def folder(self, kind: str) -> Path:
        d = self.root / f"{len(self.cases):03d}_{kind}"
        if d.is_symlink() or d.is_file():
            d.unlink()
        elif d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def add(self, kind: str, expect: str, content, fname: str = "model.onnx", locate=(), note: str = "",
            setup: Callable[[Path], None] | None = None) -> Path:
        d = self.folder(kind)
        path = d / fname
        data = content.SerializeToString() if isinstance(content, onnx.ModelProto) else bytes(content)
        path.write_bytes(data)
        if setup is not None:
            setup(d)
        self.cases.append(Case(path, kind, expect))
        self.meta[str(path.relative_to(self.root))] = {"kind": kind, "expect": expect, "locate": list(locate),
                                                        "note": note}
        return path


def _bundled() -> list[Path]:
    return sorted(BUNDLED.glob("*.onnx"))


def _truncated(w: _Writer) -> None:
    for i, src in enumerate(_bundled()):
        data = src.read_bytes()
        n = len(data)
        offsets = sorted({0, 1, 2, 5, 17, 64, 300, 4096, n // 3, n // 2, (2 * n) // 3, n - 64, n - 1})
        offsets = [o for o in offsets if 0 <= o < n]
        # keep the cheap-to-list but diverse ones: 8 per model, spread over the file
        pick = offsets[:3] + offsets[-5:] if len(offsets) > 8 else offsets
        for off in pick:
            w.add("truncated", "error", data[:off], note=f"{src.name} truncated to {off} of {n} bytes")


def _corrupted(w: _Writer) -> None:
    for i, src in enumerate(_bundled()):
        data = src.read_bytes()
        r = rng(1000 + i)
        for variant, flips in enumerate((1, 8, 64)):
            buf = bytearray(data)
            for pos in r.integers(0, len(buf), flips):
                buf[pos] ^= 1 << int(r.integers(0, 8))
            w.add("corrupted", "any", bytes(buf), note=f"{src.name} with {flips} random bit flips")
        buf = bytearray(data)
        start = int(r.integers(0, len(buf) - 64))
        buf[start:start + 32] = b"\xff" * 32
        w.add("corrupted", "any", bytes(buf), note=f"{src.name} with 32 bytes overwritten at {start}")
    # garbage that is not a protobuf at all / a protobuf of something else
    w.add("corrupted", "error", rng(7).bytes(5000), note="random bytes")
    w.add("corrupted", "error", b"\x0a\xff\xff\xff\xff\x0f" + b"\x00" * 64, note="length prefix of 4 GiB")
    w.add("corrupted", "error", helper.make_tensor("t", T.FLOAT, [2], [1.0, 2.0]).SerializeToString(),
          note="a TensorProto, not a model")
    w.add("corrupted", "error", b"", note="empty file")


def _ld(field: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    key, n, out = (field << 3) | 2, len(payload), bytearray()
    for v in (key, n):
        while True:
            b = v & 0x7F
            v >>= 7
            out.append(b | (0x80 if v else 0))
            if not v:
                break
    return bytes(out) + payload


def _nested_if(depth: int) -> bytes:
    """If nodes nested `depth` deep in their then-branches, spliced as raw protobuf (the Python protobuf
    runtime refuses to build messages deeper than its own limit, a parser must cope with them)."""
    leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "leaf", [], [vi("e", [1, 4, 8])])
    else_attr = helper.make_attribute("else_branch", leaf).SerializeToString()
    body = helper.make_graph([helper.make_node("Identity", ["x"], ["y0"])], "b0", [], [vi("y0", [1, 4, 8])]).SerializeToString()
    for k in range(1, depth + 1):
        attr = onnx.AttributeProto(name="then_branch", type=onnx.AttributeProto.GRAPH).SerializeToString() + _ld(6, body)
        out = "y" if k == depth else f"y{k}"
        node = helper.make_node("If", ["c"], [out], name="outer_if" if k == depth else f"if{k}").SerializeToString()
        node += _ld(5, attr) + _ld(5, else_attr)
        if k == depth:
            break
        shell = helper.make_graph([], f"b{k}", [], [vi(out, [1, 4, 8])]).SerializeToString()
        body = _ld(1, node) + shell
    top = model([], [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("c", True, np.bool_)])
    graph = _ld(1, node) + top.graph.SerializeToString()
    top.ClearField("graph")
    return top.SerializeToString() + _ld(7, graph)


def _unsupported(w: _Writer) -> None:
    r = rng(3)
    H = 8
    # recurrent nets
    for op in ("LSTM", "GRU", "RNN"):
        gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        m = unary(op, x_shape=(4, 1, 8), y_shape=(4, 1, 1, H), extra_inputs=["W", "R"], hidden_size=H,
                  inits=[const("W", r.standard_normal((1, gates * H, 8))), const("R", r.standard_normal((1, gates * H, H)))])
        w.add("unsupported_op", "error", m, locate=[f"my_{op.lower()}", op])
    nms = model([helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["sel"], name="my_nms")],
                [vi("boxes", [1, 10, 4]), vi("scores", [1, 1, 10])], [vu("sel", 2, T.INT64)])
    w.add("unsupported_op", "error", nms, locate=["my_nms", "NonMaxSuppression"])
    w.add("unsupported_op", "error", unary("Resize", x_shape=(1, 1, 4, 4), y_shape=(1, 1, 8, 8), extra_inputs=["", "sc"],
                                           inits=[const("sc", [1, 1, 2, 2])], mode="nearest"),
          locate=["my_resize", "Resize"])
    conv = unary("Conv", x_shape=(1, 1, 8, 8), y_shape=(1, 4, 8, 8), extra_inputs=["W"], pads=[1, 1, 1, 1],
                 kernel_shape=[3, 3], inits=[const("W", r.standard_normal((4, 1, 3, 3)))], node_name="padded_conv")
    w.add("unsupported_op", "error", conv, locate=["padded_conv", "Conv"])
    conv = unary("Conv", x_shape=(1, 1, 8, 8), y_shape=(1, 4, 4, 4), extra_inputs=["W"], strides=[2, 2],
                 dilations=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[2, 2], group=1,
                 inits=[const("W", r.standard_normal((4, 1, 2, 2)))], node_name="dilated_conv")
    w.add("unsupported_op", "any", conv, locate=["dilated_conv", "Conv"])
    # control flow
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["a"])], "then", [], [vi("a", [1, 4, 8])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["b"])], "else", [], [vi("b", [1, 4, 8])])
    m = model([helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0, name="sum"),
               helper.make_node("Greater", ["s", "zero"], ["c"], name="cmp"),
               helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g, name="my_if")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("zero", 0.0)])
    w.add("unsupported_op", "error", m, locate=["my_if", "If", "sum", "cmp", "ReduceSum", "Greater"])
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                              helper.make_node("Relu", ["v_in"], ["v_out"])], "body",
                             [vi("i", [], T.INT64), vi("cond_in", [], T.BOOL), vi("v_in", [1, 4, 8])],
                             [vi("cond_out", [], T.BOOL), vi("v_out", [1, 4, 8])])
    m = model([helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body, name="my_loop")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("trip", 3, np.int64), const("cond", True, np.bool_)])
    w.add("unsupported_op", "error", m, locate=["my_loop", "Loop"])
    sbody = helper.make_graph([helper.make_node("Add", ["s_in", "e_in"], ["s_out"]),
                               helper.make_node("Identity", ["s_out"], ["e_out"])], "sbody",
                              [vi("s_in", [8]), vi("e_in", [8])], [vi("s_out", [8]), vi("e_out", [8])])
    m = model([helper.make_node("Scan", ["init", "x"], ["fin", "y"], body=sbody, num_scan_inputs=1, name="my_scan")],
              [vi("x", [4, 8])], [vi("fin", [8]), vi("y", [4, 8])], [const("init", np.zeros(8))])
    w.add("unsupported_op", "error", m, locate=["my_scan", "Scan"])
    w.add("unsupported_op", "error", _nested_if(3), locate=["outer_if", "If"])
    w.add("unsupported_op", "error", _nested_if(150), note="deeper than protobuf's recursion limit")
    # custom domains
    for dom in ("com.evil", "com.microsoft", "ai.onnx.ml"):
        op = {"com.evil": "Backdoor", "com.microsoft": "FusedMatMul", "ai.onnx.ml": "Normalizer"}[dom]
        m = unary(op, domain=dom, extra_opsets=[(dom, 1)], node_name=f"custom_{op}")
        w.add("unsupported_op", "error", m, locate=[f"custom_{op}", op, dom])
    m = unary("Foo", domain="", node_name="no_such_op")
    w.add("unsupported_op", "error", m, locate=["no_such_op", "Foo"])
    # ops hwgen does not lower (some may become supported one day: "any" then)
    simple = [("Neg", {}), ("ReduceMax", {"keepdims": 1}), ("Hardmax", {}), ("LogSoftmax", {}),
              ("Dropout", {}), ("CumSum", {}), ("Einsum", {}), ("MaxPool", {}), ("AveragePool", {}),
              ("BatchNormalization", {}), ("InstanceNormalization", {}), ("ArgMax", {}), ("TopK", {}),
              ("Where", {}), ("Cast", {}), ("Pad", {}), ("DepthToSpace", {}), ("LpNormalization", {}),
              ("Trilu", {}), ("Mod", {}), ("MatMulInteger", {}), ("QLinearMatMul", {}), ("NonZero", {}),
              ("Max", {}), ("GatherND", {}), ("ConvTranspose", {}), ("OneHot", {}), ("RandomNormalLike", {})]
    x4 = (1, 4, 8, 8)
    for op, _ in simple:
        name = f"my_{op.lower()}"
        if op == "Neg":
            m = unary(op, node_name=name)
        elif op == "ReduceMax":
            m = unary(op, y_shape=(1, 4, 1), extra_inputs=["axes"], inits=[const("axes", [2], np.int64)], keepdims=1, opset=18)
        elif op in ("Hardmax", "LogSoftmax"):
            m = unary(op, axis=-1)
        elif op == "Dropout":
            m = model([helper.make_node("Dropout", ["x", "ratio", "train"], ["y"], name=name, seed=1)],
                      [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("ratio", 0.5), const("train", True, np.bool_)])
        elif op == "CumSum":
            m = unary(op, extra_inputs=["ax"], inits=[const("ax", 2, np.int64)])
        elif op == "Einsum":
            m = model([helper.make_node("Einsum", ["x", "w"], ["y"], equation="bij,jk->bik", name=name)],
                      [vi("x", [1, 4, 8])], [vi("y", [1, 4, 3])], [const("w", r.standard_normal((8, 3)))])
        elif op in ("MaxPool", "AveragePool"):
            m = unary(op, x_shape=x4, y_shape=(1, 4, 4, 4), kernel_shape=[2, 2], strides=[2, 2])
        elif op == "BatchNormalization":
            m = unary(op, x_shape=x4, extra_inputs=["s", "b", "m", "v"],
                      inits=[const(k, np.ones(4)) for k in ("s", "b", "m", "v")])
        elif op == "InstanceNormalization":
            m = unary(op, x_shape=x4, extra_inputs=["s", "b"], inits=[const("s", np.ones(4)), const("b", np.zeros(4))])
        elif op == "ArgMax":
            m = unary(op, y_shape=(1, 4, 1), y_dtype=T.INT64, axis=2)
            m.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 1
        elif op == "TopK":
            m = model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1, name=name)],
                      [vi("x", [1, 4, 8])], [vi("v", [1, 4, 2]), vi("i", [1, 4, 2], T.INT64)], [const("k", [2], np.int64)])
        elif op == "Where":
            m = model([helper.make_node("Greater", ["x", "zero"], ["c"], name="gt"),
                       helper.make_node("Where", ["c", "x", "zero"], ["y"], name=name)],
                      [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("zero", 0.0)])
        elif op == "Cast":
            m = unary(op, y_dtype=T.INT32, y_shape=(1, 4, 8), to=T.INT32)
        elif op == "Pad":
            m = unary(op, y_shape=(1, 4, 10), extra_inputs=["pads"], inits=[const("pads", [0, 0, 1, 0, 0, 1], np.int64)])
        elif op == "DepthToSpace":
            m = unary(op, x_shape=x4, y_shape=(1, 1, 16, 16), blocksize=2)
        elif op == "LpNormalization":
            m = unary(op, axis=-1, p=2)
        elif op == "Trilu":
            m = unary(op, x_shape=(1, 8, 8))
        elif op == "Mod":
            m = unary(op, extra_inputs=["d"], inits=[const("d", 3.0)], fmod=1)
        elif op == "MatMulInteger":
            m = model([helper.make_node("MatMulInteger", ["x", "w"], ["y"], name=name)],
                      [vi("x", [1, 4, 8], T.INT8)], [vi("y", [1, 4, 3], T.INT32)],
                      [numpy_helper.from_array(r.integers(-5, 5, (8, 3)).astype(np.int8), "w")])
        elif op == "QLinearMatMul":
            ins = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
            m = model([helper.make_node("QLinearMatMul", ins, ["y"], name=name)], [vi("x", [1, 4, 8], T.INT8)],
                      [vi("y", [1, 4, 3], T.INT8)],
                      [const("xs", 0.1), numpy_helper.from_array(np.int8(0), "xz"),
                       numpy_helper.from_array(r.integers(-5, 5, (8, 3)).astype(np.int8), "w"), const("ws", 0.1),
                       numpy_helper.from_array(np.int8(0), "wz"), const("ys", 0.1), numpy_helper.from_array(np.int8(0), "yz")])
        elif op == "NonZero":
            m = unary(op, y_dtype=T.INT64)
        elif op == "Max":
            m = model([helper.make_node("Max", ["x", "x2"], ["y"], name=name)], [vi("x", [1, 4, 8]), vi("x2", [1, 4, 8])],
                      [vi("y", [1, 4, 8])])
        elif op == "GatherND":
            m = unary(op, y_shape=(1, 8), extra_inputs=["idx"], inits=[const("idx", [[0, 1]], np.int64)])
        elif op == "ConvTranspose":
            m = unary(op, x_shape=(1, 1, 4, 4), y_shape=(1, 2, 8, 8), extra_inputs=["W"], strides=[2, 2],
                      inits=[const("W", r.standard_normal((1, 2, 2, 2)))])
        elif op == "OneHot":
            m = model([helper.make_node("OneHot", ["x", "depth", "vals"], ["y"], name=name)],
                      [vi("x", [1, 4], T.INT64)], [vi("y", [1, 4, 5])], [const("depth", 5, np.int64), const("vals", [0.0, 1.0])])
        elif op == "RandomNormalLike":
            m = unary(op, seed=1.0)
        w.add("unsupported_op", "error" if op in ("NonZero", "Dropout", "RandomNormalLike", "MatMulInteger", "QLinearMatMul")
              else "any", m, locate=[name, op] + (["gt", "Greater"] if op == "Where" else []))
    # the MoE router ops outside a router
    m = model([helper.make_node("Softmax", ["x"], ["p"], axis=-1, name="sm"),
               helper.make_node("TopK", ["p", "k"], ["v", "i"], axis=-1, name="lonely_topk"),
               helper.make_node("MatMul", ["v", "w"], ["y"], name="mm")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 3])], [const("k", [2], np.int64), const("w", np.ones((2, 3)))])
    w.add("unsupported_op", "any", m, locate=["lonely_topk", "TopK"])


def _shapes(w: _Writer) -> None:
    dyn = unary("Relu", x_shape=(1, "tokens", 8), y_shape=(1, "tokens", 8), node_name="relu_dyn")
    w.add("dynamic_shape", "error", dyn, locate=["x", "tokens", "dynamic"])
    dyn = unary("Relu", x_shape=("N", "C", "H"), y_shape=("N", "C", "H"), node_name="relu_dyn")
    w.add("dynamic_shape", "error", dyn, locate=["x", "dynamic"])
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu_norank")], [vi("x", None)], [vi("y", None)])
    w.add("dynamic_shape", "error", m, locate=["x"])
    m = unary("Relu", x_shape=(1, None, 8), y_shape=(1, None, 8))
    w.add("dynamic_shape", "error", m, locate=["x"])
    # dynamic output shape from a data-dependent op
    m = model([helper.make_node("Shape", ["x"], ["s"], name="shape_x"),
               helper.make_node("ConstantOfShape", ["s"], ["z"], name="cos"),
               helper.make_node("Add", ["x", "z"], ["y"], name="add")],
              [vi("x", ["N", 4, 8])], [vi("y", ["N", 4, 8])])
    w.add("dynamic_shape", "any", m, note="symbolic batch folded through Shape/ConstantOfShape")
    # a symbolic batch only: valid (hwgen fixes it to 1)
    r = rng(4)
    m = model([helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
               helper.make_node("Transpose", ["h"], ["t"], perm=[0, 2, 1], name="tr"),
               helper.make_node("MatMul", ["t", "w2"], ["y"], name="mm2")],
              [vi("x", ["batch", 4, 8])], [vi("y", ["batch", 16, 6])],
              [const("w1", r.standard_normal((8, 16)) * 0.3), const("w2", r.standard_normal((4, 6)) * 0.3)])
    w.add("dynamic_shape", "ok", m, note="symbolic batch axis only")
    # zero-sized
    for shape in ((1, 0, 8), (0, 4, 8), (1, 4, 0)):
        m = unary("Relu", x_shape=shape, node_name="relu_zero")
        w.add("zero_shape", "error", m, locate=["x", "relu_zero"])
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm_zero_w")], [vi("x", [1, 4, 0])], [vi("y", [1, 4, 3])],
              [const("w", np.zeros((0, 3)))])
    w.add("zero_shape", "error", m, locate=["x", "mm_zero_w"])
    m = model([helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"], name="empty_slice")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 0])],
              [const("st", [5], np.int64), const("en", [5], np.int64), const("ax", [2], np.int64)])
    w.add("zero_shape", "error", m, locate=["empty_slice", "y"])
    m = model([helper.make_node("Concat", ["x", "x"], ["y"], axis=2, name="cat")], [vi("x", [1, 4, 8])], [vi("y", [1, 4, 16])])
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 0
    w.add("zero_shape", "error", m, locate=["x"])


def _huge(w: _Writer) -> None:
    big = 1 << 40
    for shape in ((1, big, 8), (1, 1 << 31, 1 << 31), (1 << 62, 2)):
        m = unary("Relu", x_shape=shape, node_name="relu_huge")
        w.add("huge_dim", "error", m, locate=["x", "relu_huge"])
    m = unary("Relu", node_name="relu_huge_out", y_shape=(1, 4, big))
    w.add("huge_dim", "error", m, locate=["relu_huge_out", "y", "Relu"])
    # ConstantOfShape with an absurd constant shape (folded at import time: must not allocate)
    for dims in ([1 << 20, 1 << 20], [1 << 40], [1 << 15, 1 << 15, 1 << 15]):
        m = model([helper.make_node("ConstantOfShape", ["shp"], ["z"], name="huge_cos",
                                    value=helper.make_tensor("v", T.FLOAT, [1], [1.0])),
                   helper.make_node("ReduceSum", ["z"], ["s"], keepdims=0, name="rs"),
                   helper.make_node("Add", ["x", "s"], ["y"], name="add")],
                  [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("shp", dims, np.int64)])
        w.add("huge_dim", "error", m, locate=["huge_cos", "z", "ConstantOfShape"])
    # ConstantOfShape whose shape is computed (Shape -> Mul by a huge factor)
    m = model([helper.make_node("Shape", ["x"], ["s"], name="shape"),
               helper.make_node("Mul", ["s", "k"], ["s2"], name="mul_shape"),
               helper.make_node("ConstantOfShape", ["s2"], ["z"], name="computed_cos"),
               helper.make_node("Add", ["x", "z"], ["y"], name="add")],
              [vi("x", [1, 4, 8])], [vu("y", 3)], [const("k", [1 << 20, 1 << 20, 1 << 20], np.int64)])
    w.add("huge_dim", "error", m, locate=["computed_cos", "z", "ConstantOfShape", "add"])
    # Expand / Tile / Range of constants to absurd sizes
    m = model([helper.make_node("Expand", ["one", "shp"], ["z"], name="huge_expand"),
               helper.make_node("ReduceSum", ["z"], ["s"], keepdims=0, name="rs"),
               helper.make_node("Add", ["x", "s"], ["y"], name="add")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("one", [1.0]), const("shp", [1 << 16, 1 << 16], np.int64)])
    w.add("huge_dim", "error", m, locate=["huge_expand", "z", "Expand"])
    m = model([helper.make_node("Tile", ["c", "reps"], ["z"], name="huge_tile"),
               helper.make_node("ReduceSum", ["z"], ["s"], keepdims=0, name="rs"),
               helper.make_node("Add", ["x", "s"], ["y"], name="add")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("c", np.ones((4, 4))), const("reps", [1 << 16, 1 << 16], np.int64)])
    w.add("huge_dim", "error", m, locate=["huge_tile", "z", "Tile"])
    m = model([helper.make_node("Range", ["a", "b", "d"], ["z"], name="huge_range"),
               helper.make_node("ReduceSum", ["z"], ["s"], keepdims=0, name="rs"),
               helper.make_node("Add", ["x", "s"], ["y"], name="add")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("a", 0.0), const("b", 1e15), const("d", 1.0)])
    w.add("huge_dim", "error", m, locate=["huge_range", "z", "Range"])
    m = model([helper.make_node("MatMul", ["u", "v"], ["z"], name="huge_outer"),
               helper.make_node("ReduceSum", ["z"], ["s"], keepdims=0, name="rs"),
               helper.make_node("Add", ["x", "s"], ["y"], name="add")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("u", np.ones((1 << 16, 1))), const("v", np.ones((1, 1 << 16)))])
    w.add("huge_dim", "error", m, locate=["huge_outer", "z", "MatMul"])
    m = model([helper.make_node("Add", ["u", "v"], ["z"], name="huge_bcast"),
               helper.make_node("ReduceSum", ["z"], ["s"], keepdims=0, name="rs"),
               helper.make_node("Add", ["x", "s"], ["y"], name="add")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("u", np.ones((1 << 16, 1))), const("v", np.ones((1, 1 << 16)))])
    w.add("huge_dim", "error", m, locate=["huge_bcast", "z", "Add"])
    # Reshape of a runtime tensor to an absurd target
    for shp in ([1, 1 << 40, 1], [1 << 31, 1 << 31, -1], [0, -1, 1 << 40]):
        m = model([helper.make_node("Reshape", ["x", "shp"], ["y"], name="huge_reshape")],
                  [vi("x", [1, 4, 8])], [vu("y", len(shp))], [const("shp", shp, np.int64)])
        w.add("huge_dim", "error", m, locate=["huge_reshape", "Reshape", "y"])
    # Expand of the runtime input (shape known statically, must be refused before simulating)
    m = model([helper.make_node("Expand", ["x", "shp"], ["y"], name="huge_runtime_expand")],
              [vi("x", [1, 4, 8])], [vu("y", 3)], [const("shp", [1 << 20, 4, 8], np.int64)])
    w.add("huge_dim", "error", m, locate=["huge_runtime_expand", "Expand", "y"])
    # an initializer whose declared dims are absurd but whose data is tiny
    t = onnx.TensorProto()
    t.name, t.data_type = "w", T.FLOAT
    t.dims.extend([1 << 30, 1 << 30])
    t.raw_data = b"\x00" * 16
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [vi("x", [1, 4, 1 << 30])], [vi("y", [1, 4, 1 << 30])], [t])
    w.add("huge_dim", "error", m, locate=["w", "x"])
    t = onnx.TensorProto()
    t.name, t.data_type = "w", T.FLOAT
    t.dims.extend([8, 16])
    t.raw_data = b"\x00" * 20
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm_short_w")], [vi("x", [1, 4, 8])], [vi("y", [1, 4, 16])], [t])
    w.add("huge_dim", "error", m, locate=["w", "mm_short_w"], note="raw_data shorter than the declared dims")


def _nan(w: _Writer) -> None:
    r = rng(5)
    for bad in (np.nan, np.inf, -np.inf):
        m = toy_float({"graph": "nanw"})
        arr = numpy_helper.to_array(m.graph.initializer[0]).copy()
        arr[3, 5] = bad
        m.graph.initializer[0].CopyFrom(const("w1", arr))
        w.add("nan_inf", "error", m, locate=["w1", "mm"], note=f"{bad} in a float weight")
    m = toy_float()
    arr = numpy_helper.to_array(m.graph.initializer[2]).copy()
    arr[:] = 3e38
    m.graph.initializer[2].CopyFrom(const("w2", arr))
    w.add("nan_inf", "any", m, note="weights near float32 max")
    for bad in (np.nan, np.inf):
        w.add("nan_inf", "error", toy_qdq(scale=bad), locate=["q_x", "dq_x", "QuantizeLinear", "DequantizeLinear"])
        w.add("nan_inf", "error", toy_qdq(w_scale=bad), locate=["dq_w", "DequantizeLinear"])
        w.add("nan_inf", "error", toy_qonnx(scale=bad), locate=["quant_x", "Quant"])
    # a NaN float weight quantised by a QuantizeLinear
    m = toy_qdq()
    nodes = list(m.graph.node)
    m.graph.node.remove(nodes[2])
    m.graph.node.insert(2, helper.make_node("QuantizeLinear", ["Wf", "sw", "zw"], ["Wq"], name="q_w"))
    m.graph.node.insert(3, helper.make_node("DequantizeLinear", ["Wq", "sw", "zw"], ["wd"], name="dq_w"))
    wf = r.standard_normal((8, 16)).astype(np.float32)
    wf[0, 0] = np.nan
    m.graph.initializer.append(const("Wf", wf))
    w.add("nan_inf", "error", m, locate=["q_w", "Wf", "QuantizeLinear"])
    m = model([helper.make_node("Mul", ["x", "k"], ["h"], name="mul_inf"),
               helper.make_node("MatMul", ["h", "w"], ["y"], name="mm")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 3])], [const("k", np.inf), const("w", r.standard_normal((8, 3)))])
    w.add("nan_inf", "error", m, locate=["mul_inf", "k"])
    m = model([helper.make_node("Constant", [], ["c"], name="nan_const", value=numpy_helper.from_array(np.float32([np.nan] * 8), "v")),
               helper.make_node("Add", ["x", "c"], ["y"], name="add_nan")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])])
    w.add("nan_inf", "error", m, locate=["add_nan", "c", "nan_const"])
    m = model([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=float("nan"), name="ln_nan_eps")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])], [const("g", np.ones(8)), const("b", np.zeros(8))])
    w.add("nan_inf", "any", m, locate=["ln_nan_eps", "LayerNormalization"])


def _scales(w: _Writer) -> None:
    for s in (0.0, -0.05):
        w.add("bad_scale", "error", toy_qdq(scale=s), locate=["q_x", "dq_x"])
        w.add("bad_scale", "error", toy_qdq(w_scale=s), locate=["dq_w"])
        w.add("bad_scale", "error", toy_qonnx(scale=s), locate=["quant_x"])
    for s in (1e-45, 1e-30, 1e30, 3e38):
        w.add("bad_scale", "any", toy_qdq(scale=s), locate=["q_x", "dq_x", "mm"], note=f"activation scale {s}")
        w.add("bad_scale", "any", toy_qdq(w_scale=s), locate=["dq_w", "mm"], note=f"weight scale {s}")
    w.add("bad_scale", "error", toy_qdq(act_scale_const=False), locate=["q_x", "sx"], note="scale is a graph input")
    m = toy_qdq(scale=np.full((2, 2), 0.05, np.float32))
    w.add("bad_scale", "error", m, locate=["q_x", "dq_x"], note="2-D scale")
    m = toy_qdq(scale=np.full(7, 0.05, np.float32), zp=np.zeros(7, np.int8), axis=2)
    w.add("bad_scale", "error", m, locate=["q_x", "dq_x"], note="per-channel scale of the wrong length")
    m = toy_qdq(scale=np.full(8, 0.05, np.float32), zp=np.zeros(8, np.int8), axis=7)
    w.add("bad_scale", "error", m, locate=["q_x", "dq_x"], note="axis out of range")
    m = toy_qdq(w_scale=np.full(16, 0.02, np.float32), w_zp=np.zeros(5, np.int8))
    w.add("bad_scale", "error", m, locate=["dq_w"], note="zero point and scale of different lengths")
    for bits in (0.0, 1.0, 64.0, 2.5, float("nan"), -8.0):
        w.add("bad_scale", "error", toy_qonnx(bits=bits), locate=["quant_x"], note=f"bit width {bits}")
    w.add("bad_scale", "error", toy_qonnx(rounding_mode="BANANA"), locate=["quant_x"])
    m = toy_qonnx(scale=np.full(8, 0.05, np.float32))
    w.add("bad_scale", "any", m, locate=["quant_x", "mm"], note="per-channel activation Quant")


def _zero_points(w: _Writer) -> None:
    for dt in (np.float32, np.int64, np.int32, np.float64):
        m = toy_qdq(zp=np.zeros((), dt))
        w.add("bad_zero_point", "error", m, locate=["q_x", "dq_x", "zx", "QuantizeLinear"], note=f"zero point {np.dtype(dt)}")
    for dt in (np.float32, np.int64):
        m = toy_qdq(w_zp=np.zeros((), dt))
        w.add("bad_zero_point", "error", m, locate=["dq_w", "zw"], note=f"weight zero point {np.dtype(dt)}")
    w.add("bad_zero_point", "error", toy_qonnx(zp=0.5), locate=["quant_x"])
    w.add("bad_zero_point", "any", toy_qonnx(zp=1e12), locate=["quant_x"])
    w.add("bad_zero_point", "any", toy_qonnx(zp=float("nan")), locate=["quant_x"])
    m = toy_qdq(zp=np.int8(127), w_zp=np.int8(-128))
    w.add("bad_zero_point", "any", m, note="extreme (valid) zero points")
    m = toy_qdq(w_dtype=np.int32, w_zp=np.zeros((), np.int32))
    w.add("bad_zero_point", "any", m, locate=["dq_w"], note="int32 weights")


def _cycles(w: _Writer) -> None:
    m = model([helper.make_node("Relu", ["x", ], ["a"], name="first"),
               helper.make_node("Add", ["a", "c"], ["b"], name="needs_later"),
               helper.make_node("Relu", ["b"], ["c"], name="later")],
              [vi("x", [1, 4, 8])], [vi("c", [1, 4, 8])])
    w.add("cycle", "error", m, locate=["needs_later", "later", "c"])
    m = model([helper.make_node("Add", ["x", "y"], ["y"], name="self_loop")], [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])])
    w.add("cycle", "error", m, locate=["self_loop", "y"])
    m = model([helper.make_node("Relu", ["b"], ["a"], name="ping"), helper.make_node("Relu", ["a"], ["b"], name="pong"),
               helper.make_node("Add", ["x", "b"], ["y"], name="add")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])])
    w.add("cycle", "error", m, locate=["ping", "pong", "a", "b"])
    # out of order but acyclic: ONNX requires topological order
    m = toy_float()
    nodes = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(nodes[::-1])
    w.add("cycle", "error", m, locate=["gemm", "rs", "tr", "mm", "r", "t", "h"], note="nodes in reverse order")


def _dangling(w: _Writer) -> None:
    m = model([helper.make_node("Add", ["x", "ghost"], ["y"], name="reads_ghost")], [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])])
    w.add("dangling", "error", m, locate=["reads_ghost", "ghost"])
    m = model([helper.make_node("Relu", ["x"], ["a"], name="relu")], [vi("x", [1, 4, 8])], [vi("nowhere", [1, 4, 8])])
    w.add("dangling", "error", m, locate=["nowhere"])
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [1, 4, 8])], [])
    w.add("dangling", "error", m, note="no graph output")
    m = model([helper.make_node("Add", ["c1", "c2"], ["y"], name="const_only")], [], [vi("y", [2])],
              [const("c1", [1.0, 2.0]), const("c2", [3.0, 4.0])])
    w.add("dangling", "error", m, locate=["const_only", "input"], note="no runtime input")
    m = model([], [vi("x", [1, 4, 8])], [vi("x", [1, 4, 8])])
    w.add("dangling", "error", m, note="no nodes")
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu"), helper.make_node("Relu", ["unused_in"], ["z"], name="dead")],
              [vi("x", [1, 4, 8]), vi("unused_in", [1, 4, 8])], [vi("y", [1, 4, 8])])
    w.add("dangling", "any", m, note="a second input feeding only dead nodes")
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm_empty_name_in"), helper.make_node("Relu", [""], ["z"], name="empty_in")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 3])], [const("w", np.ones((8, 3)))])
    w.add("dangling", "error", m, locate=["empty_in", "Relu"])


def _hostile_names(w: _Writer) -> None:
    # valid models whose node, tensor and graph names are hostile: every command must work
    plan = [
        {"mm": H_DOTS, "rs": H_CPP, "h": H_DOTS + "_h", "r": H_CPP + "_r"},
        {"tr": H_TCL, "gemm": H_SH, "t": H_TCL + "_t", "y": H_SH + "_y", "graph": H_TCL},
        {"x": H_COMMENT, "w1": H_ABS, "mm": H_COMMENT + "_mm", "h": H_ABS + "_h"},
        {"mm": H_NL, "h": H_NL + "_h", "y": H_UNI, "gemm": H_UNI + "_g", "graph": H_UNI},
        {"x": H_ANSI, "rs": H_RICH, "r": H_RICH + "_r", "w2": H_ANSI + "_w2", "graph": H_RICH},
        {"mm": "int", "tr": "return", "rs": "namespace", "gemm": "hwgen_cfg", "h": "in0", "t": "out0", "r": "wmem0",
         "x": "main", "y": "top", "w1": "hwgen", "w2": "std"},
        {"h": "a.b", "t": "a/b", "r": "a_b", "mm": "a-b", "tr": "a b", "rs": "a__b", "gemm": "a:b"},
        {"h": "x" * 5000, "t": "x" * 4999 + "y", "r": "x" * 4999 + "z", "mm": "n" * 10000},
    ]
    for i, names in enumerate(plan):
        w.add("hostile_valid", "ok", toy_float(names, seed=10 + i), note=f"hostile names {sorted(names)}")
    # hostile QDQ names
    w.add("hostile_valid", "any", toy_qdq(names={"q": H_CPP, "dq": H_TCL, "mm": H_DOTS, "wdq": H_SH}),
          note="QDQ graph with hostile node names")
    # hostile *file* names (the folder is plain; the file name is not)
    for fname in (f'evil"; system("id"); $(id) [exec rm -rf] *∕ ??∕.onnx', "..evil..onnx", "line\nbreak.onnx",
                  "模型 ünï.onnx", "back\\slash.onnx", "-rf.onnx", "[bold]markup[red].onnx"):
        w.add("hostile_valid", "ok", toy_float(seed=20), fname=fname, note="hostile file name")
    # invalid models with hostile names: the one error line must stay one line and quote them safely
    for i, bad in enumerate([H_NL, H_ANSI, H_CPP, H_RICH, "\x00nul"]):
        m = unary("Hardmax", node_name=bad, axis=-1)
        w.add("hostile_invalid", "error", m, locate=["Hardmax"], note=f"unsupported op named {bad!r}")
    m = unary("Relu", x_shape=(1, "dyn\nnewline", 8), y_shape=(1, "dyn\nnewline", 8))
    w.add("hostile_invalid", "error", m, locate=["x"])


def _duplicates(w: _Writer) -> None:
    m = toy_float({"mm": "same", "tr": "same", "rs": "same", "gemm": "same"})
    w.add("duplicate_name", "any", m, note="four nodes with one name (hwgen copes; onnxruntime refuses it)")
    m = toy_float({"mm": "", "tr": "", "rs": "", "gemm": ""})
    w.add("duplicate_name", "ok", m, note="nodes without names")
    m = toy_float({"h": "mm", "t": "tr", "r": "rs", "y": "gemm"})
    w.add("duplicate_name", "ok", m, note="tensor names equal to node names")
    m = model([helper.make_node("Relu", ["x"], ["y"], name="r1"), helper.make_node("Neg", ["x"], ["y"], name="r2_dup_out")],
              [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])])
    w.add("duplicate_name", "error", m, locate=["r2_dup_out", "r1", "y"])
    m = toy_float()
    m.graph.initializer.append(const("w1", np.zeros((8, 16))))
    w.add("duplicate_name", "error", m, locate=["w1"], note="two initializers named w1")
    m = toy_float()
    m.graph.input.append(vi("x", [1, 4, 8]))
    w.add("duplicate_name", "error", m, locate=["x"], note="graph input listed twice")
    m = toy_float()
    m.graph.input.append(vi("w1", [8, 16]))
    w.add("duplicate_name", "any", m, locate=["w1"], note="an initializer also listed as graph input")


def _external(w: _Writer) -> None:
    secret = w.root / "outside_secret.bin"
    secret.write_bytes(np.arange(128, dtype=np.float32).tobytes())

    def ext_model(location: str, offset: int | None = None, length: int | None = None, in_subgraph=False):
        m = toy_float(seed=30)
        t = m.graph.initializer[0]
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            if v is not None:
                e = t.external_data.add()
                e.key, e.value = k, str(v)
        if in_subgraph:
            m2 = toy_float(seed=31)
            then_g = helper.make_graph([helper.make_node("Identity", ["wsub"], ["o"])], "then", [], [vi("o", [8, 16])], [t])
            iff = helper.make_node("If", ["cond"], ["w1"], then_branch=then_g, else_branch=then_g, name="ext_if")
            m2.graph.initializer.pop(0)
            m2.graph.initializer.append(const("cond", True, np.bool_))
            t.name = "wsub"
            m2.graph.node.insert(0, iff)
            return m2
        return m

    w.add("external_data", "error", ext_model("/etc/passwd"), locate=["w1"], note="absolute path")
    w.add("external_data", "error", ext_model(str(secret)), locate=["w1"], note="absolute path to a real file")
    w.add("external_data", "error", ext_model("../outside_secret.bin"), locate=["w1"], note="../ escape")
    w.add("external_data", "error", ext_model("sub/../../outside_secret.bin"), locate=["w1"], note="nested ../ escape",
          setup=lambda d: (d / "sub").mkdir())
    w.add("external_data", "error", ext_model("link.bin"), locate=["w1"], note="symlink out of the folder",
          setup=lambda d: os.symlink("../outside_secret.bin", d / "link.bin"))
    w.add("external_data", "error", ext_model("dirlink/outside_secret.bin"), locate=["w1"], note="symlinked folder",
          setup=lambda d: os.symlink("..", d / "dirlink"))
    w.add("external_data", "error", ext_model("missing.bin"), locate=["w1"], note="missing file")
    w.add("external_data", "error", ext_model(""), locate=["w1"], note="empty location")
    w.add("external_data", "error", ext_model("adir"), locate=["w1"], note="a directory",
          setup=lambda d: (d / "adir").mkdir())
    w.add("external_data", "error", ext_model("/proc/self/mem"), locate=["w1"], note="a special file")

    def write_weights(d: Path, n=128):
        (d / "weights.bin").write_bytes(np.arange(n, dtype=np.float32).tobytes() * 2)

    w.add("external_data", "ok", ext_model("weights.bin", 0, 512), note="valid external data inside the folder",
          setup=write_weights)
    w.add("external_data", "error", ext_model("weights.bin", 1 << 40, 512), locate=["w1"], note="offset past the end",
          setup=write_weights)
    w.add("external_data", "error", ext_model("weights.bin", 0, 1 << 40), locate=["w1"], note="length past the end",
          setup=write_weights)
    w.add("external_data", "error", ext_model("weights.bin", -5, 512), locate=["w1"], note="negative offset",
          setup=write_weights)
    w.add("external_data", "error", ext_model("../outside_secret.bin", in_subgraph=True), locate=["wsub", "ext_if", "w1"],
          note="external data of a tensor inside an If branch")


def _structure(w: _Writer) -> None:
    m = toy_float()
    m.opset_import[0].version = 99
    w.add("structure", "error", m, note="opset 99")
    m = toy_float()
    del m.opset_import[:]
    w.add("structure", "error", m, note="no opset import")
    m = toy_float()
    m.ir_version = 99
    w.add("structure", "any", m, note="IR version 99")
    m = toy_float()
    m.ir_version = 2
    w.add("structure", "error", m, note="IR version 2")
    m = unary("Relu", y_dtype=T.STRING, y_shape=(1, 4, 8))
    m.graph.input[0].type.tensor_type.elem_type = T.STRING
    w.add("structure", "error", m, locate=["x", "my_relu"], note="string tensors")
    m = toy_float()
    m.graph.input[0].type.tensor_type.elem_type = T.INT64
    w.add("structure", "error", m, locate=["x", "mm"], note="int64 input into MatMul with float weights")
    m = model([helper.make_node("Transpose", ["x"], ["y"], perm=[0, 5, 1], name="bad_perm")], [vi("x", [1, 4, 8])], [vi("y", [1, 8, 4])])
    w.add("structure", "error", m, locate=["bad_perm", "Transpose"])
    m = model([helper.make_node("Softmax", ["x"], ["y"], axis=99, name="bad_axis")], [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])])
    w.add("structure", "error", m, locate=["bad_axis", "Softmax"])
    m = model([helper.make_node("Gather", ["x", "idx"], ["y"], axis=2, name="oob_gather")], [vi("x", [1, 4, 8])], [vi("y", [1, 4, 2])],
              [const("idx", [3, 1000], np.int64)])
    w.add("structure", "any", m, locate=["oob_gather", "Gather"], note="out-of-range constant indices")
    table = rng(7).normal(0, 1, (6, 4, 2)).astype(np.float32)
    m = model([helper.make_node("Gather", ["table", "ids"], ["y"], axis=0, name="emb_3d")], [vi("ids", [1, 5], T.INT64)],
              [vi("y", [1, 5, 4, 2])], [const("table", table)])
    w.add("structure", "error", m, locate=["emb_3d", "Gather"], note="token ids into a 3-D table")
    m = model([helper.make_node("Gather", ["table", "ids"], ["y"], axis=1, name="emb_axis1")], [vi("ids", [1, 5], T.INT64)],
              [vi("y", [4, 1, 5])], [const("table", table[:, :, 0].T.copy())])
    w.add("structure", "error", m, locate=["emb_axis1", "Gather"], note="token ids along the table's columns")
    m = model([helper.make_node("Gather", ["table", "ids"], ["e"], axis=0, name="emb_shared"),
               helper.make_node("Cast", ["ids"], ["f"], to=T.FLOAT, name="ids_as_data"),
               helper.make_node("Unsqueeze", ["f", "ax"], ["fu"], name="unsq"),
               helper.make_node("Add", ["e", "fu"], ["y"], name="add")],
              [vi("ids", [1, 5], T.INT64)], [vi("y", [1, 5, 4])], [const("table", table[:, :, 0]), const("ax", [2], np.int64)])
    w.add("structure", "error", m, locate=["emb_shared", "Gather"], note="token ids read as data too")
    m = model([helper.make_node("Gather", ["x", "ids"], ["y"], axis=0, name="emb_of_input")],
              [vi("x", [6, 4]), vi("ids", [1, 5], T.INT64)], [vi("y", [1, 5, 4])])
    w.add("structure", "error", m, locate=["emb_of_input", "Gather"], note="a lookup into a table the host sends")
    m = model([helper.make_node("Split", ["x", "sp"], ["a", "b"], axis=2, name="bad_split"),
               helper.make_node("Add", ["a", "b"], ["y"], name="add")],
              [vi("x", [1, 4, 8])], [vu("y", 3)], [const("sp", [10, -2], np.int64)])
    w.add("structure", "error", m, locate=["bad_split", "Split", "add"])
    m = model([helper.make_node("Slice", ["x", "st", "en", "ax", "stp"], ["y"], name="zero_step")], [vi("x", [1, 4, 8])], [vu("y", 3)],
              [const("st", [0], np.int64), const("en", [8], np.int64), const("ax", [2], np.int64), const("stp", [0], np.int64)])
    w.add("structure", "error", m, locate=["zero_step", "Slice"])
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", [1, 4, 8])], [vi("y", [1, 4, 8])])
    m.graph.input[0].type.ClearField("tensor_type")
    m.graph.input[0].type.sequence_type.elem_type.tensor_type.elem_type = T.FLOAT
    w.add("structure", "error", m, locate=["x", "relu"], note="a sequence input")
    sp = helper.make_sparse_tensor(const("sv", [1.0, 2.0]), const("si", [0, 5], np.int64), [8, 16])
    sp.values.name = "w1"
    m = toy_float()
    m.graph.initializer.pop(0)
    m.graph.sparse_initializer.append(sp)
    w.add("structure", "any", m, locate=["w1", "mm"], note="a sparse initializer")
    # a long chain (performance: import, passes and the simulator must stay linear-ish)
    nodes = [helper.make_node("Relu", [f"v{i}" if i else "x"], [f"v{i + 1}"], name=f"r{i}") for i in range(2000)]
    nodes.append(helper.make_node("MatMul", ["v2000", "w"], ["y"], name="mm"))
    m = model(nodes, [vi("x", [1, 4, 8])], [vi("y", [1, 4, 3])], [const("w", rng(9).standard_normal((8, 3)))])
    w.add("structure", "any", m, note="2000 chained Relu")
    m = toy_float()
    m.graph.doc_string = "A" * (1 << 20)
    m.metadata_props.add(key="evil\n", value=H_CPP * 1000)
    w.add("structure", "ok", m, note="huge doc string and hostile metadata")
    m = toy_float()
    m.graph.node[0].attribute.append(helper.make_attribute("bogus_attr", 1))
    w.add("structure", "error", m, locate=["mm", "MatMul", "bogus_attr"], note="an attribute MatMul does not have")
    fn = helper.make_function("com.local", "MyFn", ["a"], ["b"], [helper.make_node("Relu", ["a"], ["b"])],
                              [helper.make_opsetid("", OPSET)])
    m = unary("MyFn", domain="com.local", extra_opsets=[("com.local", 1)], node_name="local_fn_call")
    m.functions.append(fn)
    w.add("structure", "any", m, locate=["local_fn_call", "MyFn", "com.local"], note="a model-local function")


def make_corpus(directory: str | os.PathLike) -> list[Case]:
    """Write the corpus into `directory` (created if needed) and return [(path, kind, expect)]."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    w = _Writer(root)
    for part in (_truncated, _corrupted, _unsupported, _shapes, _huge, _nan, _scales, _zero_points, _cycles,
                 _dangling, _hostile_names, _duplicates, _external, _structure):
        part(w)
    (root / "corpus.json").write_text(json.dumps(w.meta, indent=1, sort_keys=True, ensure_ascii=True) + "\n")
    return w.cases


def load_meta(directory: str | os.PathLike) -> dict:
    return json.loads((Path(directory) / "corpus.json").read_text())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py DIR")
    cases = make_corpus(sys.argv[1])
    counts: dict[str, int] = {}
    for c in cases:
        counts[f"{c.kind} ({c.expect})"] = counts.get(f"{c.kind} ({c.expect})", 0) + 1
    for k, v in sorted(counts.items()):
        print(f"{v:4d}  {k}")
    print(f"{len(cases):4d}  total in {sys.argv[1]}")
