"""hwgen build: a complete Vitis HLS project for a model and a Design."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hwgen.cli import _load_graph, _model_arg, console, err_console, main


def default_design(graph, board: str, part: str | None, clock: float | None):
    """When no Design is given: the streaming regime with UbiMoE's default knobs (16x16 tile, P=4)."""
    from hwgen.design import Design

    return Design(regime="streaming", board=board, part=part, clock_mhz=clock).validate()


@main.command()
@click.argument("model", required=False)
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False), help="Project directory.")
@click.option("--design", "design_path", type=click.Path(exists=True, dir_okay=False), help="Design JSON (hwgen search -o).")
@click.option("--board", default="zcu102", show_default=True, help="Board name or YAML/JSON board file.")
@click.option("--part", default=None, help="FPGA part (overrides the board's).")
@click.option("--clock", type=float, default=None, help="Clock in MHz (default: the board's).")
@click.option("--regime", type=click.Choice(["streaming", "unrolled"]), default=None,
              help="Override the Design's regime (unrolled: weights on chip, everything parallel).")
@click.option("--precision", type=click.Path(exists=True, dir_okay=False), help="Fixed-point config for float models.")
@click.option("--tb-images", type=click.IntRange(min=0), default=8, show_default=True,
              help="Images for the testbench's tb/tb_data/inputs.bin and expected.bin (the simulator's codes); 0: none.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Testbench inputs as .npy, [N, ...] (default: the bundled digits test split for a bundled model, "
                   "else seeded pseudo-random inputs over the input's quantisation range).")
def build(model, out, design_path, board, part, clock, regime, precision, tb_images, input_path) -> None:
    """Generate the HLS project for MODEL into OUT (firmware, self-checking testbench and its data, TCL, report)."""
    from hwgen.codegen import tbdata
    from hwgen.codegen.project import write_project
    from hwgen.design import Design

    path = _model_arg(model)
    t0 = time.perf_counter()
    with err_console.status("importing and lowering the model..."):
        graph = _load_graph(path, precision)
    tb_inputs, what = None, None
    if tb_images:
        tb_inputs, what = tbdata.choose_inputs(graph, tb_images, input_path, path)
    # inputs the user chose must simulate; with the default ones a refusal (memory, a simulator limit) leaves
    # the project without testbench data and a warning (hwgen csim can write the data later)
    tb_errors = None if input_path else []
    if design_path:
        design = Design.load(design_path)
        if part:
            design.part = part
        if clock:
            design.clock_mhz = clock
    else:
        design = default_design(graph, board, part, clock)
    if regime:
        design.regime = regime
    with err_console.status(f"writing the project to {out}..."):
        write_project(graph, design.validate(), out, str(path), tb_inputs=tb_inputs, tb_errors=tb_errors)
    files = sum(1 for p in Path(out).rglob("*") if p.is_file())
    console.print(f"wrote {out}: {files} files in {time.perf_counter() - t0:.1f} s "
                  f"({design.regime} regime, linear tile {design.linear.tile_in}x{design.linear.tile_out}, "
                  f"{design.linear.lanes} lane(s), attention P={design.attention.rows})")
    if tb_errors:
        err_console.print(f"warning: no testbench data (tb/tb_data/), the testbench will not find its inputs: "
                          f"{tb_errors[0].one_line()}", markup=False, highlight=False)
    elif tb_inputs is not None:
        console.print(f"testbench data: {what}; the testbench checks its outputs against "
                      "tb/tb_data/expected.bin (the simulator's)", markup=False)
    console.print(f"next: hwgen csim {out}")
