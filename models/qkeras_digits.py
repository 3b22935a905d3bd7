"""A QKeras transformer on the sklearn digits, exported to QONNX with qonnx 0.4.0's converter.

Runs in the QKeras environment (`make qkeras-env`), from the repo root:

    .venv-qkeras/bin/python models/qkeras_digits.py             # train, export, update models/README.md
    .venv-qkeras/bin/python models/qkeras_digits.py --out-dir /tmp/q --no-readme

Writes <out-dir>/qkeras_digits.qonnx.onnx and <h5> (the trained QKeras model, which
`hwgen import-qkeras` converts to the same file). The model is the largest transformer-style subset that
the converter turns into a valid QONNX graph; models/README.md ("QKeras digits") lists what it leaves
out and why.

    pixels [1,8,8] -> 16 tokens of 2x2 patches [16,4]
    embed   QDense(16)            patch projection (shared by all patches)
    tokmix  QDense(16) over the token axis (Permute before and after): mixes positions; stands in for
            the learned position embedding, which the converter cannot take (custom layer)
    2 heads of 8: QDense q/k/v, q * 1/16 (Rescaling), Dot(q, k^T), Softmax,
            QActivation(quantized_relu) on the probabilities, Dot(p, v)
    proj QDense(16) on the concatenated heads, residual Add
    MLP  QDense(32, quantized_relu) -> QDense(16), residual Add
    GlobalAveragePooling1D over tokens, head QDense(10) with bias

Token-wise QDense layers have no bias and every activation quantizer sits on a QDense or is a
quantized_relu QActivation, because those are the only placements the converter handles correctly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

D, HEADS, DH, MLP, TOKENS = 16, 2, 8, 32, 16
Q_SCALE = 1 / 16        # attention temperature, applied to q (a power of two: exact in any fixed-point type)
NAME = "qkeras_digits"


# --------------------------------------------------------------------------- data
def load_data():
    """The split of models/build_digits_models.py: pixels / 16, [N, 1, 8, 8]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


