"""`hwgen estimate MODEL [--design D.json] --board B`: latency, throughput and resources per kernel."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from hwgen.cli import _load_graph, _model_arg, console, err_console, main


def _fmt(v: float) -> str:
    v = float(v)
    if abs(v) >= 1e9:
        return f"{v / 1e9:.2f}G"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def load_design(design_path: str | None, board: str | None, clock: float | None):
    from hwgen.boards import get_board
    from hwgen.design import Design

    design = Design.load(design_path) if design_path else Design()
    if board:
        b = get_board(board)
        design.board = board if Path(board).is_file() else b.name
    if clock:
        design.clock_mhz = float(clock)
    design.validate()
    return design, get_board(design.board)


def print_estimate(e, title: str = "") -> None:
    total = e.latency_cycles
    t = Table(title=title or "per kernel (busy cycles per image; shared kernels sized for their largest user)")
    for col in ("kernel", "ops", "nodes", "cycles", "%", "MAC", "DSP", "BRAM18K", "URAM", "LUT", "FF", "off-chip MB"):
        t.add_column(col, justify="left" if col in ("kernel", "ops") else "right", no_wrap=col == "kernel")
    for k in e.kernels:
        t.add_row(k.name[:44], ",".join(k.ops)[:24], str(k.nodes), _fmt(k.cycles),
                  f"{100 * k.cycles / total:.1f}" if total else "-", _fmt(k.macs), _fmt(k.res.dsp), _fmt(k.res.bram18k),
                  _fmt(k.res.uram), _fmt(k.res.lut), _fmt(k.res.ff), f"{(k.weight_bytes + k.act_bytes) / 1e6:.2f}")
    console.print(t)
    s = Table(title="totals", show_header=False)
    s.add_row("latency", f"{e.latency_cycles:,.0f} cycles = {e.latency_ms:.4g} ms per image at {e.clock_mhz:g} MHz")
    s.add_row("throughput", f"{e.images_per_s:,.1f} images/s, {e.gops:,.1f} GOPS ({2 * e.macs / 1e9:.3f} GOP per image)")
    s.add_row("bound by", e.bound_detail())
    s.add_row("off-chip", f"{e.weight_bytes / 1e6:.2f} MB weights + {e.act_bytes / 1e6:.2f} MB activations per image, "
                          f"{e.bandwidth_gbs:.2f} GB/s average of {e.board.bandwidth_gbs:g} GB/s peak")
    util = e.utilisation
    for r in ("dsp", "bram18k", "uram", "lut", "ff"):
        have = getattr(e.board.resources, r)
        s.add_row(r.upper(), f"{getattr(e.resources, r):,.0f} of {have:,.0f} ({100 * util[r]:.1f}%)" if have else
                  f"{getattr(e.resources, r):,.0f} (none on board)")
    if e.board.slrs:
        s.add_row("per SLR", "every kernel fits one SLR" if e.slr_ok else "a kernel exceeds one SLR's resources")
    s.add_row("memory model", "realistic (port width, efficiency, latency)" if e.realistic else "ideal (AXI width, no latency)")
    console.print(s)


def print_comparison(cmp: dict) -> None:
    t = Table(title=f"Vitis HLS report ({cmp['top']}) vs estimate, per kernel (ratio = report / estimate)")
    for col in ("kernel", "modules", "report cycles", "estimate", "ratio", "DSP r/e", "BRAM r/e", "LUT r/e", "FF r/e"):
        t.add_column(col, justify="left" if col in ("kernel", "modules") else "right")
    for row in cmp["kernels"]:
        rep, est = row["report"], row["estimate"]
        t.add_row(row["kernel"], ",".join(row["modules"])[:40], _fmt(row["report_cycles"]), _fmt(row["estimate_cycles"]),
                  f"{row['cycles_ratio']:.2f}" if row["cycles_ratio"] else "-",
                  f"{_fmt(rep.dsp)}/{_fmt(est.dsp)}", f"{_fmt(rep.bram18k)}/{_fmt(est.bram18k)}",
                  f"{_fmt(rep.lut)}/{_fmt(est.lut)}", f"{_fmt(rep.ff)}/{_fmt(est.ff)}")
    tot = cmp["total"]
    t.add_row("total", "", _fmt(tot["report_cycles"] or 0), _fmt(tot["estimate_cycles"]),
              f"{tot['cycles_ratio']:.2f}" if tot["cycles_ratio"] else "-",
              f"{_fmt(tot['report'].dsp)}/{_fmt(tot['estimate'].dsp)}",
              f"{_fmt(tot['report'].bram18k)}/{_fmt(tot['estimate'].bram18k)}",
              f"{_fmt(tot['report'].lut)}/{_fmt(tot['estimate'].lut)}", f"{_fmt(tot['report'].ff)}/{_fmt(tot['estimate'].ff)}")
    console.print(t)
    if cmp["unmatched"]:
        console.print(f"[dim]report modules matched to no kernel: {', '.join(cmp['unmatched'])}[/dim]")


@main.command()
@click.argument("model", required=False)
@click.option("--design", "design_path", type=click.Path(exists=True, dir_okay=False),
              help="Design JSON (from `hwgen search` or by hand); default: the default Design.")
@click.option("--board", help="Board name (zcu102, zcu104, u50, u250, u280, vck190) or a YAML/JSON board file.")
@click.option("--clock", type=float, help="Clock in MHz (default: the design's, else the board's).")
@click.option("--ideal", is_flag=True, help="Ideal memory (full AXI width every cycle, no latency).")
@click.option("--precision", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON fixed-point config for float models.")
@click.option("--csynth", "csynth_path", type=click.Path(exists=True),
              help="Compare with a Vitis HLS csynth.xml (or a folder holding the reports).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Save the estimate as JSON.")
def estimate(model, design_path, board, clock, ideal, precision, csynth_path, json_path) -> None:
    """Estimate latency, throughput and resources of MODEL under a Design on a board."""
    from hwgen.cost import Estimator

    path = _model_arg(model)
    design, b = load_design(design_path, board, clock)
    with err_console.status("importing and lowering the model..."):
        graph = _load_graph(path, precision)
    e = Estimator(design, b, realistic=not ideal).run(graph)
    console.print(f"[bold]{path.name}[/bold] on {b.name} ({b.part}), {design.regime} regime, "
                  f"{e.clock_mhz:g} MHz")
    print_estimate(e)
    report = None
    if csynth_path:
        from hwgen.cost.csynth import compare, load_reports

        report = compare(e, load_reports(csynth_path))
        print_comparison(report)
    if json_path:
        data = {"model": str(path), **e.as_dict()}
        if report is not None:
            data["csynth"] = {"top": report["top"], "unmatched": report["unmatched"],
                              "kernels": [{**{k: v for k, v in r.items() if k not in ("report", "estimate")},
                                           "report": r["report"].as_dict(), "estimate": r["estimate"].as_dict()}
                                          for r in report["kernels"]]}
        Path(json_path).write_text(json.dumps(data, indent=1, default=str))
        console.print(f"estimate saved to {json_path}")
