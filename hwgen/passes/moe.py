"""Mixture-of-experts: find the router (softmax -> TopK -> scatter into a dense mask), the experts
(each a chain from the block input to its output) and the weighted combine (mask slice * expert output,
summed), and replace all of it by one `moe` node that holds the gate and experts as subgraphs.

However the exporter wrote it (dense mask, per-expert slices, chains of adds), the hardware op computes
only the selected experts, expert by expert."""

from __future__ import annotations

import numpy as np

from hwgen.errors import UnsupportedError
from hwgen.ir import Graph, Node
from hwgen.passes.base import Pass

ROW_WISE = {"linear", "lut", "reshape", "quantize", "layernorm", "softmax", "add", "mul"}


def root(graph: Graph, tensor: str) -> str:
    """Follow reshapes back to the tensor they view."""
    while True:
        p = graph.producer(tensor)
        if p is None or p.op != "reshape":
            return tensor
        tensor = p.inputs[0]


class FuseMoE(Pass):
    name = "fuse-moe"

    def apply(self, graph: Graph) -> bool:
        for topk in graph.find("onnx.TopK"):
            self._fuse(graph, topk)
            return True
        return False

    def _fail(self, node: Node, why: str) -> UnsupportedError:
        return UnsupportedError(f"TopK is supported only as a MoE router; {why}",
                                node=node.source[0] if node.source else node.name, op="TopK")

    def _fuse(self, graph: Graph, topk: Node) -> None:
        probs = topk.inputs[0]
        softmax = graph.producer(probs)
        if softmax is None or softmax.op != "softmax":
            raise self._fail(topk, "its input is not a softmax")
        k = graph.const(topk.inputs[1])
        if k is None or np.asarray(k).size != 1:
            raise self._fail(topk, "k must be a constant")
        k = int(np.asarray(k).reshape(()))
        rank = len(graph.shape(probs))
        if int(topk.attrs.get("axis", -1)) not in (-1, rank - 1) or not topk.attrs.get("largest", 1):
            raise self._fail(topk, "only the largest k along the last axis")
        n_experts = graph.shape(probs)[-1]
        values, indices = topk.outputs
        scatter = [n for n in graph.consumers(indices) if n.op == "onnx.ScatterElements"]
        if len(scatter) != 1 or scatter[0].inputs[1] != indices or scatter[0].inputs[2] != values:
            raise self._fail(topk, "expected ScatterElements(zeros, indices, values) building the expert weights")
        scatter = scatter[0]
        zeros = graph.const(scatter.inputs[0])
        if zeros is None or np.any(np.asarray(zeros) != 0) and not graph.tensors[scatter.inputs[0]].qtype:
            raise self._fail(topk, "the scatter target must be zeros")
        mask = scatter.outputs[0]
        contributions, removed = {}, [topk, scatter]
        for user in graph.consumers(mask):
            e = _expert_index(graph, user, n_experts)
            if e is None:
                raise self._fail(topk, f"the expert weights are read by {user.op} '{user.name}'")
            muls = graph.consumers(user.outputs[0])
            if len(muls) != 1 or muls[0].op != "mul" or len(muls[0].inputs) != 2:
                raise self._fail(topk, "each expert weight must multiply one expert output")
            mul = muls[0]
            other = mul.inputs[1] if mul.inputs[0] == user.outputs[0] else mul.inputs[0]
            contributions[e] = (mul, other)
            removed += [user, mul]
        if sorted(contributions) != list(range(n_experts)):
            raise self._fail(topk, f"found outputs for experts {sorted(contributions)} of {n_experts}")
        final, adds = _combine(graph, [m.outputs[0] for m, _ in contributions.values()])
        if final is None:
            raise self._fail(topk, "the weighted expert outputs are not summed by adds")
        removed += adds
        gate_nodes, x_root = _gate_chain(graph, softmax)
        if x_root is None:
            raise self._fail(topk, "the router input is not a linear layer")
        experts = []
        for e in range(n_experts):
            nodes = _expert_chain(graph, contributions[e][1], x_root)
            if nodes is None:
                raise self._fail(topk, f"expert {e} is not a chain of row-wise ops from the block input")
            experts.append(_subgraph(graph, nodes, x_root, contributions[e][1], f"expert{e}"))
        gate = _subgraph(graph, gate_nodes, x_root, probs, "gate")
        index = graph.nodes.index(graph.producer(final))
        all_nodes = removed + gate_nodes + [n for sg in experts for n in sg.meta["nodes"]]
        for n in graph.nodes[:]:
            if any(n is r for r in all_nodes):
                graph.remove_node(n)
        index = min(index, len(graph.nodes))
        # place the fused op right after the block input is available
        producer = graph.producer(x_root)
        index = graph.nodes.index(producer) + 1 if producer is not None else 0
        graph.add_node("moe", [x_root], [final], name=f"moe_{topk.name}", index=index,
                       attrs={"k": k, "experts": n_experts, "_gate": gate, "_experts": experts},
                       source=[s for n in all_nodes for s in n.source])
        graph.remove_dead()
        graph.toposort()


