"""ONNX file -> ONNX-level hwgen Graph: checked, static shapes, constants folded.

Nodes keep their ONNX op as "onnx.<Type>"; QDQ / QONNX absorption and lowering to hardware ops are
passes that run afterwards. The model's batch axis is fixed to 1 when it is symbolic (hwgen runs one
image at a time; the simulator vectorises over images itself).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from hwgen.errors import HwgenError, ModelError, UnsupportedError
from hwgen.ir import Graph

# Ops evaluated at import time when all their inputs are constants (shape arithmetic, weight reshapes).
FOLDABLE = {
    "Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Reshape", "Transpose", "Cast", "Slice", "Add",
    "Sub", "Mul", "Div", "Neg", "Sqrt", "Pow", "Range", "ConstantOfShape", "Expand", "Identity", "Equal",
    "Where", "Flatten", "Split", "ReduceProd", "ReduceSum", "ReduceMean", "Max", "Min", "Abs", "Floor",
    "Ceil", "Tile", "Not", "And", "Or", "Less", "Greater", "Size", "Erf", "Exp", "Log", "Reciprocal",
    "MatMul", "Sign", "Clip", "Relu", "Sigmoid", "Tanh",
}
MAX_ELEMENTS = 1 << 28  # per tensor: refuse absurd sizes (declared or computed) before allocating anything
MAX_FILE_BYTES = 1 << 31
_DTYPES: dict = {}  # refuse absurd tensor sizes instead of running out of memory


def load_model(source: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Read and check a model; returns it with a display name for error messages."""
    if isinstance(source, onnx.ModelProto):
        return source, source.graph.name or "<model>"
    path = Path(source)
    name = str(source)
    if path.is_dir():
        raise HwgenError("is a directory, not an ONNX file", file=name)
    if not path.is_file():  # also refuses FIFOs and devices (reading them could block or never end)
        raise HwgenError("no such file", file=name)
    if path.stat().st_size >= MAX_FILE_BYTES:
        raise ModelError(f"file of {path.stat().st_size:,} bytes; an ONNX protobuf holds at most 2 GiB "
                         "(larger weights go in external data files)", file=name)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for truncated/corrupted files
        raise ModelError(f"not a valid ONNX file (truncated or corrupted: {type(exc).__name__})", file=name) from None
    _load_external_data(model, path, name)
    return model, name


def _load_external_data(model: onnx.ModelProto, path: Path, name: str) -> None:
    """External tensors must live inside the model's own folder (no '..', no absolute paths, no symlinks
    leading out of it), in regular files, with offset and length inside the file. Every tensor counts:
    initializers, Constant attributes, sparse tensors and those of subgraphs (If/Loop branches)."""
    base = path.resolve().parent
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        try:
            target = (base / loc).resolve()
            inside = bool(loc) and "\0" not in loc and not os.path.isabs(loc) and base in target.parents \
                and target.is_file()
        except (OSError, ValueError):
            inside = False
        if not inside:
            raise ModelError("external data points outside the model folder or to a missing file",
                             file=name, tensor=tensor.name)
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        except ValueError:
            raise ModelError("external data offset/length are not integers", file=name, tensor=tensor.name) from None
        size = target.stat().st_size
        if offset < 0 or offset > size or (length != -1 and (length < 0 or offset + length > size)):
            raise ModelError(f"external data range (offset {offset}, length {length}) lies outside "
                             f"{os.path.basename(loc)} ({size} bytes)", file=name, tensor=tensor.name)
        if (size - offset if length == -1 else length) > MAX_FILE_BYTES * 4:
            raise UnsupportedError("external data larger than 8 GiB", file=name, tensor=tensor.name)
    try:
        from onnx.external_data_helper import load_external_data_for_model
        load_external_data_for_model(model, str(base))
    except Exception as exc:
        raise ModelError(f"cannot read external data ({type(exc).__name__}: {str(exc)[:160]})", file=name) from None


def _all_tensors(model: onnx.ModelProto):
    """Every TensorProto of the model, subgraphs included (what onnx's external data loader visits)."""
    yield from _graph_tensors(model.graph)


