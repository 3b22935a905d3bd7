"""hwgen csim: compile the generated project with g++ and compare it with the simulator, bit for bit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from hwgen.cli import console, err_console, main


def project_inputs(out: Path, graph, manifest: dict, input_path: str | None, limit: int):
    from hwgen import bundled

    if input_path:
        try:
            x = np.load(input_path)
        except (OSError, ValueError) as exc:
            from hwgen.errors import HwgenError

            raise HwgenError(f"cannot read input: {exc}", file=input_path) from None
        return np.asarray(x[:limit], dtype=np.float32), input_path
    report = json.loads((out / "hwgen_report.json").read_text())
    if "digits" in report.get("model", ""):
        x = bundled.digits_test_inputs(Path(bundled.ONNX / Path(report["model"]).name))[0]
        return x[:limit], f"the bundled digits test split (first {limit})"
    if any(not graph.tensors[i].qtype.is_float for i in graph.inputs):
        from hwgen.codegen.tbdata import SEED, random_inputs

        return random_inputs(graph, limit), f"{limit} pseudo-random inputs (seed {SEED}) within the input's range"
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.random.default_rng(0).standard_normal((limit,) + tuple(shape[1:] if shape and shape[0] == 1 else shape))
    return x.astype(np.float32), f"{limit} random normal inputs (seed 0)"


@main.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--input", "input_path", type=click.Path(dir_okay=False), help="Inputs as .npy, [N, ...].")
@click.option("--limit", type=int, default=64, show_default=True, help="Number of inputs to run.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Save the comparison as JSON.")
def csim(out, input_path, limit, json_path) -> None:
    """C-simulate project OUT with g++ and compare every output with the simulator as integers."""
    from hwgen.codegen.csim import load_project, run_csim

    out = Path(out)
    manifest, graph = load_project(out)
    x, what = project_inputs(out, graph, manifest, input_path, limit)
    err_console.print(f"[dim]inputs: {what}[/dim]")
    with err_console.status("compiling with g++ (cached by content) and running the testbench..."):
        report = run_csim(out, x)
    console.print(f"C simulation of {report.images} inputs: {report.elements:,} output elements, "
                  f"{report.mismatches:,} mismatches -> {'BIT-EXACT' if report.bit_exact else 'NOT bit-exact'} "
                  f"({report.seconds_run:.1f} s compile+run)")
    if report.first_mismatch:
        console.print(f"first mismatch: {report.first_mismatch}")
    if json_path:
        Path(json_path).write_text(json.dumps(report.as_dict(), indent=1))
    if not report.bit_exact:
        sys.exit(1)
