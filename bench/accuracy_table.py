"""Simulator vs onnxruntime on every bundled digits model over the whole test split (the README table).

    python bench/accuracy_table.py
"""

from pathlib import Path

import numpy as np

from hwgen import bundled
from hwgen.compare import compare
from hwgen.frontend import load_graph
from hwgen.reference import run_onnxruntime
from _results import save

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    rows = []
    print(f"{'model':34s} {'float':>7s} {'ORT':>7s} {'sim':>7s} {'agree':>7s} {'linear <=1 LSB (worst)':>24s}")
    paths = sorted((ROOT / "models/onnx").glob("*vit_digits*.onnx")) + sorted((ROOT / "models/onnx").glob("bert_digits*.onnx"))
    for path in paths:
        x, y = bundled.digits_test_inputs(path)  # images, or token ids for the BERT-style model
        graph = load_graph(path)
        r = compare(graph, path, x, y, layers=True)
        stem = path.name.split(".")[0]
        exporter = path.name.split(".")[-2]
        float_path = ROOT / "models/onnx" / f"{stem}.float.{exporter if exporter in ('dynamo', 'legacy') else 'dynamo'}.onnx"
        acc_float = float(np.mean(run_onnxruntime(float_path, x)["logits"].argmax(1) == y))
        lin = [l.within_1lsb for l in r.layers if l.op in ("linear", "patch_embed")]
        rows.append({"model": path.name, "float": acc_float, "onnxruntime": r.accuracy_ref, "simulator": r.accuracy_sim,
                     "argmax_agreement": r.argmax_agreement, "linear_within_1lsb_worst": min(lin) if lin else None})
        print(f"{path.name:34s} {acc_float:7.2%} {r.accuracy_ref:7.2%} {r.accuracy_sim:7.2%} {r.argmax_agreement:7.2%} "
              f"{(min(lin) if lin else float('nan')):24.3%}")
    save("accuracy_table", rows)


if __name__ == "__main__":
    main()
