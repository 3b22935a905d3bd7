"""Exact types for what a QONNX graph leaves in float between quantised ops.

A QONNX graph quantises the operands of a MatMul (activation and weight) and the bias, but not the product
nor the sum: MatMul(Quant x, Quant W) -> Add(Quant b) [-> Relu] -> Quant. Those float tensors are exact
integers on the product grid s_x * s_w (qonnx's executor computes them exactly when the scales are powers of
two), so instead of the precision config's fixed-point type (made for float models) they get:

- FuseLinearBias: MatMul/Gemm + the bias Add become one `linear` (its bias on the accumulator grid);
- AbsorbReluIntoType: Relu -> Quant to a type that cannot go below zero: the Relu is the saturation of that
  conversion, so the producer converts straight into the Quant's type;
- ExactAccumulatorTypes: products (linear, patch_embed, matmul) and sums (add) of quantised tensors still
  untyped get an integer type on their exact grid, as wide as their range needs (at most EXACT_MAX_BITS), when
  every reader only requantises them (add, quantize, data movement, a lone ReLU, the graph output).

Quantised (QDQ) graphs type every such tensor already; float graphs have no typed operands: neither changes.
"""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.ir import Graph, Node, QType
from hwgen.passes.base import Pass
from hwgen.passes.patterns import clamps_at_zero, lone_relu
from hwgen.passes.qdq import bypass

EXACT_MAX_BITS = 31  # an exact type times a 31-bit requantisation multiplier stays within int64 (sim and C++)
_GRID_RTOL = 2.0**-20  # a bias "on the accumulator grid" up to float32 rounding of its scale


def _typed(graph: Graph, name: str) -> QType | None:
    """The integer/fixed type of `name`, None when it has none yet (or is float)."""
    t = graph.tensors.get(name) if name else None
    if t is None or t.qtype is None or t.qtype.is_float:
        return None
    return t.qtype


def _integer_ratios(scales: np.ndarray, base: float) -> np.ndarray | None:
    """scales / base as integers when they all are (powers of two apart, or equal); else None."""
    r = np.asarray(scales, dtype=np.float64) / base
    k = np.rint(r)
    return k.astype(np.int64) if np.all(k >= 1) and np.all(r == k) else None


def _on_grid(values: np.ndarray, grid: np.ndarray) -> bool:
    """Every real value an integer multiple of its column's grid step (to float32 precision of the scales)."""
    k = np.asarray(values, dtype=np.float64) / grid
    return bool(np.all(np.abs(k - np.rint(k)) <= _GRID_RTOL * np.maximum(np.abs(k), 1.0)))


def _centred_range(qt: QType, data=None) -> tuple[int, int]:
    """Range of q - zero_point: of a constant's codes when given (per-tensor zero point), else of the type."""
    if data is not None and np.ndim(qt.zero_point) == 0:
        c = np.asarray(data, dtype=np.int64) - int(qt.zero_point)
        return (int(c.min()), int(c.max())) if c.size else (0, 0)
    zps = np.asarray(qt.zero_point, dtype=np.int64).reshape(-1)
    return qt.qmin - int(zps.max()), qt.qmax - int(zps.min())


def _exact_type(lo: int, hi: int, scale: float) -> QType | None:
    bits = numerics.bits_for_range(min(lo, 0), max(hi, 0))
    if bits > EXACT_MAX_BITS:
        return None
    return QType.integer(max(bits, 2), True, scale, 0)


