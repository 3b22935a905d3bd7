"""m3vit_shape at real scale: import + lowering time, simulation of a batch of 8, peak memory.

Targets (issue 2): under 60 s and under 4 GB for import + simulate of 8 images. Each step runs in a
fresh subprocess so its peak resident memory is its own.

    python bench/m3vit_scale.py [--batch 8]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from _results import save

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
import numpy as np
t0 = time.perf_counter()
from hwgen.frontend import load_graph
from hwgen import sim
g = load_graph(sys.argv[1])
t1 = time.perf_counter()
x = np.random.default_rng(0).standard_normal((int(sys.argv[2]), 3, 128, 256)).astype(np.float32)
r = sim.run(g, x)
t2 = time.perf_counter()
s = g.summary()
print(json.dumps({"import_s": t1 - t0, "simulate_s": t2 - t1, "total_s": t2 - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "ops": s["nodes"], "parameters": s["parameters"],
                  "saturated_tensors": sum(1 for v in r.stats.saturations.values() if v)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "models"))
    from m3vit_shape import ensure_m3vit_shape

    t = time.perf_counter()
    path = ensure_m3vit_shape()
    gen = time.perf_counter() - t
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(args.batch)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update({"batch": args.batch, "model_mb": path.stat().st_size / 1e6, "generate_or_cache_s": gen})
    print(f"m3vit_shape ({res['model_mb']:.1f} MB QDQ, {res['parameters']:,} parameters, {res['ops']} ops), batch {args.batch}")
    print(f"  import + lowering   {res['import_s']:7.2f} s")
    print(f"  simulate            {res['simulate_s']:7.2f} s")
    print(f"  total               {res['total_s']:7.2f} s   (target < 60 s)")
    print(f"  peak memory         {res['peak_rss_mb']:7.0f} MB  (target < 4096 MB)")
    save("m3vit_scale", res)


if __name__ == "__main__":
    main()