# --------------------------------------------------------------------------- model
def build(quantized: bool):
    """The QKeras model (quantized=True) or its float twin (same layer names and weight shapes)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    L = tf.keras.layers

    def bits(b, integer, signed=True):
        return quantized_bits(b, integer, keep_negative=signed, alpha=1)

    def dense(units, name, act=None, bias=False, float_act=None):
        if not quantized:
            return L.Dense(units, use_bias=bias, activation=float_act, name=name)
        return QDense(units, use_bias=bias, name=name, kernel_quantizer=bits(8, 1),
                      bias_quantizer=bits(8, 3) if bias else None, activation=act or bits(8, 3))

    inp = L.Input((1, 8, 8), name="pixels")
    x = L.Reshape((4, 2, 4, 2), name="rows")(inp)
    x = L.Permute((1, 3, 2, 4), name="patches")(x)
    x = L.Reshape((TOKENS, 4), name="tokens")(x)
    h = dense(D, "embed")(x)
    h = L.Permute((2, 1), name="to_channels")(h)
    h = dense(TOKENS, "tokmix")(h)
    h = L.Permute((2, 1), name="to_tokens")(h)
    heads = []
    for i in range(HEADS):
        q = dense(DH, f"query{i}")(h)
        k = dense(DH, f"key{i}")(h)
        v = dense(DH, f"value{i}")(h)
        q = L.Rescaling(Q_SCALE, name=f"temperature{i}")(q)
        s = L.Dot(axes=(2, 2), name=f"scores{i}")([q, k])
        p = L.Softmax(name=f"softmax{i}")(s)
        if quantized:
            p = QActivation(quantized_relu(8, 0), name=f"probs{i}")(p)
        heads.append(L.Dot(axes=(2, 1), name=f"context{i}")([p, v]))
    a = dense(D, "proj")(L.Concatenate(name="concat")(heads))
    h = L.Add(name="residual1")([h, a])
    m = dense(MLP, "fc1", act=quantized_relu(8, 3), float_act="relu")(h)
    m = dense(D, "fc2")(m)
    h = L.Add(name="residual2")([h, m])
    g = L.GlobalAveragePooling1D(name="pool")(h)
    out = dense(10, "head", act=bits(8, 4), bias=True)(g)
    return tf.keras.Model(inp, out, name=NAME)


def train(model, xtr, ytr, epochs: int, lr: float, batch: int = 32) -> float:
    import tensorflow as tf

    steps = epochs * int(np.ceil(len(xtr) / batch))
    model.compile(tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(lr, steps)),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(xtr, ytr, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    return time.perf_counter() - t0


def accuracy(model, x, y) -> float:
    return float(np.mean(model.predict(x, verbose=0).argmax(-1) == y))


# --------------------------------------------------------------------------- evaluation
def onnxruntime_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """onnxruntime on the QONNX file with Quant rewritten as Q/DQ (hwgen.reference.qonnx_as_qdq)."""
    from hwgen.reference import run_onnxruntime

    out = run_onnxruntime(path, x)
    return next(iter(out.values())).reshape(len(x), -1)


def hwgen_simulate(path: Path, xte_path: Path, yte_path: Path) -> dict | None:
    """The main environment's `hwgen simulate` (bit-accurate simulator vs onnxruntime), if it exists."""
    hwgen = ROOT / ".venv" / "bin" / "hwgen"
    if not hwgen.exists():
        return None
    out = path.with_suffix(".simulate.json")
    proc = subprocess.run([str(hwgen), "simulate", str(path), "--input", str(xte_path), "--labels", str(yte_path),
                           "--per-layer", "--json", str(out)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        print(f"hwgen simulate failed:\n{proc.stderr[-2000:]}")
        return None
    report = json.loads(out.read_text())
    out.unlink()
    return report


def update_readme(text: str) -> None:
    """Replace (or append) this script's section of models/README.md; the rest is someone else's."""
    from readme_sections import write_section

    write_section(NAME, text)


def readme_text(r: dict) -> str:
    sim = r.get("simulate")
    sim_rows = ""
    if sim:
        lin = [l for l in sim["layers"] if l["op"] in ("linear", "matmul")]
        elems = sum(l["elements"] for l in lin)
        within = sum(l["within_1lsb"] * l["elements"] for l in lin) / max(elems, 1)
        soft = [l for l in sim["layers"] if l["op"] == "softmax"]
        sim_rows = (f"| hwgen simulator (main .venv) | {sim['accuracy_sim']:.4f} | argmax agreement with onnxruntime "
                    f"{sim['argmax_agreement']:.4f}; per layer (each op fed onnxruntime's inputs): linear/matmul "
                    f"outputs {within:.4%} of {elems:,} elements within 1 LSB (max {max(l['max_lsb'] for l in lin)}), "
                    f"softmax (default ap_fixed<16,6> output) max {max((l['max_lsb'] for l in soft), default=0)} LSB |\n")
    return f"""## QKeras digits (`qkeras_digits.qonnx.onnx`)

A QKeras 0.9.0 transformer-style model on the same digits split, converted with qonnx 0.4.0's
`qonnx.converters.from_keras` (tf2onnx 1.16.1, opset {r['opset']}) inside `.venv-qkeras`
(`make qkeras-env`; TensorFlow {r['versions']['tensorflow']}, numpy {r['versions']['numpy']}, onnx
{r['versions']['onnx']}). Rebuild: `.venv-qkeras/bin/python models/qkeras_digits.py` (also writes
`checkpoints/qkeras_digits.h5`; `.venv-qkeras/bin/hwgen import-qkeras checkpoints/qkeras_digits.h5 -o
x.onnx` converts it the same way). Input `pixels` float32 [1,1,8,8], output [1,10]. Training: float twin
{r['epochs_float']} epochs, then quantization-aware {r['epochs_qat']} epochs (Adam, cosine decay, batch 32,
seed {r['seed']}), {r['train_seconds']:.0f} s on this machine's CPU. {r['params']:,} parameters.

| model | test accuracy | notes |
|---|---|---|
| float twin (Keras, same layers without quantizers) | {r['acc_float']:.4f} | |
| QKeras (Keras, fake quantization) | {r['acc_qkeras']:.4f} | |
| QONNX, qonnx 0.4.0 executor | {r['acc_qonnx']:.4f} | vs QKeras: argmax agreement {r['qonnx_vs_keras_agree']:.4f}, max abs logit diff {r['qonnx_vs_keras_maxdiff']:.3g} |
| QONNX, onnxruntime (Quant as Q/DQ, hwgen.reference) | {r['acc_ort']:.4f} | vs qonnx executor: max abs logit diff {r['ort_vs_qonnx_maxdiff']:.3g} |
{sim_rows}
Ops: `{r['ops']}`

What the QKeras -> QONNX path (QKeras 0.9.0, qonnx 0.4.0, tf2onnx 1.16.1) cannot express, found by
converting (`.venv-qkeras/bin/python models/qkeras_digits.py --probe` reproduces each case); the model
above is the largest transformer subset that converts to a graph that runs and means what Keras means:

* **Learned position embedding**: a custom Keras layer (`x + self.add_weight(...)`) is refused:
  `Exception: Cannot create Keras layer from QKeras class PositionEmbedding` (the converter rebuilds
  every layer from `tf.keras.layers` by class name). Without position information the model is a bag
  of patches (about 60% float accuracy), so a token-mixing `QDense` over the token axis (`tokmix`)
  stands in for it.
* **`QActivation(quantized_bits(...))`** is silently dropped, mid-graph and at the output alike: the
  converter turns it into `Activation("linear")`, which leaves no TensorFlow op for its Quant handler
  to attach to (probe: no Quant node, QONNX vs Keras max |diff| 0.1). So the attention scores, the
  context, the residual sums and the pooled vector carry no Quant: they are float in the QONNX graph
  and hwgen gives them its default `ap_fixed<16,6>`. `q` is scaled by 1/16 before Q*K^T so that the
  scores stay inside that range by construction (|q| <= 8/16, |k| <= 8, 8 terms).
  `QActivation(quantized_relu(...))` works (Relu + Quant, wrapped in a Transpose pair), which is
  how the softmax probabilities are quantized (unsigned 8 bit, scale 1/256).
* **`QDense` with a bias and an activation quantizer on a 3-D (token) input** gives a graph that does
  not run: the MatMul handler puts the activation Quant before the bias, then the BiasAdd handler,
  meaning to bypass that Quant, bypasses the Reshape back to 3-D instead (qonnx executor:
  `Invalid rank for input: Quant_3_out0 Got: 2 Expected: 3`). With a zero bias tf2onnx removes the
  Add and the bias silently disappears. The token-wise `QDense` layers here have no bias; only the
  head (2-D input) has one. On 2-D inputs bias + activation convert correctly.
* **LayerNormalization**: Keras's exports (opset 13 and 17) as Reshape -> ReduceMean/Sub/
  ReduceSumSquare/Div -> BatchNormalization with computed statistics -> Reshape -> Mul -> Add, which
  hwgen does not lower (`ReduceSumSquare is not supported`; BatchNormalization neither); QKeras has
  no quantized normalization and a quantized_bits QActivation after it would be dropped. Left out.
* Activation-activation matmuls (`Dot`), Softmax, Rescaling, Concatenate, Add and pooling are plain
  Keras layers: they convert (Transpose + MatMul, Softmax, Mul, Concat, Add, ReduceMean) but QKeras
  has no quantized versions of them.
* QKeras quantizers need a unit scale (`alpha=1` or None; with 'auto'/'auto_po2' the converter fails
  its assertion `Non-unity alpha is not yet supported`) and no `symmetric=1`
  (it becomes a narrow-range Quant, which hwgen does not take yet); >8-bit activation Quants would
  need int16 QuantizeLinear (opset 21) in hwgen's onnxruntime reference, so all are 8 bit.
* Converter output repaired by `hwgen import-qkeras` (`hwgen/commands/import_qkeras.py`): the opset
  import for `qonnx.custom_op.general` is missing (onnx.checker: `No opset import for domain
  'qonnx.custom_op.general'`); unknown dimensions are written as 0 in value_info and in the graph
  output, so shapes are re-inferred with qonnx's InferShapes; IR version capped at 10.
"""


# --------------------------------------------------------------------------- probes
def probe() -> None:
    """Convert one small model per construct the digits model avoids, and print what the converter does
    (the evidence behind models/README.md's list)."""
    import collections

    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits
    from qonnx.converters import from_keras

    from hwgen.commands.import_qkeras import check_against_keras, convert
    from hwgen.errors import HwgenError

    L = tf.keras.layers

    def qdense(units, name, **kw):
        return QDense(units, kernel_quantizer=quantized_bits(8, 1, alpha=1), name=name, **kw)

    class PositionEmbedding(L.Layer):
        def build(self, shape):
            self.pos = self.add_weight(name="pos", shape=(1,) + tuple(shape[1:]), initializer="ones")

        def call(self, x):
            return x + self.pos

    def position_embedding(inp):
        return PositionEmbedding(name="pos")(qdense(8, "d1", use_bias=False)(inp))

    def qactivation_bits(inp):
        h = qdense(8, "d1", use_bias=False)(inp)
        h = QActivation(quantized_bits(8, 3, alpha=1), name="qa_mid")(h)
        h = qdense(8, "d2", use_bias=False)(h)
        return QActivation(quantized_bits(8, 3, alpha=1), name="qa_out")(h)

    def bias_and_activation_on_tokens(inp):
        h = qdense(8, "d1", bias_quantizer=quantized_bits(8, 3, alpha=1), activation=quantized_bits(8, 3, alpha=1),
                   bias_initializer="ones")(inp)
        return L.Permute((2, 1))(h)

    def layernorm(inp):
        return qdense(8, "d1", use_bias=False, activation=quantized_bits(8, 3, alpha=1))(L.LayerNormalization(name="ln")(inp))

    x = np.random.default_rng(0).uniform(size=(4, TOKENS, 4)).astype(np.float32)
    for case in (position_embedding, qactivation_bits, bias_and_activation_on_tokens, layernorm):
        inp = L.Input((TOKENS, 4))
        model = tf.keras.Model(inp, case(inp))
        print(f"== {case.__name__}")
        try:
            raw, _ = from_keras(model, opset=13)
            print("   converter ops:", dict(collections.Counter(n.op_type for n in raw.graph.node)))
            chk = check_against_keras(model, convert(model), x)
            print(f"   converts; QONNX vs Keras max |diff| {chk['max_abs_diff']:.3g}")
        except HwgenError as exc:
            print(f"   hwgen import-qkeras: {exc}")
        except Exception as exc:
            print(f"   converter: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}")


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=str(HERE / "onnx"))
    ap.add_argument("--h5", default=str(HERE / "checkpoints" / f"{NAME}.h5"))
    ap.add_argument("--epochs-float", type=int, default=40)
    ap.add_argument("--epochs-qat", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--qonnx-n", type=int, default=100, help="test images run with qonnx's (slow) executor")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--probe", action="store_true", help="only show what the converter does with the constructs "
                    "this model avoids")
    args = ap.parse_args()
    if args.probe:
        probe()
        return

    import onnx
    import tensorflow as tf

    from hwgen.commands.import_qkeras import _quiet_tensorflow, check_against_keras, convert, summary

    _quiet_tensorflow()

    t_start = time.perf_counter()
    xtr, xte, ytr, yte = load_data()
    tf.keras.utils.set_random_seed(args.seed)
    fmodel = build(quantized=False)
    t_float = train(fmodel, xtr, ytr, args.epochs_float, 3e-3)
    acc_float = accuracy(fmodel, xte, yte)
    print(f"float twin: test accuracy {acc_float:.4f} ({t_float:.0f} s)", flush=True)

    qmodel = build(quantized=True)
    for layer in fmodel.layers:
        if layer.get_weights():
            qmodel.get_layer(layer.name).set_weights(layer.get_weights())
    t_qat = train(qmodel, xtr, ytr, args.epochs_qat, 1e-3)
    acc_qkeras = accuracy(qmodel, xte, yte)
    print(f"QKeras: test accuracy {acc_qkeras:.4f} ({t_qat:.0f} s)", flush=True)

    h5 = Path(args.h5)
    h5.parent.mkdir(parents=True, exist_ok=True)
    qmodel.save(str(h5), include_optimizer=False, save_format="h5")

    t0 = time.perf_counter()
    proto = convert(qmodel, opset=args.opset)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{NAME}.qonnx.onnx"
    onnx.save(proto, str(path))
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB, {time.perf_counter() - t0:.0f} s): {summary(proto)}",
          flush=True)

    n = min(args.qonnx_n, len(xte))
    chk = check_against_keras(qmodel, proto, xte[:n])
    qonnx_logits = chk["qonnx"]
    ort_logits = onnxruntime_logits(path, xte)
    acc_ort = float(np.mean(ort_logits.argmax(-1) == yte))
    print(f"QONNX vs QKeras on {n} test images: argmax agreement {chk['argmax_agreement']:.4f}, "
          f"max |diff| {chk['max_abs_diff']:.3g}; onnxruntime (Q/DQ) accuracy {acc_ort:.4f}", flush=True)

    versions = {m: __import__(m).__version__ for m in ("tensorflow", "numpy", "onnx")}
    report = dict(opset=args.opset, versions=versions, epochs_float=args.epochs_float, epochs_qat=args.epochs_qat,
                  seed=args.seed, train_seconds=t_float + t_qat, params=int(qmodel.count_params()),
                  acc_float=acc_float, acc_qkeras=acc_qkeras,
                  acc_qonnx=float(np.mean(qonnx_logits.argmax(-1) == yte[:n])),
                  qonnx_vs_keras_agree=chk["argmax_agreement"], qonnx_vs_keras_maxdiff=chk["max_abs_diff"],
                  acc_ort=acc_ort, ort_vs_qonnx_maxdiff=float(np.abs(ort_logits[:n] - qonnx_logits).max()),
                  ops=summary(proto))
    if n < len(xte):
        report["acc_qonnx_note"] = f"first {n} test images"
    if not args.no_readme:
        from hwgen.bundled import digits_test

        xp, yp = digits_test()
        report["simulate"] = hwgen_simulate(path, xp, yp)
        text = readme_text(report)
        if n < len(xte):
            text = text.replace("| QONNX, qonnx 0.4.0 executor |", f"| QONNX, qonnx 0.4.0 executor (first {n} test images) |")
        update_readme(text)
        print("updated models/README.md")
    print(f"done in {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