def _bias_on_grid(x: QType, w: QType, n: int, bias) -> bool:
    """The bias of a linear layer lies on its accumulator grid s_x * s_w (so the fused integer bias is exact)."""
    sw, _ = w.channel_params(n)
    sb, zb = bias.qtype.channel_params(n)
    real = (np.asarray(bias.data, dtype=np.int64).reshape(-1) - zb) * sb
    return _on_grid(real, float(x.scale) * sw)


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
        xq = _typed(graph, x)
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
        if not _bias_on_grid(xq, w.qtype, n, b):
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
    READERS = {"add", "quantize"}  # ops that only requantise their inputs: any width is exact for them

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
                if _typed(graph, node.inputs[0]) is not None:
                    op.infer_types(graph, node, lambda n: None)
                    changed = True
                continue
            if node.op in ("linear", "patch_embed"):
                qt = self._linear(graph, node)
            elif node.op == "matmul":
                qt = self._matmul(graph, node)
            elif node.op == "add":
                qt = self._add(graph, node)
            else:
                continue
            if qt is not None and self._readers_requantise(graph, node.outputs[0]):
                graph.tensors[node.outputs[0]].qtype = qt
                changed = True
        return changed

    def _readers_requantise(self, graph: Graph, name: str) -> bool:
        from hwgen.ops import get

        for r in graph.consumers(name):
            if r.op in self.READERS:
                continue
            if lone_relu(r):
                continue  # ReluAsClamp makes it a saturating quantize
            op = get(r.op) if not r.op.startswith("onnx.") else None
            if op is None or not op.data_movement or r.op == "concat":
                return False
            if not all(self._readers_requantise(graph, o) for o in r.outputs):
                return False
        return True

    def _linear(self, graph: Graph, node: Node) -> QType | None:
        x = _typed(graph, node.inputs[0])
        w = graph.tensors[node.inputs[1]]
        if x is None or x.per_channel or not w.is_const or _typed(graph, w.name) is None or len(w.shape) != 2:
            return None
        k, n = w.shape
        sw, zw = w.qtype.channel_params(n)
        grid = float(x.scale) * sw
        step = float(grid.min())
        ratios = _integer_ratios(grid, step)
        if ratios is None:
            return None
        wc = np.asarray(w.data, dtype=np.int64) - zw[None, :]
        xlo, xhi = _centred_range(x)
        hi = np.maximum(wc * xlo, wc * xhi).sum(axis=0, dtype=object)
        lo = np.minimum(wc * xlo, wc * xhi).sum(axis=0, dtype=object)
        if len(node.inputs) > 2 and node.inputs[2]:
            b = graph.tensors[node.inputs[2]]
            if _typed(graph, b.name) is None or not b.is_const or b.size != n:
                return None
            if not _bias_on_grid(x, w.qtype, n, b):
                return None
            sb, zb = b.qtype.channel_params(n)
            bias = np.rint((np.asarray(b.data, dtype=np.int64).reshape(-1) - zb) * sb / grid).astype(np.int64)
            hi, lo = hi + bias.astype(object), lo + bias.astype(object)
        hi, lo = hi * ratios.astype(object), lo * ratios.astype(object)
        return _exact_type(int(min(lo)), int(max(hi)), step)

    def _matmul(self, graph: Graph, node: Node) -> QType | None:
        a, b = (_typed(graph, i) for i in node.inputs[:2])
        if a is None or b is None or a.per_channel or b.per_channel:
            return None
        inner = graph.shape(node.inputs[0])[-1]
        (al, ah), (bl, bh) = _centred_range(a), _centred_range(b)
        corners = [al * bl, al * bh, ah * bl, ah * bh]
        return _exact_type(inner * min(corners), inner * max(corners), float(a.scale) * float(b.scale))

    def _add(self, graph: Graph, node: Node) -> QType | None:
        types = [_typed(graph, i) for i in node.inputs]
        if any(t is None for t in types):
            return None
        scales = np.concatenate([np.asarray(t.scale, dtype=np.float64).reshape(-1) for t in types])
        step = float(scales.min())
        signs = node.attrs.get("signs", [1] * len(node.inputs))
        lo = hi = 0
        for name, t, sign in zip(node.inputs, types, signs):
            ratios = _integer_ratios(np.asarray(t.scale, dtype=np.float64).reshape(-1), step)
            if ratios is None:
                return None
            tensor = graph.tensors[name]
            if t.per_channel or np.ndim(t.scale) or np.ndim(t.zero_point):
                if not tensor.is_const:  # per-channel activations: bound by the type, channel by channel
                    zps = np.broadcast_to(np.asarray(t.zero_point, dtype=np.int64).reshape(-1), ratios.shape)
                    tl = int(min((t.qmin - zps) * ratios))
                    th = int(max((t.qmax - zps) * ratios))
                else:
                    real = t.dequantize(np.asarray(tensor.data, dtype=np.int64), t.axis)
                    c = real / step
                    if not np.all(c == np.rint(c)):
                        return None
                    tl, th = int(np.rint(c).min()), int(np.rint(c).max())
            else:
                cl, ch = _centred_range(t, tensor.data if tensor.is_const else None)
                r = int(ratios[0])
                tl, th = cl * r, ch * r
            if sign < 0:
                tl, th = -th, -tl
            lo, hi = lo + tl, hi + th
        return _exact_type(lo, hi, step)
