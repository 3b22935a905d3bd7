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
    # WeightBiasQuantization (a BASIC rule of recent onnxruntime) re-quantises a float weight that meets a
    # dequantised activation with a scale of its own: lossy, and it fires on QONNX models, whose quantised
    # weights qonnx_as_qdq folds to float constants. The model as written keeps them exact.
    try:
        return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=["WeightBiasQuantization"])
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
    x = np.asarray(x, dtype=onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type or onnx.TensorProto.FLOAT))
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
    """QONNX Quant nodes as what onnxruntime can run (it has no Quant kernel), computing the same fake
    quantisation. A constant input is folded: quantised and clipped to QONNX's [min_int, max_int] with the node's
    rounding mode. A computed one (ROUND) of up to 8 bits becomes QuantizeLinear -> DequantizeLinear into
    int8/uint8, followed by a Clip in the dequantised domain to [(min_int - zp) * s, (max_int - zp) * s] when
    that range is narrower than the container's (narrow range: codes -(2^(b-1)-1) .. 2^(b-1)-1, never
    -2^(b-1); fewer than 8 bits); of 9 to 24 bits (int16 QuantizeLinear needs opset 21, which would change
    other ops' meaning) the same steps in float32 ops: Div -> Round -> Clip to [min_int - zp, max_int - zp]
    -> Mul, which is what the QDQ pair computes (float32 division, ties to even, float32(q - zp) * s)."""
    from onnx import helper, numpy_helper

    from hwgen.passes.qdq import _qonnx_codes

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    nodes, extra = [], []
    for node in model.graph.node:
        if node.op_type not in ("Quant", "IntQuant"):
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if not node.name:  # names of the added nodes and constants derive from it
            node.name = node.output[0] + "_quant"
        scale, zp, bits = (inits.get(i) for i in node.input[1:4])
        mode = attrs.get("rounding_mode", b"ROUND")
        mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
        signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
        if scale is None or zp is None or bits is None or np.size(bits) != 1 or int(np.asarray(bits).reshape(())) < 2:
            raise HwgenError(f"cannot express Quant node '{node.name}' for onnxruntime")
        bits = int(np.asarray(bits).reshape(()))
        # QONNX's min_int / max_int
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
        lo, hi = (lo + 1, hi) if narrow and signed else (lo, hi - 1) if narrow else (lo, hi)
        if node.input[0] in inits:
            w = np.asarray(inits[node.input[0]], np.float64)
            if mode not in ("ROUND", "ROUND_TO_ZERO", "FLOOR", "CEIL"):
                raise HwgenError(f"cannot express Quant node '{node.name}' for onnxruntime (rounding mode {mode})")
            q = _qonnx_codes(w, np.asarray(scale, np.float64), np.asarray(zp, np.float64), lo, hi, mode)
            extra.append(numpy_helper.from_array(((q - zp) * scale).astype(np.float32), node.output[0]))
            continue
        dtype = np.int8 if signed else np.uint8
        clipped = bits > 8 or (lo, hi) != (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
        # QuantizeLinear: opset 10, per axis 13; Clip with bound inputs and Round: opset 11
        if bits > 24 or mode != "ROUND" or opset < (13 if scale.size > 1 else 11 if clipped else 10):
            raise HwgenError(f"cannot express Quant node '{node.name}' for onnxruntime")
        if bits > 8:
            nodes += _emulated_quant(node, scale, zp, lo, hi, extra)
            continue
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
        if not clipped:
            nodes.append(helper.make_node("DequantizeLinear", [mid, s_name, z_name], [node.output[0]],
                                          name=node.name + "_dq", axis=axis))
            continue
        # the clip bounds exactly as DequantizeLinear computes codes lo and hi: float32(q - zp) * float32(s)
        deq = node.output[0] + "_qdq_deq"
        nodes.append(helper.make_node("DequantizeLinear", [mid, s_name, z_name], [deq], name=node.name + "_dq", axis=axis))
        zp_i = np.asarray(zp, np.float64).astype(np.int64)
        s32 = np.asarray(scale, np.float32)
        bounds = [np.multiply((c - zp_i).astype(np.float32), s32, dtype=np.float32) for c in (lo, hi)]
        nodes += _clip(node, deq, node.output[0], bounds, extra)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(extra)
    keep = [o for o in model.opset_import if o.domain not in ("qonnx.custom_op.general",)]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    model.ir_version = min(model.ir_version, 10)
    return model


def _clip(node, src: str, dst: str, bounds: list[np.ndarray], extra: list) -> list:
    """Nodes clipping tensor `src` to [bounds[0], bounds[1]] into `dst`: one Clip (per tensor), or Max and Min
    with bounds shaped like the Quant's scale (per channel; they broadcast as QONNX broadcasts the scale)."""
    from onnx import helper, numpy_helper

    lo_name, hi_name = node.name + "_qdq_min", node.name + "_qdq_max"
    if all(b.size == 1 for b in bounds):
        extra += [numpy_helper.from_array(np.asarray(b, np.float32).reshape(()), n) for b, n in zip(bounds, (lo_name, hi_name))]
        return [helper.make_node("Clip", [src, lo_name, hi_name], [dst], name=node.name + "_clip")]
    extra += [numpy_helper.from_array(np.asarray(b, np.float32), n) for b, n in zip(bounds, (lo_name, hi_name))]
    low = dst + "_qdq_low"
    return [helper.make_node("Max", [src, lo_name], [low], name=node.name + "_clip_min"),
            helper.make_node("Min", [low, hi_name], [dst], name=node.name + "_clip_max")]


def _emulated_quant(node, scale, zp, lo: int, hi: int, extra: list) -> list:
    """A Quant of a computed tensor in float32 ops, computing what QuantizeLinear -> DequantizeLinear would:
    r = Round(x / s) (float32 division, ties to even), clipped to [lo - zp, hi - zp] (the codes' range, centred:
    exact in float32 up to 24 bits), times s (= float32(q - zp) * s)."""
    from onnx import helper, numpy_helper

    out = node.output[0]
    s_name = node.name + "_qdq_scale"
    extra.append(numpy_helper.from_array(np.asarray(scale, np.float32), s_name))
    zp_i = np.asarray(zp, np.float64).astype(np.int64)
    bounds = [np.asarray(c - zp_i, np.float32) for c in (lo, hi)]
    div, rnd, clipped = out + "_qdq_div", out + "_qdq_round", out + "_qdq_int"
    return [helper.make_node("Div", [node.input[0], s_name], [div], name=node.name + "_div"),
            helper.make_node("Round", [div], [rnd], name=node.name + "_round"),
            *_clip(node, rnd, clipped, bounds, extra),
            helper.make_node("Mul", [clipped, s_name], [out], name=node.name + "_mul")]
