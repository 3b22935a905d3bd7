"""The bit-accurate simulator against the generated C++ (g++ -O2) on the same images of moe_vit_digits,
side by side in one run: images/s of each and the ratios, bit-exactness asserted on every image.
(Issue 5's target: the simulator at least 50x faster.)

Both are timed best of --repeats. The C++ is the generated testbench binary (compiled once, cached), timed
as a whole process: wall clock and its CPU time. The simulator is timed with one thread (wall clock and
CPU time: the like-for-like comparison with the single-threaded C++) and with its default thread count,
with its compiled kernels (HWGEN_SIM_JIT=1; by default they are used for large runs only), and once with
numpy only for reference; the one-time cost of loading the kernels in a new process is printed beside.
On a shared machine the CPU-time ratio is the stable figure; the wall-clock ones move with the load.

    python bench/sim_vs_csim.py [--images 256] [--repeats 5]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
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
from _results import save

ROOT = Path(__file__).resolve().parents[1]
TARGET = 50.0


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_cpp(out: Path, repeats: int) -> tuple[float, float]:
    """(best wall s, best CPU s) of the testbench process over every image (the binary is cached)."""
    top = json.loads((out / "hwgen_project.json").read_text())["top"]
    sources = [out / "firmware" / f"{top}.cpp", out / "tb" / f"{top}_test.cpp"]
    incs = [out / "firmware", out / "firmware" / "kernels"]
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        c, t = child_cpu(), time.perf_counter()
        proc = gxx.compile_and_run(sources, out, args=[str(out)], opt="-O2", include_dirs=incs)
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, child_cpu() - c)
        if proc.returncode:
            sys.exit(proc.stderr)
    return wall, cpu


def time_sim(graph, x, workers: int, repeats: int) -> tuple[float, float]:
    """(best wall s, best CPU s of the calling thread; meaningful for workers=1)."""
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        c, t = time.thread_time(), time.perf_counter()
        sim.run(graph, x, batch_size=256, workers=workers)
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.thread_time() - c)
    return wall, cpu


def kernel_load_seconds(model: str) -> float:
    """Extra wall time of a first small simulation in a new process with the compiled kernels (numba
    import, cached kernels loaded) against one without them: best of 3 each."""
    code = ("import sys, time, numpy as np; from hwgen import sim; from hwgen.frontend import load_graph; "
            "g = load_graph(sys.argv[1]); x = np.load(sys.argv[2])[:4].astype(np.float32); "
            "t = time.perf_counter(); sim.run(g, x, workers=1); print(time.perf_counter() - t)")
    best = {}
    for jit in ("1", "0"):
        env = dict(os.environ, HWGEN_SIM_JIT=jit)
        best[jit] = min(float(subprocess.run([sys.executable, "-c", code, model,
                                              str(ROOT / "models/data/digits_test_x.npy")], env=env, check=True,
                                             capture_output=True, text=True).stdout) for _ in range(3))
    return best["1"] - best["0"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default=str(ROOT / "models/onnx/moe_vit_digits.qdq.dynamo.onnx"))
    args = ap.parse_args()
    x = np.load(ROOT / "models/data/digits_test_x.npy")
    x = np.concatenate([x] * (1 + args.images // len(x)))[: args.images].astype(np.float32)
    graph = load_graph(args.model)
    work = Path(tempfile.mkdtemp())
    out = work / "prj"
    try:
        write_project(graph, Design(), out, args.model)
        report = run_csim(out, x, opt="-O2")  # compiles (-O2) and checks bit-exactness on every image
        assert report.bit_exact, report.first_mismatch
        load = os.getloadavg()[0]
        c_wall, c_cpu = time_cpp(out, args.repeats)
        threads = sim.default_workers()
        os.environ["HWGEN_SIM_JIT"] = "1"  # the compiled kernels whatever the run's size (auto: large runs)
        sim.run(graph, x[:4])
        s1_wall, s1_cpu = time_sim(graph, x, 1, args.repeats)
        sn_wall, _ = time_sim(graph, x, threads, args.repeats)
        os.environ["HWGEN_SIM_JIT"] = "0"  # numpy only
        np_wall, np_cpu = time_sim(graph, x, 1, args.repeats)
        os.environ.pop("HWGEN_SIM_JIT")
        warmup = kernel_load_seconds(args.model)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(x)
    rows = {"model": Path(args.model).name, "images": n, "bit_exact": report.bit_exact, "cpus": os.cpu_count(),
            "load_average_at_start": load, "sim_threads": threads,
            "csim_images_per_s": n / c_wall, "csim_cpu_images_per_s": n / c_cpu,
            "sim_1thread_images_per_s": n / s1_wall, "sim_1thread_cpu_images_per_s": n / s1_cpu,
            "sim_images_per_s": n / sn_wall,
            "ratio_cpu_1thread": c_cpu / s1_cpu, "ratio_wall_1thread": c_wall / s1_wall,
            "ratio_wall": c_wall / sn_wall, "target": TARGET,
            "sim_numpy_1thread_cpu_images_per_s": n / np_cpu, "ratio_cpu_numpy_1thread": c_cpu / np_cpu,
            "kernel_load_s_new_process": warmup}
    print(f"{rows['model']}, {n} images, bit-exact: {report.bit_exact}; {os.cpu_count()} cores, "
          f"load average {load:.2f} at start")
    print(f"  {'':34s} {'images/s':>10s} {'sim / C++':>10s}")
    print(f"  {'generated C++ (g++ -O2), wall':34s} {rows['csim_images_per_s']:10.1f}")
    print(f"  {'generated C++, per CPU second':34s} {rows['csim_cpu_images_per_s']:10.1f}")
    print(f"  {'simulator, 1 thread, wall':34s} {rows['sim_1thread_images_per_s']:10.1f} {rows['ratio_wall_1thread']:9.1f}x")
    print(f"  {'simulator, 1 thread, per CPU second':34s} {rows['sim_1thread_cpu_images_per_s']:10.1f} "
          f"{rows['ratio_cpu_1thread']:9.1f}x")
    print(f"  {f'simulator, {threads} threads, wall':34s} {rows['sim_images_per_s']:10.1f} {rows['ratio_wall']:9.1f}x")
    print(f"  {'simulator, numpy only, per CPU s':34s} {rows['sim_numpy_1thread_cpu_images_per_s']:10.1f} "
          f"{rows['ratio_cpu_numpy_1thread']:9.1f}x")
    print(f"  target: >= {TARGET:.0f}x (the simulator with its compiled kernels)")
    print(f"  loading the compiled kernels in a new process: {warmup:.2f} s once (g++'s compile, cached, is not "
          f"timed either)")
    save("sim_vs_csim", rows)


if __name__ == "__main__":
    main()
