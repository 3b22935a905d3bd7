"""Exact types for what a QONNX graph leaves in float between quantised ops.

A QONNX graph quantises the operands of a MatMul (activation and weight) and the bias, but not the product
nor the sum: MatMul(Quant x, Quant W) -> Add(Quant b) [-> Relu] -> Quant. Those float tensors are exact
integers on the product grid s_x * s_w (qonnx's executor computes them exactly when the scales are powers of
two), so instead of the precision config's fixed-point type (made for float models) they get:

- FuseLinearBias: MatMul/Gemm + the bias Add become one `linear` (its bias on the accumulator grid);
- AbsorbReluIntoType: Relu -> Quant to a type that cannot go below zero: the Relu is the saturation of that
  conversion, so the producer converts straight into the Quant's type;
- ExactAccumulatorTypes: products (linear, patch_embed, matmul) and sums (add) of quantised tensors still
  untyped get an integer type on their exact grid (each op's `exact_output_type`, helpers in ops/common.py),
  as wide as their range needs (at most common.EXACT_MAX_BITS), when every reader only requantises them (ops
  with `requantises_inputs`, data movement that forwards types, a lone ReLU, the graph output).

Quantised (QDQ) graphs type every such tensor already; float graphs have no typed operands: neither changes.
"""

from __future__ import annotations

from hwgen.ir import Graph, Node
from hwgen.ops.common import bias_on_grid, typed_or_none
from hwgen.passes.base import Pass
from hwgen.passes.patterns import clamps_at_zero, lone_relu
from hwgen.passes.qdq import bypass


class FuseLinearBias(Pass):
    """MatMul(x, W) or Gemm(x, W) without bias, whose product is left in float and read only by an Add of a
    quantised constant bias on the accumulator grid: one `linear` with that bias, writing the Add's output."""

    name = "fuse-linear-bias"
    fixed_point = False

    def apply(self, graph: Graph) -> bool:
        changed = False
        for node in list(graph.nodes):
            match = self._match(graph, node)
            if match is None:
                continue
            add, bias = match
            if node.op == "onnx.MatMul":
                node.op, node.attrs = "linear", {}
            node.inputs = node.inputs[:2] + [bias]
            node.outputs = [add.outputs[0]]
            node.source = node.source + add.source
            graph.remove_node(add)
            changed = True
        if changed:
            graph.remove_dead()
        return changed

    def _match(self, graph: Graph, node: Node):
        if node.op not in ("onnx.MatMul", "onnx.Gemm") or len(node.outputs) != 1:
            return None
        m = node.outputs[0]
        if graph.tensors[m].qtype is not None or m in graph.outputs:
            return None
        readers = graph.consumers(m)
        if len(readers) != 1 or readers[0].op != "onnx.Add" or readers[0].inputs.count(m) != 1:
            return None
        add = readers[0]
        bias = add.inputs[1] if add.inputs[0] == m else add.inputs[0]
        x, w = node.inputs[0], graph.tensors[node.inputs[1]]
        xq = typed_or_none(graph, x)
        if xq is None or xq.per_channel or graph.tensors[x].is_const:
            return None
        if not w.is_const or w.qtype is None or w.qtype.is_float or len(w.shape) != 2:
            return None
        transposed = False
        if node.op == "onnx.Gemm":
            a = node.attrs
            if (len(node.inputs) > 2 and node.inputs[2]) or a.get("transA", 0) or \
                    float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
                return None
            transposed = bool(a.get("transB", 0))
        if w.qtype.per_channel and w.qtype.axis != (0 if transposed else 1):
            return None
        n = w.shape[0] if transposed else w.shape[1]
        b = graph.tensors[bias]
        if not b.is_const or b.qtype is None or b.qtype.kind != "int" or b.size != n:
            return None
        if not b.shape or b.shape[-1] != n or graph.shape(add.outputs[0]) != graph.shape(m):
            return None
        if b.qtype.per_channel and b.qtype.axis != len(b.shape) - 1:
            return None
        if not bias_on_grid(xq, w.qtype, n, b):
            return None
        return add, bias


class AbsorbReluIntoType(Pass):
    """Relu whose output is converted into a type that saturates negatives to 0 (QONNX: Relu -> Quant unsigned,
    Brevitas QuantReLU): the producer writes that type directly and the Relu goes."""

    name = "absorb-relu"
    fixed_point = False
    PRODUCERS = {"linear", "onnx.MatMul", "onnx.Gemm", "onnx.Conv", "onnx.Add", "onnx.Sub", "onnx.Sum"}

    def apply(self, graph: Graph) -> bool:
        changed = False
        for relu in list(graph.find("onnx.Relu")):
            x, y = relu.inputs[0], relu.outputs[0]
            xt, yt = graph.tensors[x], graph.tensors[y]
            if xt.qtype is not None or xt.is_const or x in graph.inputs or x in graph.outputs:
                continue
            if not clamps_at_zero(yt.qtype) or len(graph.consumers(x)) != 1:
                continue
            producer = graph.producer(x)
            if producer is None or producer.op not in self.PRODUCERS or len(producer.outputs) != 1:
                continue
            xt.qtype, xt.source = yt.qtype, yt.source
            producer.source = producer.source + relu.source
            graph.remove_node(relu)
            bypass(graph, x, y)
            changed = True
        if changed:
            graph.remove_dead()
        return changed


class ExactAccumulatorTypes(Pass):
    """Integer types on the exact grid for untyped products and sums of quantised tensors (see the module doc).
    Runs on the lowered graph, before AssignTypes gives what is left the precision config's types."""

    name = "exact-types"
    fixed_point = False

    def apply(self, graph: Graph) -> bool:
        from hwgen.ops import get

        changed = False
        for node in graph.nodes:
            if len(node.outputs) != 1 or graph.tensors[node.outputs[0]].qtype is not None:
                continue
            op = get(node.op) if not node.op.startswith("onnx.") else None
            if op is None:
                continue
            if op.data_movement:  # keep the input's type (what AssignTypes would do), so readers see it now
                if typed_or_none(graph, node.inputs[0]) is not None:
                    op.infer_types(graph, node, lambda n: None)
                    changed = True
                continue
            qt = op.exact_output_type(graph, node)
            if qt is not None and self._readers_requantise(graph, node.outputs[0]):
                graph.tensors[node.outputs[0]].qtype = qt
                changed = True
        return changed

    def _readers_requantise(self, graph: Graph, name: str) -> bool:
        from hwgen.ops import get

        for r in graph.consumers(name):
            if lone_relu(r):
                continue  # ReluAsClamp makes it a saturating quantize
            op = get(r.op) if not r.op.startswith("onnx.") else None
            if op is not None and op.requantises_inputs:
                continue
            if op is None or not op.data_movement or not op.forwards_exact_types:
                return False
            if not all(self._readers_requantise(graph, o) for o in r.outputs):
                return False
        return True
