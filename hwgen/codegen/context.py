"""What op modules use to emit C++: unique sanitised names, config structs, on-chip constant arrays and
off-chip weight blobs. Python emits only constants, typedefs and calls; arithmetic lives in the kernels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwgen.codegen import cpp
from hwgen.codegen.cpp import c_int
from hwgen.design import Design
from hwgen.ir import Graph, QType, sanitize


def int_ctype(values, min_bits: int = 2) -> str:
    """Smallest ap_int that holds every value (at least min_bits)."""
    return cpp.int_ctype(values, min_bits=min_bits)


@dataclass
class Blob:
    """An off-chip memory region of one element type (bound to one m_axi port)."""

    ctype: str
    storage: str  # numpy dtype used in the .bin file
    port: str
    chunks: list = field(default_factory=list)
    size: int = 0


class EmitContext:
    def __init__(self, graph: Graph, design: Design) -> None:
        self.graph = graph
        self.design = design
        self.decls: list[str] = []       # namespace-scope C++: typedefs, config structs, const arrays
        self.body: list[str] = []        # statements of the top function
        self.buffers: list[str] = []     # activation buffers of the top function
        self.names: dict[str, str] = {}  # tensor name -> C identifier
        self.used: set[str] = set()
        self.headers: set[str] = set()
        self.blobs: dict[str, Blob] = {}
        self.counter = 0
        self.kernel_calls: list[dict] = []
        self._shared: dict[str, str] = {}  # shared declaration text -> its name (EmitContext.shared)

    # -- names ------------------------------------------------------------------------------------
    def ident(self, base: str, prefix: str = "t") -> str:
        name = sanitize(base, prefix)
        cand, i = name, 1
        while cand in self.used:
            cand = f"{name}_{i}"
            i += 1
        self.used.add(cand)
        return cand

    def tensor(self, name: str) -> str:
        """The C identifier of a tensor's buffer (declared on first use)."""
        if name not in self.names:
            t = self.graph.tensors[name]
            ident = self.ident(f"{'c' if t.is_const else 't'}_{name}")
            self.names[name] = ident
            if t.is_const:
                self.names[name] = self.array(ident, np.asarray(t.data).reshape(-1), t.qtype.c_type(), named=True)
                return self.names[name]
            else:
                self.buffers.append(f"static {t.qtype.c_type()} {ident}[{max(t.size, 1)}];")
        return self.names[name]

    def alias(self, name: str, of: str) -> None:
        """`name` is a view of `of` (a reshape): no copy, the same buffer."""
        self.names[name] = self.tensor(of)

    def config_name(self, node_name: str) -> str:
        self.counter += 1
        return self.ident(f"cfg{self.counter}_{node_name}", "cfg")

    # -- constants --------------------------------------------------------------------------------
    def array(self, name: str, values, ctype: str, named: bool = False) -> str:
        ident = name if named else self.ident(name, "k")
        vals = np.asarray(values).reshape(-1)
        if ctype.startswith("ap_fixed") or ctype.startswith("ap_ufixed"):
            body = ", ".join(f"hwgen::from_raw<{ctype} >({c_int(v)})" for v in vals) if vals.size else "0"
            self.decls.append(f"static const {ctype} {ident}[{max(vals.size, 1)}] = {{{body}}};")
        else:
            body = _wrap(", ".join(c_int(v) for v in vals)) if vals.size else "0"
            self.decls.append(f"static const {ctype} {ident}[{max(vals.size, 1)}] = {{{body}}};")
        return f"hwgen_cfg::{ident}"

    def weights(self, name: str, values, ctype: str) -> str:
        """Large weights: off-chip in the streaming regime (m_axi blob + offset), on chip otherwise."""
        if not self.design.weights_offchip or self.design.regime == "unrolled":
            return self.array(name, values, ctype)
        vals = np.asarray(values, dtype=np.int64).reshape(-1)
        blob = self.blobs.get(ctype)
        if blob is None:
            bits = int(ctype.split("<")[1].split(">")[0].split(",")[0])
            storage = "int8" if bits <= 8 else "int16" if bits <= 16 else "int32" if bits <= 32 else "int64"
            blob = Blob(ctype, storage, f"wmem{len(self.blobs)}")
            self.blobs[ctype] = blob
        offset = blob.size
        blob.chunks.append(vals)
        blob.size += vals.size
        return f"({blob.port} + {offset})"

    def config(self, node_name: str, fields: list[str]) -> str:
        """Declare `struct cfgN_<node> { fields };` and return its name."""
        name = self.config_name(node_name)
        self.decls.append(f"struct {name} {{\n" + "\n".join(f"  {f}" for f in fields) + "\n};")
        return name

    def call(self, line: str, node=None) -> None:
        if node is not None:
            self.body.append(f"// {node.op} {sanitize(node.name, 'n')}")
        self.body.append(line)

    def include(self, header: str) -> None:
        self.headers.add(header)

    def shared(self, base: str, make) -> str:
        """A namespace-scope declaration shared by several nodes (e.g. a table every LayerNorm uses), emitted
        once per project: `make(name)` spells it under a unique name; returns "hwgen_cfg::<name>". The key is
        the text itself, so equal declarations are emitted once and different ones get their own names."""
        text = make("@NAME@")
        if text not in self._shared:
            name = self.ident(base, "s")
            self.decls.append(text.replace("@NAME@", name))
            self._shared[text] = name
        return f"hwgen_cfg::{self._shared[text]}"


def _wrap(text: str, width: int = 110) -> str:
    out, line = [], ""
    for item in text.split(", "):
        if len(line) + len(item) > width:
            out.append(line)
            line = ""
        line += item + ", "
    out.append(line)
    return "\n    ".join(l.rstrip() for l in out).rstrip(", ")


def qtype_fields(prefix: str, qt: QType) -> list[str]:
    return [f"typedef {qt.c_type()} {prefix}_t;"]
