"""Bad input: one line naming file, node and op; exit code 2; no traceback; nothing written."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import ONNX

HWGEN = [sys.executable, "-m", "hwgen.cli"]


def run(*args, cwd=None):
    return subprocess.run(HWGEN + list(args), capture_output=True, text=True, cwd=cwd, timeout=120)


def save(model, path):
    model.ir_version = 10
    onnx.save(model, str(path))
    return path


def one_line_error(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_unsupported_op(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8])
    node = helper.make_node("Hardmax", ["x"], ["y"], name="my_hardmax")
    path = save(helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]),
                tmp_path / "hardmax.onnx")
    for cmd in ("inspect", "simulate"):
        line = one_line_error(run(cmd, str(path)))
        assert "hardmax.onnx" in line and "my_hardmax" in line and "Hardmax" in line and "supported" in line


def test_truncated_file(tmp_path):
    data = (ONNX / "vit_digits.qdq.dynamo.onnx").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 3])
    line = one_line_error(run("simulate", str(path)))
    assert "truncated.onnx" in line


def test_dynamic_input_shape(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "tokens", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "tokens", 8])
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    path = save(helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]),
                tmp_path / "dynamic.onnx")
    line = one_line_error(run("inspect", str(path)))
    assert "dynamic" in line and "dynamic.onnx" in line


def test_missing_file(tmp_path):
    line = one_line_error(run("inspect", str(tmp_path / "nope.onnx")))
    assert "nope.onnx" in line


def test_not_onnx(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    one_line_error(run("inspect", str(path)))


def test_bad_precision_config(tmp_path):
    cfg = tmp_path / "p.json"
    cfg.write_text('{"default": "ap_fixed<16"}')
    line = one_line_error(run("inspect", str(ONNX / "vit_digits.float.dynamo.onnx"), "--precision", str(cfg)))
    assert "ap_fixed<16" in line


def test_inspect_default_model_prints_ir():
    proc = run("inspect")
    assert proc.returncode == 0, proc.stderr
    assert "moe(" in proc.stdout and "softmax(" in proc.stdout and "layernorm(" in proc.stdout


def test_simulate_json_report(tmp_path):
    out = tmp_path / "r.json"
    proc = run("simulate", str(ONNX / "vit_digits.qdq.dynamo.onnx"), "--limit", "32", "--per-layer", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    import json

    report = json.loads(out.read_text())
    assert report["images"] == 32 and report["layers"] and "argmax agreement" in proc.stdout
