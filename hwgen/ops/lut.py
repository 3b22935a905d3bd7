"""lut: any elementwise function of one tensor, as a table indexed by the input code.

GELU (the Gelu op, its Erf form, its tanh approximation), sigmoid, tanh, ReLU and the like reach the
hardware as this op. The function is the ONNX subgraph itself, evaluated in float over every input code,
with the model's own intermediate quantisation steps applied, then quantised to the output type. For
inputs of at most LUT_EXACT_BITS bits the table holds every code (exact); wider inputs index by the top
bits and interpolate linearly between neighbouring entries."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwgen import numerics
from hwgen.ir import Graph, Node, QType
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register

LUT_EXACT_BITS = 12
LUT_INDEX_BITS = 10
INTERP_FRAC = 8

# ONNX elementwise ops a table may absorb (binary ones only with a constant or the same input).
ELEMENTWISE = {
    "Erf", "Tanh", "Sigmoid", "Exp", "Log", "Sqrt", "Relu", "LeakyRelu", "Elu", "Selu", "Gelu",
    "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish", "Neg", "Abs", "Clip", "Pow", "Add", "Sub",
    "Mul", "Div", "Reciprocal", "Celu", "ThresholdedRelu", "Sin", "Cos", "Floor", "Ceil", "Round", "Sign",
    "Max", "Min",
}
TRANSCENDENTAL = ELEMENTWISE - {"Add", "Sub", "Mul", "Div", "Neg", "Max", "Min"}


@register
class Lut(OpDef):
    name = "lut"
    onnx_types = tuple(sorted(TRANSCENDENTAL))

    def lower(self, graph: Graph, node: Node) -> None:
        region = {"nodes": [(node.op[5:], list(node.inputs), list(node.outputs), dict(node.attrs))],
                  "input": node.inputs[0], "output": node.outputs[0], "consts": {}, "fakequant": {}}
        for i in node.inputs[1:]:
            if i:
                if not graph.tensors[i].is_const:
                    raise self.unsupported(node, "elementwise op with two computed inputs")
                region["consts"][i] = _real_const(graph, i)
        node.op, node.inputs = self.name, node.inputs[:1]
        node.attrs = {"function": region["nodes"][0][0].lower(), "_region": region}

    def check(self, graph: Graph, node: Node) -> None:
        x = graph.tensors[node.inputs[0]].qtype
        if x.per_channel:
            raise self.unsupported(node, "per-channel input scales")
        if x.bits > 24:
            raise self.unsupported(node, f"a {x.bits}-bit input is too wide for a lookup table")

    def params(self, graph: Graph, node: Node) -> dict:
        cached = node.attrs.get("_params")
        if cached is not None:
            return cached
        x = graph.tensors[node.inputs[0]].qtype
        out = graph.tensors[node.outputs[0]].qtype
        shift = max(0, x.bits - LUT_EXACT_BITS) and x.bits - LUT_INDEX_BITS
        codes = np.arange(x.qmin, x.qmax + 2, 1 << shift, dtype=np.int64)  # one knot past the end
        real = evaluate_region(node.attrs["_region"], x.dequantize(codes).astype(np.float32))
        if shift == 0:
            table = _quantize_real(real, out)
        else:  # entries keep INTERP_FRAC extra bits for the interpolation
            table = np.rint(real.astype(np.float64) / float(out.scale) * 2.0**INTERP_FRAC).astype(np.int64)
            table = table + (int(out.zero_point) << INTERP_FRAC)
        params = {"table": table[:-1] if shift == 0 else table, "shift": shift, "qmin": x.qmin}
        node.attrs["_params"] = params
        return params

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        out = graph.tensors[node.outputs[0]].qtype
        idx = np.asarray(inputs[0], dtype=np.int64) - p["qmin"]
        if p["shift"] == 0:
            return [p["table"][idx]]
        i, f = idx >> p["shift"], idx & ((1 << p["shift"]) - 1)
        lo, hi = p["table"][i], p["table"][i + 1]
        y = lo + numerics.shift_round((hi - lo) * f, p["shift"], numerics.Rounding.TRN)
        y = numerics.shift_round(y, INTERP_FRAC, out.rounding)
        return [common.saturate(y, out, stats, node.outputs[0])]


def _quantize_real(real: np.ndarray, out: QType) -> np.ndarray:
    """Table entries: the function's values in the output type, rounded as a quantiser would."""
    if out.kind == "int":
        return numerics.quantize_linear(real, out.scale, out.zero_point, out.bits, out.signed)
    from hwgen.ops.quantize import _round_float

    codes = _round_float(real.astype(np.float64) * 2.0**out.frac_bits, out.rounding)
    return numerics.overflow(codes, out.bits, out.signed, out.overflow)


def _real_const(graph: Graph, name: str) -> np.ndarray:
    t = graph.tensors[name]
    if t.qtype is None or t.qtype.is_float:
        return np.asarray(t.data, dtype=np.float32)
    return t.qtype.dequantize(np.asarray(t.data), t.qtype.axis).astype(np.float32)


def evaluate_region(region: dict, x: np.ndarray) -> np.ndarray:
    """Run the region's ONNX nodes in float on `x` with onnxruntime (the reference's own float math),
    one node at a time so the model's internal fake quantisation can be applied between them."""
    values = dict(region["consts"])
    values[region["input"]] = np.asarray(x, dtype=np.float32)
    for op_type, ins, outs, attrs in region["nodes"]:
        res = _run_node(op_type, ins, outs, attrs, values)
        for o, v in zip(outs, res):
            v = np.asarray(v, dtype=np.float32)
            fq = region["fakequant"].get(o)
            if fq is not None:
                scale, zp, bits, signed = fq
                v = numerics.dequantize_linear(numerics.quantize_linear(v, scale, zp, bits, signed), scale, zp)
            values[o] = v
    return np.asarray(values[region["output"]], dtype=np.float32)


def _run_node(op_type: str, ins: list[str], outs: list[str], attrs: dict, values: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    names = {n: f"v{i}" for i, n in enumerate(dict.fromkeys([i for i in ins if i] + outs))}
    node = helper.make_node(op_type, [names[i] if i else "" for i in ins], [names[o] for o in outs], **attrs)
    inputs = [helper.make_tensor_value_info(names[i], onnx.TensorProto.FLOAT, list(np.shape(values[i])))
              for i in dict.fromkeys(i for i in ins if i)]
    outputs = [helper.make_tensor_value_info(names[o], onnx.TensorProto.FLOAT, None) for o in outs]
    model = helper.make_model(helper.make_graph([node], "region", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        return sess.run(None, {names[i]: np.asarray(values[i], dtype=np.float32) for i in dict.fromkeys(i for i in ins if i)})
    except Exception as exc:
        raise ValueError(f"cannot evaluate {op_type} for its lookup table: {str(exc).splitlines()[0][:160]}") from None
