"""The testbench's data files, tb/tb_data/inputs.bin and tb/tb_data/expected.bin, from a simulator run.

Both hold int64 little-endian codes, image after image: inputs.bin the codes the accelerator receives (float
inputs quantised as the host does), in the order of the top function's input ports; expected.bin the
simulator's output codes, in the order of its output ports (the layout the testbench writes outputs.bin in).
`hwgen build` writes them for a few images so the project's testbench checks itself; `hwgen csim` rewrites
them for its own images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwgen import sim
from hwgen.codegen.project import host_inputs
from hwgen.errors import HwgenError
from hwgen.ir import Graph
from hwgen.ops import SimStats, get

INPUTS = "inputs.bin"
EXPECTED = "expected.bin"
SEED = 0


def input_codes(graph: Graph, x, result: sim.SimResult | None = None) -> dict[str, np.ndarray]:
    """{tensor the accelerator receives: int64 codes [N, ...]} for each input port: the simulator's own
    tensor when `result` kept it, else the host-side quantize node applied to the float input."""
    feeds = sim.prepare_inputs(graph, x)
    codes = {}
    for name, tensor in host_inputs(graph):
        kept = result.tensors.get(tensor) if result is not None else None
        if kept is not None:
            codes[tensor] = np.asarray(kept)
        elif tensor == name:  # an integer graph input fed directly
            codes[tensor] = np.asarray(feeds[name])
        else:
            node = graph.producer(tensor)  # the quantize node host_inputs found
            codes[tensor] = np.asarray(get(node.op).simulate(graph, node, [feeds[name]], SimStats())[0])
    return codes


def encode(graph: Graph, x, result: sim.SimResult) -> dict[str, bytes]:
    """{"inputs.bin": bytes, "expected.bin": bytes} for the images of `x` and the simulator's `result`."""
    codes = input_codes(graph, x, result)
    n = next(iter(sim.prepare_inputs(graph, x).values())).shape[0]

    def rows(arrays) -> bytes:
        flat = [np.asarray(a).reshape(n, -1) for a in arrays]
        if not flat:
            return b""
        return np.ascontiguousarray(np.concatenate(flat, axis=1), dtype="<i8").tobytes()

    return {INPUTS: rows(codes[t] for _, t in host_inputs(graph)),
            EXPECTED: rows(result.outputs[name] for name in graph.outputs)}


def files(graph: Graph, x, errors: list | None = None) -> dict[str, bytes]:
    """{"tb/tb_data/inputs.bin": ..., "tb/tb_data/expected.bin": ...}: simulates `x` (only the outputs are
    kept; the input codes are computed as the host does). When the simulation is refused (memory) or fails,
    the HwgenError is raised, or with `errors` (a list) appended to it and no file returned."""
    try:
        check_memory(graph, x)
        result = sim.run(graph, x)
        return {f"tb/tb_data/{k}": v for k, v in encode(graph, x, result).items()}
    except HwgenError as err:
        if errors is None:
            raise
        errors.append(err)
        return {}


def check_memory(graph: Graph, x) -> None:
    """A HwgenError (naming --tb-images) when simulating `x` would not fit in memory."""
    n = next(iter(sim.prepare_inputs(graph, x).values())).shape[0]
    try:
        sim.plan_batch(graph, n, workers=sim.default_workers())
    except HwgenError as err:
        raise HwgenError(err.message.replace("use a smaller --limit", "use a smaller --tb-images")) from None


def random_inputs(graph: Graph, n: int, seed: int = SEED):
    """`n` deterministic pseudo-random inputs spanning each input's quantisation range: float inputs quantised
    to an integer type (a calibrated scale and zero point) uniform between the real values of its smallest
    and largest codes; float inputs quantised to a fixed-point format (a float model's blanket precision,
    e.g. ap_fixed<16,6>: its full range would saturate or overflow most models) standard normal, clipped
    to the format's range; integer inputs uniform over their codes. One array for a single-input model,
    else a dict."""
    rng = np.random.default_rng(seed)
    pairs = dict(host_inputs(graph))
    out = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        shape = (n,) + tuple(t.shape)
        q = graph.tensors[pairs[name]].qtype
        if t.qtype.is_float:
            lo, hi = real_range(q)
            if q.kind == "fixed":  # a blanket format (e.g. ap_fixed<16,6>), not a calibrated range
                out[name] = np.clip(rng.standard_normal(shape), lo, hi).astype(np.float32)
            else:
                out[name] = rng.uniform(lo, hi, shape).astype(np.float32)
        else:  # token ids stop at the table's last row
            hi = min(q.qmax, graph.meta.get("id_limits", {}).get(name, q.qmax))
            out[name] = rng.integers(q.qmin, hi, shape, endpoint=True, dtype=np.int64)
    return out[graph.inputs[0]] if len(graph.inputs) == 1 else out


def real_range(q) -> tuple[float, float]:
    """The real values of the smallest and the largest code of type `q` (over all channels)."""
    if q.is_float:
        return -np.inf, np.inf
    scale, zp = np.asarray(q.scale, dtype=np.float64), np.asarray(q.zero_point, dtype=np.float64)
    lo, hi = (q.qmin - zp) * scale, (q.qmax - zp) * scale
    return float(np.min(np.minimum(lo, hi))), float(np.max(np.maximum(lo, hi)))


def choose_inputs(graph: Graph, n: int, input_path: str | None = None, model_path: str | Path | None = None):
    """(inputs for `n` images, what they are) for `hwgen build`: the first `n` of `input_path` (.npy); for a
    bundled model the bundled digits test split; else `random_inputs`. The inputs are checked against the
    model's input shape (a HwgenError naming the file)."""
    from hwgen import bundled

    if input_path:
        try:
            x = np.load(input_path)
        except (OSError, ValueError) as exc:
            raise HwgenError(f"cannot read input: {exc}", file=str(input_path)) from None
        if x.ndim == 0 or not np.issubdtype(x.dtype, np.number) or len(x) == 0:
            raise HwgenError(f"expected a non-empty numeric array [N, ...], got {x.dtype} {list(x.shape)}",
                             file=str(input_path))
        floats = all(graph.tensors[i].qtype.is_float for i in graph.inputs)
        x = np.asarray(x[:n], dtype=np.float32 if floats else np.int64)
        what = f"{len(x)} input(s) of {Path(input_path).name}"
    elif model_path is not None and bundled.is_digits_model(Path(model_path)):
        x = bundled.digits_test_inputs(Path(model_path))[0][:n]
        what = f"the bundled digits test split (first {len(x)})"
    else:
        x = random_inputs(graph, n)
        what = f"{n} pseudo-random inputs (seed {SEED}) within the input's quantisation range"
    try:
        sim.prepare_inputs(graph, x)
    except HwgenError as err:
        raise err.with_file(str(input_path or model_path or "")) from None
    return x, what
