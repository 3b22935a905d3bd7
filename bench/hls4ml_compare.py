"""hls4ml and hwgen side by side, in one run, on the same QONNX model and the same digits test images.

The model: a quantised MLP 64 -> 32 ReLU -> 10, trained here on the digits training split (sklearn
MLPClassifier, seeded, about a second), written with onnx.helper as a QONNX graph: Quant nodes on the input
(u8), the weights (i8), the biases (i16), the hidden activation (u8) and the logits (i16), every scale a power
of two and every zero point 0 (hls4ml's simplest Quant path). `qonnx.util.cleanup.cleanup_model` cleans it (no
Conv or Gemm, so hls4ml's other recommended transforms, channels-last and GemmToMatMul, do nothing here); both
tools and the reference read that one cleaned file.

Measured, for each tool:
  1. conversion time by phase. hls4ml: config_from_onnx_model + convert_from_onnx_model, write, compile
     (hls_model.compile(): build_lib.sh, g++ -O3, two units one after the other; it re-writes the project
     first). hwgen: frontend.load_graph, codegen.project.write_project, g++ -O2 compile of the testbench
     (a fresh binary cache, so the compile is real; the time includes a one-image run).
  2. C simulation speed, images/s, best of 3. hls4ml: hls_model.predict on the compiled .so (io_parallel,
     one ctypes call per image). hwgen: the generated testbench binary (g++ -O2; one process, inputs read
     from a file, outputs written to one), and hwgen's Python bit-accurate simulator (sim.run, batch 256).
     hwgen's project uses Design(regime="unrolled"), the counterpart of io_parallel with reuse factor 1
     (--regime streaming for hwgen's default dataflow regime).
  3. agreement with qonnx's executor (qonnx.core.onnx_exec.execute_onnx, one image at a time): max abs
     error, fraction of outputs exactly equal on the output grid (codes = value / output scale), argmax
     agreement, accuracy against the labels. hwgen's C simulation equals its simulator bit for bit (asserted).

Same precision on both sides: the quantised tensors carry their Quant types; the tensors the QONNX graph
leaves in float (MatMul and Add outputs) get ap_fixed<24,12> (TRN, WRAP) in both: hwgen
Precision(default="ap_fixed<24,12>"); hls4ml config_from_onnx_model(model, granularity='name',
backend='Vitis', default_precision='fixed<24,12>', default_reuse_factor=1), io_parallel, Latency strategy,
where hls4ml infers the Dense accumulators ('auto') and folds the Quant after ReLU and after the last Add into
the layer result types. Both are exact on this model. (hwgen fuses each MatMul + bias Add [+ ReLU] + Quant
into one integer `linear` layer, so no tensor is left to the precision config: its default, ap_fixed<16,6>,
is exact here too, see notes.hwgen_default_precision in the JSON.)

LayerNorm: hls4ml 1.3's ONNX/QONNX frontend has no handler for LayerNormalization, nor for the ops of its
decomposed form (ReduceMean, Pow, Sqrt), so an MLP + LayerNorm block cannot be converted; the script checks
this each run (notes.hls4ml_layernorm) and compares the MLP alone.

    python bench/hls4ml_compare.py [--images 540] [--regime unrolled|streaming]

Writes bench/results/hls4ml_compare.json; the projects go to a temporary directory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from _results import save

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "models" / "data"
HIDDEN = 32
INPUT_SCALE = 2.0**-4  # the pixels are k/16, k = 0..16
HWGEN_PRECISION = "ap_fixed<24,12>"
HLS4ML_PRECISION = "fixed<24,12>"
QONNX_DOMAIN = "qonnx.custom_op.general"


# ---- model --------------------------------------------------------------------------------------

def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The split of models/build_digits_models.py, flattened to 64 pixels; the test half is the saved one."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0).reshape(-1, 64)
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=0.3, random_state=0, stratify=digits.target)
    assert np.array_equal(xte, np.load(DATA / "digits_test_x.npy").reshape(-1, 64)), "digits split changed"
    return xtr, ytr, xte, yte


def train_mlp(x: np.ndarray, y: np.ndarray):
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 400 epochs are plenty for 97% here
        return MLPClassifier(hidden_layer_sizes=(HIDDEN,), random_state=0, max_iter=400).fit(x, y)


def pow2_scale(max_abs: float, max_code: int) -> float:
    return float(2.0 ** np.ceil(np.log2(max_abs / max_code)))


class QonnxBuilder:
    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def quant(self, src: str, dst: str, scale: float, bits: int, signed: bool) -> str:
        params = [self.const(f"{dst}_{p}", v) for p, v in (("scale", scale), ("zeropt", 0.0), ("bits", bits))]
        self.nodes.append(helper.make_node("Quant", [src, *params], [dst], name=f"quant_{dst}", domain=QONNX_DOMAIN,
                                           signed=int(signed), narrow=0, rounding_mode="ROUND"))
        return dst

    def op(self, op_type: str, inputs: list[str], out: str) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out))
        return out


def build_qonnx(clf, calib_x: np.ndarray) -> onnx.ModelProto:
    """Quant(x) -> MatMul(Quant W1) -> Add(Quant b1) -> Relu -> Quant -> MatMul(Quant W2) -> Add(Quant b2) -> Quant."""
    (w1, w2), (b1, b2) = clf.coefs_, clf.intercepts_
    w1_scale, w2_scale = pow2_scale(np.abs(w1).max(), 127), pow2_scale(np.abs(w2).max(), 127)
    hidden = np.maximum(calib_x @ w1 + b1, 0)
    hidden_scale = pow2_scale(hidden.max(), 255)
    logits_scale = pow2_scale(np.abs(hidden @ w2 + b2).max(), 2**15 - 1)
    q = QonnxBuilder()
    x = q.quant("x", "x_q", INPUT_SCALE, 8, signed=False)
    w1q = q.quant(q.const("w1", w1), "w1_q", w1_scale, 8, signed=True)
    b1q = q.quant(q.const("b1", b1), "b1_q", INPUT_SCALE * w1_scale, 16, signed=True)  # on the accumulator grid
    h = q.op("Relu", [q.op("Add", [q.op("MatMul", [x, w1q], "fc1"), b1q], "fc1_bias")], "relu")
    h = q.quant(h, "hidden_q", hidden_scale, 8, signed=False)
    w2q = q.quant(q.const("w2", w2), "w2_q", w2_scale, 8, signed=True)
    b2q = q.quant(q.const("b2", b2), "b2_q", hidden_scale * w2_scale, 16, signed=True)
    out = q.op("Add", [q.op("MatMul", [h, w2q], "fc2"), b2q], "fc2_bias")
    q.quant(out, "logits", logits_scale, 16, signed=True)
    graph = helper.make_graph(q.nodes, "mlp_digits", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], q.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
    model.ir_version = 10  # onnxruntime (under qonnx's executor) refuses newer IR versions
    return model


def clean_qonnx(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    wrapper = cleanup_model(ModelWrapper(model))  # shape inference, constant folding, readable names
    wrapper.model.ir_version = 10
    wrapper.save(str(path))
    return wrapper.model


def output_scale(model: onnx.ModelProto) -> float:
    quant = next(n for n in model.graph.node if n.output[0] == model.graph.output[0].name)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return float(inits[quant.input[1]])


# ---- helpers ------------------------------------------------------------------------------------

@contextlib.contextmanager
def quiet():
    """hls4ml prints its topology and config; keep the table readable."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t


