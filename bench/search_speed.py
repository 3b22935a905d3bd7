"""Design-space search on m3vit_shape for every board: wall time (target under 10 s per board), the chosen
design's modeled latency, throughput and utilisation, at full budget and at the default budget; plus the
Edge-MoE calibration and the roofline limits. Prints a table and saves bench/results/search_speed.json.

    python bench/search_speed.py [--boards zcu102,u280] [--out bench/results/search_speed.json]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

FULL = {"dsp": 1.0, "bram18k": 1.0, "lut": 1.0, "ff": 1.0, "uram": 1.0}


def main() -> None:
    from hwgen.boards import BOARDS
    from hwgen.cost import estimate
    from hwgen.cost.calibration import EDGE_MOE, edge_moe_design, edge_moe_types, rooflines
    from hwgen.frontend import load_graph
    from hwgen.search import parse_budget, search
    from m3vit_shape import ensure_m3vit_shape

    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "search_speed.json"))
    args = ap.parse_args()

    path = ensure_m3vit_shape()
    t = time.perf_counter()
    graph = load_graph(path)
    load_s = time.perf_counter() - t

    em = edge_moe_types(graph)
    ideal = estimate(em, edge_moe_design(), "zcu102", realistic=False)
    real = estimate(em, edge_moe_design(), "zcu102", realistic=True)
    calibration = {"ideal_cycles": ideal.latency_cycles, "ideal_ms": ideal.latency_ms,
                   "ideal_error": ideal.latency_cycles / EDGE_MOE["ideal_cycles"] - 1,
                   "realistic_ms": real.latency_ms, "realistic_error": real.latency_ms / EDGE_MOE["measured_ms"] - 1,
                   "reference": EDGE_MOE}
    print(f"model {path.name}: import {load_s:.1f} s; Edge-MoE design: ideal {ideal.latency_cycles / 1e6:.3f} M cycles "
          f"({calibration['ideal_error']:+.1%} vs 6.23 M), with memory effects {real.latency_ms:.1f} ms "
          f"({calibration['realistic_error']:+.1%} vs 59 ms)")

    rows = []
    print(f"{'board':8s} {'budget':8s} {'search s':>8s} {'cpu s':>6s} {'evals':>6s} {'latency ms':>10s} {'img/s':>8s} "
          f"{'GOPS':>7s}  utilisation")
    for name in [b.strip() for b in args.boards.split(",") if b.strip()]:
        for label, budget in (("full", FULL), ("default", parse_budget(None))):
            t, c = time.perf_counter(), time.process_time()
            r = search(graph, name, budget)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            e = estimate(graph, r.best.design, name)
            row = {"board": name, "budget_name": label, "budget": budget, "seconds": wall, "cpu_seconds": cpu,
                   "evaluations": r.evaluations, "latency_ms": e.latency_ms, "latency_cycles": e.latency_cycles,
                   "images_per_s": e.images_per_s, "gops": e.gops, "utilisation": e.utilisation,
                   "resources": e.resources.as_dict(), "fits": e.fits(budget), "bound": e.bound(),
                   "design": json.loads(r.best.design.to_json()), "rooflines": rooflines(graph, name)}
            rows.append(row)
            util = ", ".join(f"{k} {v:.0%}" for k, v in e.utilisation.items())
            print(f"{name:8s} {label:8s} {wall:8.1f} {cpu:6.1f} {r.evaluations:6d} {e.latency_ms:10.3f} "
                  f"{e.images_per_s:8.0f} {e.gops:7.0f}  {util}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": path.name, "import_s": load_s, "cpus": os.cpu_count(),
                               "calibration": calibration, "results": rows}, indent=1, default=float))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
