"""hwgen command line: `hwgen inspect`, `hwgen simulate` (and more as they land).

Bad input gives one line on stderr and exit code 2, never a traceback (set HWGEN_DEBUG=1 to see one)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hwgen import __version__
from hwgen.errors import HwgenError

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, highlight=False)
_CURRENT_MODEL: list[str] = []  # the model the running command reads: errors that do not name a file name it


def _model_arg(model: str | None) -> Path:
    from hwgen import bundled

    if model is None:
        path = bundled.default_model()
        err_console.print(f"[dim]no model given: using the bundled {path.name}[/dim]")
    else:
        path = Path(model)
    _CURRENT_MODEL[:] = [str(path)]
    return path


def _safe(text) -> str:
    """A name from the model, for rich output: markup escaped, control characters shown as escapes."""
    from hwgen.errors import _printable

    return escape(_printable(str(text)))


def _input_count(model: Path, input_path: str | None, limit: int | None) -> int:
    """How many inputs `_inputs` will produce, without loading them."""
    from hwgen import bundled

    if input_path is None and bundled.is_digits_model(model):
        input_path = str(bundled.digits_test()[0])
    if input_path is None:
        return limit or 8
    try:
        n = int(np.load(input_path, mmap_mode="r").shape[0])
    except Exception:  # noqa: BLE001 - _inputs reports unreadable inputs
        n = 0
    return min(n, limit) if limit else n


def _load_graph(model: Path, precision: str | None):
    from hwgen.frontend import load_graph
    from hwgen.precision import Precision

    return load_graph(model, Precision.load(precision) if precision else None)


def _inputs(graph, model: Path, input_path: str | None, labels_path: str | None, limit: int | None):
    from hwgen import bundled

    labels = None
    if input_path is None and bundled.is_digits_model(model):
        x, labels = bundled.digits_test_inputs(model)
        if labels_path:
            labels = np.load(labels_path)
        what = "sentences of token ids" if bundled.is_token_model(model) else "images"
        console.print(f"[dim]no input given: using the bundled digits test split ({what})[/dim]")
        return x[:limit] if limit else x, labels[:limit] if limit else labels
    if input_path is None:
        n = limit or 8
        if any(not graph.tensors[i].qtype.is_float for i in graph.inputs):
            from hwgen.codegen.tbdata import SEED, random_inputs

            console.print(f"[dim]no input given: using {n} pseudo-random inputs (seed {SEED}) within the input's "
                          f"range[/dim]")
            return random_inputs(graph, n), None
        shape = graph.tensors[graph.inputs[0]].shape
        x = np.random.default_rng(0).standard_normal((n,) + tuple(shape[1:] if shape and shape[0] == 1 else shape))
        console.print(f"[dim]no input given: using {n} random normal inputs (seed 0)[/dim]")
        return x.astype(np.float32), None
    try:
        x = np.load(input_path)
        if labels_path:
            labels = np.load(labels_path)
    except (OSError, ValueError) as exc:
        raise HwgenError(f"cannot read input: {exc}", file=input_path) from None
    if limit:
        x = x[:limit]
        labels = labels[:limit] if labels is not None else None
    if labels is not None and len(labels) != len(x):
        raise HwgenError(f"{len(labels)} labels for {len(x)} inputs", file=labels_path)
    return np.asarray(x, dtype=np.float32 if np.issubdtype(x.dtype, np.floating) else np.int64), labels


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hwgen")
def main() -> None:
    """Quantized transformers (ViT, BERT-style encoders, MoE-ViT) from ONNX to bit-exact FPGA accelerators."""


@main.command()
@click.argument("model", required=False)
@click.option("--precision", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON fixed-point config for float models (default ap_fixed<16,6>).")
def inspect(model: str | None, precision: str | None) -> None:
    """Print the lowered IR of MODEL (one line per hardware op, with numeric types)."""
    path = _model_arg(model)
    graph = _load_graph(path, precision)
    from hwgen.errors import _printable

    # names come from the model: no terminal control sequences (one line per op stays one line)
    click.echo("\n".join(_printable(line) for line in str(graph).split("\n")))
    s = graph.summary()
    click.echo(f"# {s['nodes']} ops, {s['parameters']:,} parameters; format {graph.meta['format']}; "
                  + ", ".join(f"{k} x{v}" for k, v in sorted(s["ops"].items())))


@main.command()
@click.argument("model", required=False)
@click.option("--input", "input_path", type=click.Path(dir_okay=False), help="Inputs as .npy, [N, ...].")
@click.option("--labels", "labels_path", type=click.Path(dir_okay=False), help="Labels as .npy, [N].")
@click.option("--per-layer", is_flag=True, help="Compare every layer, fed onnxruntime's own inputs.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Save the report as JSON.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N inputs.")
@click.option("--precision", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON fixed-point config for float models (default ap_fixed<16,6>).")
@click.option("--strict", is_flag=True, help="Fail (exit 1) if any tensor saturates or wraps.")
def simulate(model, input_path, labels_path, per_layer, json_path, limit, precision, strict) -> None:
    """Run the bit-accurate simulator and onnxruntime on the same inputs and compare them."""
    from hwgen.compare import compare

    from hwgen import sim

    path = _model_arg(model)
    with err_console.status("importing and lowering the model..."):
        graph = _load_graph(path, precision)
    # memory, before anything big is allocated: the simulator's chunks, the inputs (float64 while generated,
    # then float32), onnxruntime's float32 run in batches of 64 (with every tensor kept for --per-layer)
    n = _input_count(path, input_path, limit)
    in_elems = sum(graph.tensors[i].size for i in graph.inputs)
    all_elems = sum(t.size for t in graph.tensors.values() if not t.is_const)
    extra = n * in_elems * 12 + (n * all_elems * 4 * 2 if per_layer else 0)
    chunk, need = sim.plan_batch(graph, n, extra=extra, workers=sim.default_workers())
    ort_need = sim.estimate_memory(graph, min(n, 64)) // 2 + extra
    avail = sim.available_memory()
    if ort_need > avail:
        raise HwgenError(f"onnxruntime's reference run needs about {sim.format_bytes(ort_need)} of memory but only "
                         f"{sim.format_bytes(avail)} is available; use a smaller --limit")
    console.print(f"[dim]memory: about {sim.format_bytes(max(need, ort_need))} for {n} inputs "
                      f"(simulator chunks of {chunk}, {sim.default_workers()} at a time; {sim.format_bytes(avail)} available)[/dim]")
    x, labels = _inputs(graph, path, input_path, labels_path, limit)
    with err_console.status(f"simulating {len(x)} inputs and running onnxruntime..."):
        report = compare(graph, path, x, labels, layers=per_layer)
    _print_report(graph, path, report, per_layer)
    if json_path:
        Path(json_path).write_text(json.dumps({"model": str(path), **report.as_dict()}, indent=1))
        console.print(f"report saved to {_safe(json_path)}")
    if strict and any(report.saturations.values()):
        err_console.print("strict: saturation or wrap-around occurred")
        sys.exit(1)


def _print_report(graph, path: Path, report, per_layer: bool) -> None:
    from hwgen.ops import get as get_op

    s = graph.summary()
    console.print(f"[bold]{_safe(path.name)}[/bold]: {s['nodes']} hardware ops, {s['parameters']:,} parameters, "
                  f"format {graph.meta['format']}")
    t = Table(title=f"simulator vs onnxruntime on {report.images} inputs", show_header=False)
    if report.argmax_agreement is not None:
        t.add_row("argmax agreement", f"{report.argmax_agreement:.2%}")
    if report.accuracy_sim is not None:
        t.add_row("accuracy (simulator)", f"{report.accuracy_sim:.2%}")
        t.add_row("accuracy (onnxruntime)", f"{report.accuracy_ref:.2%}")
    t.add_row("output error (LSB)", f"max {report.output_max_lsb}, mean {report.output_mean_lsb:.3f}")
    sat = {k: v for k, v in report.saturations.items() if v}
    t.add_row("saturated tensors", f"{len(sat)} of {len(report.saturations)}"
              + (f" ({sum(sat.values()):,} elements)" if sat else ""))
    console.print(t)
    if per_layer and report.layers:
        lt = Table(title="per layer (each op fed onnxruntime's inputs)")
        for col in ("op", "output", "max LSB", "mean LSB", "<=1 LSB", "exact", "max rel"):
            if col == "output":
                lt.add_column(col, no_wrap=True, min_width=24, max_width=40)
            else:
                lt.add_column(col, justify="right" if col != "op" else "left", no_wrap=True)
        for r in report.layers:
            if get_op(r.op).data_movement and r.max_lsb == 0:
                continue
            lt.add_row(_safe(r.op), _safe(r.output[:40]), str(r.max_lsb), f"{r.mean_lsb:.3f}", f"{r.within_1lsb:.3%}",
                       f"{r.exact:.1%}", f"{r.max_rel:.2e}")
        console.print(lt)
    if sat:
        st = Table(title="saturations per tensor")
        st.add_column("tensor")
        st.add_column("saturated", justify="right")
        st.add_column("of", justify="right")
        for k, v in sorted(sat.items(), key=lambda kv: -kv[1])[:15]:
            st.add_row(_safe(k[:50]), f"{v:,}", f"{report.elements[k]:,}")
        console.print(st)


from hwgen import commands  # noqa: E402,F401  (registers the other subcommands on `main`)


def run() -> None:
    """Entry point with one-line errors."""
    import warnings

    _CURRENT_MODEL.clear()
    if not os.environ.get("HWGEN_DEBUG"):
        warnings.simplefilter("ignore")  # numpy/onnx warnings would break the one-line error contract
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(2)
    except HwgenError as exc:
        if exc.file is None and _CURRENT_MODEL:
            exc.with_file(_CURRENT_MODEL[0])
        _fail(exc.one_line(), exc)
    except MemoryError as exc:
        _fail(_where() + "out of memory: try a smaller --limit", exc)
    except RecursionError as exc:
        _fail(_where() + "the model is nested too deeply", exc)
    except Exception as exc:  # never a traceback for the user; HWGEN_DEBUG=1 shows it
        _fail(_where() + f"internal error ({type(exc).__name__}: {str(exc)[:300]})", exc)


def _where() -> str:
    return f"{_CURRENT_MODEL[0]}: " if _CURRENT_MODEL else ""


def _fail(line: str, exc: BaseException) -> None:
    from hwgen.errors import _printable

    if os.environ.get("HWGEN_DEBUG"):
        raise exc
    err_console.print(f"hwgen: error: {_printable(line)}", markup=False, emoji=False, highlight=False,
                      soft_wrap=True)
    sys.exit(2)


if __name__ == "__main__":  # python -m hwgen.cli: run the imported module, whose `main` has every subcommand
    from hwgen.cli import run as _run

    _run()
