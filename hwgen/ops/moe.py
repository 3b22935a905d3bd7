"""moe: top-k mixture of experts, computed expert by expert on the selected tokens only.

Router: the gate subgraph (linear -> softmax) gives probability codes p; the k largest per token are
kept (ties to the lower expert index, as onnxruntime's TopK), unnormalised, as in M3ViT. Each expert
subgraph (linear -> GELU -> linear) runs on the tokens routed to it. The combine accumulates
(p - zp) * (y_e - zy_e) with one integer multiplier per expert in a wide accumulator and rounds once into
the output type (the ONNX graph states the same sum as a chain of quantised adds; hwgen keeps the
precision and rounds once)."""

from __future__ import annotations

import re

import numpy as np

from hwgen import numerics, numerics_jit
from hwgen.ir import Graph, Node
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, get, register


@register
class MoE(OpDef):
    name = "moe"

    def check(self, graph: Graph, node: Node) -> None:
        probs = node.attrs["_gate"].tensors[node.attrs["_gate"].outputs[0]].qtype
        if probs.per_channel:
            raise self.unsupported(node, "per-channel router probabilities")

    def params(self, graph: Graph, node: Node) -> dict:
        gate: Graph = node.attrs["_gate"]
        experts: list[Graph] = node.attrs["_experts"]
        p_type = gate.tensors[gate.outputs[0]].qtype
        out = graph.tensors[node.outputs[0]].qtype
        y_types = [sg.tensors[sg.outputs[0]].qtype for sg in experts]
        mults, shift = common.sum_params([float(p_type.scale) * float(t.scale) for t in y_types], out)
        span = lambda t: max(abs(t.qmin - int(t.zero_point)), abs(t.qmax - int(t.zero_point)))  # noqa: E731
        acc_bound = node.attrs["k"] * span(p_type) * max(abs(int(m)) * span(t) for m, t in zip(mults, y_types))
        return {"p_zero_point": int(p_type.zero_point), "y_zero_points": [int(t.zero_point) for t in y_types],
                "mults": [int(m) for m in mults], "shift": shift,
                "_rescale": common.rescaler(out, [1], shift, [acc_bound]),
                "_acc_dtype": np.float64 if acc_bound < 2**53 else np.int64}  # exact either way

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """Router, then expert by expert on the reusable kernels (M3ViT's reordering), then the combine.

        T tokens, E experts, top-k, D = output width, PAR = elementwise.par:
          gate    = the gate subgraph's own costs (linear + softmax) over all T tokens
          top-k   = T * E cycles (one probability per cycle, k-slot insertion; k comparators)
          experts = for each expert, its subgraph's costs with the expected T_e = T*k/E rows (no routing
                    statistics are assumed: tokens spread evenly in expectation), its weights loaded once per
                    image; weighted by the probability 1 - (1-k/E)^T that the expert gets any token
          combine = T*k*D/PAR cycles of scatter-add: per lane (p - zp)*mult and *(y - zy) multipliers, a
                    [T][D] accumulator of A bits on chip (PAR banks)
          streaming regime: cycles = gate + top-k + sum(experts) + combine (they share the linear kernel)
          unrolled regime:  cycles = gate + top-k + max(experts) + combine (one instance per expert)
        """
        import math

        from hwgen.cost import model as cm

        ctx = ctx or cm.default_context(design, board)
        gate: Graph = node.attrs["_gate"]
        experts: list[Graph] = node.attrs["_experts"]
        k = int(node.attrs["k"])
        x, y = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
        d_out = y.shape[-1]
        tokens = x.size // max(x.shape[-1], 1)
        e = len(experts)
        t_e = tokens * k / e
        p_any = 1.0 - (1.0 - k / e) ** tokens
        est = ctx.estimator

        gctx = ctx.child(1.0, f"{node.name}/gate/")
        gate_costs = est.subgraph(gate, gctx)
        gate_cycles = est.schedule(gate, gate_costs, gctx)["latency"]
        expert_costs, expert_cycles, seen = [], [], {}
        for i, sg in enumerate(experts):
            ectx = ctx.child(t_e / tokens, f"{node.name}/e{i}/")
            skey = None if ctx.unrolled else est.structure(sg)
            if skey in seen:  # an identical expert: same costs
                cs, lat = seen[skey]
            else:
                cs = est.subgraph(sg, ectx)
                lat = est.schedule(sg, cs, ectx)["latency"]
                if skey is not None:
                    seen[skey] = (cs, lat)
            expert_costs.append(cs)
            expert_cycles.append(p_any * lat)
        par = max(1, min(ctx.knobs(node, "elementwise").par, tokens * k * d_out))
        p_bits = 8
        y_bits = max(cm.op_bits(sg.tensors[sg.outputs[0]].qtype) for sg in experts)
        acc = p_bits + 1 + 31 + y_bits + 1 + math.ceil(math.log2(max(k, 2)))
        topk = tokens * e
        combine = math.ceil(tokens * k * d_out / par)
        body = max(expert_cycles) if ctx.unrolled else sum(expert_cycles)
        cycles = gate_cycles + topk + body + combine
        io, ab = cm.act_io(ctx, node, [tokens * k * d_out * acc / 8], [tokens * k * d_out * acc / 8])
        cycles += io
        res = (cm.Resources(lut=k * 2 * p_bits + 200, ff=k * (p_bits + 8) + 200)
               + cm.Resources(dsp=par * (cm.dsp_per_mult(p_bits + 1, 31, ctx.board)
                                         + cm.dsp_per_mult(40, y_bits + 1, ctx.board)), lut=par * acc, ff=par * acc)
               + cm.memory(acc, tokens * d_out / par, par, ctx.design.memory.storage, ctx.board)
               + cm.memory(16, tokens * k, 2, ctx.design.memory.storage, ctx.board)  # expert queues and scores
               + cm.requantiser(acc, ctx.board, par) + cm.control())
        children = tuple(c for cs in [gate_costs] + expert_costs for c in cs)
        uses = tuple(sorted({c.kernel for c in children if not c.view}))
        wb = ab2 = macs = compute = load = io2 = 0.0
        for c in children:
            wb += c.weight_bytes
            ab2 += c.act_bytes
            macs += c.macs
            compute += c.compute
            load += c.load
            io2 += c.io
        ab += ab2
        return cm.Cost(node.name, self.name, ctx.kernel("moe", node), cycles,
                       compute=topk + combine + compute, load=load, io=io + io2, macs=macs, weight_bytes=wb,
                       act_bytes=ab, res=res,
                       rows=1, blocking=True, streams=False, uses=uses, children=children,
                       formula=f"gate + {topk} top-k + {e} experts x {t_e:.4g} rows + {combine} combine")

    # -- C++ kernel (templates/kernels/moe.h; the subgraphs on their own ops' kernels) ------------------
    kernel_header = "moe.h"

    def schedule(self, graph: Graph, node: Node, design):
        """The Design itself: every gate / expert node takes its own knobs from it (by its name)."""
        return design

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::moe<cfg>(x, y): MoE.params for routing and combine; gate::run and experts::run are generated
        from the subgraphs' nodes, each spelled by its own op's kernel_config (reshapes are views; a linear
        runs as linear_rows on the tokens routed to the expert only). knobs: a Design (None: defaults)."""
        return moe_config(graph, node, knobs, None)

    def emit_config(self, graph: Graph, node: Node, ctx) -> tuple[str, str]:
        """As kernel_config, with the subgraphs' weights through ctx.weights (off chip when streaming): the
        weight memories they use are passed through hwgen::moe to gate::run / experts::run."""
        return moe_config(graph, node, ctx.design, ctx)

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        gate: Graph = node.attrs["_gate"]
        experts: list[Graph] = node.attrs["_experts"]
        k = node.attrs["k"]
        p = self.params(graph, node)
        x = np.asarray(inputs[0])  # codes as stored (narrow): the experts' linears widen them
        n = x.shape[0]
        rows = x.reshape(-1, x.shape[-1])
        probs = run_rows(gate, rows, stats).astype(np.int64)  # codes come stored narrow: widen before arithmetic
        order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        chosen = np.take_along_axis(probs, order, axis=-1)
        out_t = graph.tensors[node.outputs[0]]
        acc = None
        for e, sg in enumerate(experts):
            hit_rows, hit_slot = np.nonzero(order == e)
            y = run_rows(sg, rows[hit_rows], stats)
            if acc is None:
                acc = np.zeros((rows.shape[0], y.shape[-1]), dtype=p["_acc_dtype"])
            weight = (chosen[hit_rows, hit_slot] - p["p_zero_point"]) * p["mults"][e]
            # a row picks each expert at most once: no repeated index
            if not numerics_jit.scatter_weighted(acc, hit_rows, y, p["y_zero_points"][e], weight):
                contrib = np.subtract(y, p["y_zero_points"][e], dtype=acc.dtype)
                contrib *= weight[:, None].astype(acc.dtype)
                acc[hit_rows] += contrib
        y = common.rescale(p["_rescale"], [acc], stats, node.outputs[0])
        return [y.reshape((n,) + tuple(out_t.shape))]


def run_rows(sg: Graph, rows: np.ndarray, stats: SimStats) -> np.ndarray:
    """Run a row-wise subgraph on a [rows, features] array (reshapes that keep the last axis are views)."""
    env = {sg.inputs[0]: rows}
    for t in sg.tensors.values():
        if t.is_const:
            env[t.name] = t.data
    for node in sg.nodes:
        if node.op == "reshape":
            env[node.outputs[0]] = env[node.inputs[0]]
            continue
        outs = get(node.op).simulate(sg, node, [env[i] if i else None for i in node.inputs], stats)
        env[node.outputs[0]] = outs[0]
    return env[sg.outputs[0]]


_VAR = re.compile(r"\b(in|out)(\d+)\b")
_PORT = re.compile(r"\bwmem\d+\b")


def _sub_runner(sg: Graph, fn: str, prefix: str, signature: str, x: str, y: str, design, ctx) -> tuple[str, str]:
    """(namespaces, function): the subgraph's nodes as calls of their kernels inside `void fn(signature)`,
    reading the subgraph input from `x` and writing its output into `y`; a linear and a lut run on the first
    `moe_n` rows (linear_rows, lut_rows), other kernels on every row of the buffers (rows past moe_n are
    don't-care)."""
    views = {}

    def root(t: str) -> str:
        while t in views:
            t = views[t]
        return t

    for n in sg.nodes:
        if n.op == "reshape":
            views[n.outputs[0]] = n.inputs[0]
    names = {sg.inputs[0]: x, root(sg.outputs[0]): y}
    if root(sg.outputs[0]) == sg.inputs[0]:
        raise ValueError("moe kernel: a subgraph whose output is its input")
    spaces, body, k = [], [], 0
    for n in sg.nodes:
        if n.op == "reshape":
            continue
        op = get(n.op)
        knobs = op.schedule(sg, n, design) if design is not None else None
        if n.op in ("linear",):
            from hwgen.ops.linear import linear_kernel_config

            decls, call = linear_kernel_config(sg, n, knobs, ctx)
            m = re.fullmatch(r"hwgen::linear<cfg>\((.*)\);", call.strip(), re.S)
            if m is None:
                raise ValueError(f"moe kernel: unexpected linear call {call!r}")
            call = f"hwgen::linear_rows<cfg>({m.group(1)}, moe_n);"
        elif n.op == "lut":  # lut_rows on the routed rows: `parallel` must divide a row
            from hwgen.ops.lut import lut_parallel

            width = sg.tensors[n.inputs[0]].shape[-1]
            decls, call = op.kernel_config(sg, n, lut_parallel(width, knobs or 1))
            m = re.fullmatch(r"hwgen::lut<cfg>\((.*)\);", call.strip(), re.S)
            if m is None:
                raise ValueError(f"moe kernel: unexpected lut call {call!r}")
            call = f"hwgen::lut_rows<cfg>({m.group(1)}, moe_n * {width});"
        else:
            decls, call = op.kernel_config(sg, n, knobs)
        if ctx is not None and op.kernel_header:
            ctx.include(op.kernel_header)
        ns = f"{prefix}{k}"
        k += 1
        spaces.append(f"namespace {ns} {{  // {n.op} {n.name}\n{decls.rstrip()}\n}}  // namespace {ns}\n")
        for o in n.outputs:
            if root(o) not in names:
                t = sg.tensors[o]
                buf = f"{prefix.rstrip('_')}_buf{len(names)}"
                names[root(o)] = buf
                body.append(f"  static {t.qtype.c_type()} {buf}[{max(t.size, 1)}];")
        ins = [root(i) for i in n.inputs if i and not sg.tensors[i].is_const]
        outs = [root(o) for o in n.outputs]

        def buffer(mt: re.Match) -> str:
            lst = ins if mt.group(1) == "in" else outs
            j = int(mt.group(2))
            if j >= len(lst):
                raise ValueError(f"moe kernel: {n.op} call names {mt.group(0)}")
            return names[lst[j]]

        call = _VAR.sub(buffer, call.strip())
        body.append(f"  {{  // {n.op} {n.name}\n    using namespace {ns};")
        body += [f"    {line.strip()}" for line in call.splitlines() if line.strip()]
        body.append("  }")
    if root(sg.outputs[0]) not in names or names[root(sg.outputs[0])] != y:
        raise ValueError("moe kernel: the subgraph output is not produced by a kernel")
    func = f"inline void {fn}({signature}) {{\n" + "\n".join(body) + "\n}\n"
    return "".join(spaces), func


def moe_config(graph: Graph, node: Node, design, ctx) -> tuple[str, str]:
    """(decls, call) of a moe node; see MoE.kernel_config / emit_config."""
    from hwgen.codegen.cpp import c_int, member_array, modes, struct

    p = MoE().params(graph, node)
    gate: Graph = node.attrs["_gate"]
    experts: list[Graph] = node.attrs["_experts"]
    x, out = graph.tensors[node.inputs[0]], graph.tensors[node.outputs[0]]
    n_in, n_out = x.shape[-1], out.shape[-1]
    tokens = x.size // n_in
    n_exp, k = len(experts), int(node.attrs["k"])
    p_t = gate.tensors[gate.outputs[0]].qtype
    y_types = [sg.tensors[sg.outputs[0]].qtype for sg in experts]
    if any(t.c_type() != y_types[0].c_type() for t in y_types):
        raise ValueError("moe kernel: the experts' outputs must share one storage type")
    if any(sg.tensors[sg.outputs[0]].size != tokens * n_out for sg in experts):
        raise ValueError("moe kernel: an expert's output is not [tokens, n_out]")

    def centred(qt) -> int:
        zp = int(qt.zero_point)
        return max(abs(qt.qmin - zp), abs(qt.qmax - zp))

    bound = k * max(centred(p_t) * m * centred(t) for m, t in zip(p["mults"], y_types))
    x_c, p_c, y_c = x.qtype.c_type(), p_t.c_type(), y_types[0].c_type()
    # the runners first (their calls are spelled before the ports they use are known)
    runners = [_sub_runner(gate, "moe_gate_run", "g", "const X* moe_x, P* moe_y, const unsigned moe_n PORTS",
                           "moe_x", "moe_y", design, ctx)]
    for e, sg in enumerate(experts):
        runners.append(_sub_runner(sg, f"moe_expert{e}_run", f"e{e}_",
                                   "const X* moe_x, const unsigned moe_n, Y* moe_y PORTS", "moe_x", "moe_y", design, ctx))
    ports = sorted(set(_PORT.findall("".join(f for _, f in runners))), key=lambda s: int(s[4:]))
    port_types = {b.port: b.ctype for b in ctx.blobs.values()} if ctx is not None else {}
    params = "".join(f", const {port_types[w]}* {w}" for w in ports)
    args = "".join(f", {w}" for w in ports)

    def fill(text: str) -> str:
        return text.replace("const X*", f"const {x_c}*").replace("P* moe_y", f"{p_c}* moe_y") \
            .replace("Y* moe_y", f"{y_c}* moe_y").replace(" PORTS", params)

    decls = "".join(ns for ns, _ in runners) + "".join(fill(f) for _, f in runners)
    cases = "".join(f"    case {e}: moe_expert{e}_run(x, n, y{args}); break;\n" for e in range(n_exp))
    decls += (f"inline void moe_experts_run(unsigned e, const {x_c}* x, unsigned n, {y_c}* y{params}) {{\n"
              f"  switch (e) {{\n{cases}    default: break;\n  }}\n}}\n")
    fields = (f"  typedef {x_c} x_t;\n  typedef {p_c} prob_t;\n  typedef {y_c} y_t;\n"
              f"  typedef {out.qtype.c_type()} out_t;\n"
              f"  typedef ap_int<{numerics.bits_for_range(-bound, bound)}> acc_t;\n"
              f"  static const unsigned n_tokens = {tokens}, n_in = {n_in}, n_out = {n_out}, "
              f"n_experts = {n_exp}, top_k = {k};\n"
              f"  static const long long p_zero_point = {c_int(p['p_zero_point'])};\n"
              f"  static const int shift = {int(p['shift'])};\n"
              f"  static const long long out_zero_point = {c_int(common.scalar_zp(out.qtype))};\n" + modes(out.qtype)
              + f"  struct gate {{\n    static void run(const x_t* x, prob_t* y{params}) {{ moe_gate_run(x, y, "
              f"{tokens}{args}); }}\n  }};\n"
              f"  struct experts {{\n    static void run(unsigned e, const x_t* x, unsigned n, y_t* y{params}) {{ "
              f"moe_experts_run(e, x, n, y{args}); }}\n  }};\n")
    decls += struct("cfg", fields, [member_array("cfg", "long long", "y_zero_point", p["y_zero_points"]),
                                    member_array("cfg", "long long", "mult", p["mults"])])
    return decls, f"hwgen::moe<cfg>(in0, out0{args});"
