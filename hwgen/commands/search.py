"""`hwgen search MODEL --board B [--budget ...] [--objective latency|throughput] -o design.json`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwgen.cli import _load_graph, _model_arg, console, err_console, main


@main.command()
@click.argument("model", required=False)
@click.option("--board", required=True, help="Board name (zcu102, zcu104, u50, u250, u280, vck190) or a YAML/JSON file.")
@click.option("--budget", "budget_text", help="Fractions of the device, e.g. dsp=0.8,bram=0.8,lut=0.7,uram=0.8 "
                                               "(default dsp/bram/uram 0.8, lut/ff 0.7).")
@click.option("--objective", type=click.Choice(["latency", "throughput"]), default="latency", show_default=True)
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False), default="design.json", show_default=True,
              help="Where to write the chosen Design (feeds `hwgen build --design`).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Save the Pareto front as a PNG.")
@click.option("--regimes", default="streaming,unrolled", show_default=True, help="Regimes to consider.")
@click.option("--no-pack", is_flag=True, help="Never pack two int8 MACs per DSP (a kernel without packing).")
@click.option("--exhaustive", is_flag=True, help="Enumerate the whole space instead (small spaces only).")
@click.option("--ideal", is_flag=True, help="Ideal memory model (full AXI width, no latency).")
@click.option("--clock", type=float, help="Clock in MHz (default: the board's).")
@click.option("--precision", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON fixed-point config for float models.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Save the result and the Pareto front.")
def search(model, board, budget_text, objective, out_path, plot_path, regimes, no_pack, exhaustive, ideal, clock,
           precision, json_path) -> None:
    """Search the design space of MODEL for the best Design that fits a resource budget."""
    from hwgen.boards import get_board
    from hwgen.errors import HwgenError
    from hwgen.search import Space, parse_budget
    from hwgen.search import engine

    b = get_board(board)
    budget = parse_budget(budget_text)
    regime_list = [r.strip() for r in regimes.split(",") if r.strip()]
    bad = [r for r in regime_list if r not in ("streaming", "unrolled")]
    if bad or not regime_list:
        raise HwgenError(f"--regimes: unknown {bad or regimes!r} (streaming, unrolled)")
    path = _model_arg(model)
    with err_console.status("importing and lowering the model..."):
        graph = _load_graph(path, precision)
    space = Space.for_model(graph, b, pack=not no_pack, regimes=regime_list)
    space.clock_mhz = clock
    total = space.size() if exhaustive else 500
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as prog:
        task = prog.add_task(f"searching {b.name}", total=total)

        def tick(n):
            t = prog.tasks[task]
            if t.completed + n > t.total:
                prog.update(task, total=t.total * 2)
            prog.advance(task, n)

        if exhaustive:
            if space.size() > 20000:
                raise HwgenError(f"--exhaustive: the space has {space.size():,} designs; use the heuristic")
            res = engine.exhaustive(graph, b, budget, space, objective, not ideal, tick)
        else:
            res = engine.search(graph, b, budget, objective, space, not ideal, progress=tick)
    best = res.best
    d = best.design
    d.board = board if Path(board).is_file() else b.name
    d.save(out_path)
    console.print(f"[bold]{path.name}[/bold] on {b.name}: {res.evaluations} designs evaluated in {res.seconds:.1f} s; "
                  f"budget " + ", ".join(f"{k} {v:.0%}" for k, v in budget.items()))
    t = Table(title=f"chosen design ({objective}) -> {out_path}", show_header=False)
    t.add_row("regime", d.regime)
    t.add_row("linear", f"T_IN {d.linear.tile_in} x T_OUT {d.linear.tile_out}, {d.linear.lanes} lanes, "
                        f"weights per {d.linear.weight_buffer}, int8 packing {'on' if d.linear.pack_int8 else 'off'}")
    t.add_row("attention", f"P {d.attention.rows}, dot {d.attention.dot or 'head dim'}, "
                           f"K/V {'buffered' if d.attention.kv_buffer else 're-streamed'}")
    t.add_row("element-wise", f"{d.elementwise.par} per cycle")
    t.add_row("memory", f"{d.memory.weight_ports} x {d.memory.axi_bits}-bit weight ports, intermediates "
                        f"{d.memory.intermediates}, storage {d.memory.storage}, prefetch {d.memory.prefetch}")
    if d.overrides:
        t.add_row("overrides", f"{len(d.overrides)} nodes (per-node folding)")
    t.add_row("latency", f"{best.latency_cycles:,.0f} cycles = {best.latency_ms:.4g} ms per image")
    t.add_row("throughput", f"{best.images_per_s:,.1f} images/s, {best.gops:,.1f} GOPS")
    t.add_row("utilisation", ", ".join(f"{k} {v:.0%}" for k, v in best.utilisation.items()))
    console.print(t)
    p = Table(title="Pareto front (latency vs DSP and BRAM_18K)")
    for col in ("latency ms", "img/s", "DSP", "BRAM18K", "LUT", "regime", "linear", "P", "par"):
        p.add_column(col, justify="right")
    for r in res.pareto[:20]:
        x = r.design
        p.add_row(f"{r.latency_ms:.4g}", f"{r.images_per_s:,.0f}", f"{r.resources['dsp']:.0f}",
                  f"{r.resources['bram18k']:.0f}", f"{r.resources['lut']:,.0f}", x.regime,
                  f"{x.linear.tile_in}x{x.linear.tile_out}x{x.linear.lanes}", str(x.attention.rows),
                  str(x.elementwise.par))
    console.print(p)
    if plot_path:
        from hwgen.search.plot import plot_pareto

        plot_pareto(res, b, budget, plot_path, f"{path.name} on {b.name}: latency vs DSP and BRAM_18K")
        console.print(f"Pareto plot saved to {plot_path}")
    if json_path:
        Path(json_path).write_text(json.dumps({"model": str(path), "board": b.name, "budget": budget,
                                               "objective": objective, **res.as_dict()}, indent=1))
        console.print(f"search result saved to {json_path}")
