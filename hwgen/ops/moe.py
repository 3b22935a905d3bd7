"""moe: top-k mixture of experts, computed expert by expert on the selected tokens only.

Router: the gate subgraph (linear -> softmax) gives probability codes p; the k largest per token are
kept (ties to the lower expert index, as onnxruntime's TopK), unnormalised, as in M3ViT. Each expert
subgraph (linear -> GELU -> linear) runs on the tokens routed to it. The combine accumulates
(p - zp) * (y_e - zy_e) with one integer multiplier per expert in a wide accumulator and rounds once into
the output type (the ONNX graph states the same sum as a chain of quantised adds; hwgen keeps the
precision and rounds once)."""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, get, register


@register
class MoE(OpDef):
    name = "moe"

    def check(self, graph: Graph, node: Node) -> None:
        probs = node.attrs["_gate"].tensors[node.attrs["_gate"].outputs[0]].qtype
        if probs.per_channel:
            raise self.unsupported(node, "per-channel router probabilities")

    def params(self, graph: Graph, node: Node) -> dict:
        gate: Graph = node.attrs["_gate"]
        experts: list[Graph] = node.attrs["_experts"]
        p_type = gate.tensors[gate.outputs[0]].qtype
        out = graph.tensors[node.outputs[0]].qtype
        y_types = [sg.tensors[sg.outputs[0]].qtype for sg in experts]
        mults, shift = common.sum_params([float(p_type.scale) * float(t.scale) for t in y_types], out)
        return {"p_zero_point": int(p_type.zero_point), "y_zero_points": [int(t.zero_point) for t in y_types],
                "mults": [int(m) for m in mults], "shift": shift}

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        gate: Graph = node.attrs["_gate"]
        experts: list[Graph] = node.attrs["_experts"]
        k = node.attrs["k"]
        p = self.params(graph, node)
        x = np.asarray(inputs[0], dtype=np.int64)
        n = x.shape[0]
        rows = x.reshape(-1, x.shape[-1])
        probs = run_rows(gate, rows, stats)
        order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        chosen = np.take_along_axis(probs, order, axis=-1)
        out_t = graph.tensors[node.outputs[0]]
        acc = None
        for e, sg in enumerate(experts):
            hit_rows, hit_slot = np.nonzero(order == e)
            y = run_rows(sg, rows[hit_rows], stats)
            if acc is None:
                acc = np.zeros((rows.shape[0], y.shape[-1]), dtype=np.int64)
            weight = chosen[hit_rows, hit_slot] - p["p_zero_point"]
            contrib = weight[:, None] * (y - p["y_zero_points"][e]) * p["mults"][e]
            np.add.at(acc, hit_rows, contrib)
        y = numerics.shift_round(acc, p["shift"], out_t.qtype.rounding) + int(out_t.qtype.zero_point)
        y = common.saturate(y, out_t.qtype, stats, node.outputs[0])
        return [y.reshape((n,) + tuple(out_t.shape))]


def run_rows(sg: Graph, rows: np.ndarray, stats: SimStats) -> np.ndarray:
    """Run a row-wise subgraph on a [rows, features] array (reshapes that keep the last axis are views)."""
    env = {sg.inputs[0]: rows}
    for t in sg.tensors.values():
        if t.is_const:
            env[t.name] = t.data
    for node in sg.nodes:
        if node.op == "reshape":
            env[node.outputs[0]] = env[node.inputs[0]]
            continue
        outs = get(node.op).simulate(sg, node, [env[i] if i else None for i in node.inputs], stats)
        env[node.outputs[0]] = outs[0]
    return env[sg.outputs[0]]
