"""reduce_mean: average over axes (token pooling), y = requant(sum(x - z) * s / count)."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register


@register
class ReduceMean(OpDef):
    name = "reduce_mean"
    onnx_types = ("ReduceMean", "GlobalAveragePool")

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.inputs[0]))
        if node.op == "onnx.GlobalAveragePool":
            axes, keep = list(range(2, rank)), 1
        else:
            axes = node.attrs.get("axes")
            if axes is None and len(node.inputs) > 1 and node.inputs[1]:
                axes = graph.const(node.inputs[1])
                if axes is None:
                    raise self.unsupported(node, "non-constant axes")
            if axes is None or len(axes) == 0:
                axes = list(range(rank))
            keep = int(node.attrs.get("keepdims", 1))
        axes = sorted(int(a) + rank if int(a) < 0 else int(a) for a in axes)
        node.op, node.inputs, node.attrs = self.name, node.inputs[:1], {"axes": axes, "keepdims": keep}

    def check(self, graph: Graph, node: Node) -> None:
        if graph.tensors[node.inputs[0]].qtype.per_channel:
            raise self.unsupported(node, "per-channel input scales")

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """Sum over the reduced axes, PAR = elementwise.par inputs per cycle, then one requantiser (the
        division by the count folds into its multiplier):
          compute = ceil(input elements/PAR) + depth;   per lane an A-bit adder (A = bits + log2 count)
          accumulators: one per output element (on chip, PAR banks)
        """
        import math

        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        par = max(1, ctx.knobs(node, "elementwise").par)
        count = max(1, x.size // max(y.size, 1))
        acc = cm.centred_bits(x.qtype) + math.ceil(math.log2(count + 1))
        lane = cm.Resources(lut=acc, ff=acc)
        extra = cm.requantiser(acc, ctx.board) + cm.memory(acc, y.size / par, par, ctx.design.memory.storage, ctx.board)
        elements = x.size * ctx.row_scale
        ins = [elements * cm.op_bits(x.qtype) / 8]
        outs = [y.size * ctx.row_scale * cm.op_bits(y.qtype) / 8]
        return cm.elementwise(ctx, node, self.name, ctx.kernel("reduce_mean", node), elements, par, lane, 8, 1, ins,
                              outs, extra, blocking=True, formula=f"ceil({elements:g}/{par})")

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        x = graph.tensors[node.inputs[0]]
        axes = tuple(a + 1 for a in node.attrs["axes"])
        count = int(np.prod([x.shape[a - 1] for a in axes]))
        total = common.centered(inputs[0], x.qtype).sum(axis=axes, keepdims=bool(node.attrs["keepdims"]))
        out = graph.tensors[node.outputs[0]]
        return [common.to_type(total, float(x.qtype.scale) / count, out.qtype, stats, node.outputs[0])]

    # -- C++ kernel (templates/kernels/reduce_mean.h) ---------------------------------------------------
    kernel_header = "reduce_mean.h"

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::reduce_mean<cfg> over one contiguous block of axes: [outer][reduce][inner]."""
        from hwgen import numerics
        from hwgen.codegen.cpp import c_int, modes

        x = graph.tensors[node.inputs[0]]
        out = graph.tensors[node.outputs[0]].qtype
        axes = list(node.attrs["axes"])
        if axes != list(range(axes[0], axes[-1] + 1)):
            raise ValueError("reduce_mean kernel: reduced axes must be contiguous")
        outer = int(np.prod(x.shape[:axes[0]], dtype=np.int64))
        red = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        inner = int(np.prod(x.shape[axes[-1] + 1:], dtype=np.int64))
        zp = common.scalar_zp(x.qtype)
        xmax = max(abs(x.qtype.qmin - zp), abs(x.qtype.qmax - zp))
        m0, shift = common.requant_params(float(x.qtype.scale) / red, out)
        decls = (
            "struct cfg {\n"
            f"  typedef {x.qtype.c_type()} in_t;\n  typedef {out.c_type()} out_t;\n"
            f"  typedef ap_int<{numerics.bits_for_range(-xmax * red, xmax * red)}> accum_t;\n"
            f"  typedef ap_uint<{common.MULT_BITS}> mult_t;\n"
            f"  static const int n_outer = {outer}, n_reduce = {red}, n_inner = {inner}, shift = {int(shift)};\n"
            f"  static const long long in_zero_point = {c_int(zp)}, m0 = {c_int(m0)}, "
            f"out_zero_point = {c_int(common.scalar_zp(out))};\n" + modes(out) + "};\n")
        return decls, "hwgen::reduce_mean<cfg>(in0, out0);"
