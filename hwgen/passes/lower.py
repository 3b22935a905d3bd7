"""One-to-one lowering of ONNX ops to hardware ops through the op registry, numeric types for tensors
the model left untyped, and the final check that nothing unlowered remains."""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.errors import UnsupportedError
from hwgen.ir import Graph, Node, QType
from hwgen.ir.graph import walk
from hwgen.ops import BY_ONNX_TYPE, REGISTRY, get
from hwgen.passes.base import Pass
from hwgen.precision import Precision

# Left for composite passes (MoE routing); an error if they remain at the end.
DEFERRED = {"TopK", "ScatterElements", "ScatterND", "ArgMax"}


class LowerOnnxOps(Pass):
    name = "lower"
    fixed_point = False

    def apply(self, graph: Graph) -> bool:
        changed = False
        for node in list(graph.nodes):
            if not node.op.startswith("onnx."):
                continue
            op_type = node.op[5:]
            op = BY_ONNX_TYPE.get(op_type)
            if op is None:
                continue
            op.lower(graph, node)
            changed = True
        graph.remove_dead()
        return changed


class CheckLowered(Pass):
    name = "check-lowered"
    fixed_point = False

    def apply(self, graph: Graph) -> bool:
        for node in graph.nodes:
            if node.op.startswith("onnx."):
                op_type = node.op[5:]
                where = "only inside a MoE router (softmax -> TopK -> scatter)" if op_type in DEFERRED else "not supported"
                raise UnsupportedError(f"{op_type} is {where}; supported ONNX ops: {supported_ops()}",
                                       node=node.source[0] if node.source else node.name, op=op_type)
        for g, node in walk(graph):
            get(node.op).check(g, node)
        return False


def supported_ops() -> str:
    return ", ".join(sorted(set(BY_ONNX_TYPE) | {"QuantizeLinear", "DequantizeLinear", "Quant", "Constant",
                                                 "Shape (static)"}))


class AssignTypes(Pass):
    """Types for what the model did not quantise: float graph inputs get a quantize node, constants
    read by hardware ops are quantised to the weight/bias type, computed tensors get the precision
    configuration's type for their op (data movement keeps its input's type)."""

    name = "assign-types"
    fixed_point = False

    def __init__(self, precision: Precision) -> None:
        self.precision = precision

    def apply(self, graph: Graph) -> bool:
        for name in list(graph.inputs):
            t = graph.tensors[name]
            if t.qtype is None:
                t.qtype = QType.float32()
            if t.qtype.is_float and not any(n.op == "quantize" and n.inputs == [name] for n in graph.consumers(name)):
                q = graph.add_tensor(graph.unique_name(name + "_q"), t.shape, self.precision.input_type(), source=None)
                for c in graph.consumers(name):
                    c.inputs = [q.name if i == name else i for i in c.inputs]
                graph.add_node("quantize", [name], [q.name], name=f"quantize_{name}", index=0)
        for graph, node in list(walk(graph)):
            if node.op.startswith("onnx."):
                continue  # not lowered: CheckLowered reports it
            for i, name in enumerate(node.inputs):
                t = graph.tensors.get(name) if name else None
                if t is not None and t.is_const and (t.qtype is None):
                    role = "bias" if i in get(node.op).bias_inputs else "weight"
                    self._quantize_const(graph, node, t, role)
            get(node.op).infer_types(graph, node, lambda n: self.precision.type_for(n))
        return False

    def _quantize_const(self, graph: Graph, node: Node, t, role: str) -> None:
        qt = self.precision.type_for(node, role)
        data = np.asarray(t.data, dtype=np.float64)
        if not np.all(np.isfinite(data)):
            raise UnsupportedError(f"constant '{t.name}' holds NaN or infinity", node=node.source[0] if node.source else node.name,
                                   op=node.op)
        if data.size and float(np.max(np.abs(data))) * 2.0**qt.frac_bits >= 2.0**62:  # beyond int64 codes
            raise UnsupportedError(f"constant '{t.name}' holds values too large for {qt} (max |x| = "
                                   f"{float(np.max(np.abs(data))):.3g})", node=node.source[0] if node.source else node.name,
                                   op=node.op)
        from hwgen.ops.quantize import _round_float

        codes = _round_float(data * 2.0**qt.frac_bits, qt.rounding)
        t.data = numerics.overflow(codes, qt.bits, qt.signed, qt.overflow)
        t.qtype = qt


def registered_ops() -> list[str]:
    return sorted(REGISTRY)
