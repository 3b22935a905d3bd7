"""Per-board figures for m3vit_shape: search time, generation time, and the searched design's modeled latency and
resources, beside the reference designs (Edge-MoE, UbiMoE; shared/reference/ANCHORS.md).

For every board (hwgen.boards.BOARDS) at the full budget and at the default budget (DSP/BRAM/URAM 80%,
LUT/FF 70%):

* search: wall and CPU time of hwgen.search.search (the same call as `hwgen search`, 8 s stage-2 limit);
* build (full budget only): the searched Design written to JSON, then
  `hwgen build MODEL -o OUT --design d.json --board B` timed as a subprocess (Python start-up and model import
  included), with the project's file count and size; the project lives in a temporary directory that is
  deleted afterwards;
* the searched design's modeled latency (ms, cycles), images/s, GOPS and resources (DSP, BRAM_18K, URAM, LUT,
  FF: absolute and % of the whole device), realistic memory model.

Reference section: Edge-MoE (ZCU102, 300 MHz: ~59 ms measured, 6.23 M cycles ideal, ~26 GOPS) and hwgen's model of
Edge-MoE's own design (hwgen.cost.calibration); UbiMoE's ViT-S/16 on U50 (another model: ViT-S/16, D=384, 197
tokens, ~9.2 GOP per image) and UbiMoE's claimed speed-ups over "prior FPGA designs" on ZCU102/U280. No
ViT-S/16-shaped generator exists in models/, so hwgen is not modeled on ViT-S/16.

Sanity checks (printed and saved): a board that has at least the resources (whole device and largest SLR),
sustained bandwidth and clock of another should not be slower at full budget; the full budget should not be
slower than the default budget on the same board; a search that ran into its stage-2 time limit is flagged
(the refined design then depends on machine load).

Prints tables, saves bench/results/boards.json and bench/results/boards.png.

    python bench/boards.py [--boards zcu102,u280] [--skip-build] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

RESULTS = ROOT / "bench" / "results"
FULL = {"dsp": 1.0, "bram18k": 1.0, "lut": 1.0, "ff": 1.0, "uram": 1.0}
RES_ORDER = ("dsp", "bram18k", "uram", "lut", "ff")
RES_LABEL = {"dsp": "DSP", "bram18k": "BRAM18K", "uram": "URAM", "lut": "LUT", "ff": "FF"}
SEARCH_TIME_LIMIT = 8.0  # hwgen.search.search's default (the CLI's too)

# UbiMoE, ViT-S/16 on U50 (ANCHORS.md: its demo screenshot). BRAM36 528 = 1056 BRAM_18K.
UBIMOE_VIT_S = {"design": "UbiMoE", "model": "ViT-S/16 (D=384, 12 layers, 197 tokens)", "board": "u50",
                "latency_ms": 26.4, "gops": 350.0, "source": "demo screenshot (ANCHORS.md)",
                "resources": {"dsp": 2175, "bram18k": 2 * 528, "uram": 175, "lut": 320e3, "ff": 358e3}}


# ----------------------------------------------------------------------------------------------------------------
# measurements
# ----------------------------------------------------------------------------------------------------------------
def time_search(graph, board: str, budget: dict):
    from hwgen.cost import estimate
    from hwgen.search import search

    t, c = time.perf_counter(), time.process_time()
    r = search(graph, board, budget, time_limit=SEARCH_TIME_LIMIT)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    e = estimate(graph, r.best.design, board)
    return r, e, wall, cpu


def time_build(model: Path, design, board: str) -> dict:
    """`hwgen build --design` as a subprocess in a temporary directory (deleted afterwards)."""
    hwgen = str(Path(sys.executable).with_name("hwgen"))
    tmp = Path(tempfile.mkdtemp(prefix="hwgen_bench_"))
    try:
        dpath, out = tmp / "design.json", tmp / "prj"
        design.save(dpath)
        cmd = [hwgen, "build", str(model), "-o", str(out), "--design", str(dpath), "--board", board]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        if proc.returncode:
            return {"ok": False, "seconds": seconds, "error": (proc.stderr or proc.stdout)[-2000:]}
        files = [p for p in out.rglob("*") if p.is_file()]
        return {"ok": True, "seconds": seconds, "files": len(files),
                "megabytes": sum(p.stat().st_size for p in files) / 1e6,
                "command": "hwgen build MODEL -o OUT --design d.json --board " + board}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def row_of(board, label: str, budget: dict, r, e, wall: float, cpu: float) -> dict:
    res = e.resources.as_dict()
    return {"board": board.name, "budget_name": label, "budget": budget,
            "search_s": wall, "search_cpu_s": cpu, "evaluations": r.evaluations,
            "search_hit_time_limit": wall >= SEARCH_TIME_LIMIT,
            "latency_ms": e.latency_ms, "latency_cycles": e.latency_cycles, "interval_cycles": e.interval_cycles,
            "images_per_s": e.images_per_s, "gops": e.gops, "clock_mhz": e.clock_mhz,
            "resources": res, "utilisation": e.utilisation, "fits": e.fits(budget), "slr_ok": e.slr_ok,
            "bound": e.bound(), "design": json.loads(r.best.design.to_json())}


def references(graph) -> dict:
    """Edge-MoE's figures and hwgen's model of Edge-MoE's design; UbiMoE's figures."""
    from hwgen.boards import BOARDS
    from hwgen.cost import estimate
    from hwgen.cost.calibration import EDGE_MOE, M3VIT_GOP, UBIMOE, edge_moe_design, edge_moe_types

    em = edge_moe_types(graph)
    ideal = estimate(em, edge_moe_design(), "zcu102", realistic=False)
    real = estimate(em, edge_moe_design(), "zcu102", realistic=True)
    zcu = BOARDS["zcu102"].resources
    u50 = BOARDS["u50"].resources
    vit_s = dict(UBIMOE_VIT_S)
    vit_s["utilisation"] = {k: v / getattr(u50, k) for k, v in vit_s["resources"].items()}
    vit_s["gop_per_image"] = vit_s["gops"] * vit_s["latency_ms"] / 1e3
    measured = EDGE_MOE["measured_ms"]
    return {
        "edge_moe": {
            "board": "zcu102", "clock_mhz": EDGE_MOE["clock_mhz"], "model": "M3ViT (same shape as m3vit_shape)",
            "measured_ms": measured, "measured_gops": EDGE_MOE["measured_gops"],
            "ideal_cycles": EDGE_MOE["ideal_cycles"], "ideal_ms": EDGE_MOE["ideal_ms"],
            "ideal_gops": M3VIT_GOP / (EDGE_MOE["ideal_ms"] / 1e3),
            "resources": None, "source": "demo video (measured), cycle count at II=1 (ideal); ANCHORS.md",
        },
        "hwgen_model_of_edge_moe": {
            "board": "zcu102", "types": "weights ap_fixed<16,2>, activations ap_fixed<32,10>",
            "ideal_cycles": ideal.latency_cycles, "ideal_ms": ideal.latency_ms,
            "ideal_error": ideal.latency_cycles / EDGE_MOE["ideal_cycles"] - 1,
            "realistic_cycles": real.latency_cycles, "realistic_ms": real.latency_ms, "realistic_gops": real.gops,
            "realistic_error": real.latency_ms / measured - 1,
            "resources": real.resources.as_dict(), "utilisation": real.resources.utilisation(zcu),
            "design": json.loads(edge_moe_design().to_json()),
        },
        "ubimoe_vit_s_u50": vit_s,
        "ubimoe_claims": {
            "claim": UBIMOE["claim"],
            "derived_if_prior_is_edge_moe": {
                "zcu102": {"latency_ms": measured / UBIMOE["zcu102_speedup"],
                           "gops": EDGE_MOE["measured_gops"] * UBIMOE["zcu102_speedup"]},
                "u280": {"latency_ms": measured / UBIMOE["u280_speedup"],
                         "gops": EDGE_MOE["measured_gops"] * UBIMOE["u280_speedup"]},
            },
        },
    }


def sanity_checks(rows: list) -> list:
    """Dominance (a board with at least another's resources, largest SLR, sustained bandwidth and clock, same
    DSP kind, should not be slower at full budget), full vs default budget, search time limit."""
    from hwgen.boards import RESOURCES, get_board

    notes = []
    full = {r["board"]: r for r in rows if r["budget_name"] == "full"}
    for a, ra in full.items():
        for b, rb in full.items():
            if a == b:
                continue
            ba, bb = get_board(a), get_board(b)
            dominates = (all(getattr(ba.resources, k) >= getattr(bb.resources, k) for k in RESOURCES)
                         and all(getattr(ba.largest_slr, k) >= getattr(bb.largest_slr, k) for k in RESOURCES)
                         and ba.bandwidth_gbs * ba.mem_efficiency >= bb.bandwidth_gbs * bb.mem_efficiency
                         and ba.clock_mhz >= bb.clock_mhz and ba.dsp_kind == bb.dsp_kind)
            if dominates and ra["latency_ms"] > rb["latency_ms"] * 1.001:
                notes.append({"check": "dominance", "ok": False,
                              "text": f"{a} has at least {b}'s resources, SLR, bandwidth and clock but is slower: "
                                      f"{ra['latency_ms']:.3f} ms vs {rb['latency_ms']:.3f} ms"})
            elif dominates:
                notes.append({"check": "dominance", "ok": True,
                              "text": f"{a} >= {b} in every resource: {ra['latency_ms']:.3f} <= {rb['latency_ms']:.3f} ms"})
    by = {(r["board"], r["budget_name"]): r for r in rows}
    for (board, label), r in by.items():
        if label == "full" and (board, "default") in by:
            d = by[(board, "default")]
            ok = r["latency_ms"] <= d["latency_ms"] * 1.001
            notes.append({"check": "full<=default", "ok": ok,
                          "text": f"{board}: full {r['latency_ms']:.3f} ms, default {d['latency_ms']:.3f} ms"})
        if r["search_hit_time_limit"]:
            notes.append({"check": "time limit", "ok": False,
                          "text": f"{board} {label}: search stopped at its {SEARCH_TIME_LIMIT:.0f} s stage-2 limit "
                                  f"({r['search_s']:.1f} s, {r['evaluations']} evaluations): the design may depend on load"})
        if not r["fits"]:
            notes.append({"check": "fits", "ok": False, "text": f"{board} {label}: the searched design does not fit"})
    return notes


# ----------------------------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------------------------
def table(headers: list, rows: list, align: str | None = None) -> str:
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(c.ljust(w[i]) if align[i] == "l" else c.rjust(w[i]) for i, c in enumerate(r))  # noqa: E731
    return "\n".join([fmt(cells[0]), "  ".join("-" * x for x in w)] + [fmt(r) for r in cells[1:]])


def _k(v: float) -> str:
    return f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v:.0f}"


def res_cell(res: dict | None, util: dict | None, k: str) -> str:
    if not res or res.get(k) is None:
        return "-"
    pct = f" ({util[k]:.0%})" if util and k in util else ""
    return f"{_k(res[k])}{pct}"


def print_tables(out: dict) -> None:
    rows = out["results"]
    print("\nSearch and generation (m3vit_shape; build = `hwgen build --design`, full-budget design only)")
    print(table(["board", "budget", "search s", "cpu s", "evals", "build s", "files", "MB"],
                [[r["board"], r["budget_name"], f"{r['search_s']:.1f}" + ("*" if r["search_hit_time_limit"] else ""),
                  f"{r['search_cpu_s']:.1f}", r["evaluations"],
                  f"{r['build']['seconds']:.1f}" if r.get("build", {}).get("ok") else ("FAIL" if r.get("build") else "-"),
                  r["build"]["files"] if r.get("build", {}).get("ok") else "-",
                  f"{r['build']['megabytes']:.1f}" if r.get("build", {}).get("ok") else "-"] for r in rows]))
    if any(r["search_hit_time_limit"] for r in rows):
        print(f"* stage 2 stopped at the {SEARCH_TIME_LIMIT:.0f} s time limit")

    print("\nSearched designs, modeled (realistic memory model; % of the whole device)")
    print(table(["board", "budget", "latency ms", "M cycles", "img/s", "GOPS", "bound"] + [RES_LABEL[k] for k in RES_ORDER],
                [[r["board"], r["budget_name"], f"{r['latency_ms']:.3f}", f"{r['latency_cycles'] / 1e6:.3f}",
                  f"{r['images_per_s']:.0f}", f"{r['gops']:.0f}", r["bound"]]
                 + [res_cell(r["resources"], r["utilisation"], k) for k in RES_ORDER] for r in rows]))

    ref = out["references"]
    em, hm, vs = ref["edge_moe"], ref["hwgen_model_of_edge_moe"], ref["ubimoe_vit_s_u50"]
    der = ref["ubimoe_claims"]["derived_if_prior_is_edge_moe"]
    best = {r["board"]: r for r in rows if r["budget_name"] == "full"}
    ref_rows = [
        ["Edge-MoE, measured", "M3ViT", "zcu102", f"{em['measured_ms']:.1f}", "-", f"{em['measured_gops']:.0f}"] + ["-"] * 5,
        ["Edge-MoE, ideal cycle count", "M3ViT", "zcu102", f"{em['ideal_ms']:.1f}", f"{em['ideal_cycles'] / 1e6:.2f}",
         f"{em['ideal_gops']:.0f}"] + ["-"] * 5,
        ["hwgen model of Edge-MoE's design, ideal mem.", "M3ViT", "zcu102", f"{hm['ideal_ms']:.1f}",
         f"{hm['ideal_cycles'] / 1e6:.2f}", "-"] + ["-"] * 5,
        ["hwgen model of Edge-MoE's design, realistic", "M3ViT", "zcu102", f"{hm['realistic_ms']:.1f}",
         f"{hm['realistic_cycles'] / 1e6:.2f}", f"{hm['realistic_gops']:.0f}"]
        + [res_cell(hm["resources"], hm["utilisation"], k) for k in RES_ORDER],
        ["UbiMoE, claimed 1.34x prior (if prior = Edge-MoE)", "M3ViT", "zcu102", f"~{der['zcu102']['latency_ms']:.0f}", "-",
         f"~{der['zcu102']['gops']:.0f}"] + ["-"] * 5,
        ["UbiMoE, claimed 3.35x prior (if prior = Edge-MoE)", "M3ViT", "u280", f"~{der['u280']['latency_ms']:.0f}", "-",
         f"~{der['u280']['gops']:.0f}"] + ["-"] * 5,
        ["UbiMoE, demo screenshot", "ViT-S/16 (other model)", "u50", f"{vs['latency_ms']:.1f}", "-", f"~{vs['gops']:.0f}"]
        + [res_cell(vs["resources"], vs["utilisation"], k) for k in RES_ORDER],
    ]
    for b in ("zcu102", "u280", "u50"):
        if b in best:
            r = best[b]
            ref_rows.append([f"hwgen searched, full budget (modeled)", "m3vit_shape int8", b, f"{r['latency_ms']:.2f}",
                             f"{r['latency_cycles'] / 1e6:.3f}", f"{r['gops']:.0f}"]
                            + [res_cell(r["resources"], r["utilisation"], k) for k in RES_ORDER])
    print("\nReference designs (figures from shared/reference/ANCHORS.md) and hwgen beside them")
    print(table(["design", "model", "board", "latency ms", "M cycles", "GOPS"] + [RES_LABEL[k] for k in RES_ORDER],
                ref_rows, "lll" + "r" * 8))
    print(f"hwgen's model of Edge-MoE: ideal {hm['ideal_error']:+.1%} vs 6.23 M cycles, realistic "
          f"{hm['realistic_error']:+.1%} vs 59 ms. UbiMoE's ViT-S/16 is ~{vs['gop_per_image']:.1f} GOP per image "
          f"(m3vit_shape: 1.57): compare its GOPS, not its latency.")

    print("\nChecks")
    for n in out["checks"]:
        print(f"  [{'ok' if n['ok'] else '!!'}] {n['check']}: {n['text']}")


def markdown(out: dict) -> str:
    """The README table: full-budget searched design per board + build time, then the reference rows."""
    rows = [r for r in out["results"] if r["budget_name"] == "full"]
    lines = ["| board | search s | build s | latency ms (modeled) | img/s | GOPS | DSP | BRAM18K | URAM | LUT | FF |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = r.get("build", {})
        lines.append(f"| {r['board'].upper()} | {r['search_s']:.1f} | {b['seconds']:.1f} |" if b.get("ok")
                     else f"| {r['board'].upper()} | {r['search_s']:.1f} | - |")
        lines[-1] += (f" {r['latency_ms']:.2f} | {r['images_per_s']:,.0f} | {r['gops']:,.0f} | "
                      + " | ".join(res_cell(r["resources"], r["utilisation"], k) for k in RES_ORDER) + " |")
    ref = out["references"]
    em, hm, vs = ref["edge_moe"], ref["hwgen_model_of_edge_moe"], ref["ubimoe_vit_s_u50"]
    lines += [f"| Edge-MoE on ZCU102 (measured) | | | {em['measured_ms']:.0f} | {1e3 / em['measured_ms']:.0f} | "
              f"{em['measured_gops']:.0f} | n/p | n/p | n/p | n/p | n/p |",
              f"| Edge-MoE on ZCU102 (ideal cycle count) | | | {em['ideal_ms']:.1f} | {1e3 / em['ideal_ms']:.0f} | "
              f"{em['ideal_gops']:.0f} | | | | | |",
              f"| hwgen's model of Edge-MoE's design | | | {hm['realistic_ms']:.1f} | {1e3 / hm['realistic_ms']:.0f} | "
              f"{hm['realistic_gops']:.0f} | " + " | ".join(res_cell(hm["resources"], hm["utilisation"], k)
                                                            for k in RES_ORDER) + " |",
              f"| UbiMoE on U50, **ViT-S/16** (other model, ~{vs['gop_per_image']:.1f} GOP/image) | | | "
              f"{vs['latency_ms']:.1f} | {1e3 / vs['latency_ms']:.0f} | {vs['gops']:.0f} | "
              + " | ".join(res_cell(vs["resources"], vs["utilisation"], k) for k in RES_ORDER) + " |"]
    return "\n".join(lines)


def plot(out: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = out["results"]
    boards = list(dict.fromkeys(r["board"] for r in rows))
    by = {(r["board"], r["budget_name"]): r for r in rows}
    ref = out["references"]
    x = np.arange(len(boards))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6.6), gridspec_kw={"width_ratios": [1.1, 1]})

    w = 0.38
    for i, (label, color) in enumerate((("full", "#1f77b4"), ("default", "#9ecae1"))):
        vals = [by[(b, label)]["latency_ms"] if (b, label) in by else np.nan for b in boards]
        bars = ax1.bar(x + (i - 0.5) * w, vals, w, color=color, label=f"hwgen searched, {label} budget (modeled)")
        for rect, v in zip(bars, vals):
            if v == v:
                ax1.annotate(f"{v:.2f}", (rect.get_x() + rect.get_width() / 2, v), ha="center", va="bottom",
                             fontsize=7, xytext=(0, 2), textcoords="offset points")
    pos = {b: i for i, b in enumerate(boards)}
    em, hm, vs = ref["edge_moe"], ref["hwgen_model_of_edge_moe"], ref["ubimoe_vit_s_u50"]
    der = ref["ubimoe_claims"]["derived_if_prior_is_edge_moe"]
    marks = [("zcu102", -0.2, em["measured_ms"], "v", "#d62728", "Edge-MoE, measured", (-22, -3)),
             ("zcu102", -0.2, em["ideal_ms"], "_", "#d62728", "Edge-MoE, ideal cycle count", (-26, -3)),
             ("zcu102", 0.0, hm["realistic_ms"], "x", "#ff7f0e", "hwgen's model of Edge-MoE's design", (-9, -14)),
             ("zcu102", 0.2, der["zcu102"]["latency_ms"], "^", "#2ca02c",
              "UbiMoE claim (1.34x / 3.35x prior), if prior = Edge-MoE (derived)", (7, -3)),
             ("u280", 0.0, der["u280"]["latency_ms"], "^", "#2ca02c", None, (7, -3)),
             ("u50", 0.0, vs["latency_ms"], "*", "#9467bd",
              f"UbiMoE, ViT-S/16 (other model, {vs['gop_per_image']:.1f} GOP/image)", (7, -3))]
    for b, dx, v, m, c, lab, off in marks:
        if b in pos:
            ax1.plot(pos[b] + dx, v, m, color=c, markersize=11 if m != "_" else 22, mew=2, label=lab, linestyle="none")
            ax1.annotate(f"{v:.1f}", (pos[b] + dx, v), xytext=off, textcoords="offset points", fontsize=7, color=c)
    for b in boards:  # the packed-compute roofline of the board
        rf = by.get((b, "full"), {}).get("rooflines")
        if rf:
            ax1.hlines(rf["compute_ms"], pos[b] - 0.45, pos[b] + 0.45, colors="k", linestyles=":", linewidth=1,
                       label="DSP-bound compute roofline (int8 packed)" if b == boards[0] else None)
    ax1.set_yscale("log")
    ax1.set_xticks(x, [b.upper() for b in boards])
    ax1.set_ylabel("latency per image, ms (log)")
    ax1.set_title("m3vit_shape: modeled latency of the searched design vs reference designs", fontsize=10)
    ax1.set_ylim(top=150)
    ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    ax1.grid(axis="y", which="both", alpha=0.3)

    res = ("dsp", "bram18k", "lut", "uram")
    colors = {"dsp": "#1f77b4", "bram18k": "#ff7f0e", "lut": "#2ca02c", "uram": "#8c564b"}
    w2 = 0.2
    for j, k in enumerate(res):
        vals = [100 * by[(b, "full")]["utilisation"][k] if (b, "full") in by else np.nan for b in boards]
        ax2.bar(x + (j - 1.5) * w2, vals, w2, color=colors[k], label=f"{RES_LABEL[k]} (hwgen, full budget)")
    if "u50" in pos:
        for j, k in enumerate(res):
            ax2.plot(pos["u50"] + (j - 1.5) * w2, 100 * vs["utilisation"][k], "*", color="#9467bd", markersize=10,
                     label="UbiMoE ViT-S/16 on U50" if j == 0 else None, linestyle="none")
    if "zcu102" in pos:
        for j, k in enumerate(res):
            ax2.plot(pos["zcu102"] + (j - 1.5) * w2, 100 * hm["utilisation"][k], "x", color="#d62728", markersize=9,
                     mew=2, label="hwgen's model of Edge-MoE's design" if j == 0 else None, linestyle="none")
    ax2.axhline(100, color="k", linewidth=0.8)
    ax2.set_xticks(x, [b.upper() for b in boards])
    ax2.set_ylabel("% of the device")
    ax2.set_ylim(0, 115)
    ax2.set_title("resources of the searched full-budget design (modeled)", fontsize=10)
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    ax2.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------------------------
def main() -> None:
    from hwgen.boards import BOARDS, get_board
    from hwgen.cost.calibration import rooflines
    from hwgen.frontend import load_graph
    from hwgen.search import parse_budget
    from m3vit_shape import ensure_m3vit_shape

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", default=",".join(BOARDS), help="comma-separated board names (default: all)")
    ap.add_argument("--skip-build", action="store_true", help="do not run `hwgen build` (search and model only)")
    ap.add_argument("--markdown", action="store_true", help="also print the README table (markdown)")
    ap.add_argument("--out", default=str(RESULTS / "boards.json"))
    ap.add_argument("--png", default=str(RESULTS / "boards.png"))
    args = ap.parse_args()
    boards = [b.strip().lower() for b in args.boards.split(",") if b.strip()]
    unknown = [b for b in boards if b not in BOARDS]
    if unknown:
        sys.exit(f"unknown board(s) {', '.join(unknown)}; known: {', '.join(BOARDS)}")

    t_all = time.perf_counter()
    model = ensure_m3vit_shape()
    t = time.perf_counter()
    graph = load_graph(model)
    load_s = time.perf_counter() - t
    print(f"model {model.name}: import {load_s:.1f} s; {len(boards)} boards; build "
          f"{'skipped' if args.skip_build else 'for the full-budget design'}", flush=True)
    refs = references(graph)

    rows = []
    for name in boards:
        board = get_board(name)
        rf = rooflines(graph, name)
        for label, budget in (("full", FULL), ("default", parse_budget(None))):
            r, e, wall, cpu = time_search(graph, name, budget)
            row = row_of(board, label, budget, r, e, wall, cpu)
            row["rooflines"] = rf
            msg = (f"{name:7s} {label:7s} search {wall:5.1f} s ({r.evaluations} evals): {e.latency_ms:.3f} ms, "
                   f"{e.gops:.0f} GOPS")
            if label == "full" and not args.skip_build:
                row["build"] = time_build(model, r.best.design, name)
                b = row["build"]
                msg += (f"; build {b['seconds']:.1f} s, {b['files']} files, {b['megabytes']:.1f} MB" if b["ok"]
                        else f"; build FAILED: {b['error'][-300:]}")
            rows.append(row)
            print(msg, flush=True)

    out = {"model": model.name, "model_gop_per_image": 2 * rows[0]["rooflines"]["macs"] / 1e9 if rows else None,
           "import_s": load_s, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
           "search_time_limit_s": SEARCH_TIME_LIMIT, "memory_model": "realistic",
           "command": "python bench/boards.py" + (" --skip-build" if args.skip_build else "")
                      + ("" if args.boards == ",".join(BOARDS) else f" --boards {args.boards}"),
           "results": rows, "references": refs, "checks": sanity_checks(rows)}
    out["total_s"] = time.perf_counter() - t_all
    print_tables(out)
    if args.markdown:
        print("\n" + markdown(out))
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    png = plot(out, Path(args.png))
    print(f"\nsaved {path} and {png}; whole run {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
