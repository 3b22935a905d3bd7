"""What the cost model needs to know about a graph beyond each node: analyses in qonnx's sense (plain
functions returning dicts, the graph is never modified).

- Attention regions: the four ops of an `attention` node's chain (or a bare matmul -> [mul] -> softmax ->
  matmul chain when the fusion pass did not run) get their role: qk, scale, softmax, pv.
- Folded data movement: transposes, slices, gathers and splits whose only neighbours (through reshapes) are
  attention regions, or that reorder the patch embedding's output, are done by the neighbour's addressing.
- Fused lookup tables: a `lut` whose input is produced (through reshapes) by a linear/patch_embed with no
  other consumer runs in that kernel's write-out (GELU after fc1, as UbiMoE).
- A structural signature per node (op, shapes, types, attributes), so identical layers are costed once.
"""

from __future__ import annotations

import weakref

from hwgen.ir import Graph
from hwgen.ir.graph import subgraphs

VIEW_OPS = {"reshape"}
MOVEMENT_OPS = {"reshape", "transpose", "slice", "gather", "split", "concat"}
FOLDABLE = {"transpose", "slice", "gather", "split"}
LINEAR_OPS = {"linear", "patch_embed"}

_CACHE: "weakref.WeakKeyDictionary[Graph, dict]" = weakref.WeakKeyDictionary()


def analyse(graph: Graph) -> dict:
    """Facts per node (keyed by id(node)), for the graph and every nested subgraph. Cached per graph."""
    return _entry(graph)["facts"]


def _entry(graph: Graph) -> dict:
    cached = _CACHE.get(graph)
    if cached is not None and cached["n"] == len(graph.nodes):
        return cached
    facts: dict = {}
    _analyse(graph, facts)
    entry = {"n": len(graph.nodes), "facts": facts, "sigs": {}, "plans": {}}
    _CACHE[graph] = entry
    return entry


def cached_signature(root: Graph, graph: Graph, node) -> tuple:
    sigs = _entry(root)["sigs"]
    s = sigs.get(id(node))
    if s is None:
        s = sigs[id(node)] = signature(graph, node)
    return s


_NAMED = {"attn", "fused_into"}  # facts that only name other nodes (a node's cost never depends on them)
_KEYS: dict = {}


def static_key(root: Graph, graph: Graph, node) -> int:
    """A small integer per distinct (structural signature, cost-relevant facts): nodes with equal keys
    cost the same under any Design."""
    entry = _entry(root)
    keys = entry.setdefault("keys", {})
    k = keys.get(id(node))
    if k is None:
        facts = entry["facts"].get(id(node), {})
        full = (cached_signature(root, graph, node),
                tuple(sorted((a, b) for a, b in facts.items() if a not in _NAMED)))
        k = keys[id(node)] = _KEYS.setdefault(full, len(_KEYS))
    return k


def is_view(node, facts: dict) -> bool:
    """Pure addressing: no cycles (reshape; movement folded into a neighbour)."""
    return node.op == "reshape" or (node.op in FOLDABLE and facts.get(id(node), {}).get("folded", False))


def plan(root: Graph, graph: Graph) -> dict:
    """Design-independent schedule skeleton of a (sub)graph: the non-view nodes in order and, for each, its
    real producers (views resolved) with whether the path keeps the element order (reshapes only)."""
    plans = _entry(root)["plans"]
    pl = plans.get(id(graph))
    if pl is not None:
        return pl
    facts = _entry(root)["facts"]
    producer = {}
    for idx, n in enumerate(graph.nodes):
        for o in n.outputs:
            producer[o] = idx
    src: dict = {}
    order, ins = [], {}
    for idx, n in enumerate(graph.nodes):
        edges = []
        for name in n.inputs:
            if not name or name not in producer:
                continue
            p = producer[name]
            if p in src:
                real, ordered = src[p]
                ordered = ordered and graph.nodes[p].op in VIEW_OPS
            else:
                real, ordered = p, True
            edges.append((real, ordered))
        if is_view(n, facts):
            src[idx] = edges[0] if edges else (None, True)
        else:
            order.append(idx)
            ins[idx] = [e for e in edges if e[0] is not None]
    outputs = []
    for name in graph.outputs:
        p = producer.get(name)
        if p is not None and p in src:
            p = src[p][0]
        outputs.append((name, p))
    fused = tuple((i, facts.get(id(graph.nodes[i]), {}).get("fused_into") is not None,
                   facts.get(id(graph.nodes[i]), {}).get("a_internal")) for i in order)
    key = (tuple(order), tuple((i, tuple(ins[i])) for i in order), fused)
    pl = plans[id(graph)] = {"order": order, "ins": ins, "views": src, "outputs": outputs, "key": key}
    return pl


