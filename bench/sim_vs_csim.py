"""The bit-accurate simulator against the generated C++ (g++ -O2) on the same images of
moe_vit_digits, side by side in one run: images/s of each and the ratio, bit-exactness asserted.
(Issue 5's target: the simulator at least 50x faster.)

    python bench/sim_vs_csim.py [--images 256]
"""

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from hwgen import sim
from hwgen.codegen import gxx
from hwgen.codegen.csim import run_csim
from hwgen.codegen.project import write_project
from hwgen.design import Design
from hwgen.frontend import load_graph

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--model", default=str(ROOT / "models/onnx/moe_vit_digits.qdq.dynamo.onnx"))
    args = ap.parse_args()
    x = np.load(ROOT / "models/data/digits_test_x.npy")
    x = np.concatenate([x] * (1 + args.images // len(x)))[: args.images].astype(np.float32)
    graph = load_graph(args.model)
    out = Path(tempfile.mkdtemp()) / "prj"
    write_project(graph, Design(), out, args.model)
    report = run_csim(out, x, opt="-O2")  # compiles (-O2) and checks bit-exactness on every image
    assert report.bit_exact, report.first_mismatch
    top = json.loads((out / "hwgen_project.json").read_text())["top"]
    sources = [out / "firmware" / f"{top}.cpp", out / "tb" / f"{top}_test.cpp"]
    incs = [out / "firmware", out / "firmware" / "kernels"]
    best_c = float("inf")
    for _ in range(3):  # the binary is cached: this times the testbench run only
        t = time.perf_counter()
        proc = gxx.compile_and_run(sources, out, args=[str(out)], opt="-O2", include_dirs=incs)
        best_c = min(best_c, time.perf_counter() - t)
        assert proc.returncode == 0, proc.stderr
    sim.run(graph, x[:4])
    best_s = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        sim.run(graph, x, batch_size=256)
        best_s = min(best_s, time.perf_counter() - t)
    rows = {"images": len(x), "csim_images_per_s": len(x) / best_c, "sim_images_per_s": len(x) / best_s,
            "sim_over_csim": best_c / best_s, "bit_exact": report.bit_exact}
    print(f"{Path(args.model).name}, {len(x)} images, bit-exact: {report.bit_exact}")
    print(f"  generated C++ (g++ -O2)   {rows['csim_images_per_s']:10.1f} images/s")
    print(f"  simulator (batch 256)     {rows['sim_images_per_s']:10.1f} images/s")
    print(f"  simulator / C++           {rows['sim_over_csim']:10.1f} x   (target >= 50x)")
    res = ROOT / "bench" / "results"
    res.mkdir(exist_ok=True)
    (res / "sim_vs_csim.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
