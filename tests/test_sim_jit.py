"""The simulator's compiled kernels (hwgen/numerics_jit.py) == its numpy reference, bit for bit.

Every op case of the C++ kernel tests (softmax, layernorm, lut, attention, moe, narrow types, linear,
patch_embed, matmul, add, mul, quantize, concat, reduce_mean) is simulated twice, compiled and numpy, with its
inputs stored narrow as the simulator stores them, and the codes and saturation counts must be equal.  The
bundled models run end to end both ways, every intermediate tensor compared.  Random Rescale cases cover
rounding modes, per-channel and per-row multipliers, two terms, offsets and saturation directly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hwgen import bundled, numerics, numerics_jit, sim
from hwgen.frontend import load_graph
from hwgen.numerics import Overflow, Rounding
from hwgen.ops import get
from hwgen.ops.base import SimStats

pytestmark = pytest.mark.skipif(not numerics_jit.enabled(), reason="numba is not installed (HWGEN_SIM_JIT=0?)")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kernel_harness  # noqa: E402
import test_kernels_linear as linear_cases  # noqa: E402
import test_kernels_nonlinear as nonlinear_cases  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["moe_vit_digits.qdq.dynamo.onnx", "vit_digits.qdq_u8.dynamo.onnx", "vit_digits.qonnx.onnx",
          "qkeras_digits.qonnx.onnx", "bert_digits.qdq.legacy.onnx"]


def _narrow_simulate(graph, node, feeds, stats):
    """The op's simulation with non-constant inputs stored as the simulator stores them (narrowest type)."""
    feeds, ins = list(feeds), []
    for name in node.inputs:
        t = graph.tensors[name] if name else None
        if t is None:
            ins.append(None)
        elif t.is_const:
            ins.append(t.data)
        else:
            q = t.qtype
            ins.append(np.asarray(feeds.pop(0)).astype(numerics.storage_dtype(q.qmin, q.qmax)))
    return get(node.op).simulate(graph, node, ins, stats)


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a.astype(np.int64), b.astype(np.int64))


@pytest.fixture(scope="module")
def op_cases():
    """(op, compiled outputs, numpy outputs, compiled stats, numpy stats) of every kernel-test case."""
    runs = []

    def both(graph, node, feeds, stats=None):
        s_np, s_jit = SimStats(), SimStats()
        with numerics_jit.disabled():
            ref = _narrow_simulate(graph, node, feeds, s_np)
        got = _narrow_simulate(graph, node, feeds, s_jit)
        runs.append((node.op, got, ref, s_jit, s_np))
        return kernel_harness.simulate(graph, node, feeds, stats)

    patch = pytest.MonkeyPatch()
    for module in (linear_cases, nonlinear_cases):
        patch.setattr(module, "simulate", both)
    try:
        for module, names in ((nonlinear_cases, ["softmax", "layernorm", "lut", "attention", "moe", "narrow"]),
                              (linear_cases, ["linear", "patch_embed", "matmul", "add", "mul", "quantize", "concat",
                                              "reduce_mean"])):
            for name in names:
                getattr(module, f"{name}_cases")(np.random.default_rng(7))
        _extra_layernorm_cases(np.random.default_rng(8))
    finally:
        patch.undo()
    return runs


def _extra_layernorm_cases(rng):
    """Corners of the rsqrt normalisation: no epsilon (a constant row gives V = 0, clamped to 1), one- and
    two-element rows, 16-bit inputs (large V: the table index drops low bits), uint16 codes with a zero point."""
    from hwgen.ir import QType

    make = nonlinear_cases._layernorm_case
    gamma = lambda n: (QType.integer(8, True, 0.01), rng.integers(40, 128, n))  # noqa: E731
    make("eps 0", rng, (5, 9), QType.integer(8, True, 0.03, 1), QType.integer(8, True, 0.02, 0), gamma(9), None,
         eps=0.0)
    make("n 1", rng, (6, 1), QType.integer(8, True, 0.03, 1), QType.integer(8, True, 0.02, 0), gamma(1), None,
         eps=0.0)
    make("n 2", rng, (8, 2), QType.integer(8, True, 0.03, 1), QType.integer(8, True, 0.02, 0), gamma(2), None,
         eps=0.0, spread=1)  # (a - b)**2 = 1: the smallest non-zero V
    make("i16", rng, (4, 40), QType.integer(16, True, 1e-3, 0), QType.integer(16, True, 1e-3, 5), gamma(40), None)
    make("u16", rng, (4, 24), QType.integer(16, False, 1e-3, 30000), QType.integer(8, True, 0.02, 0), gamma(24), None,
         eps=0.0, spread=2)


