"""End to end: ONNX -> hwgen graph -> Vitis HLS project -> g++ C simulation == the simulator, bit for bit,
for a small model using only the linear-family ops (linear, matmul, add/sub, mul, concat, transpose,
reduce_mean, quantize on the host), as a float graph (default ap_fixed precision) and as an onnxruntime QDQ
graph (uint8 activations with zero points, per-channel int8 weights), under a streaming Design (tile 4x8,
2 lanes, weights off chip) and the unrolled one.  Also: generation is deterministic, and OpDef.emit's
mechanics (namespaces, placeholder substitution, the error for an op without a kernel)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwgen.codegen.context import EmitContext
from hwgen.codegen.csim import run_csim
from hwgen.codegen.project import generate, write_project
from hwgen.design import Design, LinearKnobs
from hwgen.errors import HwgenError, UnsupportedError
from hwgen.frontend import load_graph
from hwgen.ir import QType
from hwgen.ops import OpDef, get
from hwgen.ops.base import emit_kernel
from kernel_harness import Spec, one_op_graph

SHAPE = (1, 4, 8)
DESIGNS = {
    "streaming": Design(linear=LinearKnobs(tile_in=4, tile_out=8, lanes=2)),
    "unrolled": Design(regime="unrolled"),
}
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


def float_model(seed: int = 0) -> onnx.ModelProto:
    """x[1,4,8] -> linear(+bias) -> *0.25, * -> (x^T @ .) -> concat -> mean/sub -> linear -> mean over tokens."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array((rng.standard_normal((8, 16)) * 0.3).astype(np.float32), "W1"),
             numpy_helper.from_array((rng.standard_normal(16) * 0.1).astype(np.float32), "b1"),
             numpy_helper.from_array((rng.standard_normal((16, 5)) * 0.3).astype(np.float32), "W2"),
             numpy_helper.from_array(np.array(0.25, np.float32), "q")]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h"]),
        helper.make_node("Mul", ["h", "q"], ["hs"]),
        helper.make_node("Mul", ["h", "hs"], ["p"]),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["xt", "p"], ["a"]),                      # activation x activation
        helper.make_node("Concat", ["a", "h"], ["c"], axis=1),
        helper.make_node("ReduceMean", ["c"], ["r"], axes=[2], keepdims=1),
        helper.make_node("Sub", ["c", "r"], ["d"]),                           # column broadcast
        helper.make_node("MatMul", ["d", "W2"], ["y"]),
        helper.make_node("ReduceMean", ["y"], ["out"], axes=[1], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "lin_ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 5]),
                               helper.make_tensor_value_info("r", TensorProto.FLOAT, [1, 12, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model


def qdq_model(tmp: Path, seed: int = 0) -> onnx.ModelProto:
    """float_model quantised by onnxruntime (QDQ, uint8 activations, per-channel int8 weights)."""
    quant = pytest.importorskip("onnxruntime.quantization")
    src, dst = tmp / "float.onnx", tmp / "qdq.onnx"
    onnx.save(float_model(seed), src)
    rng = np.random.default_rng(seed + 1)

    class Reader(quant.CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{"x": rng.standard_normal(SHAPE).astype(np.float32)} for _ in range(32)])

        def get_next(self):
            return next(self.feeds, None)

    quant.quantize_static(str(src), str(dst), Reader(), quant_format=quant.QuantFormat.QDQ,
                          activation_type=quant.QuantType.QUInt8, weight_type=quant.QuantType.QInt8,
                          per_channel=True)
    model = onnx.load(dst)
    model.ir_version = 10
    return model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {"float": float_model()}
    try:
        out["qdq"] = qdq_model(tmp_path_factory.mktemp("qdq"))
    except pytest.skip.Exception:
        pass
    return out


def _inputs(n: int = 16, seed: int = 7) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n,) + SHAPE) * 1.5).astype(np.float32)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ end to end


@pytest.mark.cpp
@needs_gxx
@pytest.mark.parametrize("regime", sorted(DESIGNS))
@pytest.mark.parametrize("kind", ["float", "qdq"])
def test_csim_bit_exact(models, kind, regime, tmp_path):
    if kind not in models:
        pytest.skip("onnxruntime is not installed")
    model = models[kind]
    graph = load_graph(model)
    assert {n.op for n in graph.nodes} == {"quantize", "linear", "add", "mul", "transpose", "matmul", "concat",
                                           "reduce_mean"}
    out = write_project(graph, DESIGNS[regime], tmp_path / "prj", model_bytes=model.SerializeToString())
    report = run_csim(out, _inputs())
    assert report.bit_exact, report.as_dict()
    assert report.images == 16 and report.elements == 16 * (5 + 12)


def test_generation_is_deterministic(models, tmp_path):
    for kind, model in models.items():
        for regime, design in DESIGNS.items():
            a = write_project(load_graph(model), design, tmp_path / f"{kind}_{regime}_a",
                              model_bytes=model.SerializeToString())
            b = write_project(load_graph(model), design, tmp_path / f"{kind}_{regime}_b",
                              model_bytes=model.SerializeToString())
            fa, fb = _files(a), _files(b)
            assert sorted(fa) == sorted(fb)
            assert [k for k in fa if fa[k] != fb[k]] == [], f"{kind}/{regime}: files differ"
            # rewriting a project in place gives the same bytes too
            again = write_project(load_graph(model), design, a, model_bytes=model.SerializeToString())
            assert _files(again) == fa


