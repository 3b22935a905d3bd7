"""Simulator throughput on moe_vit_digits at batch 1 and batch 256, with its compiled kernels and with
numpy only, beside onnxruntime on the same images in the same run (ratios matter; absolute times depend
on the machine).

    python bench/sim_speed.py [MODEL] [--images N]
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from hwgen import sim
from hwgen.frontend import load_graph
from hwgen.reference import run_onnxruntime
from _results import save

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=str(ROOT / "models/onnx/moe_vit_digits.qdq.dynamo.onnx"))
    ap.add_argument("--images", type=int, default=256)
    args = ap.parse_args()
    x = np.load(ROOT / "models/data/digits_test_x.npy")[: args.images]
    graph = load_graph(args.model)
    n1 = min(64, len(x))
    times = {}
    for mode in ("1", "0"):  # with the compiled kernels, then numpy only (auto picks by the run's size)
        os.environ["HWGEN_SIM_JIT"] = mode
        sim.run(graph, x[:4])  # build lookup tables (and load the kernels) once, outside the timings
        times[mode] = (timed(lambda: [sim.run(graph, x[i:i + 1]) for i in range(n1)]) / n1,
                       timed(lambda: sim.run(graph, x, batch_size=256)) / len(x))
    os.environ.pop("HWGEN_SIM_JIT")
    (t_b1, t_b256), (np_b1, np_b256) = times["1"], times["0"]
    t_ort = timed(lambda: run_onnxruntime(args.model, x[:n1]), repeat=2) / n1
    rows = {
        "simulator batch 1 (images/s)": 1 / t_b1,
        f"simulator batch {len(x)} (images/s)": 1 / t_b256,
        "numpy only, batch 1 (images/s)": 1 / np_b1,
        f"numpy only, batch {len(x)} (images/s)": 1 / np_b256,
        "onnxruntime QDQ, BASIC, batch 1 (images/s)": 1 / t_ort,
        "batch-256 speed-up over batch 1": t_b1 / t_b256,
        "simulator batch 256 / onnxruntime": t_ort / t_b256,
    }
    width = max(map(len, rows))
    print(f"model {Path(args.model).name}, {len(x)} images, {platform.processor() or platform.machine()}")
    for k, v in rows.items():
        print(f"  {k:<{width}}  {v:10.1f}")
    save("sim_speed", {"model": Path(args.model).name, "images": len(x), **rows})


if __name__ == "__main__":
    main()