def best_of(repeats: int, fn, *args, **kwargs):
    best, result = float("inf"), None
    for _ in range(repeats):
        result, seconds = timed(fn, *args, **kwargs)
        best = min(best, seconds)
    return result, best


# ---- the three runners --------------------------------------------------------------------------

def run_qonnx_reference(path: Path, x: np.ndarray) -> dict:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    model = ModelWrapper(str(path))
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    out, seconds = timed(lambda: np.concatenate([execute_onnx(model, {iname: xi[None]})[oname] for xi in x]))
    return {"outputs": out, "images_per_s": len(x) / seconds}


def run_hls4ml(model: onnx.ModelProto, x: np.ndarray, workdir: Path, repeats: int) -> dict:
    import hls4ml

    def convert():
        config = hls4ml.utils.config_from_onnx_model(model, granularity="name", backend="Vitis",
                                                     default_precision=HLS4ML_PRECISION, default_reuse_factor=1)
        return hls4ml.converters.convert_from_onnx_model(model, output_dir=str(workdir / "hls4ml_prj"),
                                                         backend="Vitis", io_type="io_parallel", hls_config=config)

    with quiet():
        hls_model, t_convert = timed(convert)
        _, t_write = timed(hls_model.write)
        _, t_compile = timed(hls_model.compile)
        xc = np.ascontiguousarray(x, dtype=np.float32)
        out, t_predict = best_of(repeats, hls_model.predict, xc)
    types = {layer.name: {k: str(v.precision) for k, v in layer.types.items()} for layer in hls_model.get_layers()}
    return {"outputs": np.asarray(out).reshape(len(x), -1),
            "seconds": {"convert": t_convert, "write": t_write, "compile": t_compile},
            "predict_images_per_s": len(x) / t_predict, "layer_types": types}


