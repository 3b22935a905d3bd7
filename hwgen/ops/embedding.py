"""embedding: a lookup table read by integer ids (BERT's token embedding: ONNX Gather whose data is a
constant [vocab, dim] table and whose indices come from an integer graph input).

The table is held in the output's type: when the model quantised the table with another type (a float
model's weight type), it is requantised once, exactly as ops/quantize.py would convert each looked-up
element, and the hardware ROM stores the result. Ids outside [0, vocab) are an error in the simulator (ONNX
Gather rejects them too); the C++ kernel clamps them to the last row so a bad id never reads outside the ROM.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from hwgen.errors import HwgenError
from hwgen.ir import Graph, Node, QType
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register

# Integer ONNX element types an id input may have (TensorProto: INT8..UINT64).
ID_ELEM_TYPES = {2, 3, 4, 5, 6, 7, 12, 13}


def id_type(vocab: int) -> QType:
    """Ids as unsigned integers just wide enough for `vocab` rows (scale 1: the code is the id)."""
    return QType.integer(max(1, math.ceil(math.log2(max(vocab, 2)))), False, 1.0, 0)


@register
class Embedding(OpDef):
    name = "embedding"

    def lower(self, graph: Graph, node: Node) -> None:
        """Gather(table, ids) -> embedding(ids, table); called by movement's Gather for non-constant ids."""
        table, ids = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
        axis = int(node.attrs.get("axis", 0))
        if not table.is_const or len(table.shape) != 2 or axis not in (0, -2):
            raise self.unsupported(node, "Gather with non-constant indices is only supported as an embedding "
                                         "lookup: a constant 2-D table, axis 0")
        elem = graph.meta.get("input_elem_type", {}).get(ids.name)
        if ids.name not in graph.inputs or elem not in ID_ELEM_TYPES:
            raise self.unsupported(node, "embedding ids must be an integer graph input (token ids)")
        if ids.qtype is not None and not ids.qtype.same_as(id_type(table.shape[0])):
            raise self.unsupported(node, "embedding ids must not be quantised")
        if any(n is not node and n.op not in ("onnx.Gather", self.name) for n in graph.consumers(ids.name)):
            raise self.unsupported(node, "an integer graph input may only feed embedding lookups")
        qt = table.qtype
        if qt is not None and qt.per_channel and qt.axis not in (1, -1):
            raise self.unsupported(node, "per-row table scales (only per-column scales are supported)")
        ids.qtype = id_type(table.shape[0])
        graph.meta.setdefault("id_limits", {})[ids.name] = int(table.shape[0]) - 1
        node.op, node.inputs = self.name, [ids.name, table.name]
        node.attrs = {"vocab": int(table.shape[0]), "dim": int(table.shape[1])}

    def check(self, graph: Graph, node: Node) -> None:
        out = graph.tensors[node.outputs[0]].qtype
        if out.is_float or out.per_channel:
            raise self.unsupported(node, "the embedding output needs one integer or fixed-point type")

    def params(self, graph: Graph, node: Node) -> dict:
        """The table in the output's type, and how many elements of each row saturated on the way."""
        t, out = graph.tensors[node.inputs[1]], graph.tensors[node.outputs[0]].qtype
        codes = np.asarray(t.data, dtype=np.int64)
        if t.qtype.same_as(out):
            return {"table": codes, "row_saturations": np.zeros(len(codes), dtype=np.int64)}
        centred = common.centered(codes, t.qtype, axis=1)
        table = common.to_type(centred, t.qtype.scale, out)
        extra = max(0, min(24, 62 - out.bits))  # the same grid, wide enough that nothing clips (int64 codes)
        wide = dataclasses.replace(out, bits=out.bits + extra,
                                   int_bits=None if out.int_bits is None else out.int_bits + extra)
        unsaturated = common.to_type(centred, t.qtype.scale, wide)
        return {"table": table, "row_saturations": np.sum(table != unsaturated, axis=1)}

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        ids = np.asarray(inputs[0], dtype=np.int64)
        p = self.params(graph, node)
        vocab = node.attrs["vocab"]
        bad = (ids < 0) | (ids >= vocab)
        if np.any(bad):
            raise HwgenError(f"token id {int(ids[bad][0])} is outside the table's {vocab} rows",
                             node=node.source[0] if node.source else node.name, op="Gather", tensor=node.inputs[0])
        stats.count(node.outputs[0], int(p["row_saturations"][ids].sum()), ids.size * node.attrs["dim"])
        return [p["table"][ids]]

    # -- C++ kernel (templates/kernels/embedding.h) ------------------------------------------------
    kernel_header = "embedding.h"

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::embedding<cfg>(ids, table, out): one table row copied per id, one element per cycle."""
        from hwgen.codegen.cpp import c_array

        ids, out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        decls = (f"struct cfg {{\n  typedef {ids.qtype.c_type()} id_t;\n  typedef {out.qtype.c_type()} out_t;\n"
                 f"  static const int n_ids = {ids.size}, vocab = {node.attrs['vocab']}, dim = {node.attrs['dim']};\n"
                 f"}};\n" + c_array("table", self.params(graph, node)["table"], out.qtype))
        return decls, "hwgen::embedding<cfg>(in0, table, out0);"

    cost_groups = ("elementwise", "memory")

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """A ROM of vocab x dim words of the output type, read one row per id:
          compute = ids * dim / PAR + depth, PAR = elementwise.par (the ROM is split into PAR banks)."""
        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        out = graph.tensors[node.outputs[0]]
        par = max(1, min(ctx.knobs(node, "elementwise").par, node.attrs["dim"]))
        bits = cm.op_bits(out.qtype)
        rom = cm.memory(bits, math.ceil(node.attrs["vocab"] * node.attrs["dim"] / par), par,
                        ctx.design.memory.storage, ctx.board)
        elements = out.size * ctx.row_scale
        ins = [graph.tensors[node.inputs[0]].size * ctx.row_scale * cm.op_bits(graph.tensors[node.inputs[0]].qtype) / 8]
        lane = cm.Resources(lut=bits, ff=bits)
        return cm.elementwise(ctx, node, self.name, ctx.kernel("embedding", node), elements, par, lane, 3,
                              graph.tensors[node.inputs[0]].size, ins, [elements * bits / 8], rom,
                              formula=f"row copies ceil({elements:g}/{par})")
