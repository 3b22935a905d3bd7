"""The generated testbench checks itself: `hwgen build` writes tb/tb_data/inputs.bin and expected.bin (the
simulator's input and output codes for a few images), and the testbench, compiled and run straight after the
build (no hwgen csim), compares every output code with them, prints the mismatches and exits 1 on any.
Also: which images the build picks (--input, the bundled digits, seeded pseudo-random over the input's
quantisation range), --tb-images 0, determinism, the memory refusal, and hwgen csim agreeing with the
testbench's own check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from conftest import DATA, ONNX
from hwgen import sim
from hwgen.cli import main
from hwgen.codegen import gxx, tbdata
from hwgen.codegen.project import host_inputs
from hwgen.frontend import load_graph
from test_codegen_linear_ops import SHAPE, float_model, qdq_model

HWGEN = [sys.executable, "-m", "hwgen.cli"]
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """{"float": path, "qdq": path (when onnxruntime is installed)} of the small linear-ops model."""
    root = tmp_path_factory.mktemp("tb_models")
    out = {}
    m = float_model()
    m.ir_version = 10
    onnx.save(m, root / "lin_float.onnx")
    out["float"] = root / "lin_float.onnx"
    try:
        onnx.save(qdq_model(root), root / "lin_qdq.onnx")
        out["qdq"] = root / "lin_qdq.onnx"
    except pytest.skip.Exception:
        pass
    return out


def build(*args, env=None):
    res = CliRunner().invoke(main, ["build", *map(str, args)], catch_exceptions=False, env=env)
    assert res.exit_code == 0, res.output
    return res


def run_testbench(out: Path, *args) -> subprocess.CompletedProcess:
    """Compile (cached) and run the project's own testbench, as Vitis HLS csim would: PROJECT_DIR [args]."""
    top = json.loads((out / "hwgen_project.json").read_text())["top"]
    sources = [out / "firmware" / f"{top}.cpp", out / "tb" / f"{top}_test.cpp"]
    return gxx.compile_and_run(sources, out, args=[str(out), *map(str, args)], opt="-O1",
                               include_dirs=[out / "firmware", out / "firmware" / "kernels"], timeout=600)