def _analyse(graph: Graph, facts: dict) -> None:
    producer = {}
    consumers: dict[str, list] = {}
    for n in graph.nodes:
        for o in n.outputs:
            producer[o] = n
        for i in n.inputs:
            if i:
                consumers.setdefault(i, []).append(n)

    def f(node) -> dict:
        return facts.setdefault(id(node), {})

    # attention regions: fused nodes
    attention_nodes = []
    for n in graph.nodes:
        if n.op == "attention" and "_chain" in n.attrs:
            attention_nodes.append(n)
            chain = n.attrs["_chain"].nodes
            roles = ["qk", "scale", "softmax", "pv"] if len(chain) == 4 else ["qk", "softmax", "pv"]
            for role, c in zip(roles, chain):
                cf = f(c)
                cf.update(attn=n.name, role=role)
                if role in ("scale", "softmax"):
                    cf["a_internal"] = True
                if role == "pv":
                    cf["a_internal"] = "fused"
    # bare chains (no fusion pass)
    for s in graph.nodes:
        if s.op != "softmax" or id(s) in facts and "attn" in facts[id(s)]:
            continue
        src = producer.get(s.inputs[0])
        scale = None
        if src is not None and src.op == "mul":
            scale, src = src, producer.get(src.inputs[0])
        pv = [c for c in consumers.get(s.outputs[0], []) if c.op == "matmul" and c.inputs[0] == s.outputs[0]]
        if src is None or src.op != "matmul" or not pv:
            continue
        gid = src.name
        f(src).update(attn=gid, role="qk")
        if scale is not None:
            f(scale).update(attn=gid, role="scale", a_internal=True)
        f(s).update(attn=gid, role="softmax", a_internal=True)
        f(pv[0]).update(attn=gid, role="pv", a_internal="fused")
        attention_nodes.append(src)
        attention_nodes.append(pv[0])

    # folded movement around attention regions and after the patch embedding
    def walk_up(tensor, seen):
        p = producer.get(tensor)
        while p is not None and p.op in MOVEMENT_OPS and p.op != "concat":
            if p.op in FOLDABLE:
                seen.append(p)
            p = producer.get(p.inputs[0])
        return p

    def walk_down(tensor, seen):
        cons = consumers.get(tensor, [])
        while len(cons) == 1 and cons[0].op in MOVEMENT_OPS and cons[0].op != "concat":
            c = cons[0]
            if c.op in FOLDABLE:
                seen.append(c)
            cons = consumers.get(c.outputs[0], [])
        return cons

    for a in attention_nodes:
        seen: list = []
        ins = a.inputs if a.op == "attention" else [i for i in a.inputs if i]
        for i in ins:
            walk_up(i, seen)
        walk_down(a.outputs[0], seen)
        for m in seen:
            f(m)["folded"] = True
    for pe in (n for n in graph.nodes if n.op == "patch_embed"):
        seen = []
        walk_down(pe.outputs[0], seen)
        for m in seen:
            f(m)["folded"] = True

    # luts fused into the linear that feeds them
    for n in graph.nodes:
        if n.op != "lut":
            continue
        t = n.inputs[0]
        p = producer.get(t)
        only = len(consumers.get(t, [])) == 1
        while p is not None and p.op in VIEW_OPS and only:
            t = p.inputs[0]
            only = len(consumers.get(t, [])) == 1
            p = producer.get(t)
        if p is not None and p.op in LINEAR_OPS and only:
            k = graph.shape(p.inputs[1])[0]
            f(n).update(fused_rate=True, fused_into=p.name, fused_k=k)

    for n in graph.nodes:
        for sg in subgraphs(n):
            _analyse(sg, facts)


def signature(graph: Graph, node) -> tuple:
    """What a node's cost depends on structurally (op, tensor shapes and types, attributes)."""
    parts = [node.op]
    for name in list(node.inputs) + list(node.outputs):
        if not name:
            parts.append(None)
            continue
        t = graph.tensors[name]
        q = t.qtype
        parts.append((t.shape, t.is_const, None if q is None else (q.kind, q.bits, q.has_zero_point if not q.is_float else False)))
    for k, v in sorted(node.attrs.items()):
        if k.startswith("_"):
            continue
        try:
            hash(v)
            parts.append((k, v))
        except TypeError:
            parts.append((k, repr(v)[:200]))
    for sg in subgraphs(node):
        parts.append(tuple(signature(sg, n) for n in sg.nodes))
    return tuple(parts)
