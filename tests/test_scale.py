"""m3vit_shape: M3ViT's real scale (D=192, 12 layers, 129 tokens, 6 MoE layers of 16 experts)."""

import sys

import numpy as np
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def m3vit():
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT / "models"))
    from m3vit_shape import ensure_m3vit_shape

    return ensure_m3vit_shape()


def test_m3vit_imports_and_matches_onnxruntime(m3vit):
    from hwgen.compare import compare
    from hwgen.frontend import load_graph

    g = load_graph(m3vit)
    s = g.summary()
    assert s["ops"]["moe"] == 6 and s["ops"]["layernorm"] == 25 and s["parameters"] > 17_000_000
    x = np.random.default_rng(0).standard_normal((2, 3, 128, 256)).astype(np.float32)
    r = compare(g, m3vit, x, layers=True)
    # every linear layer (the 192 expert layers included) within one LSB of onnxruntime fed the same inputs
    linear = [l for l in r.layers if l.op == "linear"]
    assert len(linear) == s["ops"]["linear"]
    for layer in linear:
        assert layer.within_1lsb >= 0.999, layer
    for layer in r.layers:
        if layer.op in ("reshape", "transpose", "gather"):
            assert layer.max_lsb == 0, layer


@pytest.mark.cpp
def test_m3vit_project_compiles_and_csim_is_bit_exact(m3vit, tmp_path):
    """hwgen build of the full M3ViT shape, g++ compiles its testbench, one image bit-exact."""
    from hwgen.codegen.csim import run_csim
    from hwgen.codegen.project import write_project
    from hwgen.design import Design
    from hwgen.frontend import load_graph

    g = load_graph(m3vit)
    out = tmp_path / "m3vit"
    write_project(g, Design(), out, str(m3vit))
    x = np.random.default_rng(1).standard_normal((1, 3, 128, 256)).astype(np.float32)
    report = run_csim(out, x)
    assert report.bit_exact, report.first_mismatch
