"""Frontend and passes: every bundled flavour lowers; patterns are recognised however they are spelled."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwgen.compare import compare
from hwgen.errors import HwgenError, UnsupportedError
from hwgen.frontend import load_graph
from hwgen.ir.graph import walk
from hwgen.precision import Precision

from conftest import ONNX

ALL = sorted(p.stem for p in ONNX.glob("*vit_digits.*.onnx"))


@pytest.mark.parametrize("name", ALL)
def test_bundled_models_lower(name):
    g = load_graph(ONNX / f"{name}.onnx")
    g.lint(require_types=True)
    ops = {n.op for _, n in walk(g)}
    assert {"linear", "softmax", "layernorm", "lut", "matmul", "patch_embed"} <= ops, ops
    assert ("moe" in ops) == name.startswith("moe"), ops
    assert all(not n.op.startswith("onnx.") for _, n in walk(g))
    if name.startswith("moe"):
        moe = next(n for n in g.nodes if n.op == "moe")
        assert moe.attrs["k"] == 2 and moe.attrs["experts"] == 4
    assert str(g).count("\n") > len(g.nodes)


def test_float_model_with_precision_overrides(tmp_path, digits_test):
    x, y = digits_test
    cfg = tmp_path / "p.yaml"
    cfg.write_text("default: ap_fixed<18,8,AP_RND,AP_SAT>\nop:\n  softmax: ap_ufixed<16,1,AP_RND,AP_SAT>\n")
    path = ONNX / "vit_digits.float.dynamo.onnx"
    g = load_graph(path, Precision.load(cfg))
    soft = [sg.tensors[n.outputs[0]].qtype for sg, n in walk(g) if n.op == "softmax"]
    assert soft and all(t.kind == "fixed" and not t.signed and t.bits == 16 for t in soft)
    r = compare(g, path, x[:200], y[:200])
    assert r.argmax_agreement >= 0.98 and abs(r.accuracy_sim - r.accuracy_ref) <= 0.02


def test_float_model_default_precision(digits_test):
    x, y = digits_test
    path = ONNX / "vit_digits.float.legacy.onnx"
    g = load_graph(path)
    assert all(t.qtype.kind in ("fixed", "float") for t in g.tensors.values())
    r = compare(g, path, x, y)
    assert r.argmax_agreement >= 0.98


def test_qonnx_matches_its_qdq_twin(digits_test):
    x, y = digits_test
    path = ONNX / "vit_digits.qonnx.onnx"
    g = load_graph(path)
    assert g.meta["format"] == "qonnx"
    r = compare(g, path, x, y, layers=True)
    assert r.argmax_agreement >= 0.99 and abs(r.accuracy_sim - r.accuracy_ref) <= 0.01
    for layer in r.layers:
        if layer.op == "linear":
            assert layer.within_1lsb >= 0.999, layer


# ---- synthetic graphs: patterns as other exporters write them ---------------------------------------

def _model(nodes, inputs, outputs, inits, opset=17):
    m = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    return m


def _c(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _run_float(model, x):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _check_close(model, shape, op, tol):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16,) + tuple(shape[1:]), dtype=np.float32)
    g = load_graph(model)
    assert op in {n.op for n in g.nodes}, str(g)
    from hwgen import sim

    r = sim.run(g, x)
    got = sim.dequantize_outputs(g, r.outputs)[g.outputs[0]]
    want = np.concatenate([_run_float(model, x[i:i + 1]) for i in range(len(x))])
    assert np.max(np.abs(got.reshape(want.shape) - want)) < tol
    return g


def test_decomposed_layernorm_is_fused():
    d = 16
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1]),
        helper.make_node("Sub", ["x", "m"], ["dx"]),
        helper.make_node("Pow", ["dx", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["sd"]),
        helper.make_node("Div", ["dx", "sd"], ["n"]),
        helper.make_node("Mul", ["n", "gamma"], ["g"]),
        helper.make_node("Add", ["g", "beta"], ["y"]),
    ]
    rng = np.random.default_rng(1)
    inits = [_c("two", 2.0), _c("eps", 1e-5), _c("gamma", rng.uniform(0.5, 1.5, d)), _c("beta", rng.uniform(-0.5, 0.5, d))]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, d])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, d])], inits)
    g = _check_close(model, (1, 4, d), "layernorm", tol=0.02)
    assert [n.op for n in g.nodes] == ["quantize", "layernorm"]


@pytest.mark.parametrize("form", ["erf", "tanh", "gelu_op"])
def test_gelu_forms_become_one_table(form):
    d = 8
    if form == "erf":
        nodes = [helper.make_node("Div", ["x", "sqrt2"], ["a"]), helper.make_node("Erf", ["a"], ["b"]),
                 helper.make_node("Add", ["b", "one"], ["c"]), helper.make_node("Mul", ["x", "c"], ["e"]),
                 helper.make_node("Mul", ["e", "half"], ["y"])]
        inits = [_c("sqrt2", np.sqrt(2.0)), _c("one", 1.0), _c("half", 0.5)]
        opset = 17
    elif form == "tanh":
        nodes = [helper.make_node("Pow", ["x", "three"], ["p"]), helper.make_node("Mul", ["p", "k"], ["q"]),
                 helper.make_node("Add", ["x", "q"], ["r"]), helper.make_node("Mul", ["r", "s"], ["t"]),
                 helper.make_node("Tanh", ["t"], ["u"]), helper.make_node("Add", ["u", "one"], ["v"]),
                 helper.make_node("Mul", ["x", "v"], ["w"]), helper.make_node("Mul", ["w", "half"], ["y"])]
        inits = [_c("three", 3.0), _c("k", 0.044715), _c("s", np.sqrt(2 / np.pi)), _c("one", 1.0), _c("half", 0.5)]
        opset = 17
    else:
        nodes, inits, opset = [helper.make_node("Gelu", ["x"], ["y"])], [], 20
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, d])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, d])], inits, opset)
    g = _check_close(model, (1, 4, d), "lut", tol=0.01)
    lut = [n for n in g.nodes if n.op == "lut"]
    assert len(lut) == 1 and lut[0].attrs["function"] == "gelu"


def test_unsupported_op_names_node_and_op():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    model = _model([helper.make_node("CumSum", ["x", "ax"], ["y"], name="running")], [x], [y],
                   [numpy_helper.from_array(np.array(1, dtype=np.int64), "ax")])
    with pytest.raises(UnsupportedError) as err:
        load_graph(model)
    assert "running" in str(err.value) and "CumSum" in str(err.value)


def test_lint_catches_order_and_duplicates():
    g = load_graph(ONNX / "vit_digits.qdq.dynamo.onnx")
    g.nodes[1], g.nodes[2] = g.nodes[2], g.nodes[1]
    with pytest.raises(AssertionError):
        g.lint()
    g.toposort()
    g.lint()
    g.nodes[3].name = g.nodes[4].name
    with pytest.raises(AssertionError):
        g.lint()
