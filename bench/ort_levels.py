"""onnxruntime's accuracy on a QDQ model at each graph optimisation level (why hwgen's reference is BASIC)."""

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from _results import save

ROOT = Path(__file__).resolve().parents[1]


def main(model: str = "models/onnx/vit_digits.qdq.dynamo.onnx") -> None:
    x = np.load(ROOT / "models/data/digits_test_x.npy")
    y = np.load(ROOT / "models/data/digits_test_y.npy")
    rows = {}
    for level in ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL"):
        opts = ort.SessionOptions()
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        sess = ort.InferenceSession(str(ROOT / model), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        logits = np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
        rows[level] = float(np.mean(logits.argmax(1) == y))
        print(f"{level:22s} accuracy {rows[level]:.2%}")
    save("ort_levels", {"model": model, "accuracy": rows})


if __name__ == "__main__":
    main(*sys.argv[1:])