def codes(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<i8")


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- the testbench checks itself straight after hwgen build ----------------------------------------------

@pytest.mark.cpp
@needs_gxx
@pytest.mark.parametrize("kind", ["float", "qdq"])
def test_testbench_passes_after_build_and_names_a_corrupted_code(model_files, kind, tmp_path):
    if kind not in model_files:
        pytest.skip("onnxruntime is not installed")
    out = tmp_path / "prj"
    res = build(model_files[kind], "-o", out)
    assert "testbench data: 8 pseudo-random inputs" in res.output
    data = out / "tb" / "tb_data"
    assert sorted(p.name for p in data.iterdir()) == ["expected.bin", "inputs.bin"]
    per_image_out = 5 + 12  # outputs "out" [1, 5] and "r" [1, 12, 1]
    assert codes(data / "inputs.bin").size == 8 * int(np.prod(SHAPE))
    assert codes(data / "expected.bin").size == 8 * per_image_out
    manifest = json.loads((out / "hwgen_project.json").read_text())
    assert {"tb/tb_data/inputs.bin", "tb/tb_data/expected.bin"} <= set(manifest["files"])

    proc = run_testbench(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "8 images" in proc.stdout
    assert f"{8 * per_image_out} output codes of 8 images compared with" in proc.stdout
    assert re.search(r": 0 mismatches$", proc.stdout, re.M) and "PASS" in proc.stdout
    # the testbench's outputs are the expected codes, byte for byte
    assert (data / "outputs.bin").read_bytes() == (data / "expected.bin").read_bytes()

    # one wrong expected code: image 2, output 1 ("r"), element 4
    want = codes(data / "expected.bin")
    want[2 * per_image_out + 5 + 4] += 1
    want.astype("<i8").tofile(data / "expected.bin")
    proc = run_testbench(out)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r": 1 mismatches$", proc.stdout, re.M) and "FAIL" in proc.stdout
    assert "first mismatch: image 2, output 1 (out1, r), element 4:" in proc.stdout

    # an expected file given as the 4th argument; a short one fails too
    short = tmp_path / "short.bin"
    short.write_bytes((data / "outputs.bin").read_bytes()[:-8])
    proc = run_testbench(out, data / "inputs.bin", tmp_path / "o.bin", short)
    assert proc.returncode == 1 and "fewer images than the inputs" in proc.stdout
    proc = run_testbench(out, data / "inputs.bin", tmp_path / "o.bin", data / "outputs.bin")
    assert proc.returncode == 0 and re.search(r": 0 mismatches$", proc.stdout, re.M)
    # other inputs without a 4th argument: not checked against the default expected.bin (as before)
    proc = run_testbench(out, data / "inputs.bin", tmp_path / "o.bin")
    assert proc.returncode == 0 and "outputs not checked" in proc.stdout


@pytest.mark.cpp
@needs_gxx
def test_hwgen_csim_rewrites_the_data_and_agrees_with_the_testbench(model_files, tmp_path):
    from hwgen.codegen.csim import run_csim

    out = tmp_path / "prj"
    build(model_files["float"], "-o", out)
    x = (np.random.default_rng(3).standard_normal((5,) + SHAPE) * 1.5).astype(np.float32)
    report = run_csim(out, x)
    assert report.bit_exact and report.testbench_mismatches == 0
    data = out / "tb" / "tb_data"
    assert codes(data / "expected.bin").size == 5 * 17
    assert (data / "outputs.bin").read_bytes() == (data / "expected.bin").read_bytes()
    # and the binary alone still passes on hwgen csim's data
    proc = run_testbench(out)
    assert proc.returncode == 0 and "5 images" in proc.stdout


# ---- which images, and how they are written ----------------------------------------------------------------

def test_data_are_the_simulator_codes_of_the_chosen_images(model_files, tmp_path):
    path = model_files["qdq" if "qdq" in model_files else "float"]
    graph = load_graph(path)
    out = tmp_path / "prj"
    build(path, "-o", out, "--tb-images", 5)
    x = tbdata.random_inputs(graph, 5)
    assert x.shape == (5,) + SHAPE and x.dtype == np.float32
    data = out / "tb" / "tb_data"
    result = sim.run(graph, x, keep=True)
    [(_, quantised)] = host_inputs(graph)  # x quantised on the host: what the accelerator receives
    assert np.array_equal(codes(data / "inputs.bin"), result.tensors[quantised].reshape(-1))
    want = np.concatenate([result.outputs[o].reshape(5, -1) for o in graph.outputs], axis=1).reshape(-1)
    assert np.array_equal(codes(data / "expected.bin"), want)


def test_random_inputs_span_the_quantisation_range(model_files):
    if "qdq" not in model_files:
        pytest.skip("onnxruntime is not installed")
    graph = load_graph(model_files["qdq"])
    [(_, quantised)] = host_inputs(graph)
    q = graph.tensors[quantised].qtype
    lo, hi = tbdata.real_range(q)
    x = tbdata.random_inputs(graph, 8)
    assert np.array_equal(x, tbdata.random_inputs(graph, 8))  # seeded
    assert lo <= x.min() < lo + 0.05 * (hi - lo) and hi - 0.05 * (hi - lo) < x.max() <= hi
    in_codes = tbdata.input_codes(graph, x)[quantised]
    assert in_codes.min() <= q.qmin + 5 and in_codes.max() >= q.qmax - 5


def test_input_option_and_tb_images_zero(model_files, tmp_path):
    path = model_files["float"]
    graph = load_graph(path)
    x = (np.random.default_rng(11).standard_normal((6,) + SHAPE)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "prj"
    res = build(path, "-o", out, "--input", tmp_path / "x.npy", "--tb-images", 4)
    assert "4 input(s) of x.npy" in res.output
    want = sim.run(graph, x[:4]).outputs
    assert np.array_equal(codes(out / "tb" / "tb_data" / "expected.bin"),
                          np.concatenate([want[o].reshape(4, -1) for o in graph.outputs], axis=1).reshape(-1))
    # --tb-images 0: no data (a rebuild drops the previous project's data too)
    build(path, "-o", out, "--tb-images", 0)
    assert not (out / "tb" / "tb_data").exists()
    assert "tb/tb_data/inputs.bin" not in json.loads((out / "hwgen_project.json").read_text())["files"]


def test_bundled_model_uses_the_digits_test_split(tmp_path):
    path = ONNX / "vit_digits.qdq.dynamo.onnx"
    graph = load_graph(path)
    out = tmp_path / "prj"
    res = build(path, "-o", out, "--tb-images", 3)
    assert "bundled digits test split (first 3)" in res.output
    x = np.load(DATA / "digits_test_x.npy")[:3]
    want = sim.run(graph, x).outputs
    assert np.array_equal(codes(out / "tb" / "tb_data" / "expected.bin"),
                          np.concatenate([want[o].reshape(3, -1) for o in graph.outputs], axis=1).reshape(-1))


def test_build_with_data_is_deterministic(model_files, tmp_path):
    path = model_files["qdq" if "qdq" in model_files else "float"]
    trees = []
    for seed in ("1", "2"):
        out = tmp_path / f"p{seed}"
        subprocess.run(HWGEN + ["build", str(path), "-o", str(out)], check=True, capture_output=True, timeout=300,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        trees.append(tree(out))
    assert "tb/tb_data/expected.bin" in trees[0] and trees[0] == trees[1]


# ---- refusals ------------------------------------------------------------------------------------------------

def test_bad_input_file_is_one_line_error(model_files, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 3), np.float32))
    out = tmp_path / "prj"
    proc = subprocess.run(HWGEN + ["build", str(model_files["float"]), "-o", str(out), "--input",
                                   str(tmp_path / "wrong.npy")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("hwgen: error: ") and "wrong.npy" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_memory_refusal_builds_without_data_and_warns(model_files, tmp_path):
    env = {**os.environ, "HWGEN_MEMORY_LIMIT": "1K"}
    out = tmp_path / "prj"
    proc = subprocess.run(HWGEN + ["build", str(model_files["float"]), "-o", str(out)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "warning: no testbench data" in proc.stderr and "--tb-images" in proc.stderr
    assert (out / "hwgen_project.json").exists() and not (out / "tb" / "tb_data").exists()
    # inputs the user chose must simulate: a refusal is an error
    np.save(tmp_path / "x.npy", np.zeros((2,) + SHAPE, np.float32))
    proc = subprocess.run(HWGEN + ["build", str(model_files["float"]), "-o", str(tmp_path / "p2"), "--input",
                                   str(tmp_path / "x.npy")], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and "--tb-images" in proc.stderr and not (tmp_path / "p2").exists()
