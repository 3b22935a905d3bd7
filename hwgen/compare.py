"""Simulator against onnxruntime: end to end, and layer by layer with onnxruntime's own inputs fed to
each op (so errors do not compound), in LSBs of the output type."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from hwgen import numerics, sim
from hwgen.ir import Graph
from hwgen.ir.graph import walk
from hwgen.ops import SimStats, get
from hwgen.reference import run_onnxruntime


@dataclass
class LayerError:
    node: str
    op: str
    output: str
    elements: int
    max_lsb: int
    mean_lsb: float
    within_1lsb: float     # fraction of elements within one LSB
    exact: float           # fraction exactly equal
    max_rel: float         # max |error| / max |reference| (real values)

    def as_dict(self) -> dict:
        return asdict(self)


def _codes(graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    return _codes_of(graph.tensors[name].qtype, value)


def _codes_of(qt, value: np.ndarray) -> np.ndarray:
    """onnxruntime's value of a tensor as codes of the simulator's type."""
    value = np.asarray(value)
    if np.issubdtype(value.dtype, np.integer) or qt.is_float:
        return value.astype(np.int64) if not qt.is_float else value
    if qt.kind == "int":
        return numerics.quantize_linear(value, qt.scale, qt.zero_point, qt.bits, qt.signed,
                                        axis=None if qt.axis is None else qt.axis + 1)
    return np.rint(value.astype(np.float64) * 2.0**qt.frac_bits).astype(np.int64)


def reference_tensors(graph: Graph, source, x: np.ndarray) -> dict[str, np.ndarray]:
    """onnxruntime values (with the batch axis) for every graph tensor that has an ONNX source."""
    tensors = {}
    for g in [graph] + [g for g, _ in walk(graph)]:
        tensors.update(g.tensors)
    wanted = {t.source for t in tensors.values() if t.source and not t.is_const}
    ort = run_onnxruntime(source, x, sorted(wanted))
    n = x.shape[0]
    out = {}
    for t in tensors.values():
        if t.is_const or not t.source or t.source not in ort:
            continue
        v = ort[t.source]
        try:
            out[t.name] = _codes_of(t.qtype, v.reshape((n,) + tuple(t.shape)))
        except ValueError:
            continue
    for name in graph.inputs:  # integer inputs (token ids) are their own codes
        t = graph.tensors[name]
        if not t.qtype.is_float and len(graph.inputs) == 1:
            out[name] = np.asarray(x, dtype=np.int64).reshape((n,) + tuple(t.shape))
    return out


def per_layer(graph: Graph, ref: dict[str, np.ndarray]) -> list[LayerError]:
    rows = []
    for graph, node in walk(graph):
        ins = [i for i in node.inputs if i and not graph.tensors[i].is_const]
        if not all(i in ref for i in ins) or not all(o in ref for o in node.outputs):
            continue
        feeds = [ref[i] if i in ref else graph.tensors[i].data for i in node.inputs]
        got = get(node.op).simulate(graph, node, feeds, SimStats())
        for name, value in zip(node.outputs, got):
            rows.append(_error(graph, node, name, np.asarray(value), ref[name]))
    return rows


def _error(graph: Graph, node, name: str, got: np.ndarray, want: np.ndarray) -> LayerError:
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    qt = graph.tensors[name].qtype
    axis = None if qt.axis is None else qt.axis + 1
    real_ref = np.abs(qt.dequantize(want, axis))
    real_err = np.abs(qt.dequantize(got, axis) - qt.dequantize(want, axis))
    denom = float(real_ref.max()) if real_ref.size and real_ref.max() > 0 else 1.0
    return LayerError(node.name, node.op, name, int(diff.size), int(diff.max(initial=0)), float(diff.mean()) if diff.size else 0.0,
                      float(np.mean(diff <= 1)) if diff.size else 1.0, float(np.mean(diff == 0)) if diff.size else 1.0,
                      float(real_err.max(initial=0) / denom))


@dataclass
class Report:
    images: int
    argmax_agreement: float | None
    accuracy_sim: float | None
    accuracy_ref: float | None
    output_max_lsb: int
    output_mean_lsb: float
    layers: list[LayerError]
    saturations: dict[str, int]
    elements: dict[str, int]

    def as_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [l.as_dict() for l in self.layers]
        return d


def compare(graph: Graph, source: str | os.PathLike | onnx.ModelProto, x: np.ndarray,
            labels: np.ndarray | None = None, layers: bool = False) -> Report:
    result = sim.run(graph, x)
    out = graph.outputs[0]
    ref = reference_tensors(graph, source, x) if layers else None
    if ref is None or out not in ref:
        ort = run_onnxruntime(source, x, [graph.tensors[out].source] if graph.tensors[out].source else [])
        key = graph.tensors[out].source if graph.tensors[out].source in ort else next(iter(ort))
        want = _codes(graph, out, ort[key].reshape(result.outputs[out].shape))
    else:
        want = ref[out]
    got = result.outputs[out]
    diff = np.abs(got.astype(np.int64) - np.asarray(want).astype(np.int64)) if not graph.tensors[out].qtype.is_float else np.zeros(1)
    n = x.shape[0]
    g2, w2 = got.reshape(n, -1), np.asarray(want).reshape(n, -1)
    agree = float(np.mean(g2.argmax(1) == w2.argmax(1))) if g2.shape[1] > 1 else None
    acc_sim = acc_ref = None
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        acc_sim = float(np.mean(g2.argmax(1) == labels))
        acc_ref = float(np.mean(w2.argmax(1) == labels))
    rows = per_layer(graph, ref) if layers else []
    return Report(n, agree, acc_sim, acc_ref, int(diff.max()), float(diff.mean()), rows,
                  dict(result.stats.saturations), dict(result.stats.elements))