def run_hwgen(path: Path, x: np.ndarray, workdir: Path, repeats: int, regime: str) -> dict:
    from hwgen import sim
    from hwgen.codegen import csim, gxx
    from hwgen.codegen.project import write_project
    from hwgen.design import Design
    from hwgen.frontend import load_graph
    from hwgen.precision import Precision

    graph, t_load = timed(load_graph, path, Precision(default=HWGEN_PRECISION))
    out = workdir / "hwgen_prj"
    _, t_write = timed(write_project, graph, Design(regime=regime).validate(), out, str(path))
    manifest = json.loads((out / "hwgen_project.json").read_text())
    # run_csim reloads the model with the Precision the manifest records (the one it was built with)
    with mock.patch.dict(os.environ, {"HWGEN_GXX_CACHE": str(workdir / "gxx_cache")}):
        first = csim.run_csim(out, x[:1], opt="-O2")  # fresh cache: a real compile, plus one image
        report = csim.run_csim(out, x, opt="-O2")  # the cached binary on every image, checked against sim
        assert first.bit_exact and report.bit_exact, report.first_mismatch
        top = manifest["top"]
        sources = [out / "firmware" / f"{top}.cpp", out / "tb" / f"{top}_test.cpp"]
        incs = [out / "firmware", out / "firmware" / "kernels"]
        proc, t_csim = best_of(repeats, gxx.compile_and_run, sources, out, args=[str(out)], opt="-O2",
                               include_dirs=incs)
        assert proc.returncode == 0, proc.stderr
    sim.run(graph, x[:4])  # warm-up
    result, t_sim = best_of(repeats, sim.run, graph, x, batch_size=256)
    real = sim.dequantize_outputs(graph, result.outputs)[graph.outputs[0]].reshape(len(x), -1)
    return {"outputs": real, "csim_bit_exact": report.bit_exact, "csim_mismatches": report.mismatches,
            "seconds": {"load_graph": t_load, "write_project": t_write, "compile": first.seconds_run},
            "csim_images_per_s": len(x) / t_csim, "sim_images_per_s": len(x) / t_sim}


# ---- comparison ---------------------------------------------------------------------------------

def agreement(out: np.ndarray, ref: np.ndarray, labels: np.ndarray, scale: float) -> dict:
    codes, ref_codes = np.rint(out / scale).astype(np.int64), np.rint(ref / scale).astype(np.int64)
    return {"max_abs_error": float(np.abs(out - ref).max()), "exact_fraction": float(np.mean(codes == ref_codes)),
            "argmax_agreement": float(np.mean(out.argmax(1) == ref.argmax(1))),
            "accuracy": float(np.mean(out.argmax(1) == labels))}


