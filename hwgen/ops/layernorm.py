"""layernorm over the last axis, in integers.

With x = q - z over n elements: S1 = sum x, S2 = sum x^2 (exact), c_i = n*x_i - S1 and
V = n*S2 - S1^2 + round(eps*n^2/s^2), so (x_i - mean)/sqrt(var + eps) = c_i / sqrt(V) exactly.
1/sqrt(V) comes from a table on V's top 12 bits (normalised by an even shift); the normalised value is
kept with 16 fraction bits, then gamma and beta are applied and the sum rounded once into the output."""

from __future__ import annotations

import numpy as np

from hwgen import numerics, numerics_jit, tables
from hwgen.ir import Graph, Node
from hwgen.numerics import Rounding
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, register

NORM_FRAC = 16
_RSQRT = tables.rsqrt_table()


@register
class LayerNorm(OpDef):
    name = "layernorm"
    bias_inputs = (2,)
    onnx_types = ("LayerNormalization",)

    def lower(self, graph: Graph, node: Node) -> None:
        rank = len(graph.shape(node.inputs[0]))
        axis = int(node.attrs.get("axis", -1))
        if axis not in (-1, rank - 1):
            raise self.unsupported(node, "normalisation over more than the last axis")
        for extra in node.outputs[1:]:
            if extra and graph.consumers(extra):
                raise self.unsupported(node, "mean/inv-std outputs are not supported")
        eps = float(node.attrs.get("epsilon", 1e-5))
        node.op, node.outputs, node.attrs = self.name, node.outputs[:1], {"epsilon": eps}

    def check(self, graph: Graph, node: Node) -> None:
        if graph.tensors[node.inputs[0]].qtype.per_channel:
            raise self.unsupported(node, "per-channel input scales")
        for i in node.inputs[1:]:
            if i and not graph.tensors[i].is_const:
                raise self.unsupported(node, "scale and bias must be constants")

    def params(self, graph: Graph, node: Node) -> dict:
        x = graph.tensors[node.inputs[0]].qtype
        n = graph.shape(node.inputs[0])[-1]
        eps_int = int(round(node.attrs["epsilon"] * n * n / float(x.scale) ** 2))
        gamma = _const_channel(graph, node.inputs[1] if len(node.inputs) > 1 else None, n)
        if gamma is None:
            gamma = (np.ones(n, dtype=np.int64), np.ones(n))
        beta = _const_channel(graph, node.inputs[2] if len(node.inputs) > 2 else None, n)
        return {"n": n, "x_zero_point": int(x.zero_point), "eps_int": eps_int, "rsqrt": _RSQRT,
                "gamma": gamma, "beta": beta, "_rescale": _output_rescale(graph.tensors[node.outputs[0]].qtype, gamma, beta)}

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """R rows of D features, PAR = elementwise.par lanes; one pass computes S1 and S2 of a row while the
        previous row is normalised (a two-stage row pipeline):
          compute = R * ceil(D/PAR) + ceil(D/PAR) + depth
          per lane: 4 DSPs (x^2, c*rsqrt, z*gamma, the output scaling), 4*A LUTs, 5*A FFs (A = 32)
          per kernel: the variance n*S2 - S1^2 (a 32x32 multiplier), a rsqrt table (4096 x 18 bits) per two
          lanes, a ping/pong row buffer and gamma/beta (D words each) in PAR banks
        """
        import math

        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        dim = x.shape[-1]
        rows = x.size // max(dim, 1) * ctx.row_scale
        par = max(1, min(ctx.knobs(node, "elementwise").par, dim))
        bits = cm.op_bits(x.qtype)
        st = ctx.design.memory.storage
        lane = cm.Resources(dsp=4, lut=4 * 32, ff=5 * 32)
        extra = (cm.Resources(dsp=cm.dsp_per_mult(32, 32, ctx.board), lut=200, ff=300)
                 + cm.memory(18, 4096, math.ceil(par / 2), "bram", ctx.board)
                 + cm.memory(bits, dim / par, par, st, ctx.board, copies=2)
                 + cm.memory(16, dim / par, par, st, ctx.board, copies=2))
        per_row = cm.ceil_div(dim, par)
        ins = [x.size * ctx.row_scale * bits / 8]
        outs = [y.size * ctx.row_scale * cm.op_bits(y.qtype) / 8]
        return cm.elementwise(ctx, node, self.name, ctx.kernel("layernorm", node), 0, par, lane, 20, rows, ins,
                              outs, extra, row_cycles=math.ceil(rows) * per_row + per_row,
                              formula=f"{rows:g} x ceil({dim}/{par}) + {per_row}")

    # -- C++ kernel (templates/kernels/layernorm.h) -----------------------------------------------------
    kernel_header = "layernorm.h"

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::layernorm<cfg>(x, y): LayerNorm.params, with common.sum_params' multipliers folded into the
        per-channel gamma / beta constants (gamma_mult, beta_term)."""
        return self._config(graph, node, None)

    def emit_config(self, graph: Graph, node: Node, ctx) -> tuple[str, str]:
        """As kernel_config, but the rsqrt table (the same for every LayerNorm) is emitted once per project,
        in a struct every LayerNorm's cfg derives from (cfg::rsqrt_table is the base's member)."""
        return self._config(graph, node, ctx)

    def _config(self, graph: Graph, node: Node, ctx) -> tuple[str, str]:
        from hwgen.codegen.cpp import c_int, int_ctype, member_array, modes, struct

        p = self.params(graph, node)
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        n = p["n"]
        g_codes, g_scale = p["gamma"]
        scales = [g_scale * 2.0**-NORM_FRAC] + ([p["beta"][1]] if p["beta"] is not None else [])
        mults, shift = common.sum_params(scales, y.qtype)
        gamma_mult = np.asarray(g_codes, dtype=np.int64) * np.broadcast_to(mults[0], (n,))
        beta_term = (np.asarray(p["beta"][0], dtype=np.int64) * np.broadcast_to(mults[1], (n,))
                     if p["beta"] is not None else np.zeros(n, dtype=np.int64))
        rs = p["rsqrt"]
        rsqrt_t = int_ctype(rs.values, signed=False)
        table = [member_array("cfg", "rsqrt_t", "rsqrt_table", rs.values)]
        name = "cfg"
        if ctx is not None:  # one shared table: `struct cfg : <rom>` inherits rsqrt_t and rsqrt_table
            rom = ctx.shared("layernorm_rsqrt", lambda nm: struct(nm, f"  typedef {rsqrt_t} rsqrt_t;\n", [
                member_array(nm, "rsqrt_t", "rsqrt_table", rs.values)]))
            table, name = [], f"cfg : {rom}"
        fields = (f"  typedef {x.qtype.c_type()} in_t;\n  typedef {y.qtype.c_type()} out_t;\n"
                  + (f"  typedef {rsqrt_t} rsqrt_t;\n" if ctx is None else "") +
                  f"  static const unsigned n_rows = {x.size // n}, n = {n};\n"
                  f"  static const long long x_zero_point = {c_int(p['x_zero_point'])}, eps_int = {c_int(p['eps_int'])};\n"
                  f"  static const int rsqrt_index_bits = {rs.index_bits}, rsqrt_frac = {rs.frac}, "
                  f"norm_frac = {NORM_FRAC};\n"
                  f"  static const int shift = {int(shift)};\n"
                  f"  static const long long out_zero_point = {c_int(common.scalar_zp(y.qtype))};\n" + modes(y.qtype))
        decls = struct(name, fields, table + [member_array("cfg", "long long", "gamma_mult", gamma_mult),
                                              member_array("cfg", "long long", "beta_term", beta_term)])
        return decls, "hwgen::layernorm<cfg>(in0, out0);"

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        n, zp, codes = p["n"], p["x_zero_point"], np.asarray(inputs[0])
        rs = p["rsqrt"]
        z = numerics_jit.layernorm_rows(codes, zp, p["eps_int"], rs.values, rs.index_bits, rs.frac - NORM_FRAC)
        if z is None:  # the reference, in numpy
            x = np.subtract(codes, zp, dtype=np.float64)  # small integers: exact
            s1 = (x @ np.ones((n, 1))).astype(np.int64)  # a GEMV: faster than a reduction over a short last axis
            s2 = np.einsum("...i,...i->...", x, x)[..., None].astype(np.int64)
            c = np.multiply(x, n, out=x)
            c -= s1  # n*x - S1, exact (|c| <= 2n * 2**bits)
            v = np.maximum(n * s2 - s1 * s1 + p["eps_int"], 1)
            r, e = rs.lookup(v)
            z, _ = numerics.Rescale([r], rs.frac + e - NORM_FRAC, 0, None, True, Rounding.RND,
                                    numerics.Overflow.SAT)([c], keep_float=True)
        return [common.rescale(p["_rescale"], [z], stats, node.outputs[0])]


def _output_rescale(out, gamma, beta):
    """z * gamma + beta into `out` as one rounding (the multipliers of common.weighted_sum): gamma's codes
    folded into z's per-channel multiplier, beta an integer offset."""
    g_codes, g_scale = gamma
    scales = [g_scale * 2.0**-NORM_FRAC] + ([beta[1]] if beta is not None else [])
    mults, shift = common.sum_params(scales, out)
    offset = np.asarray(beta[0], dtype=np.int64) * mults[1] if beta is not None else 0
    return common.rescaler(out, [np.asarray(g_codes, dtype=np.int64) * mults[0]], shift, offset=offset)


def _const_channel(graph: Graph, name: str | None, n: int):
    """Zero-point-corrected codes and per-channel scales of gamma/beta (None when absent)."""
    if not name:
        return None
    t = graph.tensors[name]
    scale, zp = t.qtype.channel_params(n)
    codes = np.broadcast_to(np.asarray(t.data, dtype=np.int64).reshape(-1), (n,)) - zp
    return codes, scale
