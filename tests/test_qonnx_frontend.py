"""QONNX graphs through the frontend, on tiny graphs written with onnx.helper: what a QONNX graph leaves in
float between quantised ops gets an exact type (MatMul + bias Add [+ ReLU] + Quant fuse into one `linear`),
narrow-range Quant (Brevitas' default for weights; on activations, inside lookup-table chains, and in the
onnxruntime reference `hwgen simulate` compares with), a ReLU on a wide accumulator, the model's output names,
and the project manifest's precision (csim reloads the model with the Precision it was built with). The
simulator is checked against qonnx's own executor, exactly, with the DEFAULT precision."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwgen import sim
from hwgen.codegen.csim import load_project, run_csim
from hwgen.codegen.project import MANIFEST, write_project
from hwgen.design import Design
from hwgen.errors import UnsupportedError
from hwgen.frontend import load_graph
from hwgen.precision import Precision

QONNX_DOMAIN = "qonnx.custom_op.general"
needs_qonnx = pytest.mark.skipif(importlib.util.find_spec("qonnx") is None, reason="qonnx is not installed")
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


class Builder:
    """A QONNX graph, node by node, with the shape of every tensor written down (what qonnx's cleanup adds:
    ONNX shape inference knows no Quant). ir_version 10: onnxruntime, under qonnx's executor, refuses newer."""

    def __init__(self, inputs: dict):
        self.nodes, self.inits, self.inputs = [], [], dict(inputs)
        self.shapes = {k: tuple(v) for k, v in inputs.items()}

    def const(self, name: str, value) -> str:
        value = np.asarray(value, np.float32)
        self.inits.append(numpy_helper.from_array(value, name))
        self.shapes[name] = value.shape
        return name

    def quant(self, src: str, dst: str, scale: float, bits: int, signed: bool = True, narrow: bool = False) -> str:
        params = [self.const(f"{dst}_{p}", v) for p, v in (("scale", scale), ("zeropt", 0.0), ("bits", bits))]
        self.nodes.append(helper.make_node("Quant", [src, *params], [dst], name=f"quant_{dst}", domain=QONNX_DOMAIN,
                                           signed=int(signed), narrow=int(narrow), rounding_mode="ROUND"))
        self.shapes[dst] = self.shapes[src]
        return dst

    def op(self, op_type: str, inputs: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        shapes = [np.zeros(self.shapes[i]) for i in inputs]
        if op_type == "Gemm":
            shapes[1] = shapes[1].T if attrs.get("transB") else shapes[1]
        self.shapes[out] = (shapes[0] @ shapes[1]).shape if op_type in ("MatMul", "Gemm") else np.broadcast_shapes(
            *[s.shape for s in shapes])
        return out

    def model(self, outputs: dict) -> onnx.ModelProto:
        inputs = self.inputs
        known = set(inputs) | set(outputs) | {i.name for i in self.inits}
        info = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v)) for k, v in self.shapes.items()
                if k not in known]
        graph = helper.make_graph(
            self.nodes, "qonnx_test", [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in inputs.items()],
            [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in outputs.items()], self.inits,
            value_info=info)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
        m.ir_version = 10
        return m


