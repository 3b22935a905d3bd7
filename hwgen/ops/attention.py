"""attention: one layer's scaled dot-product attention over all heads, as one streaming kernel.

Semantics are exactly those of the op chain it replaces (matmul -> [mul] -> softmax -> matmul, kept as
the subgraph attrs["_chain"]): the streaming kernel (templates/kernels/attention.h) keeps the same order
of integer operations, with scores kept on chip and P query rows in parallel."""

from __future__ import annotations

import numpy as np

from hwgen.ir import Graph, Node
from hwgen.ops.base import OpDef, SimStats, get, register


@register
class Attention(OpDef):
    name = "attention"

    def check(self, graph: Graph, node: Node) -> None:
        for g_node in node.attrs["_chain"].nodes:
            get(g_node.op).check(node.attrs["_chain"], g_node)

    def chain(self, node: Node) -> dict:
        """The ops of the chain by role: qk, scale (or None), softmax, pv."""
        nodes = node.attrs["_chain"].nodes
        roles = {"qk": nodes[0], "scale": nodes[1] if len(nodes) == 4 else None, "softmax": nodes[-2], "pv": nodes[-1]}
        return roles

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('linear', 'attention', 'elementwise', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """The streaming attention kernel: its chain's processes (Q*K^T, scale, softmax, *V; formulas in
        matmul.py, mul.py, softmax.py) run concurrently in one dataflow region when attention.fused (scores
        stay on chip): cycles = the list schedule of the chain, i.e. the slowest process plus the others'
        first-granule delays. Otherwise (Edge-MoE) Q*K^T/scale/softmax form one region and *V a second one
        that starts when the first has written all scores: cycles = region 1 + region 2."""
        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        est = ctx.estimator
        chain: Graph = node.attrs["_chain"]
        sub = ctx.child(1.0, f"{node.name}/")
        children = est.subgraph(chain, sub)
        sched = est.schedule(chain, children, sub)
        res = cm.control()
        return cm.Cost(node.name, self.name, ctx.kernel("attention", node), sched["latency"],
                       compute=sum(c.compute for c in children), io=sum(c.io for c in children),
                       depth=max(c.depth for c in children), macs=sum(c.macs for c in children),
                       act_bytes=sum(c.act_bytes for c in children), res=res,
                       rows=max(c.rows for c in children), blocking=True, streams=True,
                       uses=tuple(sorted({c.kernel for c in children})), children=tuple(children),
                       formula="dataflow of " + ", ".join(f"{c.op} {c.cycles:.0f}" for c in children))

    # -- C++ kernel (templates/kernels/attention.h) -----------------------------------------------------
    kernel_header = "attention.h"

    def schedule(self, graph: Graph, node: Node, design) -> int:
        """P, the query rows processed together: attention.rows (all queries when unrolled), at most n_q."""
        n_q = int(node.attrs["queries"])
        if design.regime == "unrolled":
            return max(n_q, 1)
        return max(1, min(design.knobs_for(node.name, "attention").rows, n_q))

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::attention<cfg>(q, k, v, out) on streams, with every integer taken from the chain's own ops
        (matmul.params, the mul's constant, softmax_struct); knobs = P. The call fills the streams from the
        flat buffers in0 = Q [h][i][d], in1 = K^T [h][d][j] (read transposed: K's rows), in2 = V [h][j][d]
        and drains out0 = [h][i][d]."""
        decls, dims = attention_struct(node, "cfg", knobs or 1)
        heads, n_q, n_kv, d, dv = dims
        call = f"""hls::stream<cfg::q_t> q_s("attn_q");
hls::stream<cfg::k_t> k_s("attn_k");
hls::stream<cfg::v_t> v_s("attn_v");
hls::stream<cfg::out_t> o_s("attn_o");
#pragma HLS STREAM variable = q_s depth = {heads * n_q * d}
#pragma HLS STREAM variable = k_s depth = {heads * n_kv * d}
#pragma HLS STREAM variable = v_s depth = {heads * n_kv * dv}
#pragma HLS STREAM variable = o_s depth = {heads * n_q * dv}
for (int i = 0; i < {heads * n_q * d}; i++) {{
#pragma HLS PIPELINE II = 1
q_s.write(in0[i]);
}}
for (int h = 0; h < {heads}; h++) {{
for (int j = 0; j < {n_kv}; j++) {{
for (int c = 0; c < {d}; c++) {{
#pragma HLS PIPELINE II = 1
k_s.write(in1[(h * {d} + c) * {n_kv} + j]);
}}
}}
}}
for (int i = 0; i < {heads * n_kv * dv}; i++) {{
#pragma HLS PIPELINE II = 1
v_s.write(in2[i]);
}}
hwgen::attention<cfg>(q_s, k_s, v_s, o_s);
for (int i = 0; i < {heads * n_q * dv}; i++) {{
#pragma HLS PIPELINE II = 1
out0[i] = o_s.read();
}}"""
        return decls, call

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        sub: Graph = node.attrs["_chain"]
        env = dict(zip(node.inputs, inputs))
        for t in sub.tensors.values():
            if t.is_const:
                env[t.name] = t.data
        for n in sub.nodes:
            outs = get(n.op).simulate(sub, n, [env[i] if i else None for i in n.inputs], stats)
            env.update(zip(n.outputs, outs))
        return [env[node.outputs[0]]]


def _centered_bound(qt) -> int:
    zp = int(qt.zero_point)
    return max(abs(qt.qmin - zp), abs(qt.qmax - zp))


def _acc_type(bound: int) -> str:
    from hwgen import numerics

    return f"ap_int<{numerics.bits_for_range(-bound, bound)}>"


def _modes(prefix: str, qt) -> str:
    return (f"  static const ap_q_mode {prefix}rounding = {qt.rounding.value};\n"
            f"  static const ap_o_mode {prefix}overflow = {qt.overflow.value};\n")


def scale_params(graph: Graph, mul: Node) -> tuple[int, float]:
    """(c, real scale) of the score scaling `mul` as Mul.simulate computes it: t = requant((s - zs) * c) at
    scale s_s * s_c (c = code - zero point of a scalar constant), or a folded factor (c = -1 / +1)."""
    from hwgen.ops.common import scalar_zp

    s = graph.tensors[mul.inputs[0]].qtype
    scale, c = float(s.scale), 1
    if len(mul.inputs) == 2:
        ct = graph.tensors[mul.inputs[1]]
        if not ct.is_const or ct.size != 1 or ct.qtype.per_channel:
            raise ValueError("attention kernel: the score scaling must be a scalar constant")
        c = int(np.asarray(ct.data).reshape(-1)[0]) - scalar_zp(ct.qtype)
        scale *= float(ct.qtype.scale)
    factor = mul.attrs.get("factor")
    if factor is not None:
        c, scale = (-c, scale * -factor) if factor < 0 else (c, scale * factor)
    return c, scale


def attention_struct(node: Node, name: str, parallel: int) -> tuple[str, tuple]:
    """attention.h's config `name` (with `name`_softmax) for an attention node, and its dims
    (heads, n_q, n_kv, head_dim, v_dim)."""
    from hwgen.codegen.cpp import c_int, modes, struct
    from hwgen.ops import common
    from hwgen.ops.softmax import softmax_struct

    g: Graph = node.attrs["_chain"]
    roles = get("attention").chain(node)
    mm1, mul, sm, mm2 = roles["qk"], roles["scale"], roles["softmax"], roles["pv"]
    t = g.tensors
    q, kt = (t[i] for i in mm1.inputs)
    s = t[mm1.outputs[0]]
    v = t[mm2.inputs[1]]
    o = t[mm2.outputs[0]]
    p1, p2 = get("matmul").params(g, mm1), get("matmul").params(g, mm2)
    heads = int(np.prod(q.shape[:-2], dtype=np.int64))
    n_q, d = q.shape[-2:]
    n_kv, dv = v.shape[-2:]
    if tuple(kt.shape[-2:]) != (d, n_kv) or mm2.inputs[0] != sm.outputs[0] or \
            int(np.prod(v.shape[:-2], dtype=np.int64)) != heads or int(np.prod(kt.shape[:-2], dtype=np.int64)) != heads:
        raise ValueError("attention kernel: Q [h,i,d], K^T [h,d,j] and V [h,j,d] must have the same heads")
    if p2["a_zero_point"] != common.scalar_zp(t[sm.outputs[0]].qtype):
        raise ValueError("attention kernel: P's zero point differs from the softmax output's")
    zp = common.scalar_zp
    fields = (f"  typedef {q.qtype.c_type()} q_t;\n  typedef {kt.qtype.c_type()} k_t;\n"
              f"  typedef {v.qtype.c_type()} v_t;\n  typedef {s.qtype.c_type()} s_t;\n"
              f"  typedef {o.qtype.c_type()} out_t;\n"
              f"  typedef {_acc_type(d * _centered_bound(q.qtype) * _centered_bound(kt.qtype))} qk_acc_t;\n"
              f"  typedef {_acc_type(n_kv * _centered_bound(t[sm.outputs[0]].qtype) * _centered_bound(v.qtype))} pv_acc_t;\n"
              f"  static const unsigned n_heads = {heads}, n_q = {n_q}, n_kv = {n_kv}, head_dim = {d}, v_dim = {dv};\n"
              f"  static const unsigned parallel = {int(parallel)};\n"
              f"  static const long long q_zero_point = {c_int(p1['a_zero_point'])}, k_zero_point = {c_int(p1['b_zero_point'])};\n"
              f"  static const long long qk_m0 = {c_int(p1['m0'])}, s_zero_point = {c_int(zp(s.qtype))};\n"
              f"  static const int qk_shift = {int(p1['shift'])};\n" + _modes("s_", s.qtype))
    if mul is not None:
        tt = t[mul.outputs[0]].qtype
        c, scale = scale_params(g, mul)
        m0, sh = common.requant_params(scale, tt)
        fields += (f"  static const bool has_scale = true;\n  static const long long scale_c = {c_int(c)}, "
                   f"scale_m0 = {c_int(m0)}, t_zero_point = {c_int(zp(tt))};\n"
                   f"  static const int scale_shift = {int(sh)};\n" + _modes("t_", tt))
    else:
        fields += ("  static const bool has_scale = false;\n  static const long long scale_c = 1, scale_m0 = 1, "
                   "t_zero_point = 0;\n  static const int scale_shift = 0;\n"
                   "  static const ap_q_mode t_rounding = AP_TRN;\n  static const ap_o_mode t_overflow = AP_WRAP;\n")
    fields += (f"  typedef {name}_softmax softmax;\n"
               f"  static const long long v_zero_point = {c_int(p2['b_zero_point'])}, pv_m0 = {c_int(p2['m0'])}, "
               f"out_zero_point = {c_int(zp(o.qtype))};\n"
               f"  static const int pv_shift = {int(p2['shift'])};\n" + modes(o.qtype))
    return softmax_struct(g, sm, f"{name}_softmax") + struct(name, fields), (heads, n_q, n_kv, d, dv)