def hls4ml_layernorm_probe() -> str:
    """Try hls4ml's ONNX parser on Quant -> LayerNormalization; report what it says."""
    from hls4ml.converters.onnx_to_hls import get_supported_onnx_layers, parse_onnx_model

    q = QonnxBuilder()
    q.quant("x", "x_q", INPUT_SCALE, 8, signed=True)
    node = helper.make_node("LayerNormalization", ["x_q", q.const("gamma", np.ones(8)), q.const("beta", np.zeros(8))],
                            ["y"], name="ln", axis=-1)
    graph = helper.make_graph(q.nodes + [node], "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], q.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX_DOMAIN, 1)])
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(model)).model  # as for the MLP: shapes on every tensor
    missing = [op for op in ("LayerNormalization", "ReduceMean", "Pow", "Sqrt") if op not in get_supported_onnx_layers()]
    try:
        with quiet():
            parse_onnx_model(model)
        outcome = "parsed"
    except Exception as exc:  # hls4ml raises a bare Exception for unsupported ops
        outcome = str(exc).strip()
    return f"{outcome} (ops without an ONNX handler in hls4ml: {', '.join(missing) or 'none'})"


def hwgen_default_precision(path: Path, x: np.ndarray, ref: np.ndarray, labels, scale: float) -> dict:
    from hwgen import sim
    from hwgen.frontend import load_graph

    graph = load_graph(path)
    real = sim.dequantize_outputs(graph, sim.run(graph, x).outputs)[graph.outputs[0]].reshape(len(x), -1)
    return agreement(real, ref, labels, scale)


def versions() -> dict:
    import importlib.metadata as md

    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {p: md.version(p) for p in ("hls4ml", "qonnx", "onnx", "numpy")} | {"g++": gxx}


def compare(images: int, repeats: int = 3, regime: str = "unrolled") -> dict:
    xtr, ytr, xte, yte = digits_split()
    n = min(images, len(xte))
    x, labels = xte[:n], yte[:n]
    (clf, t_train) = timed(train_mlp, xtr, ytr)
    with tempfile.TemporaryDirectory(prefix="hls4ml_compare_") as tmp:
        workdir = Path(tmp)
        path = workdir / "mlp_digits.qonnx.onnx"
        model, t_clean = timed(clean_qonnx, build_qonnx(clf, xtr), path)
        scale = output_scale(model)
        ref = run_qonnx_reference(path, x)
        hw = run_hwgen(path, x, workdir, repeats, regime)
        try:
            h4 = run_hls4ml(model, x, workdir, repeats)
        except Exception as exc:  # a missing compiler or an hls4ml regression: report, keep hwgen's figures
            h4 = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        notes = {"hls4ml_layernorm": hls4ml_layernorm_probe(),
                 "hwgen_default_precision": hwgen_default_precision(path, x, ref["outputs"], labels, scale)}
    res = {"images": n, "model": f"QONNX MLP 64-{HIDDEN}-10, u8 input, i8 weights, i16 biases, u8 hidden, i16 logits",
           "output_scale": scale, "precision": {"hwgen": HWGEN_PRECISION, "hls4ml": HLS4ML_PRECISION},
           "architecture": {"hwgen": f"Design(regime={regime!r})", "hls4ml": "io_parallel, Latency, reuse factor 1"},
           "train_seconds": t_train, "qonnx_cleanup_seconds": t_clean, "float_accuracy": float(clf.score(x, labels)),
           "qonnx_reference": {"images_per_s": ref["images_per_s"], "accuracy": float(np.mean(ref["outputs"].argmax(1) == labels))},
           "hwgen": {k: v for k, v in hw.items() if k != "outputs"}, "notes": notes, "versions": versions()}
    res["hwgen"]["vs_qonnx"] = agreement(hw["outputs"], ref["outputs"], labels, scale)
    if "error" in h4:
        res["hls4ml"] = h4
    else:
        res["hls4ml"] = {k: v for k, v in h4.items() if k != "outputs"}
        res["hls4ml"]["vs_qonnx"] = agreement(h4["outputs"], ref["outputs"], labels, scale)
        res["hls4ml_vs_hwgen_exact_fraction"] = agreement(h4["outputs"], hw["outputs"], labels, scale)["exact_fraction"]
    return res


