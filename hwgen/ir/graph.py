"""A small printable graph of hardware ops, in the spirit of torch.fx.

Shapes are the model's own static shapes (its batch of 1 included); the simulator adds one more
leading axis for the images it runs at once. Names are unique; nodes are kept in topological order;
`lint()` checks both and that every tensor has a type. Run it after every pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from hwgen.errors import HwgenError
from hwgen.ir.types import QType


@dataclass(eq=False)
class Tensor:
    name: str
    shape: tuple[int, ...]
    qtype: QType | None = None
    data: np.ndarray | None = None  # integer codes (or float32 for float constants)
    source: str | None = None  # the ONNX tensor holding the reference value, for per-layer checks

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(eq=False)
class Node:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)
    source: list[str] = field(default_factory=list)  # ONNX nodes this node stands for

    def __str__(self) -> str:
        attrs = ", ".join(f"{k}={_short(v)}" for k, v in self.attrs.items() if not k.startswith("_"))
        ins = ", ".join(f"%{i}" if i else "None" for i in self.inputs)
        outs = ", ".join(f"%{o}" for o in self.outputs)
        return f"{outs} = {self.op}({ins}{', ' if attrs and ins else ''}{attrs})"


class Graph:
    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.meta: dict = {}

    # ---- building -----------------------------------------------------------------------------
    def add_tensor(self, name: str, shape: Iterable[int], qtype: QType | None = None,
                   data: np.ndarray | None = None, source: str | None = None) -> Tensor:
        if name in self.tensors:
            raise ValueError(f"tensor {name!r} already exists")
        t = Tensor(name, tuple(int(d) for d in shape), qtype, data, source)
        self.tensors[name] = t
        return t

    def add_const(self, name: str, data: np.ndarray, qtype: QType | None, source: str | None = None) -> Tensor:
        return self.add_tensor(self.unique_name(name), np.shape(data), qtype, np.asarray(data), source)

    def add_node(self, op: str, inputs: list[str], outputs: list[str], name: str | None = None,
                 attrs: dict | None = None, source: list[str] | None = None, index: int | None = None) -> Node:
        node = Node(self.unique_node_name(name or op), op, list(inputs), list(outputs), dict(attrs or {}),
                    list(source or []))
        if index is None:
            self.nodes.append(node)
        else:
            self.nodes.insert(index, node)
        return node

    def unique_name(self, base: str) -> str:
        if base not in self.tensors:
            return base
        i = 1
        while f"{base}_{i}" in self.tensors:
            i += 1
        return f"{base}_{i}"

    def unique_node_name(self, base: str) -> str:
        names = {n.name for n in self.nodes}
        if base not in names:
            return base
        i = 1
        while f"{base}_{i}" in names:
            i += 1
        return f"{base}_{i}"

    # ---- queries ------------------------------------------------------------------------------
    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def find(self, op: str) -> Iterator[Node]:
        return (n for n in list(self.nodes) if n.op == op)

    def const(self, name: str | None) -> np.ndarray | None:
        if not name:
            return None
        t = self.tensors.get(name)
        return None if t is None else t.data

    def shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name].shape

    def qtype(self, name: str) -> QType:
        return self.tensors[name].qtype

    # ---- mutation -----------------------------------------------------------------------------
    def remove_node(self, node: Node) -> None:
        self.nodes.remove(node)

    def replace_uses(self, old: str, new: str) -> None:
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def rename_tensor(self, old: str, new: str) -> None:
        """Give tensor `old` the name `new` everywhere (producer, readers, graph inputs/outputs). `new` must be
        free: no tensor of that name, or only one that no node, input or output mentions any more."""
        if old == new:
            return
        if new in self.tensors:
            if new in self.inputs or new in self.outputs or any(new in n.inputs or new in n.outputs for n in self.nodes):
                raise ValueError(f"cannot rename {old!r} to {new!r}: that name is in use")
            del self.tensors[new]
        t = self.tensors.pop(old)
        t.name = new
        self.tensors[new] = t
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
            n.outputs = [new if o == old else o for o in n.outputs]
        self.inputs = [new if i == old else i for i in self.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_dead(self) -> bool:
        """Drop nodes whose outputs nobody reads and tensors nobody mentions."""
        changed = False
        while True:
            used = set(self.outputs)
            for n in self.nodes:
                used.update(i for i in n.inputs if i)
            dead = [n for n in self.nodes if not any(o in used for o in n.outputs)]
            if not dead:
                break
            for n in dead:
                self.nodes.remove(n)
            changed = True
        mentioned = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            mentioned.update(n.inputs)
            mentioned.update(n.outputs)
        for name in [t for t in self.tensors if t not in mentioned]:
            del self.tensors[name]
        return changed

    def toposort(self) -> None:
        ready = set(self.inputs) | {t.name for t in self.tensors.values() if t.is_const}
        pending, ordered = list(self.nodes), []
        while pending:
            progress = False
            for n in list(pending):
                if all((not i) or i in ready for i in n.inputs):
                    ordered.append(n)
                    ready.update(n.outputs)
                    pending.remove(n)
                    progress = True
            if not progress:
                bad = pending[0]
                raise HwgenError("graph has a cycle or a dangling input", node=bad.name, op=bad.op)
        self.nodes = ordered

    # ---- checking and printing ----------------------------------------------------------------
    def lint(self, require_types: bool = True) -> None:
        """Topological order, unique names, known tensors, a type on every tensor."""
        seen = set(self.inputs) | {t.name for t in self.tensors.values() if t.is_const}
        names = set()
        for n in self.nodes:
            if n.name in names:
                raise AssertionError(f"duplicate node name {n.name!r}")
            names.add(n.name)
            for i in n.inputs:
                if i and i not in seen:
                    raise AssertionError(f"node {n.name!r} reads {i!r} before it is produced")
                if i and i not in self.tensors:
                    raise AssertionError(f"node {n.name!r} reads unknown tensor {i!r}")
            for o in n.outputs:
                if o in seen:
                    raise AssertionError(f"tensor {o!r} produced twice (node {n.name!r})")
                if o not in self.tensors:
                    raise AssertionError(f"node {n.name!r} writes unknown tensor {o!r}")
                seen.add(o)
        for o in self.outputs:
            if o not in seen:
                raise AssertionError(f"graph output {o!r} is never produced")
        if require_types:
            for t in self.tensors.values():
                if t.qtype is None:
                    raise AssertionError(f"tensor {t.name!r} has no numeric type")

    def __str__(self) -> str:
        lines = [f"graph {self.name}("]
        for i in self.inputs:
            t = self.tensors[i]
            lines.append(f"    %{i}: {t.qtype} {list(t.shape)}")
        lines.append("):")
        lines += self._body_lines("  ")
        lines.append("  return " + ", ".join(f"%{o}" for o in self.outputs))
        return "\n".join(lines)

    def _body_lines(self, indent: str) -> list[str]:
        lines = []
        for n in self.nodes:
            outs = "; ".join(f"{self.tensors[o].qtype} {list(self.tensors[o].shape)}" for o in n.outputs)
            lines.append(f"{indent}{n}  # {outs}")
            for sg in subgraphs(n):
                lines.append(f"{indent}    [{sg.name}: %{', %'.join(sg.inputs)} -> %{', %'.join(sg.outputs)}]")
                lines += sg._body_lines(indent + "      ")
        return lines

    def summary(self) -> dict:
        """Op counts and parameters, subgraphs (MoE gate and experts) included."""
        ops: dict[str, int] = {}
        consts: dict[str, int] = {}
        for g, n in walk(self):
            ops[n.op] = ops.get(n.op, 0) + 1
            for i in n.inputs:
                t = g.tensors.get(i) if i else None
                if t is not None and t.is_const:
                    consts[t.name] = t.size
        return {"nodes": sum(ops.values()), "ops": ops, "parameters": int(sum(consts.values()))}


_IDENT = re.compile(r"[^A-Za-z0-9_]")


def sanitize(name: str, prefix: str = "t") -> str:
    """A C/C++/TCL/file-safe identifier derived from an ONNX name (never trusted as-is)."""
    ident = _IDENT.sub("_", name.encode("ascii", "replace").decode("ascii"))
    ident = re.sub(r"_+", "_", ident).strip("_")[:48]
    if not ident or not ident[0].isalpha():
        ident = f"{prefix}_{ident}" if ident else prefix
    return ident


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array{list(value.shape)}" if value.size > 6 else np.array2string(value, separator=",")
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"[{len(value)} items]"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Graph):
        return f"<subgraph {len(value.nodes)} nodes>"
    return str(value)


def subgraphs(node: Node) -> list["Graph"]:
    """Graphs held by a node (a MoE op keeps its gate and experts as subgraphs)."""
    found = []
    for key, value in node.attrs.items():
        if isinstance(value, Graph):
            found.append(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Graph) for v in value):
            found.extend(value)
    return found


def walk(graph: Graph):
    """Every (graph, node) pair, nested subgraphs included, in order."""
    for node in graph.nodes:
        yield graph, node
        for sg in subgraphs(node):
            yield from walk(sg)
