"""Composite patterns found on the ONNX-level graph before one-to-one lowering:
a decomposed LayerNorm becomes one layernorm; a chain of elementwise ops on one tensor (GELU in its
Erf or tanh form, SiLU, ...) becomes one lookup table; a lone ReLU on a wide input becomes a saturating
conversion instead."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node, QType
from hwgen.numerics import Overflow
from hwgen.ops.lut import ELEMENTWISE, LUT_EXACT_BITS, TRANSCENDENTAL, _real_const
from hwgen.passes.base import Pass


def _single_consumer(graph: Graph, tensor: str) -> Node | None:
    cons = graph.consumers(tensor)
    return cons[0] if len(cons) == 1 and tensor not in graph.outputs else None


def _scalar(graph: Graph, name: str) -> float | None:
    t = graph.tensors.get(name)
    if t is None or not t.is_const or np.asarray(t.data).size != 1:
        return None
    return float(_real_const(graph, name).reshape(()))


class FuseDecomposedLayerNorm(Pass):
    """ReduceMean -> Sub -> Pow/Mul -> ReduceMean -> Add(eps) -> Sqrt -> Div [-> Mul gamma -> Add beta]."""

    name = "fuse-layernorm"

    def apply(self, graph: Graph) -> bool:
        for mean in graph.find("onnx.ReduceMean"):
            match = self._match(graph, mean)
            if match:
                self._replace(graph, *match)
                return True
        return False

    def _match(self, graph: Graph, mean: Node):
        x = mean.inputs[0]
        rank = len(graph.shape(x))
        if not _last_axis(graph, mean, rank):
            return None
        sub = next((n for n in graph.consumers(mean.outputs[0]) if n.op == "onnx.Sub" and n.inputs == [x, mean.outputs[0]]), None)
        if sub is None:
            return None
        d = sub.outputs[0]
        sq = next((n for n in graph.consumers(d) if (n.op == "onnx.Pow" and _scalar(graph, n.inputs[1]) == 2.0)
                   or (n.op == "onnx.Mul" and n.inputs == [d, d])), None)
        if sq is None:
            return None
        var = _single_consumer(graph, sq.outputs[0])
        if var is None or var.op != "onnx.ReduceMean" or not _last_axis(graph, var, rank):
            return None
        add = _single_consumer(graph, var.outputs[0])
        eps = _scalar(graph, add.inputs[1]) if add is not None and add.op == "onnx.Add" else None
        if eps is None:
            return None
        sqrt = _single_consumer(graph, add.outputs[0])
        if sqrt is None or sqrt.op != "onnx.Sqrt":
            return None
        div = _single_consumer(graph, sqrt.outputs[0])
        if div is None or div.op != "onnx.Div" or div.inputs != [d, sqrt.outputs[0]]:
            return None
        nodes, out, gamma, beta = [mean, sub, sq, var, add, sqrt, div], div.outputs[0], "", ""
        mul = _single_consumer(graph, out)
        if mul is not None and mul.op == "onnx.Mul":
            other = mul.inputs[1] if mul.inputs[0] == out else mul.inputs[0]
            if graph.tensors[other].is_const:
                nodes.append(mul)
                out, gamma = mul.outputs[0], other
                badd = _single_consumer(graph, out)
                if badd is not None and badd.op == "onnx.Add":
                    other = badd.inputs[1] if badd.inputs[0] == out else badd.inputs[0]
                    if graph.tensors[other].is_const:
                        nodes.append(badd)
                        out, beta = badd.outputs[0], other
        if any(len(graph.consumers(n.outputs[0])) > (2 if n is sub else 1) for n in nodes[:-1] if n is not mean):
            return None
        return nodes, x, gamma, beta, eps, out

    def _replace(self, graph: Graph, nodes, x, gamma, beta, eps, out) -> None:
        index = graph.nodes.index(nodes[0])
        for n in nodes:
            graph.remove_node(n)
        graph.add_node("onnx.LayerNormalization", [x, gamma, beta], [out], name=nodes[0].name,
                       attrs={"axis": -1, "epsilon": eps}, source=[s for n in nodes for s in n.source], index=index)
        graph.remove_dead()


def _last_axis(graph: Graph, node: Node, rank: int) -> bool:
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = graph.const(node.inputs[1])
    if axes is None:
        return False
    axes = [int(a) + rank if int(a) < 0 else int(a) for a in np.asarray(axes).reshape(-1)]
    return axes == [rank - 1] and int(node.attrs.get("keepdims", 1)) == 1


class FuseElementwiseRegions(Pass):
    """Grow a region of elementwise ops around each transcendental op, all reading one tensor X,
    and replace it by a single `lut` node over X."""

    name = "fuse-elementwise"

    def apply(self, graph: Graph) -> bool:
        for seed in graph.nodes:
            if seed.op.startswith("onnx.") and seed.op[5:] in TRANSCENDENTAL and "_multi" not in seed.attrs:
                region = self._grow(graph, seed)
                if region is not None and len(region[0]) > 1:
                    self._replace(graph, *region)
                    return True
        return False

    def _inputs(self, graph: Graph, node: Node) -> list[str]:
        return [i for i in node.inputs if i and not graph.tensors[i].is_const]

    def _is_elementwise(self, graph: Graph, node: Node) -> bool:
        if not node.op.startswith("onnx.") or node.op[5:] not in ELEMENTWISE or len(node.outputs) != 1:
            return False
        # constants must be scalars so that one table serves every element
        return all(np.asarray(graph.tensors[i].data).size == 1 for i in node.inputs if i and graph.tensors[i].is_const)

    def _grow(self, graph: Graph, seed: Node):
        if not self._is_elementwise(graph, seed) or len(self._inputs(graph, seed)) != 1:
            return None
        region = [seed]
        x = self._inputs(graph, seed)[0]
        while True:  # walk back through single-input elementwise producers
            prod = graph.producer(x)
            if prod is None or not self._is_elementwise(graph, prod) or len(self._inputs(graph, prod)) != 1:
                break
            if any(c not in region for c in graph.consumers(x)) or x in graph.outputs:
                break
            region.insert(0, prod)
            x = self._inputs(graph, prod)[0]
        members = set(region)  # sets, and `produced` grown as nodes join: linear passes over long chains
        produced = {o for n in region for o in n.outputs}
        grown = True
        while grown:
            grown = False
            for n in graph.nodes:
                if n in members or not self._is_elementwise(graph, n):
                    continue
                ins = self._inputs(graph, n)
                if ins and all(i in produced or i == x for i in ins) and any(i in produced for i in ins):
                    region.append(n)
                    members.add(n)
                    produced.update(n.outputs)
                    grown = True
        readers: dict[str, list] = {}
        for n in graph.nodes:
            for i in n.inputs:
                readers.setdefault(i, []).append(n)
        outs = set(graph.outputs)
        leaving = [o for o in produced if o in outs or any(c not in members for c in readers.get(o, ()))]
        if len(leaving) != 1:
            return None
        order = {id(n): k for k, n in enumerate(graph.nodes)}
        region.sort(key=lambda n: order[id(n)])
        return region, x, leaving[0]

    def _replace(self, graph: Graph, region: list[Node], x: str, out: str) -> None:
        consts, fakequant = {}, {}
        for n in region:
            for i in n.inputs:
                if i and graph.tensors[i].is_const:
                    consts[i] = _real_const(graph, i)
            for o in n.outputs:
                qt = graph.tensors[o].qtype
                if o != out and qt is not None and qt.kind == "int" and not qt.per_channel:
                    # the overflow mode too: a narrow range (AP_SAT_SYM) never takes the asymmetric minimum
                    fakequant[o] = (qt.scale, qt.zero_point, qt.bits, qt.signed, qt.overflow)
        spec = {"nodes": [(n.op[5:], list(n.inputs), list(n.outputs), dict(n.attrs)) for n in region],
                "input": x, "output": out, "consts": consts, "fakequant": fakequant}
        index = graph.nodes.index(region[0])
        for n in region:
            graph.remove_node(n)
        names = [n.op[5:] for n in region]
        function = "gelu" if ("Erf" in names or "Gelu" in names or ("Tanh" in names and "Pow" in names)) else \
            "-".join(dict.fromkeys(s.lower() for s in names if s in TRANSCENDENTAL))
        graph.add_node("lut", [x], [out], name=region[0].name, index=index,
                       attrs={"function": function, "_region": spec},
                       source=[s for n in region for s in n.source])
        graph.remove_dead()


def clamps_at_zero(qt: QType) -> bool:
    """Converting into `qt` saturates every negative value to real 0 (an unsigned type, zero point at its
    minimum, saturating): a ReLU before that conversion changes nothing."""
    if qt is None or qt.is_float or qt.overflow not in (Overflow.SAT, Overflow.SAT_SYM):
        return False
    if qt.kind == "fixed":
        return not qt.signed
    return bool(np.all(np.asarray(qt.zero_point) == qt.qmin))


def lone_relu(node: Node) -> bool:
    """A `lut` that is one ReLU: Relu, or Clip with min 0 and no max."""
    if node.op != "lut":
        return False
    region = node.attrs.get("_region") or {}
    if len(region.get("nodes", ())) != 1:
        return False
    op_type, ins, _, attrs = region["nodes"][0]
    if op_type == "Relu":
        return True
    if op_type != "Clip":
        return False
    consts = region.get("consts", {})
    lo = consts.get(ins[1]) if len(ins) > 1 and ins[1] else attrs.get("min")
    hi = consts.get(ins[2]) if len(ins) > 2 and ins[2] else attrs.get("max")
    return lo is not None and np.size(lo) == 1 and float(np.asarray(lo).reshape(())) == 0.0 and \
        (hi is None or float(np.asarray(hi).reshape(())) >= np.finfo(np.float32).max)


class ReluAsClamp(Pass):
    """A lone ReLU (a one-node `lut`: Relu, or Clip to [0, +inf)) on an input too wide for an exact table (more than LUT_EXACT_BITS bits,
    e.g. an exact accumulator) is a clamp, exact as a `quantize`: straight into its output type when that type
    saturates negatives to 0 (unsigned, zero point at its minimum); otherwise into an unsigned type on the
    input's grid (the clamp, exact), then into the output type. Runs once every tensor has its type."""

    name = "relu-as-clamp"
    fixed_point = False

    def apply(self, graph: Graph) -> bool:
        changed = False
        for node in list(graph.nodes):
            if not lone_relu(node):
                continue
            x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
            if x.qtype.is_float or x.qtype.per_channel or y.qtype.is_float or y.qtype.per_channel:
                continue
            if x.qtype.bits <= LUT_EXACT_BITS:
                continue  # an exact table of every input code
            node.op, node.attrs = "quantize", {}
            if clamps_at_zero(y.qtype):
                changed = True
                continue
            zp = int(x.qtype.zero_point)
            clamp = QType.integer(max(1, (x.qtype.qmax - zp).bit_length()), False, float(x.qtype.scale), 0)
            mid = graph.add_tensor(graph.unique_name(y.name + "_relu"), y.shape, clamp)
            node.outputs = [mid.name]
            graph.add_node("quantize", [mid.name], [y.name], name=f"{node.name}_out", source=node.source,
                           index=graph.nodes.index(node) + 1)
            changed = True
        return changed
