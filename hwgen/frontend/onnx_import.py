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
MAX_ELEMENTS = 1 << 28
_DTYPES: dict = {}  # refuse absurd tensor sizes instead of running out of memory


def load_model(source: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """Read and check a model; returns it with a display name for error messages."""
    if isinstance(source, onnx.ModelProto):
        return source, source.graph.name or "<model>"
    path = Path(source)
    name = str(source)
    if not path.is_file():
        raise HwgenError("no such file", file=name)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for truncated/corrupted files
        raise ModelError(f"not a valid ONNX file (truncated or corrupted: {type(exc).__name__})", file=name) from None
    _load_external_data(model, path, name)
    return model, name


def _load_external_data(model: onnx.ModelProto, path: Path, name: str) -> None:
    """External tensors must live inside the model's own folder (no '..', no absolute paths)."""
    base = path.resolve().parent
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        target = (base / loc).resolve()
        if not loc or os.path.isabs(loc) or base not in target.parents or not target.is_file():
            raise ModelError(f"external data of tensor '{tensor.name}' points outside the model folder "
                             f"or to a missing file", file=name)
    try:
        from onnx.external_data_helper import load_external_data_for_model
        load_external_data_for_model(model, str(base))
    except Exception as exc:
        raise ModelError(f"cannot read external data ({type(exc).__name__})", file=name) from None


def _all_tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t


def import_onnx(source: str | os.PathLike | onnx.ModelProto) -> Graph:
    model, name = load_model(source)
    try:
        return _import(model, name)
    except HwgenError as err:
        raise err.with_file(name)


def _import(model: onnx.ModelProto, name: str) -> Graph:
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX checker: {msg}") from None
    if model.graph.ByteSize() == 0 or not model.graph.node:
        raise ModelError("the graph has no nodes")
    _fix_batch_axis(model)
    try:
        model = shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"shape inference failed: {msg}") from None
    return _to_graph(model, name)


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
        g.add_tensor(init.name, init.dims, data=numpy_helper.to_array(init), source=init.name)
    inits = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        shape = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim)
        _check_size(shape, inp.name)
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


def _check_size(shape, name: str) -> None:
    n = 1
    for d in shape:
        if d < 0:
            raise ModelError(f"tensor '{name}' has a negative dimension", node=name)
        n *= int(d)
    if n > MAX_ELEMENTS:
        raise UnsupportedError(f"tensor '{name}' has {n} elements, more than hwgen accepts ({MAX_ELEMENTS})",
                               node=name)


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
        g.add_tensor(node.output[0], value.shape, data=value, source=node.output[0])
        return
    if node.op_type == "Shape" and node.input[0] in g.tensors:
        shape = np.array(g.tensors[node.input[0]].shape, dtype=np.int64)
        start, end = attrs.get("start", 0), attrs.get("end", None)
        value = shape[start:end]
        g.add_tensor(node.output[0], value.shape, data=value, source=node.output[0])
        return
    if node.op_type in FOLDABLE and all((not i) or g.tensors[i].is_const for i in node.input):
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
        _check_size(shapes[out], out)
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
    try:
        values = ReferenceEvaluator(node).run(None, feeds)
    except Exception:
        return {}
    return {o: tuple(np.shape(v)) for o, v in zip(node.output, values) if o}


def _constant_value(node, attrs, node_name) -> np.ndarray:
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    raise UnsupportedError("unsupported Constant attribute", node=node_name, op="Constant")


def _fold(node: onnx.NodeProto, g: Graph) -> list[np.ndarray]:
    from onnx.reference import ReferenceEvaluator

    feeds = {i: g.tensors[i].data for i in node.input if i}
    try:
        return ReferenceEvaluator(node).run(None, feeds)
    except Exception as exc:
        raise ModelError(f"cannot evaluate constant expression ({type(exc).__name__}: {str(exc)[:120]})",
                         node=node.name, op=node.op_type) from None