def _graph_tensors(graph: onnx.GraphProto):
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == onnx.AttributeProto.TENSORS:
                yield from attr.tensors
            elif attr.type == onnx.AttributeProto.SPARSE_TENSOR:
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            elif attr.type == onnx.AttributeProto.GRAPH:
                yield from _graph_tensors(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graph_tensors(g)


def import_onnx(source: str | os.PathLike | onnx.ModelProto) -> Graph:
    model, name = load_model(source)
    try:
        return _import(model, name)
    except HwgenError as err:
        raise err.with_file(name)


def _import(model: onnx.ModelProto, name: str) -> Graph:
    _check_structure(model)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX checker: {msg}") from None
    if model.graph.ByteSize() == 0 or not model.graph.node:
        raise ModelError("the graph has no nodes")
    newest = onnx.defs.onnx_opset_version()
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and not 1 <= o.version <= newest:
            raise UnsupportedError(f"ONNX opset {o.version} is not one this onnx knows (1 to {newest})")
    if model.graph.sparse_initializer:
        raise UnsupportedError("sparse initializers are not supported",
                               tensor=model.graph.sparse_initializer[0].values.name)
    _fix_batch_axis(model)
    try:
        model = shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"shape inference failed: {msg}") from None
    return _to_graph(model, name)


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def _check_structure(model: onnx.ModelProto) -> None:
    """What the ONNX checker reports only vaguely, with the node and op that is wrong: every node input
    is a graph input, an initializer or the output of an EARLIER node (no cycles, no dangling names);
    every tensor is produced once; the graph has outputs and they are produced."""
    g = model.graph
    known = {i.name for i in g.initializer} | {i.name for i in g.input} | \
        {s.values.name for s in g.sparse_initializer}
    producer: dict[str, int] = {}
    for idx, node in enumerate(g.node):
        for o in node.output:
            if not o:
                continue
            if o in producer or o in known:
                raise ModelError(f"tensor '{o}' is produced twice", node=_node_label(node, idx), op=node.op_type)
            producer[o] = idx
    for idx, node in enumerate(g.node):
        for i in node.input:
            if not i or i in known:
                continue
            j = producer.get(i)
            if j is None:
                raise ModelError(f"input '{i}' is not produced by any node (dangling input)",
                                 node=_node_label(node, idx), op=node.op_type)
            if j >= idx:
                later = g.node[j]
                raise ModelError(f"input '{i}' is produced by node '{_node_label(later, j)}' ({later.op_type}) "
                                 "at or after this one: a cycle, or nodes out of topological order",
                                 node=_node_label(node, idx), op=node.op_type)
    if not g.output:
        raise ModelError("the graph has no outputs")
    for o in g.output:
        if o.name not in producer and o.name not in known:
            raise ModelError(f"graph output '{o.name}' is not produced by any node", node=o.name, op="output")


def _fix_batch_axis(model: onnx.ModelProto) -> None:
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        if not tt.HasField("shape"):
            raise UnsupportedError(f"input '{inp.name}' has no static shape", node=inp.name, op="input")
        for axis, dim in enumerate(tt.shape.dim):
            static = dim.HasField("dim_value") and dim.dim_value > 0
            if static:
                continue
            if dim.HasField("dim_value"):
                raise ModelError(f"input '{inp.name}' has a {'zero-sized' if dim.dim_value == 0 else 'negative'} "
                                 f"dimension ({dim.dim_value}) on axis {axis}", node=inp.name, op="input")
            if axis == 0:
                dim.Clear()
                dim.dim_value = 1  # the batch: hwgen computes one image at a time
            else:
                label = dim.dim_param or "?"
                raise UnsupportedError(
                    f"input '{inp.name}' has a dynamic dimension '{label}' on axis {axis}; hwgen needs static "
                    "shapes (only the leading batch axis may be symbolic)", node=inp.name, op="input")


def _to_graph(model: onnx.ModelProto, name: str) -> Graph:
    g = Graph(model.graph.name or Path(name).stem)
    g.meta["opset"] = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    _DTYPES.clear()
    shapes = _value_shapes(model)
    g.meta["dtypes"] = dict(_DTYPES)
    for init in model.graph.initializer:
        _check_size(init.dims, init.name)
        g.add_tensor(init.name, init.dims, data=_to_array(init, init.name), source=init.name)
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        shape = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)
        _check_size(shape, inp.name, runtime=True)
        g.add_tensor(inp.name, shape, source=inp.name)
        g.meta.setdefault("input_elem_type", {})[inp.name] = inp.type.tensor_type.elem_type
        g.inputs.append(inp.name)
    if not g.inputs:
        raise ModelError("the graph has no runtime input")
    for i, node in enumerate(model.graph.node):
        _import_node(g, node, i, shapes)
    g.outputs = [o.name for o in model.graph.output]
    for o in g.outputs:
        if o not in g.tensors:
            raise ModelError(f"graph output '{o}' is not produced by any node", node=o, op="output")
    g.remove_dead()
    return g


