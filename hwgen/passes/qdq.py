"""Turn quantisation nodes into numeric types on tensors.

QuantizeLinear -> DequantizeLinear pairs (onnxruntime QDQ) and QONNX Quant nodes are fake-quantisation:
they say "this tensor is an integer of these bits with this scale and zero point". We move that fact
onto the tensor and delete the nodes. A quantisation of a graph input (or of a tensor that is also
read in float) becomes an explicit `quantize` node.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from hwgen import numerics
from hwgen.errors import ModelError, UnsupportedError
from hwgen.ir import Graph, Node, QType
from hwgen.numerics import Overflow
from hwgen.passes.base import Pass

_INT_TYPES = {
    np.dtype(np.int8): (8, True), np.dtype(np.uint8): (8, False), np.dtype(np.int16): (16, True),
    np.dtype(np.uint16): (16, False), np.dtype(np.int32): (32, True),
}
_ONNX_INT = {TensorProto.INT8: (8, True), TensorProto.UINT8: (8, False), TensorProto.INT16: (16, True),
             TensorProto.UINT16: (16, False), TensorProto.INT32: (32, True), TensorProto.INT4: (4, True),
             TensorProto.UINT4: (4, False)}
MOVEMENT = {"onnx.Reshape", "onnx.Transpose", "onnx.Flatten", "onnx.Squeeze", "onnx.Unsqueeze",
            "onnx.Identity"}


def _err(node: Node, msg: str, cls=ModelError):
    return cls(msg, node=node.source[0] if node.source else node.name, op=node.op[5:])


def _scale_zp(graph: Graph, node: Node, scale_name: str, zp_name: str | None, out_dtype=None):
    scale = graph.const(scale_name)
    if scale is None:
        raise _err(node, "scale must be a constant", UnsupportedError)
    scale = np.asarray(scale, dtype=np.float64)
    if scale.size == 1:
        scale = scale.reshape(())
    _check_scale(node, scale)
    if scale.ndim > 1:
        raise _err(node, "blocked quantisation is not supported", UnsupportedError)
    zp = graph.const(zp_name) if zp_name else None
    if zp_name and zp is None:
        raise _err(node, "zero point must be a constant", UnsupportedError)
    if zp is None:
        bits, signed = _ONNX_INT.get(out_dtype, (8, False)) if out_dtype else (8, False)
        zp_arr = np.zeros((), dtype=np.int64)
    else:
        dt = np.asarray(zp).dtype
        if dt not in _INT_TYPES:
            raise _err(node, f"zero point has type {dt}; expected int8/uint8/int16/uint16/int32")
        bits, signed = _INT_TYPES[dt]
        zp_arr = np.asarray(zp, dtype=np.int64)
        if zp_arr.size == 1:
            zp_arr = zp_arr.reshape(())
        if zp_arr.ndim > 1 or (zp_arr.ndim == 1 and zp_arr.shape != scale.shape):
            raise _err(node, f"zero point of shape {list(zp_arr.shape)} does not match the scale's {list(scale.shape)}")
    return scale, zp_arr, bits, signed


SCALE_RANGE = (2.0**-60, 2.0**60)  # beyond it, requantisation multipliers and shifts leave int64


def _check_scale(node: Node, scale: np.ndarray) -> None:
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise _err(node, "scale must be finite and positive")
    if np.any(scale < SCALE_RANGE[0]) or np.any(scale > SCALE_RANGE[1]):
        raise _err(node, f"scale {float(scale.reshape(-1)[np.argmax(np.abs(np.log2(scale.reshape(-1))))]):.3g} is outside "
                         "the range hwgen's integer arithmetic supports (2^-60 to 2^60)", UnsupportedError)


def _axis(node: Node, rank: int, scale: np.ndarray, shape=None) -> int | None:
    """The per-channel axis (None for per-tensor), checked against the quantised tensor's shape."""
    if scale.ndim == 0:
        return None
    axis = int(node.attrs.get("axis", 1))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise _err(node, f"axis {node.attrs.get('axis', 1)} is out of range for a tensor of rank {rank}")
    if shape is not None and scale.size != int(shape[axis]):
        raise _err(node, f"{scale.size} per-channel scales for {int(shape[axis])} channels on axis {axis}")
    return axis


