"""Attention: matmul(Q, K^T) -> [mul by a constant] -> softmax -> matmul(P, V) becomes one `attention`
node (the streaming attention kernel's unit). The node keeps the four ops as a subgraph, so its
semantics are exactly theirs; the head split/merge reshapes and transposes around it stay data movement."""

from __future__ import annotations

from hwgen.ir import Graph
from hwgen.passes.base import Pass


def _only_consumer(graph: Graph, tensor: str, op: str):
    cons = graph.consumers(tensor)
    if len(cons) == 1 and cons[0].op == op and tensor not in graph.outputs:
        return cons[0]
    return None


class FuseAttention(Pass):
    name = "fuse-attention"

    def apply(self, graph: Graph) -> bool:
        for soft in graph.find("softmax"):
            chain = self._match(graph, soft)
            if chain:
                self._fuse(graph, chain)
                return True
        return False

    def _match(self, graph: Graph, soft):
        src = graph.producer(soft.inputs[0])
        scale = None
        if src is not None and src.op == "mul" and len(src.inputs) <= 2 and \
                (len(src.inputs) == 1 or graph.tensors[src.inputs[1]].is_const) and \
                _only_consumer(graph, src.outputs[0], "softmax") is soft:
            scale, src = src, graph.producer(src.inputs[0])
        if src is None or src.op != "matmul":
            return None
        if _only_consumer(graph, src.outputs[0], scale.op if scale else "softmax") is not (scale or soft):
            return None
        pv = _only_consumer(graph, soft.outputs[0], "matmul")
        if pv is None or pv.inputs[0] != soft.outputs[0]:
            return None
        q, kt = src.inputs
        v = pv.inputs[1]
        shapes = [graph.shape(t) for t in (q, kt, v)]
        if any(len(s) < 2 for s in shapes) or shapes[0][-1] != shapes[1][-2] or shapes[1][-1] != shapes[2][-2]:
            return None
        if shapes[0][:-2] != shapes[1][:-2] or shapes[0][:-2] != shapes[2][:-2]:
            return None  # broadcast heads are left as separate matmuls
        return [n for n in (src, scale, soft, pv) if n is not None]

    def _fuse(self, graph: Graph, chain) -> None:
        qk, pv = chain[0], chain[-1]
        sub = Graph("attention")
        inputs = [qk.inputs[0], qk.inputs[1], pv.inputs[1]]
        names = set(inputs) | {i for n in chain for i in n.inputs if i} | {o for n in chain for o in n.outputs}
        for name in names:
            sub.tensors[name] = graph.tensors[name]
        sub.inputs, sub.outputs, sub.nodes = list(dict.fromkeys(inputs)), [pv.outputs[0]], list(chain)
        index = graph.nodes.index(pv)
        for n in chain:
            graph.remove_node(n)
        shape = graph.shape(inputs[0])
        graph.add_node("attention", inputs, [pv.outputs[0]], name=f"attention_{qk.name}", index=index - len(chain) + 1,
                       attrs={"heads": int(_prod(shape[:-2])), "queries": shape[-2], "keys": graph.shape(inputs[1])[-1],
                              "head_dim": shape[-1], "scaled": len(chain) == 4, "_chain": sub},
                       source=[s for n in chain for s in n.source])
        graph.remove_dead()
        graph.toposort()


def _prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out
