"""bench/hls4ml_compare.py on 32 images: hwgen's C simulation equals its simulator bit for bit, and both
tools agree with qonnx's executor (about 20 s: two g++ compiles)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cpp, pytest.mark.qonnx]

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "hls4ml_compare.py"


@pytest.fixture(scope="module")
def result():
    pytest.importorskip("qonnx", reason="needs the qonnx extra (pip install -e '.[dev]')")
    pytest.importorskip("sklearn", reason="needs scikit-learn (pip install -e '.[dev]')")
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))  # the script imports its sibling bench/_results.py
    spec = importlib.util.spec_from_file_location("hls4ml_compare", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.compare(32, repeats=1)


def test_hwgen_csim_equals_sim_and_agrees_with_qonnx(result):
    hw = result["hwgen"]
    assert hw["csim_bit_exact"] and hw["csim_mismatches"] == 0
    assert hw["vs_qonnx"]["argmax_agreement"] >= 0.99, hw["vs_qonnx"]
    assert hw["vs_qonnx"]["exact_fraction"] == 1.0, hw["vs_qonnx"]  # ap_fixed<24,12> is exact on this model


def test_hls4ml_agrees_with_qonnx(result):
    if "error" in result["hls4ml"]:
        pytest.skip(f"hls4ml could not convert or compile: {result['hls4ml']['error']}")
    assert result["hls4ml"]["vs_qonnx"]["argmax_agreement"] >= 0.99, result["hls4ml"]["vs_qonnx"]
    assert result["hls4ml_vs_hwgen_exact_fraction"] == 1.0