def _qonnx(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    """qonnx's executor, one image at a time: every graph output, stacked."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    wrapper = ModelWrapper(model)
    name = model.graph.input[0].name
    outs = [execute_onnx(wrapper, {name: xi[None]}) for xi in x]
    return {o.name: np.concatenate([r[o.name] for r in outs]) for o in model.graph.output}


def _sim(graph, x: np.ndarray) -> dict[str, np.ndarray]:
    return sim.dequantize_outputs(graph, sim.run(graph, x).outputs)


def _assert_exact(graph, model, x):
    """The simulator's real outputs equal qonnx's, element for element (both exact multiples of the grid)."""
    ref, got = _qonnx(model, x), _sim(graph, x)
    assert [o.name for o in model.graph.output] == graph.outputs  # the model's own output names
    for name in graph.outputs:
        want = ref[name].reshape(len(x), -1).astype(np.float64)
        have = got[name].reshape(len(x), -1)
        bad = np.count_nonzero(have != want)
        assert bad == 0, f"{name}: {bad} of {want.size} differ, max |err| {np.abs(have - want).max():.3g}"


def mlp(rng, hidden: int = 16, k: int = 24, n: int = 6, narrow: bool = False, bias_scale_div: float = 1.0):
    """The MLP of bench/hls4ml_compare.py, smaller: Quant(x u8) -> MatMul(Quant W1 i8) -> Add(Quant b1 i16)
    -> Relu -> Quant(u8) -> MatMul(Quant W2 i8) -> Add(Quant b2 i16) -> Quant(i16) -> `logits`.
    Power-of-two scales, zero points 0; `bias_scale_div` > 1 puts the biases off the accumulator grid."""
    sx, sw1, sh, sw2, sy = 2.0**-4, 2.0**-7, 2.0**-3, 2.0**-7, 2.0**-8
    w1 = rng.standard_normal((k, hidden)) * 0.4
    w2 = rng.standard_normal((hidden, n)) * 0.4
    w1[0, 0], w2[0, 0] = -1.0, -0.9999  # codes -128 and -127.99: the narrow range clamps both to -127
    b1, b2 = rng.standard_normal(hidden), rng.standard_normal(n)
    q = Builder({"x": [1, k]})
    x = q.quant("x", "x_q", sx, 8, signed=False)
    w1q = q.quant(q.const("w1", w1), "w1_q", sw1, 8, narrow=narrow)
    b1q = q.quant(q.const("b1", b1), "b1_q", sx * sw1 / bias_scale_div, 16)
    h = q.op("Relu", [q.op("Add", [q.op("MatMul", [x, w1q], "fc1"), b1q], "fc1_bias")], "relu")
    h = q.quant(h, "hidden_q", sh, 8, signed=False)
    w2q = q.quant(q.const("w2", w2), "w2_q", sw2, 8, narrow=narrow)
    b2q = q.quant(q.const("b2", b2), "b2_q", sh * sw2 / bias_scale_div, 16)
    out = q.op("Add", [q.op("MatMul", [h, w2q], "fc2"), b2q], "fc2_bias")
    q.quant(out, "logits", sy, 16)
    return q.model({"logits": [1, n]})


def _images(rng, n: int = 48, k: int = 24) -> np.ndarray:
    return (rng.random((n, k)) * 18 - 1).astype(np.float32)  # beyond the u8 input range at both ends


# ---------------------------------------------------------------- 3. exact types between quantised ops


@needs_qonnx
def test_mlp_fuses_into_linear_layers_and_equals_qonnx():
    rng = np.random.default_rng(0)
    model = mlp(rng)
    graph = load_graph(model)  # the DEFAULT precision: no tensor is left to ap_fixed<16,6>
    assert [n.op for n in graph.nodes] == ["quantize", "linear", "linear"]
    assert graph.outputs == ["logits"]
    assert all(t.qtype.kind != "fixed" for t in graph.tensors.values())
    _assert_exact(graph, model, _images(rng))


@needs_qonnx
def test_bias_off_the_accumulator_grid_gets_an_exact_sum():
    """A bias on a finer grid than s_x*s_w cannot fold into the integer accumulator: the MatMul output and the
    sum still get exact integer types (the finer grid), and the result is exact."""
    rng = np.random.default_rng(1)
    model = mlp(rng, bias_scale_div=8.0)
    graph = load_graph(model)
    ops = [n.op for n in graph.nodes]
    assert ops.count("linear") == 2 and ops.count("add") == 2 and "lut" not in ops
    acc = graph.tensors["fc1"].qtype
    assert acc.kind == "int" and float(acc.scale) == 2.0**-4 * 2.0**-7 and acc.bits <= 31
    assert str(graph.tensors["fc1_bias"].qtype) == "u8(s=0.125)"  # ReLU -> Quant u8: the add saturates at 0
    _assert_exact(graph, model, _images(rng))


@needs_qonnx
def test_unquantised_accumulator_output_is_exact():
    """MatMul of two quantised operands straight to a graph output, and plus a bias on a finer grid: exact
    integer types, not ap_fixed<16,6> (which would truncate the 2^-12 grid and wrap)."""
    rng = np.random.default_rng(2)
    q = Builder({"x": [1, 32]})
    x = q.quant("x", "x_q", 2.0**-4, 8, signed=True)
    w = q.quant(q.const("w", rng.standard_normal((32, 5)) * 2), "w_q", 2.0**-5, 8)
    acc = q.op("MatMul", [x, w], "acc")
    b = q.quant(q.const("b", rng.standard_normal(5)), "b_q", 2.0**-12, 12)  # finer than the 2^-9 grid
    q.op("Add", [acc, b], "acc_b")
    model = q.model({"acc": [1, 5], "acc_b": [1, 5]})
    graph = load_graph(model)
    assert [n.op for n in graph.nodes] == ["quantize", "linear", "add"]
    qt = graph.tensors["acc"].qtype
    assert qt.kind == "int" and float(qt.scale) == 2.0**-9 and qt.bits <= 31
    qt = graph.tensors["acc_b"].qtype
    assert qt.kind == "int" and float(qt.scale) == 2.0**-12 and qt.bits <= 31
    _assert_exact(graph, model, (rng.standard_normal((32, 32)) * 8).astype(np.float32))


@needs_qonnx
def test_gemm_per_channel_weights_and_bias():
    """Gemm (transB=1) with per-channel power-of-two weight scales, plus a per-channel bias Add on the
    accumulator grid, to a graph output: one linear with its bias, an exact per-tensor type on the finest grid."""
    rng = np.random.default_rng(10)
    sx, sw = 2.0**-4, 2.0 ** -rng.integers(4, 8, size=(6, 1))
    q = Builder({"x": [1, 12]})
    x = q.quant("x", "x_q", sx, 8)
    w = q.quant(q.const("w", rng.standard_normal((6, 12))), "w_q", sw, 8, narrow=True)
    b = q.quant(q.const("b", rng.standard_normal(6)), "b_q", sx * sw.reshape(-1), 16)
    q.op("Add", [q.op("Gemm", [x, w], "gemm", transB=1), b], "y")
    model = q.model({"y": [1, 6]})
    graph = load_graph(model)
    assert [n.op for n in graph.nodes] == ["quantize", "linear"] and len(graph.nodes[1].inputs) == 3
    qt = graph.tensors["y"].qtype
    assert qt.kind == "int" and not qt.per_channel and float(qt.scale) == sx * float(sw.min())
    _assert_exact(graph, model, (rng.standard_normal((32, 12)) * 6).astype(np.float32))


# ------------------------------------------------------------------------ 4. ReLU on a wide accumulator


@needs_qonnx
@pytest.mark.parametrize("relu_out", ["signed", "unsigned_shared", "clip_signed"])
def test_relu_on_a_wide_accumulator_is_a_clamp(relu_out):
    """A 16-bit input times 8-bit weights over 64 inputs: a ~30-bit accumulator, too wide for a table. The
    ReLU becomes a saturating conversion: into a signed output type (clamp, then requantise), or, when the
    accumulator is read elsewhere too, straight into the unsigned output type."""
    rng = np.random.default_rng(3)
    q = Builder({"x": [1, 64]})
    x = q.quant("x", "x_q", 2.0**-8, 16, signed=True)
    w = q.quant(q.const("w", rng.standard_normal((64, 8))), "w_q", 2.0**-6, 8)
    acc = q.op("MatMul", [x, w], "acc")
    r = q.op("Clip", [acc, q.const("zero", 0.0)], "relu") if relu_out == "clip_signed" else q.op("Relu", [acc], "relu")
    outputs = {"y": [1, 8]}
    if relu_out in ("signed", "clip_signed"):
        q.quant(r, "y", 2.0**-4, 12, signed=True)
    else:
        q.quant(r, "y", 2.0**-4, 12, signed=False)
        q.quant(acc, "acc_q", 2.0**-2, 16, signed=True)
        outputs["acc_q"] = [1, 8]
    model = q.model(outputs)
    graph = load_graph(model)
    assert graph.tensors["acc"].qtype.bits > 24
    ops = [n.op for n in graph.nodes]
    assert "lut" not in ops and ops.count("quantize") == 3
    _assert_exact(graph, model, (rng.standard_normal((32, 64)) * 60).astype(np.float32))


# ----------------------------------------------------------------------------------- 2. narrow range


@needs_qonnx
def test_narrow_range_weights():
    rng = np.random.default_rng(4)
    model = mlp(rng, narrow=True)
    graph = load_graph(model)
    weights = [graph.tensors[n.inputs[1]] for n in graph.nodes if n.op == "linear"]
    for w in weights:
        assert w.qtype.narrow and w.qtype.qmin == -127 and int(w.data.min()) == -127
    _assert_exact(graph, model, _images(rng))


@needs_qonnx
def test_narrow_range_activations():
    """Narrow signed Quant on the float input (quantised on the host), on an accumulator (the linear
    saturates symmetrically) and after a lookup table (tanh): -128 never appears, as in qonnx."""
    rng = np.random.default_rng(5)
    q = Builder({"x": [1, 16]})
    x = q.quant("x", "x_q", 2.0**-3, 8, narrow=True)
    w = q.quant(q.const("w", rng.standard_normal((16, 8))), "w_q", 2.0**-6, 8, narrow=True)
    h = q.quant(q.op("MatMul", [x, w], "mm"), "h_q", 2.0**-2, 6, narrow=True)
    q.quant(q.op("Tanh", [h], "t"), "y", 2.0**-7, 8, narrow=True)  # tanh = -1 would be code -128
    q.quant(h, "h_out", 2.0**-2, 6, narrow=True)
    model = q.model({"y": [1, 8], "h_out": [1, 8]})
    graph = load_graph(model)
    assert graph.tensors["y"].qtype.narrow and graph.tensors["mm"].qtype.narrow  # mm: the MatMul writes h_q
    xs = (rng.standard_normal((64, 16)) * 40).astype(np.float32)  # saturates at both ends
    _assert_exact(graph, model, xs)
    codes = sim.run(graph, xs).outputs
    assert codes["y"].min() == -127 and codes["h_out"].min() == -31


@needs_qonnx
def test_narrow_range_inside_a_lookup_table_chain():
    """Tanh -> narrow Quant -> Mul -> Quant: one table, the narrow step applied inside it (tanh = -1 becomes
    -127/128, so 2 * tanh ends at -254/128, not -2); the table and the host quantisation write the narrow types
    directly (no extra conversion)."""
    rng = np.random.default_rng(11)
    q = Builder({"x": [1, 16]})
    x = q.quant("x", "x_q", 2.0**-3, 8, narrow=True)
    t = q.quant(q.op("Tanh", [x], "tanh"), "t_q", 2.0**-7, 8, narrow=True)
    q.quant(q.op("Mul", [t, q.const("two", 2.0)], "m"), "y", 2.0**-7, 10, narrow=True)
    model = q.model({"y": [1, 16]})
    graph = load_graph(model)
    assert [n.op for n in graph.nodes] == ["quantize", "lut"]
    assert graph.tensors["x_q"].qtype.narrow and graph.tensors["y"].qtype.narrow
    xs = (rng.standard_normal((64, 16)) * 12).astype(np.float32)
    _assert_exact(graph, model, xs)
    codes = sim.run(graph, xs, keep=True).tensors
    assert codes["y"].min() == -254 and codes["x_q"].min() == -127


def narrow_model(rng) -> onnx.ModelProto:
    """Narrow range everywhere: the float input (host), weights with values at code -128, a 6-bit hidden layer,
    a table (tanh) into a narrow type and 12-bit narrow logits (past int8: onnxruntime runs that Quant as float
    ops)."""
    q = Builder({"x": [1, 16]})
    x = q.quant("x", "x_q", 2.0**-3, 8, narrow=True)
    w1 = rng.standard_normal((16, 12))
    w1[0, :4] = -2.0  # code -128 of scale 2^-6: the narrow range clamps it to -127
    w1q = q.quant(q.const("w1", w1), "w1_q", 2.0**-6, 8, narrow=True)
    b1 = q.quant(q.const("b1", rng.standard_normal(12)), "b1_q", 2.0**-9, 16)
    h = q.quant(q.op("Add", [q.op("MatMul", [x, w1q], "fc1"), b1], "fc1_bias"), "h_q", 2.0**-1, 6, narrow=True)
    t = q.quant(q.op("Tanh", [h], "tanh"), "t_q", 2.0**-7, 8, narrow=True)
    w2q = q.quant(q.const("w2", rng.standard_normal((12, 10))), "w2_q", 2.0**-6, 8, narrow=True)
    q.quant(q.op("MatMul", [t, w2q], "fc2"), "logits", 2.0**-6, 12, narrow=True)
    return q.model({"logits": [1, 10]})


@needs_qonnx
def test_reference_of_a_narrow_range_model_equals_qonnx():
    """hwgen's onnxruntime reference (QONNX as QDQ plus clips, float ops past 8 bits) computes what qonnx's
    executor computes, intermediate tensors included; so does the simulator."""
    from hwgen.reference import run_onnxruntime

    rng = np.random.default_rng(12)
    model = narrow_model(rng)
    xs = (rng.standard_normal((48, 16)) * 12).astype(np.float32)
    inner = ["x_q", "h_q", "t_q"]
    ref = run_onnxruntime(model, xs, inner)
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    wrapper = ModelWrapper(model)
    full = [execute_onnx(wrapper, {"x": xi[None]}, return_full_exec_context=True) for xi in xs]
    for name in inner + ["logits"]:
        want = np.concatenate([f[name] for f in full])
        assert np.array_equal(ref[name].reshape(want.shape), want), name
    assert np.min(ref["x_q"]) == -127 * 2.0**-3 and np.min(ref["t_q"]) == -127 * 2.0**-7
    assert np.min(ref["h_q"]) == -31 * 2.0**-1
    _assert_exact(load_graph(model), model, xs)


@needs_qonnx
def test_simulate_cli_on_a_narrow_range_model(tmp_path):
    """`hwgen simulate --per-layer` on a narrow-range QONNX model (it refused narrow Quant before): every output
    and every layer agrees exactly with onnxruntime."""
    from click.testing import CliRunner

    from hwgen.cli import main

    rng = np.random.default_rng(13)
    model = narrow_model(rng)
    path, inp, out = tmp_path / "narrow.onnx", tmp_path / "x.npy", tmp_path / "report.json"
    onnx.save(model, str(path))
    np.save(inp, (rng.standard_normal((40, 16)) * 12).astype(np.float32))
    res = CliRunner().invoke(main, ["simulate", str(path), "--input", str(inp), "--per-layer", "--json", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    report = json.loads(out.read_text())
    assert report["argmax_agreement"] == 1.0 and report["output_max_lsb"] == 0
    layers = {r["output"]: r for r in report["layers"]}
    # each op fed onnxruntime's inputs (the host quantisation of the input has none): hidden (h_q), t_q, logits
    assert {name: r["op"] for name, r in layers.items()} == {"fc1_bias": "linear", "tanh": "lut", "logits": "linear"}
    for name, r in layers.items():
        assert r["max_lsb"] == 0 and r["exact"] == 1.0, (name, r)


def test_narrow_unsigned():
    """Unsigned narrow range: fine on constants (codes up to 2^b - 2), refused on activations."""
    q = Builder({"x": [1, 4]})
    x = q.quant("x", "x_q", 2.0**-4, 8)
    w = q.quant(q.const("w", np.full((4, 3), 100.0)), "w_q", 1.0, 4, signed=False, narrow=True)
    q.op("MatMul", [x, w], "y")
    graph = load_graph(q.model({"y": [1, 3]}))
    w_t = next(graph.tensors[n.inputs[1]] for n in graph.nodes if n.op == "linear")
    assert int(w_t.data.max()) == 14
    q = Builder({"x": [1, 4]})
    q.quant(q.quant("x", "x_q", 2.0**-4, 8), "y", 2.0**-3, 4, signed=False, narrow=True)
    with pytest.raises(UnsupportedError, match="narrow-range unsigned"):
        load_graph(q.model({"y": [1, 4]}))


# ------------------------------------------------------------------- 1. the manifest keeps the precision


def float_model() -> onnx.ModelProto:
    rng = np.random.default_rng(6)
    q = Builder({"x": [1, 8]})
    h = q.op("Add", [q.op("MatMul", ["x", q.const("w1", rng.standard_normal((8, 12)) * 0.5)], "h0"),
                     q.const("b1", rng.standard_normal(12) * 0.1)], "h")
    q.op("MatMul", [q.op("Mul", [h, q.const("s", 0.75)], "hs"), q.const("w2", rng.standard_normal((12, 4)))], "y")
    m = q.model({"y": [1, 4]})
    del m.opset_import[1]
    return m


PRECISION = Precision(default="ap_fixed<22,8,AP_RND,AP_SAT>", op={"linear": "ap_fixed<20,9,AP_RND_CONV,AP_SAT>"},
                      name={"Mul": "ap_fixed<18,7>"}, weight="ap_fixed<12,3,AP_RND>", bias="ap_fixed<14,4>",
                      input="ap_fixed<14,5,AP_RND,AP_SAT>")


def test_manifest_records_the_precision(tmp_path):
    model = float_model()
    graph = load_graph(model, PRECISION)
    out = write_project(graph, Design(regime="unrolled"), tmp_path / "prj", model_bytes=model.SerializeToString())
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["precision"] == PRECISION.to_dict()
    assert Precision.from_dict(manifest["precision"]) == PRECISION
    _, again = load_project(out)
    assert {k: str(t.qtype) for k, t in again.tensors.items()} == {k: str(t.qtype) for k, t in graph.tensors.items()}
    x = np.random.default_rng(7).standard_normal((16, 1, 8)).astype(np.float32) * 3
    default = load_graph(model)  # what csim reloaded before: other types, other outputs
    assert not np.array_equal(_sim(default, x)["y"], _sim(again, x)["y"])
    assert np.array_equal(sim.run(again, x).outputs["y"], sim.run(graph, x).outputs["y"])


@pytest.mark.cpp
@needs_gxx
def test_csim_of_a_project_built_with_a_precision(tmp_path):
    model = float_model()
    out = write_project(load_graph(model, PRECISION), Design(regime="unrolled"), tmp_path / "prj",
                        model_bytes=model.SerializeToString())
    x = np.random.default_rng(8).standard_normal((16, 1, 8)).astype(np.float32) * 3
    report = run_csim(out, x)
    assert report.bit_exact, report.as_dict()


@pytest.mark.cpp
@needs_gxx
def test_csim_of_qonnx_mlp_narrow_and_wide_relu(tmp_path):
    """C simulation equals the simulator on the fused, narrow-range MLP and on a ReLU-as-clamp graph."""
    rng = np.random.default_rng(9)
    q = Builder({"x": [1, 24]})
    x = q.quant("x", "x_q", 2.0**-3, 8, narrow=True)
    w1 = q.quant(q.const("w1", rng.standard_normal((24, 16))), "w1_q", 2.0**-6, 8, narrow=True)
    b1 = q.quant(q.const("b1", rng.standard_normal(16)), "b1_q", 2.0**-9, 16)
    h = q.quant(q.op("Relu", [q.op("Add", [q.op("MatMul", [x, w1], "fc1"), b1], "fc1_bias")], "relu"), "h_q",
                2.0**-3, 8, signed=False)
    w2 = q.quant(q.const("w2", rng.standard_normal((16, 6))), "w2_q", 2.0**-6, 8, narrow=True)
    acc = q.op("MatMul", [h, w2], "fc2")
    q.quant(q.op("Relu", [acc], "relu2"), "y", 2.0**-2, 8, narrow=True)
    logits = q.quant(acc, "logits", 2.0**-5, 12, narrow=True)
    q.quant(q.op("Tanh", [logits], "tanh"), "t", 2.0**-7, 8, narrow=True)  # a table on and to narrow types
    model = q.model({"y": [1, 6], "logits": [1, 6], "t": [1, 6]})
    graph = load_graph(model)
    assert graph.outputs == ["y", "logits", "t"]
    assert {"linear", "quantize", "lut"} == {n.op for n in graph.nodes}
    out = write_project(graph, Design(regime="unrolled"), tmp_path / "prj", model_bytes=model.SerializeToString())
    report = run_csim(out, (rng.standard_normal((32, 24)) * 20).astype(np.float32))
    assert report.bit_exact, report.as_dict()


@pytest.mark.cpp
@needs_gxx
def test_csim_of_the_narrow_range_model(tmp_path):
    """C simulation equals the simulator with the narrow types written directly (the host's quantisation of the
    input, the linear layers' requantisation, the table's entries)."""
    rng = np.random.default_rng(14)
    model = narrow_model(rng)
    graph = load_graph(model)
    assert [n.op for n in graph.nodes] == ["quantize", "linear", "lut", "linear"]
    out = write_project(graph, Design(regime="unrolled"), tmp_path / "prj", model_bytes=model.SerializeToString())
    xs = (rng.standard_normal((32, 16)) * 12).astype(np.float32)
    report = run_csim(out, xs)
    assert report.bit_exact, report.as_dict()
    codes = sim.run(graph, xs, keep=True).tensors
    assert codes["x_q"].min() == -127 and codes["tanh"].min() == -127 and codes["fc1_bias"].min() == -31
