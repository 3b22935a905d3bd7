"""The bit-accurate simulator: an interpreter over the lowered graph (torch.fx Interpreter style).

Every op computes on integer codes with numpy, vectorised over a batch of images. `run` returns the
graph outputs (codes), optionally every intermediate tensor, and saturation counts per tensor."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwgen.errors import HwgenError
from hwgen.ir import Graph
from hwgen.ops import SimStats, get


@dataclass
class SimResult:
    outputs: dict[str, np.ndarray]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    stats: SimStats = field(default_factory=SimStats)


def prepare_inputs(graph: Graph, x) -> dict[str, np.ndarray]:
    """Accept one array for a single-input model or a dict; add the batch axis the simulator uses."""
    if not isinstance(x, dict):
        if len(graph.inputs) != 1:
            raise HwgenError(f"the model has {len(graph.inputs)} inputs; pass a dict of arrays")
        x = {graph.inputs[0]: x}
    feeds = {}
    for name in graph.inputs:
        if name not in x:
            raise HwgenError(f"missing input '{name}'")
        arr = np.asarray(x[name])
        shape = graph.tensors[name].shape
        if arr.shape[1:] == tuple(shape):
            pass
        elif shape and shape[0] == 1 and arr.shape[1:] == tuple(shape[1:]):
            arr = arr.reshape((arr.shape[0],) + tuple(shape))
        elif arr.shape == tuple(shape):
            arr = arr[None]
        else:
            raise HwgenError(f"input '{name}' has shape {list(arr.shape)}; the model expects {list(shape)} "
                             "(optionally with a leading batch of images)")
        feeds[name] = arr
    return feeds


def run(graph: Graph, x, keep: bool = False, batch_size: int = 256) -> SimResult:
    feeds = prepare_inputs(graph, x)
    n = next(iter(feeds.values())).shape[0]
    stats = SimStats()
    chunks = []
    for start in range(0, n, batch_size):
        part = {k: v[start:start + batch_size] for k, v in feeds.items()}
        chunks.append(_run_chunk(graph, part, keep, stats))
    outputs = {k: np.concatenate([c[0][k] for c in chunks]) for k in graph.outputs}
    tensors = {k: np.concatenate([c[1][k] for c in chunks]) for k in chunks[0][1]} if keep else {}
    return SimResult(outputs, tensors, stats)


def _run_chunk(graph: Graph, feeds: dict, keep: bool, stats: SimStats):
    env = dict(feeds)
    for t in graph.tensors.values():
        if t.is_const:
            env[t.name] = t.data
    remaining = _last_uses(graph)
    kept = {}
    for i, node in enumerate(graph.nodes):
        try:
            outs = get(node.op).simulate(graph, node, [env[x] if x else None for x in node.inputs], stats)
        except HwgenError:
            raise
        except Exception as exc:
            raise HwgenError(f"simulation failed: {type(exc).__name__}: {exc}", node=node.name, op=node.op) from exc
        for name, value in zip(node.outputs, outs):
            env[name] = value
            if keep:
                kept[name] = value
        if not keep:
            for name in remaining.get(i, ()):
                env.pop(name, None)
    return {k: env[k] for k in graph.outputs}, kept


def _last_uses(graph: Graph) -> dict[int, list[str]]:
    """Free each intermediate after its last reader (keeps memory flat for big models)."""
    last = {}
    for i, node in enumerate(graph.nodes):
        for x in node.inputs:
            if x and not graph.tensors[x].is_const:
                last[x] = i
    keep = set(graph.outputs) | set(graph.inputs)
    out: dict[int, list[str]] = {}
    for name, i in last.items():
        if name not in keep:
            out.setdefault(i, []).append(name)
    return out


def dequantize_outputs(graph: Graph, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    res = {}
    for name, codes in outputs.items():
        qt = graph.tensors[name].qtype
        res[name] = qt.dequantize(codes, None if qt.axis is None else qt.axis + 1)
    return res
