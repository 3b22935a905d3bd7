"""onnxruntime as the reference: runs the original model on the same inputs, with any intermediate
tensors exposed, so the simulator can be compared end to end and layer by layer."""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import shape_inference

from hwgen.errors import HwgenError
from hwgen.frontend.onnx_import import load_model


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # fatal only: its error log lines would break the CLI's one-line errors
    # BASIC keeps every QuantizeLinear/DequantizeLinear as written: the QDQ graph's defined semantics.
    # EXTENDED/ALL fuse them into onnxruntime's own int8 kernels, which compute differently (on
    # vit_digits they lose 8 points of accuracy); hwgen reports against the model as written.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise HwgenError(f"onnxruntime cannot run the model: {str(exc).splitlines()[0][:200]}") from None


def run_onnxruntime(source: str | os.PathLike | onnx.ModelProto, x: np.ndarray,
                    extra: list[str] | tuple = (), batch: int = 64) -> dict[str, np.ndarray]:
    """Outputs (and the `extra` intermediate tensors) for a batch of inputs x [N, ...]."""
    model, _ = load_model(source)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    if any(n.op_type in ("Quant", "IntQuant") for n in model.graph.node):
        model = qonnx_as_qdq(model)
    inferred = shape_inference.infer_shapes(model)
    known = {vi.name: vi for vi in list(inferred.graph.value_info) + list(inferred.graph.output)}
    outputs = [o.name for o in model.graph.output]
    for name in extra:
        if name not in outputs and name in known:
            model.graph.output.append(known[name])
            outputs.append(name)
    inits = {i.name for i in model.graph.initializer}
    inp = [i for i in model.graph.input if i.name not in inits][0]
    dims = inp.type.tensor_type.shape.dim
    static_batch = dims[0].HasField("dim_value") and dims[0].dim_value > 0
    shape = [d.dim_value for d in dims]
    sess = _session(model)
    x = np.asarray(x, dtype=np.float32)
    if x.shape[1:] != tuple(shape[1:]):
        x = x.reshape((-1,) + tuple(shape[1:]))
    results: dict[str, list] = {o: [] for o in outputs}
    step = shape[0] if static_batch else batch
    for start in range(0, x.shape[0], step):
        part = x[start:start + step]
        if static_batch and part.shape[0] != step:
            raise HwgenError(f"batch of {part.shape[0]} does not divide the model's static batch {step}")
        for name, value in zip(outputs, sess.run(outputs, {inp.name: part})):
            results[name].append(value)
    return {k: np.concatenate(v) if static_batch or True else v for k, v in results.items()}


def qonnx_as_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """QONNX Quant nodes (up to 16 bits, ROUND) as QuantizeLinear -> DequantizeLinear pairs, which
    compute the same fake quantisation and which onnxruntime can run (it has no Quant kernel)."""
    from onnx import TensorProto, helper, numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes, extra = [], []
    for node in model.graph.node:
        if node.op_type not in ("Quant", "IntQuant"):
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        scale, zp, bits = (inits.get(i) for i in node.input[1:4])
        mode = attrs.get("rounding_mode", b"ROUND")
        if node.input[0] in inits and scale is not None and zp is not None and bits is not None:
            lo, hi = (-(2 ** (int(bits) - 1)), 2 ** (int(bits) - 1) - 1) if attrs.get("signed", 1) else (0, 2 ** int(bits) - 1)
            w = np.asarray(inits[node.input[0]], np.float64)
            q = np.clip(np.rint(w / scale + zp), lo, hi)
            extra.append(numpy_helper.from_array(((q - zp) * scale).astype(np.float32), node.output[0]))
            continue
        if scale is None or zp is None or bits is None or int(bits) > 16 or attrs.get("narrow", 0) or \
                (mode.decode() if isinstance(mode, bytes) else mode) != "ROUND":
            raise HwgenError(f"cannot express Quant node '{node.name}' for onnxruntime")
        signed = bool(attrs.get("signed", 1))
        dtype = {(8, True): np.int8, (8, False): np.uint8, (16, True): np.int16, (16, False): np.uint16}.get(
            (8 if int(bits) <= 8 else 16, signed))
        axis = 1
        if scale.size > 1:
            axis = [i for i, d in enumerate(scale.shape) if d > 1][0]
        s_name, z_name = node.name + "_qdq_scale", node.name + "_qdq_zp"
        extra += [numpy_helper.from_array(np.asarray(scale, np.float32).reshape(-1) if scale.size > 1 else
                                          np.asarray(scale, np.float32).reshape(()), s_name),
                  numpy_helper.from_array(np.broadcast_to(np.asarray(zp).reshape(-1), scale.reshape(-1).shape).astype(dtype)
                                          if scale.size > 1 else np.asarray(zp).reshape(()).astype(dtype), z_name)]
        mid = node.output[0] + "_qdq_int"
        nodes.append(helper.make_node("QuantizeLinear", [node.input[0], s_name, z_name], [mid], name=node.name + "_q", axis=axis))
        nodes.append(helper.make_node("DequantizeLinear", [mid, s_name, z_name], [node.output[0]], name=node.name + "_dq", axis=axis))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(extra)
    keep = [o for o in model.opset_import if o.domain not in ("qonnx.custom_op.general",)]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    model.ir_version = min(model.ir_version, 10)
    return model