def _finite_const(node: Node, name: str, data) -> None:
    if not np.all(np.isfinite(np.asarray(data, dtype=np.float64))):
        raise _err(node, f"constant '{name}' holds NaN or infinity")


class AbsorbQDQ(Pass):
    name = "absorb-qdq"
    fixed_point = False

    def apply(self, graph: Graph) -> bool:
        changed = False
        outputs = list(graph.outputs)
        for q in list(graph.find("onnx.QuantizeLinear")):
            self._absorb_quantize(graph, q)
            changed = True
        for dq in list(graph.find("onnx.DequantizeLinear")):
            self._absorb_dequantize(graph, dq)
            changed = True
        for quant in list(graph.find("onnx.Quant")) + list(graph.find("onnx.IntQuant")):
            self._absorb_qonnx(graph, quant)
            changed = True
        for op in ("onnx.BipolarQuant", "onnx.Trunc", "onnx.MultiThreshold"):
            for n in graph.find(op):
                raise _err(n, "this QONNX op is not supported (Quant/IntQuant are)", UnsupportedError)
        graph.remove_dead()
        keep_output_names(graph, outputs)
        graph.toposort()
        return changed

    # -- QuantizeLinear (with its DequantizeLinear consumers) ------------------------------------
    def _absorb_quantize(self, graph: Graph, q: Node) -> None:
        if q.attrs.get("block_size", 0):
            raise _err(q, "blocked quantisation is not supported", UnsupportedError)
        x, y = q.inputs[0], q.outputs[0]
        scale, zp, bits, signed = _scale_zp(graph, q, q.inputs[1], q.inputs[2] if len(q.inputs) > 2 else None,
                                            q.attrs.get("output_dtype"))
        rank = len(graph.shape(x))
        qtype = QType.integer(bits, signed, scale, zp, _axis(q, rank, scale, graph.shape(x)))
        graph.remove_node(q)
        target = self._typed_tensor(graph, x, y, qtype, q)
        for dq in [n for n in graph.consumers(y) if n.op == "onnx.DequantizeLinear"]:
            dscale, dzp, _, _ = _scale_zp(graph, dq, dq.inputs[1], dq.inputs[2] if len(dq.inputs) > 2 else None)
            if dscale.shape != scale.shape or not np.allclose(dscale, scale, rtol=1e-6) or not np.array_equal(dzp, zp):
                raise _err(dq, "DequantizeLinear parameters differ from its QuantizeLinear", UnsupportedError)
            graph.remove_node(dq)
            graph.replace_uses(dq.outputs[0], target)
        graph.replace_uses(y, target)

    def _typed_tensor(self, graph: Graph, x: str, y: str, qtype: QType, q: Node) -> str:
        """Put `qtype` on x itself when nothing else reads x in float; else insert a quantize node."""
        xt = graph.tensors[x]
        if xt.is_const:
            _finite_const(q, x, xt.data)
            data = np.asarray(xt.data, dtype=np.float32)
            codes = numerics.quantize_linear(data, qtype.scale, qtype.zero_point, qtype.bits, qtype.signed,
                                             axis=qtype.axis)
            t = graph.add_const(y, codes.astype(np.int64), qtype, source=y)
            return t.name
        producer = graph.producer(x)
        others = [n for n in graph.consumers(x) if n.op != "onnx.QuantizeLinear"]
        mergeable = (producer is not None and xt.qtype is None and not others and x not in graph.outputs
                     and producer.op not in ("onnx.DequantizeLinear",))
        if mergeable:
            xt.qtype = qtype
            xt.source = y
            return x
        yt = graph.tensors[y]
        yt.qtype, yt.source = qtype, y
        idx = graph.nodes.index(producer) + 1 if producer is not None else 0
        graph.add_node("quantize", [x], [y], name=q.name, source=q.source, index=idx)
        return y

    # -- DequantizeLinear of constants (weights, biases) and of integer graph inputs -------------
    def _absorb_dequantize(self, graph: Graph, dq: Node) -> None:
        x, out = dq.inputs[0], dq.outputs[0]
        scale, zp, bits, signed = _scale_zp(graph, dq, dq.inputs[1], dq.inputs[2] if len(dq.inputs) > 2 else None)
        xt = graph.tensors[x]
        if xt.is_const:
            dt = np.asarray(xt.data).dtype
            if dt not in _INT_TYPES:
                raise _err(dq, f"dequantized constant has type {dt}")
            bits, signed = _INT_TYPES[dt]
            qtype = QType.integer(bits, signed, scale, zp, _axis(dq, xt.data.ndim, scale, xt.data.shape))
            graph.remove_node(dq)
            t = graph.add_const(out + "_q", np.asarray(xt.data, dtype=np.int64), qtype, source=x)
            graph.replace_uses(out, t.name)
            return
        if x in graph.inputs and xt.qtype is None:
            xt.qtype = QType.integer(bits, signed, scale, zp, _axis(dq, len(xt.shape), scale, xt.shape))
            graph.remove_node(dq)
            graph.replace_uses(out, x)
            return
        raise _err(dq, "DequantizeLinear of a computed tensor without a matching QuantizeLinear",
                   UnsupportedError)

    # -- QONNX Quant / IntQuant -------------------------------------------------------------------
    def _absorb_qonnx(self, graph: Graph, node: Node) -> None:
        x, out = node.inputs[0], node.outputs[0]
        scale = graph.const(node.inputs[1])
        zpt = graph.const(node.inputs[2])
        bitwidth = graph.const(node.inputs[3])
        if scale is None or zpt is None or bitwidth is None:
            raise _err(node, "scale, zero point and bit width must be constants", UnsupportedError)
        scale = np.asarray(scale, dtype=np.float64)
        bitwidth = np.asarray(bitwidth, dtype=np.float64).reshape(-1)
        if bitwidth.size != 1:
            raise _err(node, "bit width must be a scalar", UnsupportedError)
        bits = float(bitwidth[0])
        if not np.isfinite(bits) or bits != int(bits) or not 2 <= bits <= 32:
            raise _err(node, f"bit width {bits} is not an integer in [2, 32]", UnsupportedError)
        bits = int(bits)
        signed = bool(node.attrs.get("signed", 1))
        narrow = bool(node.attrs.get("narrow", 0))
        mode = node.attrs.get("rounding_mode", b"ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode.upper() not in ("ROUND", "ROUND_TO_ZERO", "FLOOR", "CEIL"):
            raise _err(node, f"rounding mode {mode} is not supported", UnsupportedError)
        _check_scale(node, scale)
        zp = np.asarray(zpt, dtype=np.float64)
        if not np.all(np.isfinite(zp)) or np.any(zp != np.round(zp)):
            raise _err(node, "non-integer zero points are not supported", UnsupportedError)
        lo, hi = numerics.int_range(int(bits), signed)
        if np.any(zp < lo) or np.any(zp > hi):
            raise _err(node, f"zero point outside the {int(bits)}-bit {'signed' if signed else 'unsigned'} range")
        xt = graph.tensors[x]
        if narrow and not signed and not xt.is_const:
            raise _err(node, f"narrow-range unsigned Quant of a computed tensor (codes 0 to {2**bits - 2}) is not "
                             "supported (signed narrow range is, and any narrow range on constants)", UnsupportedError)
        rank = len(graph.shape(x))
        scale_v, zp_v, axis = _qonnx_channel(scale, zp, rank, node)
        # narrow range (signed): codes in [-(2^(b-1)-1), 2^(b-1)-1], i.e. symmetric saturation (AP_SAT_SYM)
        qtype = QType.integer(bits, signed, scale_v, zp_v.astype(np.int64), axis,
                              overflow=Overflow.SAT_SYM if narrow and signed else Overflow.SAT)
        graph.remove_node(node)
        if xt.is_const:
            _finite_const(node, x, xt.data)
            lo, hi = numerics.int_range(bits, signed)
            lo, hi = (lo + 1, hi) if narrow and signed else (lo, hi - 1) if narrow else (lo, hi)  # QONNX min/max_int
            codes = _qonnx_codes(np.asarray(xt.data, dtype=np.float64), scale, zp, lo, hi, mode.upper())
            t = graph.add_const(out + "_q", codes, qtype, source=out)
            graph.replace_uses(out, t.name)
            return
        node.op = "onnx.QuantizeLinear"
        target = self._typed_tensor(graph, x, out, qtype, node)
        graph.replace_uses(out, target)


def _qonnx_channel(scale, zp, rank, node):
    if scale.size == 1 and zp.size == 1:
        return scale.reshape(()), zp.reshape(()), None
    shape = scale.shape if scale.size > 1 else zp.shape
    nontrivial = [i for i, d in enumerate(shape) if d > 1]
    if len(nontrivial) != 1:
        raise _err(node, "only per-tensor or per-channel (one axis) scales are supported", UnsupportedError)
    axis = nontrivial[0] + (rank - len(shape))
    return scale.reshape(-1), np.broadcast_to(zp.reshape(-1), scale.reshape(-1).shape) if zp.size == 1 else zp.reshape(-1), axis


def _qonnx_codes(x, scale, zp, lo: int, hi: int, mode: str) -> np.ndarray:
    v = x / scale + zp
    if mode == "ROUND":
        v = np.rint(v)
    elif mode == "ROUND_TO_ZERO":
        v = np.trunc(v)
    elif mode == "FLOOR":
        v = np.floor(v)
    else:
        v = np.ceil(v)
    return np.clip(v, lo, hi).astype(np.int64)


class HoistTypesThroughMovement(Pass):
    """A float tensor quantised only after a reshape/transpose: the producer can emit that type."""

    name = "hoist-types"

    def apply(self, graph: Graph) -> bool:
        changed = False
        for n in graph.nodes:
            if n.op not in MOVEMENT:
                continue
            src, dst = graph.tensors[n.inputs[0]], graph.tensors[n.outputs[0]]
            if dst.qtype is None or src.qtype is not None or src.is_const:
                continue
            producer = graph.producer(src.name)
            if producer is None or len(graph.consumers(src.name)) != 1 or src.name in graph.outputs:
                continue
            if dst.qtype.per_channel:
                continue
            src.qtype = dst.qtype
            changed = True
        return changed


def keep_output_names(graph: Graph, names: list[str]) -> None:
    """Give graph outputs back the names the model gave them (`names`, the outputs before a pass) when the pass
    made another tensor stand for one (a Quant's input carrying its type, say): the user's output names stay."""
    for old, new in zip(names, list(graph.outputs)):
        if old == new or old in graph.tensors or graph.outputs.count(new) != 1:
            continue
        t = graph.tensors[new]
        if new in graph.inputs or t.is_const or graph.producer(new) is None:
            continue
        graph.rename_tensor(new, old)


def bypass(graph: Graph, keep: str, drop: str) -> None:
    """Readers of tensor `drop` read `keep` instead (its producer is gone); when `drop` is a graph output,
    `keep` takes its name, so the model's output names stay."""
    if drop in graph.outputs and keep not in graph.outputs and keep not in graph.inputs:
        graph.tensors.pop(drop, None)
        graph.rename_tensor(keep, drop)
    else:
        graph.replace_uses(drop, keep)
