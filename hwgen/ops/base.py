"""What every hardware op declares, and the one registry that frontends, passes, the simulator,
the cost model and the code generator look ops up in (no op-specific branches anywhere else)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from hwgen.errors import HwgenError, UnsupportedError

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

    def merge(self, other: "SimStats") -> None:
        for tensor, n in other.elements.items():
            self.count(tensor, other.saturations.get(tensor, 0), n)


class OpDef:
    """One hardware op. Subclasses live one per module in hwgen/ops/ and register themselves."""

    name: ClassVar[str] = ""
    # ONNX op types this op lowers one-to-one (composite patterns are matched by passes instead).
    onnx_types: ClassVar[tuple[str, ...]] = ()
    # True for ops that only move or select data: they keep their input's numeric type.
    data_movement: ClassVar[bool] = False
    # Constant inputs that are biases (quantised to the precision config's bias type in float models).
    bias_inputs: ClassVar[tuple[int, ...]] = ()
    # Reads an integer input of any width exactly, only to requantise it (QONNX exact types may feed it).
    requantises_inputs: ClassVar[bool] = False
    # A data-movement op whose readers see its input's exact type unchanged (False: it converts types itself).
    forwards_exact_types: ClassVar[bool] = True

    # -- frontend ---------------------------------------------------------------------------------
    def exact_output_type(self, graph: "Graph", node: "Node"):
        """An exact integer QType for an output a QONNX graph leaves in float (products and sums of quantised
        tensors; hwgen/passes/exact.py), or None when this op has none."""
        return None

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

    # -- code generation --------------------------------------------------------------------------
    # The header in templates/kernels/ that kernel_config's call uses (None: the op has no C++ kernel).
    kernel_header: ClassVar[str | None] = None

    def kernel_config(self, graph: "Graph", node: "Node", knobs=None) -> tuple[str, str]:
        """(decls, call): the op's C++ kernel for one sample (hls4ml style, see ARCHITECTURE.md).

        decls  namespace-scope C++: `struct cfg` (constants and typedefs) and constant arrays, including
               the node's constant inputs; it is placed in a namespace of its own, so names may repeat
               between nodes.
        call   statement(s) running the kernel: they read `in0`, `in1`, ... (the node's non-constant inputs,
               in order) and write `out0`, `out1`, ... (its outputs); the code generator substitutes the
               tensors' buffers, the kernel tests their own arrays.
        knobs  the op's schedule (see `schedule`); None for its default."""
        raise NotImplementedError(f"{self.name}: no C++ kernel")

    def schedule(self, graph: "Graph", node: "Node", design) -> object:
        """The knobs `kernel_config` takes under `design` (hwgen.design.Design); None when it has none."""
        return None

    def emit_config(self, graph: "Graph", node: "Node", ctx) -> tuple[str, str]:
        """(decls, call) for the project: kernel_config under ctx.design. Ops whose arrays go elsewhere in
        the project (e.g. off-chip weights through ctx.weights) override this, not `emit`."""
        return self.kernel_config(graph, node, self.schedule(graph, node, ctx.design))

    def emit(self, graph: "Graph", node: "Node", ctx) -> None:
        """Emit the node into the project (hwgen.codegen.context.EmitContext): its decls in a namespace of
        their own inside hwgen_cfg, its kernel header, and a block in the top function calling the kernel
        on the node's buffers."""
        try:
            decls, call = self.emit_config(graph, node, ctx)
        except NotImplementedError:
            raise HwgenError(f"no C++ kernel for op '{node.op}' yet", node=node.name, op=node.op) from None
        except ValueError as exc:  # a configuration the kernel cannot express (e.g. a broadcast pattern)
            raise self.unsupported(node, f"C++ kernel: {exc}") from None
        emit_kernel(graph, node, ctx, decls, call, self.kernel_header)

    # -- cost model -------------------------------------------------------------------------------
    # Design knob groups the cost reads (besides regime and weights_offchip); None: all of them. Lets the
    # estimator reuse a node's cost across designs that differ only in other groups.
    cost_groups: ClassVar[tuple | None] = None

    def cost(self, graph: "Graph", node: "Node", design, board, ctx=None):
        """Cycles and resources of `node` under a Design on a board (a hwgen.cost.model.Cost); the formulas
        live in the op's own module. `ctx` (hwgen.cost.model.CostContext) carries what the graph analysis
        found and, inside a MoE, the fraction of rows an expert sees."""
        raise NotImplementedError(f"{self.name}: no cost model")

    def unsupported(self, node: "Node", message: str) -> UnsupportedError:
        onnx_op = node.op[5:] if node.op.startswith("onnx.") else node.op
        return UnsupportedError(message, node=node.source[0] if node.source else node.name, op=onnx_op)


_PLACEHOLDER = re.compile(r"\b(in|out)(\d+)\b")


def emit_kernel(graph: "Graph", node: "Node", ctx, decls: str, call: str, header: str | None) -> None:
    """Place a kernel_config's (decls, call) in the project: decls inside `namespace <ns>` (rendered in
    hwgen_cfg), the call in a block `{ using namespace hwgen_cfg::<ns>; ... }` of the top function with the
    placeholders in<k> / out<k> replaced by the buffers of the k-th non-constant input / k-th output."""
    ns = ctx.ident(f"{node.op}_{node.name}", "n")
    ctx.decls.append(f"namespace {ns} {{\n{decls.rstrip()}\n}}  // namespace {ns}")
    if header:
        ctx.include(header)
    ins = [i for i in node.inputs if i and not graph.tensors[i].is_const]
    outs = list(node.outputs)

    def buffer(m: re.Match) -> str:
        names = ins if m.group(1) == "in" else outs
        k = int(m.group(2))
        if k >= len(names):
            raise HwgenError(f"kernel call names {m.group(0)} but the node has {len(names)} "
                             f"{'non-constant inputs' if m.group(1) == 'in' else 'outputs'}", node=node.name,
                             op=node.op)
        return ctx.tensor(names[k])

    body = _PLACEHOLDER.sub(buffer, call.strip())
    ctx.call("{", node)
    ctx.body.append(f"  using namespace hwgen_cfg::{ns};")
    ctx.body.extend(f"  {line.strip()}" for line in body.splitlines() if line.strip())
    ctx.body.append("}")


REGISTRY: dict[str, OpDef] = {}
BY_ONNX_TYPE: dict[str, OpDef] = {}


def _memoized_params(fn):
    """An op's integer parameters depend only on the lowered node and its tensors' types, which are
    fixed once lowering is done: compute them once per node (the simulator calls them every batch)."""

    def params(self, graph, node):
        cached = node.attrs.get("_params_cache")
        if cached is None:
            cached = node.attrs["_params_cache"] = fn(self, graph, node)
        return cached

    params.__doc__ = fn.__doc__
    params.__wrapped__ = fn
    return params


def register(cls: type[OpDef]) -> type[OpDef]:
    if "params" in cls.__dict__:
        cls.params = _memoized_params(cls.__dict__["params"])
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