def test_design_reaches_the_kernels(models):
    graph = load_graph(models["float"])
    streaming = generate(graph, DESIGNS["streaming"])
    params = streaming["firmware/parameters.h"].decode()
    top = streaming["firmware/hwgen_lin_ops.cpp"].decode()
    # linear 4 rows x 8 -> 16 and 12 x 16 -> 5, matmul 8 x 4 -> 16: tiles and lanes clipped to the dims
    assert "static const int tile_in = 4, tile_out = 8, n_lanes = 2;" in params
    assert "static const int tile_in = 4, tile_out = 5, n_lanes = 2;" in params
    assert "firmware/weights/wmem0.bin" in streaming and "(wmem0 + 128)" in top  # W1 (8x16) then W2
    unrolled = generate(graph, DESIGNS["unrolled"])
    params = unrolled["firmware/parameters.h"].decode()
    assert "static const int tile_in = 8, tile_out = 16, n_lanes = 4;" in params      # W1: everything parallel
    assert "static const int tile_in = 16, tile_out = 5, n_lanes = 12;" in params     # W2
    assert "static const int tile_in = 4, tile_out = 16, n_lanes = 8;" in params      # x^T @ p
    assert not any(k.startswith("firmware/weights/") for k in unrolled)
    # every kernel call sits in a block that opens its node's namespace
    blocks = re.findall(r"using namespace hwgen_cfg::(\w+);", unrolled["firmware/hwgen_lin_ops.cpp"].decode())
    assert len(blocks) == len(set(blocks)) == 10  # all but the transpose (movement.h, its own emit)
    for ns in blocks:
        assert f"namespace {ns} {{" in params


@pytest.mark.cpp
@needs_gxx
def test_csim_localises_a_wrong_kernel(models, tmp_path):
    """A corrupted config (the Sub's shift) is found: csim names the first tensor that differs."""
    model = models["float"]
    out = write_project(load_graph(model), DESIGNS["streaming"], tmp_path / "prj", model_bytes=model.SerializeToString())
    params = out / "firmware" / "parameters.h"
    text = params.read_text()
    block = text.index("namespace add_Sub_8 {")
    m = re.compile(r"shift = (\d+);").search(text, block)
    params.write_text(text[:m.start()] + f"shift = {int(m.group(1)) - 1};" + text[m.end():])
    report = run_csim(out, _inputs(4))
    assert not report.bit_exact
    assert report.first_mismatch["tensor"] == "d"


# ---------------------------------------------------------------------------------------- emit mechanics


def _ctx_for_add():
    qt = QType.integer(8, True, 0.05, 0)
    g, node = one_op_graph("add", [Spec("in0x", (1, 3), qt), Spec("b", (1, 3), qt)], [Spec("y", (1, 3), qt)],
                           attrs={"signs": [1, 1]})
    return g, node, EmitContext(g, Design())


def test_emit_substitutes_whole_placeholders_only():
    g, node, ctx = _ctx_for_add()
    emit_kernel(g, node, ctx, "struct cfg {};\n", "f<cfg>(in0, in1, out0, kin0, in0_t, out00x, in0);\nbegin(out0);",
                "add.h")
    assert ctx.headers == {"add.h"}
    ns = ctx.decls[0].split()[1]
    assert ns.startswith("add_") and ctx.decls == [f"namespace {ns} {{\nstruct cfg {{}};\n}}  // namespace {ns}"]
    body = "\n".join(ctx.body)
    x, b, y = ctx.tensor("in0x"), ctx.tensor("b"), ctx.tensor("y")
    assert f"using namespace hwgen_cfg::{ns};" in body
    assert f"f<cfg>({x}, {b}, {y}, kin0, in0_t, out00x, {x});" in body
    assert f"begin({y});" in body
    with pytest.raises(HwgenError, match="in2"):
        emit_kernel(g, node, ctx, "", "f(in2);", None)


def test_emit_without_kernel_names_node_and_op():
    class NoKernel(OpDef):
        name = "no_kernel_op"

    g, node, ctx = _ctx_for_add()
    with pytest.raises(HwgenError) as err:
        NoKernel().emit(g, node, ctx)
    assert "no C++ kernel for op" in str(err.value) and err.value.node == node.name and err.value.op == node.op


def test_emit_unsupported_configuration():
    """A configuration the kernel cannot spell (here a non-contiguous broadcast) is an UnsupportedError."""
    qt = QType.integer(8, True, 0.05, 0)
    g, node = one_op_graph("add", [Spec("a", (2, 3, 4), qt), Spec("b", (2, 1, 4), qt)],
                           [Spec("y", (2, 3, 4), qt)], attrs={"signs": [1, 1]})
    with pytest.raises(UnsupportedError, match="C\\+\\+ kernel"):
        get("add").emit(g, node, EmitContext(g, Design()))
