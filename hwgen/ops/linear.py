"""linear: y = requant((x - zx) @ (W - zw) + b), W a constant [K, N].

Lowers MatMul with a constant right operand and Gemm. The same op (and, in hardware, the same
reusable kernel) serves Q/K/V/projections, FFNs, MoE experts and the classifier head.
"""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.codegen.cpp import c_array, c_int, int_ctype, modes
from hwgen.ir import Graph, Node, QType
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, get, register


@register
class Linear(OpDef):
    name = "linear"
    bias_inputs = (2,)
    onnx_types = ("MatMul", "Gemm")

    def lower(self, graph: Graph, node: Node) -> None:
        a, b = node.inputs[0], node.inputs[1]
        if node.op == "onnx.MatMul":
            if not graph.tensors[b].is_const:
                if graph.tensors[a].is_const:
                    raise self.unsupported(node, "MatMul with a constant left operand")
                get("matmul").lower(graph, node)
                return
            if len(graph.shape(b)) != 2:
                raise self.unsupported(node, "MatMul weight must be 2-D")
            node.op, node.inputs, node.attrs = self.name, [a, b], {}
            return
        # Gemm
        if node.attrs.get("transA", 0):
            raise self.unsupported(node, "Gemm with transA=1")
        if float(node.attrs.get("alpha", 1.0)) != 1.0 or float(node.attrs.get("beta", 1.0)) != 1.0:
            raise self.unsupported(node, "Gemm with alpha/beta other than 1")
        if not graph.tensors[b].is_const:
            raise self.unsupported(node, "Gemm with a non-constant weight")
        if node.attrs.get("transB", 0):
            b = _transpose_const(graph, b)
        c = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        if c is not None and not graph.tensors[c].is_const:
            raise self.unsupported(node, "Gemm with a non-constant bias")
        node.op, node.inputs, node.attrs = self.name, [a, b] + ([c] if c else []), {}

    def check(self, graph: Graph, node: Node) -> None:
        w = graph.tensors[node.inputs[1]]
        if w.qtype.per_channel and w.qtype.axis != 1:
            raise self.unsupported(node, "per-channel weight scales must be along the output axis")
        x = graph.tensors[node.inputs[0]].qtype
        if x.per_channel:
            raise self.unsupported(node, "per-channel activation scales")
        if len(node.inputs) > 2:
            bias = graph.tensors[node.inputs[2]]
            if bias.size != w.shape[1]:
                raise self.unsupported(node, f"bias of {bias.size} elements for {w.shape[1]} outputs")

    # -- integer parameters: shared by the simulator and the code generator ------------------------
    def params(self, graph: Graph, node: Node) -> dict:
        x = graph.tensors[node.inputs[0]].qtype
        w = graph.tensors[node.inputs[1]]
        y = graph.tensors[node.outputs[0]].qtype
        k, n = w.shape
        sw, zw = w.qtype.channel_params(n)
        weight = np.asarray(w.data, dtype=np.int64) - zw[None, :]
        acc_scale = float(x.scale) * sw
        bias = np.zeros(n, dtype=np.int64)
        if len(node.inputs) > 2:
            bt = graph.tensors[node.inputs[2]]
            sb, zb = bt.qtype.channel_params(n)
            real = (np.asarray(bt.data, dtype=np.int64).reshape(-1) - zb) * sb
            bias = np.rint(real / acc_scale).astype(np.int64)  # exact when sb == sx*sw (onnxruntime's int32 bias)
        m0, shift = common.requant_params(acc_scale, y)
        xmax = max(abs(x.qmin - int(x.zero_point)), abs(x.qmax - int(x.zero_point)))
        bias_abs = int(np.abs(bias).max(initial=0))
        acc_bound = xmax * int(np.abs(weight).max(initial=0)) * k + bias_abs
        matmul = numerics.WeightMatmul(weight, int(x.zero_point), x.qmin, x.qmax, bias)
        if numerics.max_abs(matmul.column_offset) * numerics.max_abs(np.asarray(m0)) >= 2**62:  # an offset that int64 cannot hold
            matmul = numerics.WeightMatmul(weight, int(x.zero_point), x.qmin, x.qmax, bias, allow_raw=False)
        rescale = common.rescaler(y, [m0], shift, [matmul.bound], offset=matmul.column_offset * m0)
        return {"weight": weight, "bias": bias, "m0": m0, "shift": shift, "x_zero_point": int(x.zero_point),
                "acc_bits": max(int(acc_bound).bit_length() + 1, 2), "in_features": k, "out_features": n,
                "_matmul": matmul, "_rescale": rescale}

    def exact_output_type(self, graph: Graph, node: Node) -> QType | None:
        """An integer type on the output's exact grid when the operands are quantised but the output is left
        in float (QONNX), as wide as the output's range needs (None: not exact, or too wide)."""
        x = common.typed_or_none(graph, node.inputs[0])
        w = graph.tensors[node.inputs[1]]
        if x is None or x.per_channel or not w.is_const or common.typed_or_none(graph, w.name) is None or len(w.shape) != 2:
            return None
        k, n = w.shape
        sw, zw = w.qtype.channel_params(n)
        grid = float(x.scale) * sw
        step = float(grid.min())
        ratios = common.integer_ratios(grid, step)
        if ratios is None:
            return None
        wc = np.asarray(w.data, dtype=np.int64) - zw[None, :]
        xlo, xhi = common.centred_range(x)
        hi = np.maximum(wc * xlo, wc * xhi).sum(axis=0, dtype=object)
        lo = np.minimum(wc * xlo, wc * xhi).sum(axis=0, dtype=object)
        if len(node.inputs) > 2 and node.inputs[2]:
            b = graph.tensors[node.inputs[2]]
            if common.typed_or_none(graph, b.name) is None or not b.is_const or b.size != n:
                return None
            if not common.bias_on_grid(x, w.qtype, n, b):
                return None
            sb, zb = b.qtype.channel_params(n)
            bias = np.rint((np.asarray(b.data, dtype=np.int64).reshape(-1) - zb) * sb / grid).astype(np.int64)
            hi, lo = hi + bias.astype(object), lo + bias.astype(object)
        hi, lo = hi * ratios.astype(object), lo * ratios.astype(object)
        return common.exact_type(int(min(lo)), int(max(hi)), step)

    # -- C++ kernel (templates/kernels/linear.h) ---------------------------------------------------
    kernel_header = "linear.h"

    def schedule(self, graph: Graph, node: Node, design) -> tuple[int, int, int]:
        k, n = graph.shape(node.inputs[1])
        return linear_schedule(design, node.name, linear_rows(graph, node), k, n)

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::linear<cfg>(x, y, w, b, m0, sh); knobs = (tile_in, tile_out, n_lanes)."""
        return linear_kernel_config(graph, node, knobs)

    def emit_config(self, graph: Graph, node: Node, ctx) -> tuple[str, str]:
        """As kernel_config, but W goes through ctx.weights: off chip (m_axi blob) in the streaming regime."""
        return linear_kernel_config(graph, node, self.schedule(graph, node, ctx.design), ctx)

    # -- cost model (hwgen/cost) ---------------------------------------------------------------------
    cost_groups = ('linear', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """The reusable linear kernel: T_IN x T_OUT MACs per lane per cycle at II=1, LANES token lanes
        sharing every weight tile (FINN style: cycles = ceil(MH/PE) * ceil(MW/SIMD) * vectors).

        T rows (tokens; inside a MoE expert the expected T*k/E), K inputs, N outputs, L lanes:
          compute = G * ceil(N/T_OUT) * ceil(K/T_IN) + depth,   G = ceil(T/L) (expected value in experts)
          MACs    = T*K*N
          weights = K*N*bits_w/8 + 4*N (bias) bytes, fetched once per op per image ("tile", "matrix") or G
                    times ("none"), at B = min(ports * port bytes/cycle, total bytes/cycle)
          load    = weight bytes / B  (+ memory latency)
          overlap (ping/pong): "tile"   ntiles * max(G, W_t) + W_t + max(0, lat - (prefetch-1)*G)
                               "matrix" max(compute, load)   (the next op's matrix loads meanwhile)
          no overlap:          compute + load
          (W_t = one tile's bytes / B, lat = memory latency; weights on chip: load = 0)
          DSP     = T_IN*T_OUT*L multipliers of (bits_x+1) x bits_w (packed two/three per DSP when enabled and
                    valid), + requantisers ceil(T_OUT*L / ceil(K/T_IN)) of acc x 32 bits
          BRAM    "tile": x [T][K] in T_IN*L banks, partial sums [T][T_OUT] in T_OUT*L banks, a weight FIFO of
                    `prefetch` tiles; "matrix": W [K][N] in T_IN*T_OUT banks (x2 with overlap), one x row per
                    lane; "none": one x row per lane; weights on chip: W in T_IN*T_OUT banks
        """
        from hwgen.cost.model import default_context

        ctx = ctx or default_context(design, board)
        k, n = graph.shape(node.inputs[1])
        rows = linear_rows(graph, node)
        return linear_cost(self.name, ctx, node, rows, k, n, graph.tensors[node.inputs[0]].qtype,
                           graph.tensors[node.inputs[1]].qtype, graph.tensors[node.outputs[0]].qtype)

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        p = self.params(graph, node)
        acc = p["_matmul"](inputs[0])  # zero point and bias come in as the requantisation's offset
        return [common.rescale(p["_rescale"], [acc], stats, node.outputs[0])]


def linear_rows(graph: Graph, node: Node) -> int:
    """Rows (tokens) of one sample the linear kernel runs over (patch_embed: the patches)."""
    x = graph.tensors[node.inputs[0]]
    if node.op == "patch_embed":
        _, _, h, w = x.shape
        kh, kw = node.attrs["kernel"]
        return (h // kh) * (w // kw)
    return x.size // graph.shape(node.inputs[1])[0]


def linear_schedule(design, node_name: str, n_rows: int, k: int, n: int) -> tuple[int, int, int]:
    """(tile_in, tile_out, n_lanes) from the Design's linear knobs, clipped to the dims; the unrolled
    regime makes everything parallel. Shared by linear, patch_embed and matmul (one tiled core)."""
    if design.regime == "unrolled":
        return max(k, 1), max(n, 1), max(n_rows, 1)
    knobs = design.knobs_for(node_name, "linear")
    return (max(1, min(knobs.tile_in, k)), max(1, min(knobs.tile_out, n)), max(1, min(knobs.lanes, n_rows)))


def linear_kernel_config(graph: Graph, node: Node, knobs=None, ctx=None) -> tuple[str, str]:
    """(decls, call) for linear.h / patch_embed.h from Linear.params(). With an EmitContext `ctx` the weight
    array goes through ctx.weights (off chip when streaming); without, it is declared in decls as `w`."""
    p = get(node.op).params(graph, node)
    x = graph.tensors[node.inputs[0]]
    y = graph.tensors[node.outputs[0]].qtype
    k, n = p["in_features"], p["out_features"]
    rows = linear_rows(graph, node)
    ti, to, nl = knobs if knobs is not None else (min(16, k), min(16, n), 1)
    extra, fn = "", "linear"
    if node.op == "patch_embed":
        _, c, h, w = x.shape
        kh, kw = node.attrs["kernel"]
        extra = (f"  static const int channels = {c}, height = {h}, width = {w}, kernel_h = {kh}, "
                 f"kernel_w = {kw};\n")
        fn = "patch_embed"
    weight_t = int_ctype(p["weight"])
    decls = (
        "struct cfg {\n"
        f"  typedef {x.qtype.c_type()} in_t;\n"
        f"  typedef {weight_t} weight_t;\n"
        f"  typedef {int_ctype(p['bias'])} bias_t;\n"
        f"  typedef ap_int<{p['acc_bits']}> accum_t;\n"
        f"  typedef ap_uint<{common.MULT_BITS}> mult_t;\n"
        f"  typedef {int_ctype(p['shift'])} shift_t;\n"
        f"  typedef {y.c_type()} out_t;\n"
        f"  static const int n_rows = {rows}, n_in = {k}, n_out = {n};\n"
        f"  static const int tile_in = {ti}, tile_out = {to}, n_lanes = {nl};\n"
        f"  static const long long x_zero_point = {c_int(p['x_zero_point'])};\n"
        f"  static const long long out_zero_point = {c_int(common.scalar_zp(y))};\n"
        + modes(y) + extra + "};\n")
    if ctx is None:
        decls += c_array("w", p["weight"], "cfg::weight_t")
        w = "w"
    else:
        w = ctx.weights(f"w_{node.name}", p["weight"], weight_t)
    decls += (c_array("b", p["bias"], "cfg::bias_t") + c_array("m0", np.broadcast_to(p["m0"], (n,)), "cfg::mult_t")
              + c_array("sh", np.broadcast_to(p["shift"], (n,)), "cfg::shift_t"))
    return decls, f"hwgen::{fn}<cfg>(in0, out0, {w}, b, m0, sh);"


def linear_cost(op: str, ctx, node: Node, rows: int, k: int, n: int, x_qt, w_qt, y_qt):
    """Linear.cost's formulas for any user of the tiled core (linear, patch_embed, MoE experts)."""
    import math

    from hwgen.cost import model as cm

    d, mem = ctx.design, ctx.mem
    t = rows * ctx.row_scale
    if ctx.unrolled and "linear" not in d.overrides.get(node.name, {}):
        ti, to, nl, wbuf, pack = k, n, max(rows, 1), "matrix", d.linear.pack_int8
    else:
        kn = ctx.knobs(node, "linear")
        ti, to, nl, wbuf, pack = min(kn.tile_in, k), min(kn.tile_out, n), min(kn.lanes, max(rows, 1)), \
            kn.weight_buffer, kn.pack_int8
    g = cm.groups(t, nl)
    a_bits, w_bits = cm.centred_bits(x_qt), cm.centred_bits(w_qt)
    acc = a_bits + w_bits + max(1, math.ceil(math.log2(max(k, 2)))) + 1
    tiles = cm.ceil_div(n, to) * cm.ceil_div(k, ti)
    depth = 8 + math.ceil(math.log2(max(ti, 2)))
    compute = g * tiles + depth
    macs = t * k * n
    offchip = d.weights_offchip and not ctx.unrolled
    wbytes = (k * n * cm.op_bits(w_qt) / 8 + 4 * n) if offchip else 0.0
    fetches = g if wbuf == "none" else 1
    mem_bits = d.memory.axi_bits
    rate = mem.rate(mem_bits, d.memory.weight_ports)
    load = fill = 0.0
    if offchip:
        tile_b = ti * to * cm.op_bits(w_qt) / 8
        w_t = tile_b / rate
        load = fetches * wbytes / rate + mem.latency
        if not d.memory.overlap:
            cycles = compute + load + (tiles * fetches * mem.latency if wbuf != "matrix" else 0.0)
        elif wbuf == "matrix":
            cycles = max(compute, load)
        else:
            per_tile = max(g if wbuf == "tile" else 1.0, w_t)
            fill = w_t + max(0.0, mem.latency - (d.memory.prefetch - 1) * g)
            cycles = tiles * fetches * per_tile + fill + depth
    else:
        cycles = compute
    x_bytes = t * k * cm.op_bits(x_qt) / 8
    y_bytes = t * n * cm.op_bits(y_qt) / 8
    io, act_bytes = cm.act_io(ctx, node, [x_bytes], [y_bytes])
    cycles = max(cycles, io, (wbytes * fetches + act_bytes) / mem.total)
    # -- resources ----------------------------------------------------------------------------------------
    res = cm.mac_array(ti * to * nl, a_bits, w_bits, acc, ctx.board, pack, outputs=to * nl, reduce=ti)
    res += cm.requantiser(acc, ctx.board, math.ceil(to * nl / max(1, cm.ceil_div(k, ti))))
    st = d.memory.storage
    if offchip and wbuf == "tile":
        res += cm.memory(a_bits, cm.ceil_div(rows, nl) * cm.ceil_div(k, ti), ti * nl, st, ctx.board)
        res += cm.memory(acc, cm.ceil_div(rows, nl), to * nl, st, ctx.board)
        width = min(ti * to * cm.op_bits(w_qt), mem_bits * d.memory.weight_ports)
        res += cm.memory(width, d.memory.prefetch * math.ceil(ti * to * cm.op_bits(w_qt) / width), 1, st, ctx.board)
        res += cm.Resources(ff=2 * ti * to * w_bits)
    elif offchip and wbuf == "matrix":
        res += cm.memory(w_bits, cm.ceil_div(k, ti) * cm.ceil_div(n, to), ti * to, st, ctx.board,
                         copies=2 if d.memory.overlap else 1)
        res += cm.memory(a_bits, cm.ceil_div(k, ti), ti * nl, st, ctx.board)
    else:
        if offchip:  # "none": a tile register pair and one x row per lane
            res += cm.Resources(ff=2 * ti * to * w_bits)
        else:        # weights stay on chip for good
            res += cm.memory(w_bits, cm.ceil_div(k, ti) * cm.ceil_div(n, to), ti * to, st, ctx.board)
        res += cm.memory(a_bits, cm.ceil_div(k, ti), ti * nl, st, ctx.board)
    if offchip:
        res += cm.axi_adapter(mem_bits, d.memory.weight_ports)
    res += cm.control()
    sig = f"{ti}x{to}x{nl}" if node.name in d.overrides else ""
    kernel = ctx.kernel("linear", node, sig)
    blocking = wbuf == "tile" and offchip
    formula = (f"{g:.4g} x {tiles} tiles; {macs:.3g} MAC; load {load:.4g} ({wbuf}, "
               f"{'overlap' if d.memory.overlap else 'serial'})")
    return cm.Cost(node.name, op, kernel, cycles, compute=compute, load=load, io=io, depth=depth, macs=macs,
                   weight_bytes=wbytes * fetches, act_bytes=act_bytes, res=res, rows=max(t, 1.0),
                   blocking=blocking, streams=not blocking, formula=formula)


def _transpose_const(graph: Graph, name: str) -> str:
    t = graph.tensors[name]
    qt = t.qtype
    if qt is not None and qt.axis is not None:
        qt = QType.integer(qt.bits, qt.signed, qt.scale, qt.zero_point, 1 - qt.axis, qt.rounding, qt.overflow)
    new = graph.add_const(name + "_T", np.ascontiguousarray(np.asarray(t.data).T), qt, source=t.source)
    return new.name

