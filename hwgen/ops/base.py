"""What every hardware op declares, and the one registry that frontends, passes, the simulator,
the cost model and the code generator look ops up in (no op-specific branches anywhere else)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hwgen.errors import UnsupportedError

if TYPE_CHECKING:
    from hwgen.ir import Graph, Node


@dataclass
class SimStats:
    """Saturation counts per tensor, gathered while simulating."""

    saturations: dict[str, int] = field(default_factory=dict)
    elements: dict[str, int] = field(default_factory=dict)

    def count(self, tensor: str, n_saturated: int, n_total: int) -> None:
        self.saturations[tensor] = self.saturations.get(tensor, 0) + int(n_saturated)
        self.elements[tensor] = self.elements.get(tensor, 0) + int(n_total)


class OpDef:
    """One hardware op. Subclasses live one per module in hwgen/ops/ and register themselves."""

    name: ClassVar[str] = ""
    # ONNX op types this op lowers one-to-one (composite patterns are matched by passes instead).
    onnx_types: ClassVar[tuple[str, ...]] = ()
    # True for ops that only move or select data: they keep their input's numeric type.
    data_movement: ClassVar[bool] = False

    # -- frontend ---------------------------------------------------------------------------------
    def lower(self, graph: "Graph", node: "Node") -> None:
        """Rewrite the ONNX-level `node` (op 'onnx.<Type>') into this hardware op, in place."""
        node.op = self.name

    # -- types ------------------------------------------------------------------------------------
    def infer_types(self, graph: "Graph", node: "Node", default) -> None:
        """Give untyped outputs a type: data movement keeps the input's, others take `default`."""
        for o in node.outputs:
            t = graph.tensors[o]
            if t.qtype is None:
                if self.data_movement:
                    t.qtype = graph.tensors[node.inputs[0]].qtype
                else:
                    t.qtype = default(node)

    def check(self, graph: "Graph", node: "Node") -> None:
        """Raise UnsupportedError when the lowered node uses something this op cannot do."""

    # -- simulation -------------------------------------------------------------------------------
    def simulate(self, graph: "Graph", node: "Node", inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        """Bit-accurate outputs (integer codes) for a batch: each array has one leading batch axis."""
        raise NotImplementedError(f"{self.name}: no simulation")

    def unsupported(self, node: "Node", message: str) -> UnsupportedError:
        onnx_op = node.op[5:] if node.op.startswith("onnx.") else node.op
        return UnsupportedError(message, node=node.source[0] if node.source else node.name, op=onnx_op)


REGISTRY: dict[str, OpDef] = {}
BY_ONNX_TYPE: dict[str, OpDef] = {}


def register(cls: type[OpDef]) -> type[OpDef]:
    op = cls()
    if not op.name or op.name in REGISTRY:
        raise ValueError(f"bad or duplicate op name {op.name!r}")
    REGISTRY[op.name] = op
    for t in cls.onnx_types:
        BY_ONNX_TYPE[t] = op
    return cls


def get(name: str) -> OpDef:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnsupportedError(f"no hardware op named {name!r}") from None


def batch_axis(axis: int, rank: int) -> int:
    """Map an axis of the model's tensor to the simulator's array (one extra leading batch axis)."""
    if axis < 0:
        axis += rank
    return axis + 1
