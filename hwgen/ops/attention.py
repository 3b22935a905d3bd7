"""attention: one layer's scaled dot-product attention over all heads, as one streaming kernel.

Semantics are exactly those of the op chain it replaces (matmul -> [mul] -> softmax -> matmul, kept as
the subgraph attrs["_chain"]): the streaming kernel (templates/kernels/attention.h) keeps the same order
of integer operations, with scores kept on chip and P query rows in parallel."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node
from hwgen.ops.base import OpDef, SimStats, get, register


@register
class Attention(OpDef):
    name = "attention"

    def check(self, graph: Graph, node: Node) -> None:
        for g_node in node.attrs["_chain"].nodes:
            get(g_node.op).check(node.attrs["_chain"], g_node)

    def chain(self, node: Node) -> dict:
        """The ops of the chain by role: qk, scale (or None), softmax, pv."""
        nodes = node.attrs["_chain"].nodes
        roles = {"qk": nodes[0], "scale": nodes[1] if len(nodes) == 4 else None, "softmax": nodes[-2], "pv": nodes[-1]}
        return roles

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        sub: Graph = node.attrs["_chain"]
        env = dict(zip(node.inputs, inputs))
        for t in sub.tensors.values():
            if t.is_const:
                env[t.name] = t.data
        for n in sub.nodes:
            outs = get(n.op).simulate(sub, n, [env[i] if i else None for i in n.inputs], stats)
            env.update(zip(n.outputs, outs))
        return [env[node.outputs[0]]]
