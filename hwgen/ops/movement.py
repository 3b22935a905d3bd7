"""Data movement: reshape, transpose, slice, gather, concat, split. Values are untouched (concat
requantises inputs whose type differs from its output). Each class is one op; they share this module
because none of them has arithmetic, fixed-point behaviour or knobs of its own."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, batch_axis, get, register


def _strides(shape) -> list[int]:
    out, acc = [], 1
    for d in reversed(list(shape)):
        out.append(acc)
        acc *= int(d)
    return out[::-1]


def emit_strided(graph: Graph, node: Node, ctx, out_name: str, out_dims, src_strides, base: int) -> None:
    """One strided_copy call: out[o] = in[base + sum idx_a * src_strides[a]] over out_dims (movement.h)."""
    dims, strides = list(out_dims) or [1], list(src_strides) or [0]
    if len(dims) > 6:
        raise OpDef().unsupported(node, "data movement on tensors of rank above 6")
    dims, strides = dims + [1] * (6 - len(dims)), strides + [0] * (6 - len(strides))
    t_in, t_out = graph.tensors[node.inputs[0]], graph.tensors[out_name]
    ctx.include("movement.h")
    cfg = ctx.config(node.name, [
        f"typedef {t_in.qtype.c_type()} in_t;", f"typedef {t_out.qtype.c_type()} out_t;",
        f"static const int rank = {max(len(out_dims), 1)};", f"static const int n_out = {max(t_out.size, 1)};",
        "static const int out_dims[6];", "static const int src_stride[6];", f"static const int src_base = {base};"])
    ctx.decls.append(f"const int {cfg}::out_dims[6] = {{{', '.join(map(str, dims))}}};")
    ctx.decls.append(f"const int {cfg}::src_stride[6] = {{{', '.join(map(str, strides))}}};")
    ctx.call(f"hwgen::strided_copy<hwgen_cfg::{cfg}>({ctx.tensor(node.inputs[0])}, {ctx.tensor(out_name)});", node)


class _Movement(OpDef):
    data_movement = True

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """Data movement has no arithmetic. A reshape, and a transpose/slice/gather/split that the graph
        analysis folds into a neighbour's addressing (head split/merge around attention, the patch
        embedding's output order), is a view: 0 cycles, the address arithmetic of its consumer
        (16 LUTs and 16 FFs per axis). Otherwise it is a strided copy (templates/kernels/movement.h),
        PAR = elementwise.par elements per cycle, that needs its whole input first:
          compute = ceil(elements/PAR) + depth;  a constant operand (a class token) is stored on chip
        """
        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        y = graph.tensors[node.outputs[0]]
        rank = max(len(y.shape), 1)
        agu = cm.Resources(lut=16 * rank, ff=16 * rank)
        if self.name == "reshape" or ctx.facts(node).get("folded"):
            return cm.Cost(node.name, self.name, "views", 0.0, res=agu, view=True,
                           formula="view: folded into addressing")
        par = max(1, ctx.knobs(node, "elementwise").par)
        extra = agu
        for i in node.inputs:
            t = graph.tensors[i]
            if t.is_const:
                extra += cm.memory(cm.op_bits(t.qtype), t.size, 1, ctx.design.memory.storage, ctx.board)
        elements = sum(graph.tensors[o].size for o in node.outputs) * ctx.row_scale
        bits = cm.op_bits(y.qtype)
        ins = [graph.tensors[i].size * ctx.row_scale * bits / 8 for i in node.inputs if not graph.tensors[i].is_const]
        outs = [elements * bits / 8]
        lane = cm.Resources(lut=bits, ff=bits)
        return cm.elementwise(ctx, node, self.name, ctx.kernel("movement", node), elements, par, lane, 3, 1, ins, outs,
                              extra, blocking=True, formula=f"strided copy ceil({elements:g}/{par})")

    def check(self, graph: Graph, node: Node) -> None:
        src = graph.tensors[node.inputs[0]].qtype
        if src.per_channel:
            raise self.unsupported(node, "moving a tensor with per-channel scales")
        for o in node.outputs:
            if not graph.tensors[o].qtype.same_as(src) and self.name != "concat":
                raise self.unsupported(node, f"{self.name} changes the numeric type ({src} -> {graph.tensors[o].qtype})")


@register
class Reshape(_Movement):
    name = "reshape"
    onnx_types = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")

    def lower(self, graph: Graph, node: Node) -> None:
        node.op, node.inputs, node.attrs = self.name, node.inputs[:1], {"shape": list(graph.shape(node.outputs[0]))}

    def simulate(self, graph, node, inputs, stats):
        x = inputs[0]
        return [x.reshape((x.shape[0],) + tuple(graph.shape(node.outputs[0])))]

    def emit(self, graph: Graph, node: Node, ctx) -> None:
        ctx.alias(node.outputs[0], node.inputs[0])  # a view: same buffer, no hardware


@register
class Transpose(_Movement):
    name = "transpose"
    onnx_types = ("Transpose",)

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.inputs[0]))
        perm = list(node.attrs.get("perm", list(range(rank))[::-1]))
        node.op, node.attrs = self.name, {"perm": perm}

    def emit(self, graph: Graph, node: Node, ctx) -> None:
        shape, perm = graph.shape(node.inputs[0]), node.attrs["perm"]
        strides = _strides(shape)
        emit_strided(graph, node, ctx, node.outputs[0], [shape[p] for p in perm], [strides[p] for p in perm], 0)

    def simulate(self, graph, node, inputs, stats):
        perm = [0] + [p + 1 for p in node.attrs["perm"]]
        return [np.ascontiguousarray(np.transpose(inputs[0], perm))]


@register
class Slice(_Movement):
    name = "slice"
    onnx_types = ("Slice",)

    def lower(self, graph: Graph, node: Node) -> None:
        shape = graph.shape(node.inputs[0])
        consts = [graph.const(i) if i else None for i in node.inputs[1:]]
        if any(i and c is None for i, c in zip(node.inputs[1:], consts)):
            raise self.unsupported(node, "Slice with non-constant starts/ends/axes/steps")
        starts, ends = consts[0], consts[1]
        axes = consts[2] if len(consts) > 2 and consts[2] is not None else np.arange(len(starts))
        steps = consts[3] if len(consts) > 3 and consts[3] is not None else np.ones(len(starts), dtype=np.int64)
        index = [slice(None)] * len(shape)
        for s, e, a, st in zip(starts, ends, axes, steps):
            a = int(a) + len(shape) if a < 0 else int(a)
            if st == 0:
                raise self.unsupported(node, "Slice with step 0")
            index[a] = slice(*slice(int(s), int(max(min(e, 2**62), -2**62)), int(st)).indices(shape[a]))
        node.op, node.inputs = self.name, node.inputs[:1]
        node.attrs = {"index": [(sl.start, sl.stop, sl.step) for sl in index]}

    def emit(self, graph: Graph, node: Node, ctx) -> None:
        shape = graph.shape(node.inputs[0])
        strides, dims, src, base = _strides(shape), [], [], 0
        for a, t in enumerate(node.attrs["index"]):
            start, stop, step = slice(*t).indices(shape[a])
            dims.append(len(range(start, stop, step)))
            src.append(strides[a] * step)
            base += start * strides[a]
        emit_strided(graph, node, ctx, node.outputs[0], dims, src, base)

    def simulate(self, graph, node, inputs, stats):
        index = (slice(None),) + tuple(slice(*t) for t in node.attrs["index"])
        return [np.ascontiguousarray(inputs[0][index])]


@register
class Gather(_Movement):
    name = "gather"
    onnx_types = ("Gather",)

    def lower(self, graph: Graph, node: Node) -> None:
        idx = graph.const(node.inputs[1])
        if idx is None:
            return get("embedding").lower(graph, node)  # a table read by token ids
        shape = graph.shape(node.inputs[0])
        axis = int(node.attrs.get("axis", 0))
        axis = axis + len(shape) if axis < 0 else axis
        idx = np.asarray(idx, dtype=np.int64)
        if np.any(idx >= shape[axis]) or np.any(idx < -shape[axis]):
            raise self.unsupported(node, "Gather index out of range")
        node.op, node.inputs = self.name, node.inputs[:1]
        node.attrs = {"axis": axis, "indices": np.where(idx < 0, idx + shape[axis], idx)}

    def emit(self, graph: Graph, node: Node, ctx) -> None:
        shape, axis = graph.shape(node.inputs[0]), node.attrs["axis"]
        idx = np.asarray(node.attrs["indices"])
        strides = _strides(shape)
        if idx.ndim == 0:
            dims = [d for a, d in enumerate(shape) if a != axis]
            src = [s for a, s in enumerate(strides) if a != axis]
            base = int(idx) * strides[axis]
        elif idx.ndim == 1 and (idx.size == 1 or len(set(np.diff(idx).tolist())) == 1):
            step = int(idx[1] - idx[0]) if idx.size > 1 else 0
            dims, src = list(shape), list(strides)
            dims[axis], src[axis] = int(idx.size), strides[axis] * step
            base = int(idx[0]) * strides[axis]
        else:
            raise self.unsupported(node, "Gather with irregular or multi-dimensional indices")
        emit_strided(graph, node, ctx, node.outputs[0], dims, src, base)

    def simulate(self, graph, node, inputs, stats):
        return [np.take(inputs[0], node.attrs["indices"], axis=node.attrs["axis"] + 1)]


@register
class Concat(_Movement):
    name = "concat"
    onnx_types = ("Concat",)
    forwards_exact_types = False  # requantises its parts into one type

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.outputs[0]))
        axis = int(node.attrs.get("axis", 0))
        node.op, node.attrs = self.name, {"axis": axis + rank if axis < 0 else axis}

    def infer_types(self, graph, node, default) -> None:
        out = graph.tensors[node.outputs[0]]
        if out.qtype is None:
            out.qtype = graph.tensors[node.inputs[0]].qtype

    def check(self, graph: Graph, node: Node) -> None:
        for i in node.inputs:
            if graph.tensors[i].qtype.per_channel:
                raise self.unsupported(node, "concatenating tensors with per-channel scales")

    # -- C++ kernel (concat_part in templates/kernels/requant.h), emitted by OpDef.emit -----------------
    kernel_header = "requant.h"

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """One concat_part config per input (requantised like common.to_type when its type differs)."""
        from hwgen.codegen.cpp import c_array, c_bool, c_int, modes

        out = graph.tensors[node.outputs[0]]
        axis = node.attrs["axis"]
        n_outer = int(np.prod(out.shape[:axis], dtype=np.int64))
        out_inner = int(np.prod(out.shape[axis:], dtype=np.int64))
        decls, calls, offset, k_in = [], [], 0, 0
        for j, name in enumerate(node.inputs):
            t = graph.tensors[name]
            in_inner = int(np.prod(t.shape[axis:], dtype=np.int64))
            convert = not t.qtype.same_as(out.qtype)
            m0, shift = common.requant_params(float(t.qtype.scale), out.qtype) if convert else (1 << 30, 30)
            decls.append(
                f"struct cfg{j} {{\n"
                f"  typedef {t.qtype.c_type()} in_t;\n  typedef {out.qtype.c_type()} out_t;\n"
                f"  typedef ap_uint<{common.MULT_BITS}> mult_t;\n"
                f"  static const int n_outer = {n_outer}, in_inner = {in_inner}, out_inner = {out_inner}, "
                f"offset = {offset}, shift = {int(shift)};\n"
                f"  static const bool convert = {c_bool(convert)};\n"
                f"  static const long long in_zero_point = {c_int(common.scalar_zp(t.qtype))}, m0 = {c_int(m0)}, "
                f"out_zero_point = {c_int(common.scalar_zp(out.qtype))};\n" + modes(out.qtype) + "};\n")
            if t.is_const:
                decls.append(c_array(f"k{j}", t.data, t.qtype))
                src = f"k{j}"
            else:
                src = f"in{k_in}"
                k_in += 1
            calls.append(f"hwgen::concat_part<cfg{j}>({src}, out0);")
            offset += in_inner
        return "".join(decls), "\n".join(calls)

    def simulate(self, graph, node, inputs, stats):
        out = graph.tensors[node.outputs[0]].qtype
        parts = []
        n = max(x.shape[0] for name, x in zip(node.inputs, inputs) if not graph.tensors[name].is_const)
        for name, x in zip(node.inputs, inputs):
            t = graph.tensors[name]
            if t.is_const:
                x = np.broadcast_to(np.asarray(x, dtype=np.int64)[None], (n,) + tuple(t.shape))
            if not t.qtype.same_as(out):
                x = common.to_type(common.centered(x, t.qtype), float(t.qtype.scale), out, stats, node.outputs[0])
            parts.append(np.asarray(x, dtype=np.int64))
        return [np.concatenate(parts, axis=node.attrs["axis"] + 1)]


@register
class Split(_Movement):
    name = "split"
    onnx_types = ("Split",)

    def lower(self, graph: Graph, node: Node) -> None:
        shape = graph.shape(node.inputs[0])
        axis = int(node.attrs.get("axis", 0))
        axis = axis + len(shape) if axis < 0 else axis
        sizes = [graph.shape(o)[axis] for o in node.outputs]
        node.op, node.inputs, node.attrs = self.name, node.inputs[:1], {"axis": axis, "sizes": sizes}

    def emit(self, graph: Graph, node: Node, ctx) -> None:
        shape, axis = graph.shape(node.inputs[0]), node.attrs["axis"]
        strides, start = _strides(shape), 0
        for out, size in zip(node.outputs, node.attrs["sizes"]):
            dims = list(shape)
            dims[axis] = size
            emit_strided(graph, node, ctx, out, dims, strides, start * strides[axis])
            start += size

    def simulate(self, graph, node, inputs, stats):
        cuts = np.cumsum(node.attrs["sizes"])[:-1]
        return [np.ascontiguousarray(p) for p in np.split(inputs[0], cuts, axis=node.attrs["axis"] + 1)]
