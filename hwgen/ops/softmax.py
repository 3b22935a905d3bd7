"""softmax over the last axis, "safe" form in integers.

d = row_max - q; e = EXP[d] (table of e^(-d*s_in), 17 fraction bits); sum e exactly; one reciprocal
per row, recip = floor(2**R / sum) (an integer divider: a fixed number of iterations in hardware);
p = (e * recip) >> (R - 24) gives the probability with 24 fraction bits, then requantised to the output
type. The streaming attention kernel keeps this order of operations."""

from __future__ import annotations

import numpy as np

from hwgen import numerics, numerics_jit, tables
from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, get, register

# Fraction bits of a probability before its requantisation: 12 beyond an 8-bit output's LSB, 4 beyond a 16-bit
# one's, and small enough that prob * m0 (31-bit multiplier) stays below 2**53 minus the rounding room, so the
# simulator requantises it exactly in float64 (numerics.Rescale), and the hardware's product is 51 bits.
PROB_FRAC = 20


@register
class Softmax(OpDef):
    name = "softmax"
    onnx_types = ("Softmax",)

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.inputs[0]))
        axis = int(node.attrs.get("axis", -1))
        if axis not in (-1, rank - 1):
            raise self.unsupported(node, "softmax over an axis other than the last")
        node.op, node.attrs = self.name, {}

    def check(self, graph: Graph, node: Node) -> None:
        if graph.tensors[node.inputs[0]].qtype.per_channel:
            raise self.unsupported(node, "per-channel input scales")

    def params(self, graph: Graph, node: Node) -> dict:
        x = graph.tensors[node.inputs[0]].qtype
        n = graph.shape(node.inputs[0])[-1]
        table = tables.exp_table(float(x.scale), x.qmax - x.qmin + 1)
        recip_bits = tables.recip_bits(tables.EXP_FRAC, n)
        out = graph.tensors[node.outputs[0]].qtype
        m0, shift = common.requant_params(2.0**-PROB_FRAC, out)
        return {"exp": table, "recip_bits": recip_bits, "row": n,
                "_rescale": common.rescaler(out, [m0], shift, [1 << PROB_FRAC])}

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('attention', 'elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """R rows of n elements, `lanes` rows at a time, one element per row per cycle:
          compute = ceil(R/lanes) * n + depth     (lanes = attention.rows P inside attention, else
                                                   elementwise.par); the two passes (max, then exp/sum) of
                                                   consecutive row groups overlap, the row buffer holds n
          per lane: an exp table (entries x 18 bits), a row sum, one divider per row (reciprocal,
          recip_bits wide, ~recip_bits^2 LUTs when pipelined), the e*recip product and a requantiser
          inside attention: the score and exp FIFOs (depth n, P lanes wide) in BRAM
        """
        import math

        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        n = x.shape[-1]
        rows = x.size // max(n, 1) * ctx.row_scale
        facts = ctx.facts(node)
        in_attn = facts.get("attn") is not None
        lanes = ctx.knobs(node, "attention").rows if in_attn else ctx.knobs(node, "elementwise").par
        lanes = max(1, min(lanes, math.ceil(rows)))
        in_bits = cm.op_bits(x.qtype)
        entries = min(2 ** min(in_bits, 12), 4096)
        recip = 17 + math.ceil(math.log2(max(n, 2))) + 1
        lane = (cm.memory(18, entries, 1, "bram", ctx.board) + cm.Resources(lut=recip * recip + 3 * recip, ff=4 * recip,
                dsp=cm.dsp_per_mult(18, recip, ctx.board)) + cm.requantiser(24, ctx.board))
        extra = cm.ZERO
        if in_attn:
            extra = cm.memory(lanes * in_bits, n, 1, "bram", ctx.board, copies=1) + \
                cm.memory(lanes * 18, n, 1, "bram", ctx.board)
            kernel = ctx.kernel("attention.softmax", node)
        else:
            extra = cm.memory(in_bits, n, lanes, ctx.design.memory.storage, ctx.board)
            kernel = ctx.kernel("softmax", node)
        fused_in = facts.get("a_internal", False)
        fused_out = in_attn and ctx.design.attention.fused
        ins = [] if fused_in else [x.size * ctx.row_scale * in_bits / 8]
        outs = [] if fused_out else [y.size * ctx.row_scale * cm.op_bits(y.qtype) / 8]
        return cm.elementwise(ctx, node, self.name, kernel, 0, 1, lane.scale(lanes), 12 + recip, rows / lanes,
                              ins, outs, extra + cm.control(), row_cycles=math.ceil(rows / lanes) * n + n,
                              formula=f"ceil({rows:g}/{lanes}) x {n} + {n}")

    # -- C++ kernel (templates/kernels/softmax.h) -------------------------------------------------------
    kernel_header = "softmax.h"

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::softmax<cfg>(x, y): Softmax.params' table and the output requantisation."""
        return softmax_struct(graph, node, "cfg"), "hwgen::softmax<cfg>(in0, out0);"

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        table, shift = p["exp"], p["recip_bits"] - PROB_FRAC
        prob = numerics_jit.softmax_rows(np.asarray(inputs[0]), table.values, table.index_shift, p["recip_bits"],
                                         shift)
        if prob is None:  # the reference, in numpy
            q = np.asarray(inputs[0], dtype=np.int64)
            e = table.lookup(q.max(axis=-1, keepdims=True) - q)
            total = e.sum(axis=-1, keepdims=True)
            recip = (np.int64(1) << p["recip_bits"]) // total
            # prob = (e * recip) >> (recip_bits - PROB_FRAC): e <= total, so e * recip <= 2**recip_bits
            prob, _ = numerics.Rescale([recip], shift, 0, None, True, numerics.Rounding.TRN, numerics.Overflow.SAT,
                                       [int(table.values.max())])([e], keep_float=True)
        return [common.rescale(p["_rescale"], [prob], stats, node.outputs[0])]


def softmax_struct(graph: Graph, node: Node, name: str, n_rows: int | None = None) -> str:
    """softmax.h's config struct `name` for a softmax node (also the `softmax` member of attention.h's);
    n_rows: rows per call (default: every row of one sample)."""
    from hwgen.codegen.cpp import c_int, int_ctype, member_array, modes, struct

    p = get("softmax").params(graph, node)
    x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    row = p["row"]
    n_rows = x.size // row if n_rows is None else n_rows
    table = p["exp"]
    m0, shift = common.requant_params(2.0**-PROB_FRAC, y.qtype)
    fields = (f"  typedef {x.qtype.c_type()} in_t;\n  typedef {y.qtype.c_type()} out_t;\n"
              f"  typedef {int_ctype(table.values, signed=False)} exp_t;\n"
              f"  typedef {int_ctype([0, row << tables.EXP_FRAC], signed=False)} sum_t;\n"
              f"  static const unsigned n_rows = {n_rows}, row = {row};\n"
              f"  static const unsigned exp_entries = {len(table.values)};\n"
              f"  static const int index_shift = {table.index_shift};\n"
              f"  static const int recip_bits = {p['recip_bits']}, prob_frac = {PROB_FRAC};\n"
              f"  static const long long out_m0 = {c_int(m0)}, out_zero_point = {c_int(common.scalar_zp(y.qtype))};\n"
              f"  static const int out_shift = {int(shift)};\n" + modes(y.qtype))
    return struct(name, fields, [member_array(name, "exp_t", "exp_table", table.values)])
