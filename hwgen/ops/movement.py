"""Data movement: reshape, transpose, slice, gather, concat, split. Values are untouched (concat
requantises inputs whose type differs from its output). Each class is one op; they share this module
because none of them has arithmetic, fixed-point behaviour or knobs of its own."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, batch_axis, register


class _Movement(OpDef):
    data_movement = True

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


@register
class Transpose(_Movement):
    name = "transpose"
    onnx_types = ("Transpose",)

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.inputs[0]))
        perm = list(node.attrs.get("perm", list(range(rank))[::-1]))
        node.op, node.attrs = self.name, {"perm": perm}

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
            raise self.unsupported(node, "Gather with non-constant indices")
        shape = graph.shape(node.inputs[0])
        axis = int(node.attrs.get("axis", 0))
        axis = axis + len(shape) if axis < 0 else axis
        idx = np.asarray(idx, dtype=np.int64)
        if np.any(idx >= shape[axis]) or np.any(idx < -shape[axis]):
            raise self.unsupported(node, "Gather index out of range")
        node.op, node.inputs = self.name, node.inputs[:1]
        node.attrs = {"axis": axis, "indices": np.where(idx < 0, idx + shape[axis], idx)}

    def simulate(self, graph, node, inputs, stats):
        return [np.take(inputs[0], node.attrs["indices"], axis=node.attrs["axis"] + 1)]


@register
class Concat(_Movement):
    name = "concat"
    onnx_types = ("Concat",)

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

    def simulate(self, graph, node, inputs, stats):
        cuts = np.cumsum(node.attrs["sizes"])[:-1]
        return [np.ascontiguousarray(p) for p in np.split(inputs[0], cuts, axis=node.attrs["axis"] + 1)]
