"""The QKeras model through hwgen: models/qkeras_digits.py trains it in .venv-qkeras and qonnx 0.4.0's
converter (via `hwgen import-qkeras`'s code) writes models/onnx/qkeras_digits.qonnx.onnx. Here, in the
main environment, the simulator is checked against onnxruntime (Quant as Q/DQ, hwgen.reference) and
against qonnx's own executor."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import hwgen.compare
from conftest import ONNX

MODEL = ONNX / "qkeras_digits.qonnx.onnx"
QONNX_N = 40  # qonnx's executor runs node by node, one image at a time (about 0.25 s each)


@pytest.fixture(scope="module")
def model_path():
    if not MODEL.exists():
        pytest.skip(f"{MODEL.name} is absent: build it with `make qkeras-env` and "
                    "`.venv-qkeras/bin/python models/qkeras_digits.py`")
    return MODEL


@pytest.fixture(scope="module")
def graph(model_path):
    from hwgen.frontend import load_graph

    return load_graph(model_path)


def _linear_within_1lsb(report) -> tuple[float, int]:
    rows = [r for r in report.layers if r.op in ("linear", "matmul")]
    elements = sum(r.elements for r in rows)
    return sum(r.within_1lsb * r.elements for r in rows) / max(elements, 1), len(rows)


def test_lowers(graph):
    assert graph.meta["format"] == "qonnx"
    ops = graph.summary()["ops"]
    assert ops.get("linear", 0) >= 10 and ops.get("matmul", 0) == 4 and ops.get("softmax", 0) == 2
    assert not [n.op for n in graph.nodes if n.op.startswith("onnx.")]


def test_simulator_vs_onnxruntime(graph, model_path, digits_test):
    x, y = digits_test
    report = hwgen.compare.compare(graph, model_path, x, y, layers=True)
    assert report.argmax_agreement >= 0.99, report.argmax_agreement
    within, n_layers = _linear_within_1lsb(report)
    assert n_layers >= 14
    assert within >= 0.999, within
    assert report.accuracy_sim >= 0.8  # the model's own accuracy is about 0.89


def _qonnx_runner(source, x, extra=(), batch=None):
    """Stands in for hwgen.reference.run_onnxruntime: qonnx's executor, every tensor of the graph."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    model = ModelWrapper(str(source))
    iname = model.graph.input[0].name
    shape = model.get_tensor_shape(iname)
    contexts = [execute_onnx(model, {iname: xi.reshape(shape).astype(np.float32)}, return_full_exec_context=True)
                for xi in np.asarray(x)]
    names = [o.name for o in model.graph.output] + [e for e in extra if e in contexts[0]]
    return {k: np.concatenate([np.asarray(c[k]) for c in contexts]) for k in dict.fromkeys(names)}


def test_simulator_vs_qonnx_executor(graph, model_path, digits_test, monkeypatch):
    if importlib.util.find_spec("qonnx") is None:
        pytest.skip("qonnx is not installed (pip install -e '.[dev]' brings qonnx 1.0.0)")
    x, y = digits_test[0][:QONNX_N], digits_test[1][:QONNX_N]
    from hwgen.reference import run_onnxruntime

    ort = run_onnxruntime(model_path, x)
    qonnx_out = _qonnx_runner(model_path, x)
    key = next(iter(qonnx_out))
    # hwgen's reference (Quant rewritten as QuantizeLinear/DequantizeLinear) computes what qonnx computes
    assert np.abs(qonnx_out[key].reshape(len(x), -1) - ort[key].reshape(len(x), -1)).max() <= 1e-5
    monkeypatch.setattr(hwgen.compare, "run_onnxruntime", _qonnx_runner)
    report = hwgen.compare.compare(graph, model_path, x, y, layers=True)
    assert report.argmax_agreement >= 0.99, report.argmax_agreement
    within, n_layers = _linear_within_1lsb(report)
    assert n_layers >= 14
    assert within >= 0.999, within


def test_import_qkeras_without_tensorflow(tmp_path):
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed here: the command would run")
    proc = subprocess.run([sys.executable, "-m", "hwgen.cli", "import-qkeras", str(tmp_path / "model.h5"),
                           "-o", str(tmp_path / "model.onnx")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "make qkeras-env" in lines[0] and ".venv-qkeras/bin/hwgen import-qkeras" in lines[0]
    assert not (tmp_path / "model.onnx").exists()
