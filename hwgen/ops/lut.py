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

from hwgen import numerics, numerics_jit
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

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('linear', 'elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """A table per two lanes (dual-port), `lanes` elements per cycle:
          compute = ceil(elements/lanes) + depth
          lanes = elementwise.par, or, when fused into the write-out of the linear kernel that produces its
          input (GELU, as UbiMoE), the linear's output rate ceil(T_OUT*L / ceil(K/T_IN)) so it never stalls it
          table: 2^bits entries x out bits (exact, inputs <= 12 bits) or 2^10+1 entries x (out+8) bits plus one
          interpolation multiplier per lane; LUTROM when small, BRAM otherwise
        """
        import math

        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        facts = ctx.facts(node)
        if facts.get("fused_rate"):
            kn = ctx.knobs(node, "linear") if not ctx.unrolled else None
            k = facts["fused_k"]
            if kn is None:
                lanes = max(1, x.size // max(k, 1))
            else:
                lanes = max(1, math.ceil(min(kn.tile_out, x.shape[-1]) * kn.lanes / max(1, cm.ceil_div(k, kn.tile_in))))
        else:
            lanes = ctx.knobs(node, "elementwise").par
        in_bits, out_bits = cm.op_bits(x.qtype), cm.op_bits(y.qtype)
        exact = in_bits <= LUT_EXACT_BITS
        entries, width = (2 ** in_bits, out_bits) if exact else (2 ** LUT_INDEX_BITS + 1, out_bits + INTERP_FRAC)
        lane = cm.Resources(lut=2 * out_bits, ff=in_bits + out_bits)
        if not exact:
            lane += cm.Resources(dsp=cm.dsp_per_mult(width, in_bits - LUT_INDEX_BITS + 1, ctx.board), lut=2 * width)
        tables = cm.memory(width, entries, 1, ctx.design.memory.storage, ctx.board).scale(math.ceil(lanes / 2))
        elements = y.size * ctx.row_scale
        fused = bool(facts.get("fused_rate"))
        ins = [] if fused else [elements * in_bits / 8]
        outs = [] if fused else [elements * out_bits / 8]
        rows = elements / max(y.shape[-1] if y.shape else 1, 1)
        kernel = ctx.kernel("lut", node)
        return cm.elementwise(ctx, node, self.name, kernel, elements, lanes, lane, 4, rows, ins, outs, tables,
                              formula=f"ceil({elements:g}/{lanes}){' fused' if fused else ''}")

    # -- C++ kernel (templates/kernels/lut.h) -----------------------------------------------------------
    kernel_header = "lut.h"

    def schedule(self, graph: Graph, node: Node, design) -> int:
        """`parallel`: elementwise.par (the unrolled regime: 4), lowered to a divisor of the element count."""
        par = 4 if design.regime == "unrolled" else design.knobs_for(node.name, "elementwise").par
        return lut_parallel(graph.tensors[node.inputs[0]].size, par)

    def kernel_config(self, graph: Graph, node: Node, knobs=None, n_in: int | None = None) -> tuple[str, str]:
        """hwgen::lut<cfg>(x, y) with Lut.params' table; knobs = `parallel` (elements per cycle, a divisor of
        n_in); n_in: elements per call (default: the whole tensor of one sample)."""
        from hwgen.codegen.cpp import c_int, int_ctype, member_array, modes, struct

        p = self.params(graph, node)
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        n_in = x.size if n_in is None else n_in
        parallel = lut_parallel(n_in, knobs or 1)
        fields = (f"  typedef {x.qtype.c_type()} in_t;\n  typedef {y.qtype.c_type()} out_t;\n"
                  f"  typedef {int_ctype(p['table'])} table_t;\n"
                  f"  static const unsigned n_in = {n_in}, parallel = {parallel};\n"
                  f"  static const long long qmin = {c_int(p['qmin'])};\n"
                  f"  static const int shift = {p['shift']}, interp_frac = {INTERP_FRAC};\n"
                  f"  static const unsigned table_entries = {len(p['table'])};\n" + modes(y.qtype))
        return struct("cfg", fields, [member_array("cfg", "table_t", "table", p["table"])]), "hwgen::lut<cfg>(in0, out0);"

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        out = graph.tensors[node.outputs[0]].qtype
        if out.overflow is numerics.Overflow.SAT:  # compiled; the numpy below is the reference
            lo, hi = numerics.int_range(out.bits, out.signed)
            done = numerics_jit.lut_interp(np.asarray(inputs[0]), p["qmin"], p["table"], p["shift"], INTERP_FRAC,
                                           out.rounding, lo, hi, numerics.storage_dtype(lo, hi))
            if done is not None:
                if p["shift"] and stats is not None and node.outputs[0]:  # an exact table never saturates
                    stats.count(node.outputs[0], done[1], done[0].size)
                return [done[0]]
        idx = np.asarray(inputs[0], dtype=np.int64) - p["qmin"]
        if p["shift"] == 0:
            return [p["table"][idx]]
        i, f = idx >> p["shift"], idx & ((1 << p["shift"]) - 1)
        lo, hi = p["table"][i], p["table"][i + 1]
        y = lo + numerics.shift_round((hi - lo) * f, p["shift"], numerics.Rounding.TRN)
        y = numerics.shift_round(y, INTERP_FRAC, out.rounding)
        return [common.saturate(y, out, stats, node.outputs[0])]


def lut_parallel(n_in: int, par: int) -> int:
    """The largest divisor of n_in not above par (lut.h needs `parallel` to divide n_in)."""
    par = max(1, min(int(par), max(n_in, 1)))
    while n_in % par:
        par -= 1
    return par


def _quantize_real(real: np.ndarray, out: QType) -> np.ndarray:
    """Table entries: the function's values in the output type, rounded as a quantiser would."""
    if out.kind == "int":  # in range already; a narrow type (AP_SAT_SYM) maps the minimum to -max
        codes = numerics.quantize_linear(real, out.scale, out.zero_point, out.bits, out.signed)
        return numerics.overflow(codes, out.bits, out.signed, out.overflow)
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
            if fq is not None:  # (scale, zero point, bits, signed[, overflow mode]): the model's fake quantisation
                scale, zp, bits, signed = fq[:4]
                codes = numerics.quantize_linear(v, scale, zp, bits, signed)
                if len(fq) > 4:  # a narrow range (AP_SAT_SYM): the asymmetric minimum becomes -max
                    codes = numerics.overflow(codes, bits, signed, fq[4])
                v = numerics.dequantize_linear(codes, scale, zp)
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