def test_op_cases_compiled_equal_numpy(op_cases):
    ops = {r[0] for r in op_cases}
    assert {"softmax", "layernorm", "lut", "linear", "add", "mul", "matmul", "moe"} <= ops, ops
    for op, got, ref, s_jit, s_np in op_cases:
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            assert _same(g, r), op
        assert s_jit.saturations == s_np.saturations and s_jit.elements == s_np.elements, op


@pytest.mark.parametrize("model", MODELS)
def test_models_compiled_equal_numpy(model, monkeypatch):
    monkeypatch.setenv("HWGEN_SIM_JIT", "1")  # a small run: `auto` would take the numpy versions
    path = ROOT / "models" / "onnx" / model
    graph = load_graph(str(path))
    x = bundled.digits_test_inputs(path)[0][:40]
    assert numerics_jit.mode() == "on"
    got = sim.run(graph, x, keep=True, workers=1)
    with numerics_jit.disabled():
        ref = sim.run(load_graph(str(path)), x, keep=True, workers=1)
    assert got.tensors.keys() == ref.tensors.keys() and len(got.tensors) > 10
    for name in ref.tensors:
        assert _same(got.tensors[name], ref.tensors[name]), name
    for name in ref.outputs:
        assert _same(got.outputs[name], ref.outputs[name]), name
    assert got.stats.saturations == ref.stats.saturations


ROUNDINGS = [Rounding.TRN, Rounding.RND, Rounding.RND_CONV]


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("case", ["scalar", "per_channel", "per_row", "two_terms", "intermediate"])
def test_rescale_compiled_equal_numpy(rounding, case):
    rng = np.random.default_rng(hash((case, rounding.value)) % 2**32)
    shape = (6, 5, 12)
    acc = rng.integers(-(1 << 20), 1 << 20, size=shape).astype(np.float64)
    acc[0, 0, :4] = [0, 1 << 11, -(1 << 11), 3 << 10]  # exact ties for shift 12
    mult = np.int64(1 << 12)
    bits, zp, offset, terms, bounds = 8, -3, 0, [acc], [1 << 20]
    mults = [mult]
    shift = 12
    if case == "per_channel":
        mults = [rng.integers(1 << 10, 1 << 14, size=12)]
        offset = rng.integers(-(1 << 20), 1 << 20, size=12)
        shift = 20
    elif case == "per_row":
        mults = [rng.integers(1 << 10, 1 << 14, size=shape[:-1] + (1,))]
        shift = rng.integers(16, 22, size=shape[:-1] + (1,))
        bounds = [None]
    elif case == "two_terms":
        other = rng.integers(-128, 128, size=shape).astype(np.int8)
        terms, mults, bounds = [acc, other], [mult, np.int64(3 << 10)], [1 << 20, 128]
    elif case == "intermediate":
        bits = None
    r = numerics.Rescale(mults, shift, zp, bits, True, rounding, Overflow.SAT, bounds, offset)
    for keep_float in (False, True):
        got, n_got = r(terms, keep_float=keep_float)
        with numerics_jit.disabled():
            ref, n_ref = r(terms, keep_float=keep_float)
        assert _same(got, ref) and n_got == n_ref
        if bits is not None:
            assert n_ref > 0  # saturation happens and is counted the same


def test_auto_mode_uses_the_kernels_only_for_large_runs(monkeypatch):
    monkeypatch.delenv("HWGEN_SIM_JIT", raising=False)
    assert numerics_jit.mode() == "auto"
    assert not numerics_jit.wanted(numerics_jit.AUTO_MIN_WORK - 1) and numerics_jit.wanted(numerics_jit.AUTO_MIN_WORK)
    monkeypatch.setenv("HWGEN_SIM_JIT", "0")
    assert not numerics_jit.wanted(10**12) and not numerics_jit.enabled()
    monkeypatch.setenv("HWGEN_SIM_JIT", "1")
    assert numerics_jit.wanted(1) and numerics_jit.enabled()
    with numerics_jit.disabled():
        assert not numerics_jit.enabled()
    assert numerics_jit.enabled()
