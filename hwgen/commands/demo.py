"""hwgen demo: the main job end to end on the bundled MoE-ViT (what `make demo` runs)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np
from rich.table import Table

from hwgen.cli import console, err_console, main


@main.command()
@click.option("-o", "--output", "out", default="build/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--board", default="zcu102", show_default=True)
@click.option("--images", default=64, show_default=True, help="Images for the C simulation.")
def demo(out, board, images) -> None:
    """Build the bundled moe_vit_digits, simulate it, C-simulate it and print a summary."""
    from hwgen import bundled
    from hwgen.codegen.csim import run_csim
    from hwgen.codegen.project import write_project
    from hwgen.commands.build import default_design
    from hwgen.compare import compare
    from hwgen.frontend import load_graph

    model = bundled.default_model()
    xp, yp = bundled.digits_test()
    x, y = np.load(xp).astype(np.float32), np.load(yp)
    rows = []
    t0 = time.perf_counter()
    with err_console.status("importing and lowering the model..."):
        graph = load_graph(model)
    s = graph.summary()
    rows.append(("model", f"{model.name}: {s['nodes']} hardware ops, {s['parameters']:,} parameters"))
    design = default_design(graph, board, None, None)
    with err_console.status(f"generating the HLS project in {out}..."):
        write_project(graph, design, out, str(model))
    rows.append(("project", f"{out} ({sum(1 for p in Path(out).rglob('*') if p.is_file())} files, "
                            f"{design.regime}, tile {design.linear.tile_in}x{design.linear.tile_out}, P={design.attention.rows})"))
    with err_console.status(f"simulating {len(x)} test images and running onnxruntime..."):
        report = compare(graph, model, x, y)
    rows.append(("accuracy", f"simulator {report.accuracy_sim:.2%}, onnxruntime {report.accuracy_ref:.2%} "
                             f"(argmax agreement {report.argmax_agreement:.2%}, {len(x)} test images)"))
    with err_console.status(f"C simulation of {images} images with g++ (first build compiles, ~1 min)..."):
        cs = run_csim(out, x[:images])
    rows.append(("bit-exact", f"{'yes' if cs.bit_exact else 'NO'}: {cs.elements:,} output codes of {cs.images} images, "
                              f"{cs.mismatches} mismatches"))
    est = json.loads((Path(out) / "hwgen_report.json").read_text()).get("estimate", {})
    if "unavailable" not in est and est:
        util = est.get("utilisation", {})
        rows.append(("estimate", f"{board} at {est['clock_mhz']:.0f} MHz, this design: {est['latency_ms']:.3f} ms/image, "
                                 f"{est['images_per_s']:,.0f} images/s; DSP {util.get('dsp', 0):.1%}, "
                                 f"BRAM {util.get('bram18k', 0):.1%}, LUT {util.get('lut', 0):.1%} ({est['bound']})"))
    else:
        rows.append(("estimate", "not available: " + str(est.get("unavailable", "no cost model"))[:120]))
    rows.append(("time", f"{time.perf_counter() - t0:.1f} s"))
    table = Table(title="hwgen demo", show_header=False)
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if not cs.bit_exact:
        raise SystemExit(1)