# ---- report -------------------------------------------------------------------------------------

def print_table(res: dict) -> None:
    hw, h4 = res["hwgen"], res["hls4ml"]
    rows = []
    s = hw["seconds"]
    rows.append(("conversion: import / convert (s)", f"{h4['seconds']['convert']:.3f}" if "seconds" in h4 else "-",
                 f"{s['load_graph']:.3f}"))
    rows.append(("conversion: write project (s)", f"{h4['seconds']['write']:.3f}" if "seconds" in h4 else "-",
                 f"{s['write_project']:.3f}"))
    rows.append(("conversion: g++ compile (s)", f"{h4['seconds']['compile']:.2f}" if "seconds" in h4 else "-",
                 f"{s['compile']:.2f}"))
    rows.append(("conversion: total (s)", f"{sum(h4['seconds'].values()):.2f}" if "seconds" in h4 else "-",
                 f"{sum(s.values()):.2f}"))
    rows.append(("C simulation (images/s)", f"{h4['predict_images_per_s']:.0f}" if "seconds" in h4 else "-",
                 f"{hw['csim_images_per_s']:.0f}"))
    rows.append(("Python bit-accurate simulator (images/s)", "-", f"{hw['sim_images_per_s']:.0f}"))
    for key, label, fmt in (("max_abs_error", "vs QONNX: max abs error", "{:.3g}"),
                            ("exact_fraction", "vs QONNX: outputs exactly equal", "{:.2%}"),
                            ("argmax_agreement", "vs QONNX: argmax agreement", "{:.2%}"),
                            ("accuracy", "accuracy vs labels", "{:.2%}")):
        rows.append((label, fmt.format(h4["vs_qonnx"][key]) if "vs_qonnx" in h4 else "-", fmt.format(hw["vs_qonnx"][key])))
    rows.append(("C simulation == own simulator", "-", "bit-exact" if hw["csim_bit_exact"] else "MISMATCH"))
    print(f"{res['model']}; {res['images']} digits test images; float-left tensors: "
          f"hwgen {res['precision']['hwgen']}, hls4ml {res['precision']['hls4ml']}")
    width = max(len(r[0]) for r in rows)
    print(f"  {'':{width}}  {'hls4ml 1.3':>12}  {'hwgen':>12}")
    for label, a, b in rows:
        print(f"  {label:{width}}  {a:>12}  {b:>12}")
    ref = res["qonnx_reference"]
    print(f"  QONNX executor: {ref['images_per_s']:.0f} images/s, accuracy {ref['accuracy']:.2%}")
    if "error" in h4:
        print(f"  hls4ml failed: {h4['error']}")
    else:
        print(f"  hls4ml vs hwgen outputs exactly equal: {res['hls4ml_vs_hwgen_exact_fraction']:.2%}")
    d = res["notes"]["hwgen_default_precision"]
    print(f"  hwgen with its default precision ap_fixed<16,6>: {d['exact_fraction']:.2%} exact, "
          f"max error {d['max_abs_error']:.3g}, argmax {d['argmax_agreement']:.2%}")
    print(f"  hls4ml + LayerNorm: {res['notes']['hls4ml_layernorm']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=540, help="digits test images (at most 540)")
    ap.add_argument("--regime", choices=("unrolled", "streaming"), default="unrolled",
                    help="hwgen's Design regime (unrolled is the counterpart of hls4ml's io_parallel, RF 1)")
    args = ap.parse_args()
    res = compare(args.images, regime=args.regime)
    print_table(res)
    save("hls4ml_compare", res)


if __name__ == "__main__":
    main()