def _value_shapes(model: onnx.ModelProto) -> dict[str, tuple]:
    shapes = {}
    for vi in list(model.graph.value_info) + list(model.graph.output) + list(model.graph.input):
        tt = vi.type.tensor_type
        if tt.elem_type:
            try:
                _DTYPES[vi.name] = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
            except Exception:
                pass
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            shapes[vi.name] = tuple(d.dim_value for d in tt.shape.dim)
    return shapes


def _check_size(shape, name: str, runtime: bool = False, node: str | None = None, op: str | None = None) -> None:
    """Refuse negative dimensions, absurd sizes and (for tensors computed at run time) empty tensors."""
    n = 1
    for d in shape:
        if int(d) < 0:
            raise ModelError(f"negative dimension in shape {list(shape)}", tensor=name, node=node, op=op)
        n *= int(d)
    if n > MAX_ELEMENTS:
        raise UnsupportedError(f"shape {_short_shape(shape)} has {n:,} elements, more than hwgen accepts "
                               f"({MAX_ELEMENTS:,})", tensor=name, node=node, op=op)
    if runtime and n == 0:
        raise UnsupportedError(f"zero-sized tensor (shape {list(shape)})", tensor=name, node=node, op=op)


def _short_shape(shape) -> str:
    s = str([int(d) for d in shape])
    return s if len(s) <= 80 else s[:77] + "...]"


def _to_array(t: onnx.TensorProto, name: str) -> np.ndarray:
    try:
        return numpy_helper.to_array(t)
    except Exception as exc:  # raw_data shorter than the dims, unsupported types, ...
        raise ModelError(f"cannot read tensor data ({type(exc).__name__}: {str(exc)[:120]})", tensor=name) from None


def _import_node(g: Graph, node: onnx.NodeProto, index: int, shapes: dict) -> None:
    node_name = node.name or f"{node.op_type}_{index}"
    op = f"{node.domain + '.' if node.domain not in ('', 'ai.onnx') else 'onnx.'}{node.op_type}"
    if node.domain not in ("", "ai.onnx") and node.op_type not in ("Quant", "IntQuant"):
        raise UnsupportedError(f"custom domain '{node.domain}' is not supported", node=node_name,
                               op=node.op_type)
    if node.domain not in ("", "ai.onnx"):
        op = f"onnx.{node.op_type}"  # QONNX Quant: domain qonnx.custom_op.general
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    for inp in node.input:
        if inp and inp not in g.tensors:
            raise ModelError(f"input '{inp}' is not produced by any earlier node (cycle or dangling input)",
                             node=node_name, op=node.op_type)
    for out in node.output:
        if out and out in g.tensors:
            raise ModelError(f"tensor '{out}' is produced twice", node=node_name, op=node.op_type)
    if node.op_type == "Constant":
        value = _constant_value(node, attrs, node_name)
        _check_size(value.shape, node.output[0], node=node_name, op=node.op_type)
        g.add_tensor(node.output[0], value.shape, data=value, source=node.output[0])
        return
    if node.op_type == "Shape" and node.input[0] in g.tensors:
        shape = np.array(g.tensors[node.input[0]].shape, dtype=np.int64)
        start, end = attrs.get("start", 0), attrs.get("end", None)
        value = shape[start:end]
        g.add_tensor(node.output[0], value.shape, data=value, source=node.output[0])
        return
    if node.op_type in FOLDABLE and all((not i) or g.tensors[i].is_const for i in node.input):
        _check_fold_size(node, g, shapes, node_name)
        values = _fold(node, g)
        for out, val in zip(node.output, values):
            if out:
                g.add_tensor(out, np.shape(val), data=np.asarray(val), source=out)
        return
    outputs = []
    if any(o and o not in shapes for o in node.output):
        shapes.update(_local_shapes(node, g, shapes))
    for out in node.output:
        if not out:
            outputs.append("")
            continue
        if out not in shapes:
            raise UnsupportedError(f"cannot infer a static shape for output '{out}'", node=node_name,
                                   op=node.op_type)
        _check_size(shapes[out], out, runtime=True, node=node_name, op=node.op_type)
        g.add_tensor(out, shapes[out], source=out)
        outputs.append(out)
    g.add_node(op, [i for i in node.input], outputs, name=node_name, attrs=attrs, source=[node_name])