def _expert_index(graph: Graph, node: Node, n: int) -> int | None:
    if node.op == "slice":
        idx = node.attrs["index"]
        last = idx[-1]
        others_full = all(tuple(sl) in ((None, None, None), (0, d, 1)) for sl, d in zip(idx[:-1], graph.shape(node.inputs[0])[:-1]))
        if others_full and last[1] - last[0] == 1 and last[2] == 1:
            return int(last[0])
    if node.op == "gather" and node.attrs["axis"] == len(graph.shape(node.inputs[0])) - 1:
        ids = np.asarray(node.attrs["indices"]).reshape(-1)
        if ids.size == 1:
            return int(ids[0])
    return None


def _combine(graph: Graph, parts: list[str]):
    live, adds = set(parts), []
    changed = True
    while changed:
        changed = False
        for n in graph.nodes:
            if n.op == "add" and n not in adds and all(i in live for i in n.inputs) and \
                    all(s == 1 for s in n.attrs.get("signs", [1])):
                adds.append(n)
                live -= set(n.inputs)
                live.add(n.outputs[0])
                changed = True
    return (next(iter(live)) if len(live) == 1 and adds else None), adds


def _gate_chain(graph: Graph, softmax: Node):
    nodes = [softmax]
    t = softmax.inputs[0]
    while True:
        p = graph.producer(t)
        if p is None:
            return nodes, None
        nodes.insert(0, p)
        if p.op == "linear":
            break
        if p.op not in ("reshape", "quantize"):
            return nodes, None
        t = p.inputs[0]
    x = p.inputs[0]
    while True:
        q = graph.producer(x)
        if q is None or q.op != "reshape":
            break
        if all(c in nodes or c.op == "reshape" for c in graph.consumers(q.outputs[0])) and len(graph.consumers(q.outputs[0])) == 1:
            nodes.insert(0, q)
            x = q.inputs[0]
        else:
            break
    return nodes, root(graph, x)


def _expert_chain(graph: Graph, output: str, x_root: str) -> list[Node] | None:
    nodes, stack = [], [output]
    while stack:
        t = stack.pop()
        if t == x_root or graph.tensors[t].is_const:
            continue
        p = graph.producer(t)
        if p is None or p.op not in ROW_WISE:
            return None
        if p.op == "reshape" and graph.shape(p.inputs[0])[-1] != graph.shape(p.outputs[0])[-1]:
            return None
        if p not in nodes:
            nodes.append(p)
            stack.extend(i for i in p.inputs if i)
    order = {id(n): i for i, n in enumerate(graph.nodes)}
    nodes.sort(key=lambda n: order[id(n)])
    inside = {o for n in nodes for o in n.outputs}
    for n in nodes:
        for o in n.outputs:
            if o != output and any(c not in nodes for c in graph.consumers(o)):
                return None
    if output not in inside:
        return None
    return nodes


def _subgraph(graph: Graph, nodes: list[Node], x: str, out: str, name: str) -> Graph:
    sg = Graph(name)
    needed = {x, out} | {i for n in nodes for i in n.inputs if i} | {o for n in nodes for o in n.outputs}
    for t in needed:
        src = graph.tensors[t]
        sg.tensors[t] = src
    sg.inputs, sg.outputs = [x], [out]
    sg.nodes = list(nodes)
    sg.meta["nodes"] = list(nodes)
    return sg