def _local_shapes(node: onnx.NodeProto, g: Graph, shapes: dict) -> dict:
    """Shapes that whole-model inference missed (e.g. behind a folded Expand): run the node once on
    zeros of its input shapes. Only for small tensors; larger ones stay an error."""
    from onnx.reference import ReferenceEvaluator

    feeds = {}
    for i in node.input:
        if not i:
            continue
        t = g.tensors[i]
        if t.is_const:
            feeds[i] = t.data
        elif t.size <= 1 << 22:
            feeds[i] = np.zeros(t.shape, dtype=g.meta.get("dtypes", {}).get(i, np.float32))
        else:
            return {}
    if _output_elements(node, g, {}) > MAX_ELEMENTS // 16:
        return {}
    try:
        values = ReferenceEvaluator(node).run(None, feeds)
    except Exception:
        return {}
    return {o: tuple(np.shape(v)) for o, v in zip(node.output, values) if o}


def _constant_value(node, attrs, node_name) -> np.ndarray:
    if "value" in attrs:
        try:
            return numpy_helper.to_array(attrs["value"])
        except Exception as exc:
            raise ModelError(f"cannot read the Constant's value ({type(exc).__name__})", node=node_name,
                             op="Constant") from None
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    raise UnsupportedError("unsupported Constant attribute", node=node_name, op="Constant")


_ELEMENTWISE_FOLD = {"Add", "Sub", "Mul", "Div", "Pow", "Equal", "Where", "Max", "Min", "And", "Or", "Less",
                     "Greater", "Clip"}


def _output_elements(node: onnx.NodeProto, g: Graph, shapes: dict) -> int:
    """Upper bound of the elements `node` produces from its (known) inputs, WITHOUT running it: the
    shape inference result when there is one, else the op's own shape rule for the ops that can grow
    (broadcasts, ConstantOfShape, Expand, Tile, Range, MatMul, Gather). -1 when unknown."""
    outs = [o for o in node.output if o]
    if outs and all(o in shapes for o in outs):
        return max(int(np.prod(shapes[o], dtype=object)) for o in outs)
    ins = [g.tensors[i] if i else None for i in node.input]
    shp = [t.shape if t is not None else None for t in ins]
    val = [t.data if t is not None else None for t in ins]
    op = node.op_type

    def count(shape) -> int:
        return int(np.prod([int(d) for d in shape], dtype=object))

    try:
        if op == "ConstantOfShape":
            return count(np.asarray(val[0]).reshape(-1)) if val[0] is not None else -1
        if op == "Expand":
            target = [int(d) for d in np.asarray(val[1]).reshape(-1)]
            rank = max(len(target), len(shp[0]))
            a = [1] * (rank - len(shp[0])) + list(shp[0])
            b = [1] * (rank - len(target)) + target
            return count(max(x, y) for x, y in zip(a, b))
        if op == "Tile":
            reps = [int(r) for r in np.asarray(val[1]).reshape(-1)]
            return count(d * r for d, r in zip(shp[0], reps))
        if op == "Range":
            start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in val[:3])
            if delta == 0 or not np.isfinite([start, limit, delta]).all():
                return MAX_ELEMENTS + 1
            return max(0, int(np.ceil((limit - start) / delta)))
        if op == "MatMul":
            a, b = list(shp[0]), list(shp[1])
            batch = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])) if len(a) > 2 or len(b) > 2 else ()
            return count(list(batch) + ([a[-2]] if len(a) > 1 else []) + ([b[-1]] if len(b) > 1 else []))
        if op == "Gather":
            axis = next((int(x.i) for x in node.attribute if x.name == "axis"), 0)
            data = list(shp[0])
            axis = axis + len(data) if axis < 0 else axis
            return count(data[:axis] + list(shp[1]) + data[axis + 1:]) if data else count(shp[1])
        if op in _ELEMENTWISE_FOLD:
            return count(np.broadcast_shapes(*[tuple(s) for s in shp if s is not None]))
    except (ValueError, TypeError, IndexError, OverflowError):
        return -1
    return max((count(s) for s in shp if s is not None), default=0)


def _check_fold_size(node: onnx.NodeProto, g: Graph, shapes: dict, node_name: str) -> None:
    n = _output_elements(node, g, shapes)
    if n > MAX_ELEMENTS:
        raise UnsupportedError(f"this constant expression would produce {n:,} elements, more than hwgen accepts "
                               f"({MAX_ELEMENTS:,})", node=node_name, op=node.op_type,
                               tensor=node.output[0] if node.output else None)


def _fold(node: onnx.NodeProto, g: Graph) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    feeds = {i: g.tensors[i].data for i in node.input if i}
    try:
        values = ReferenceEvaluator(node).run(None, feeds)
    except Exception as exc:
        raise ModelError(f"cannot evaluate constant expression ({type(exc).__name__}: {str(exc)[:120]})",
                         node=node.name, op=node.op_type) from None
    for out, v in zip(node.output, values):
        _check_size(np.shape(v), out, node=node.name, op=node.op_type)
    return values
