"""Calibration of the cost model against the hand-written reference designs (shared/reference/ANCHORS.md).

Edge-MoE (ICCAD 2023) on M3ViT's shape (D=192, 12 layers, 3 heads, 129 tokens, 6 MoE layers of 16 experts,
top-2), ZCU102 at 300 MHz, is expressed as a hwgen Design:

- one reusable linear kernel, 16x16 tile, one token lane, each op's whole weight matrix loaded into on-chip
  buffers (LINEAR_IN_SIZE = LINEAR_OUT_SIZE = 16; load_linear_weights then compute_linear, not overlapped);
- attention with P = 4 query rows (ATTN_MATMUL_PARALLEL) and 8 elements of the head dimension per row per
  cycle (FEATURE_BLOCK_SIZE = 256-bit AXI / 32-bit activations), K and V re-streamed for every group of P
  rows, the scores written to memory between Q*K^T and *V;
- element-wise kernels 8 elements per cycle; every intermediate through DRAM; weights reloaded per layer of
  each image over one 256-bit m_axi port;
- its types: weights ap_fixed<16,2>, activations ap_fixed<32,10> (hwgen's int8 graph is re-typed for it).

The model must reproduce Edge-MoE's ideal cycle count (6.23 M cycles = 20.8 ms) within 10% with the ideal
memory model, and its measured ~59 ms within 25% with the realistic one (tests/test_cost.py).
"""

from __future__ import annotations

from hwgen.design import AttentionKnobs, Design, ElementwiseKnobs, LinearKnobs, MemoryKnobs
from hwgen.ir import Graph, Node, QType
from hwgen.ir.graph import Tensor

EDGE_MOE = {
    "board": "zcu102", "clock_mhz": 300.0,
    "ideal_cycles": 6.23e6, "ideal_ms": 20.8,
    "measured_ms": 59.0, "measured_gops": 26.0,
}
UBIMOE = {
    "claim": "1.34x (ZCU102) and 3.35x (U280) the throughput of prior FPGA designs (abstract)",
    "zcu102_speedup": 1.34, "u280_speedup": 3.35,
    "vit_s_u50_ms": 26.4, "vit_s_u50_gops": 350.0,
}
M3VIT_GOP = 1.57  # per image (0.78 GMAC)


def edge_moe_design(board: str = "zcu102") -> Design:
    return Design(
        regime="streaming", board=board, clock_mhz=300.0,
        linear=LinearKnobs(tile_in=16, tile_out=16, lanes=1, weight_buffer="matrix", pack_int8=False),
        attention=AttentionKnobs(rows=4, dot=8, kv_buffer=False, fused=False),
        elementwise=ElementwiseKnobs(par=8),
        memory=MemoryKnobs(axi_bits=256, weight_ports=1, overlap=False, intermediates="dram", storage="bram",
                           prefetch=2),
        weights_offchip=True,
    ).validate()


def edge_moe_types(graph: Graph, weight: QType | None = None, act: QType | None = None) -> Graph:
    """A copy of `graph` (structure shared, tensors re-typed) with Edge-MoE's numeric types: constants
    ap_fixed<16,2>, activations ap_fixed<32,10>; float model inputs stay float. Only for costing."""
    weight = weight or QType.fixed(16, 2)
    act = act or QType.fixed(32, 10)
    return _retyped(graph, weight, act, {})


def _retyped(graph: Graph, weight: QType, act: QType, memo: dict) -> Graph:
    g = Graph(graph.name)
    g.inputs, g.outputs, g.meta = list(graph.inputs), list(graph.outputs), dict(graph.meta)
    for name, t in graph.tensors.items():
        nt = memo.get(id(t))
        if nt is None:
            q = t.qtype
            nq = q if (q is None or q.is_float) else (weight if t.is_const else act)
            nt = memo[id(t)] = Tensor(t.name, t.shape, nq, t.data, t.source)
        g.tensors[name] = nt
    for n in graph.nodes:
        attrs = {}
        for k, v in n.attrs.items():
            if isinstance(v, Graph):
                v = _retyped(v, weight, act, memo)
            elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Graph) for x in v):
                v = [_retyped(x, weight, act, memo) for x in v]
            attrs[k] = v
        g.nodes.append(Node(n.name, n.op, list(n.inputs), list(n.outputs), attrs, list(n.source)))
    return g


def rooflines(graph: Graph, board, clock_mhz: float | None = None, pack: bool = True) -> dict:
    """The two physical limits of one image on a board: DSP-bound compute (every DSP doing one MAC per
    cycle, or two/three int8 MACs with packing) and the off-chip bandwidth needed to read the weights once
    (the experts' alone, and all of them), at the board's peak bandwidth."""
    from hwgen.boards import get_board
    from hwgen.ir.graph import walk

    board = get_board(board) if isinstance(board, str) else board
    clock = float(clock_mhz or board.clock_mhz)
    macs = expert_bytes = all_bytes = 0.0

    def weights(g: Graph) -> float:
        return sum(g.tensors[i].size * g.tensors[i].qtype.bits / 8 for n in g.nodes for i in n.inputs[1:]
                   if i and g.tensors[i].is_const and g.tensors[i].qtype is not None and not g.tensors[i].qtype.is_float)

    from hwgen.cost import Estimator
    from hwgen.design import Design

    e = Estimator(Design(), board).run(graph)
    macs = e.macs
    for g, n in walk(graph):
        if n.op == "moe":
            expert_bytes += sum(weights(sg) for sg in n.attrs["_experts"])
    all_bytes = sum(weights(g) for g in [graph] + [sg for _, n in walk(graph) for sg in
                                                   ([n.attrs["_gate"], *n.attrs["_experts"]] if n.op == "moe" else [])])
    per_dsp = board.int8_macs_per_dsp if pack else 1
    bw = board.bandwidth_gbs * 1e9
    return {"macs": macs, "compute_ms": macs / (board.resources.dsp * per_dsp * clock * 1e6) * 1e3,
            "compute_ms_unpacked": macs / (board.resources.dsp * clock * 1e6) * 1e3,
            "expert_weight_bytes": expert_bytes, "expert_weights_ms": expert_bytes / bw * 1e3,
            "all_weight_bytes": all_bytes, "all_weights_ms": all_bytes / bw * 1e3}


_M3VIT: dict = {}


def load_m3vit_shape() -> Graph:
    """The lowered M3ViT-shaped model (models/m3vit_shape.py builds and caches the ONNX file on first use),
    loaded once per process."""
    if "graph" not in _M3VIT:
        import sys
        from pathlib import Path

        from hwgen.frontend import load_graph

        models = Path(__file__).resolve().parents[2] / "models"
        if str(models) not in sys.path:
            sys.path.insert(0, str(models))
        from m3vit_shape import ensure_m3vit_shape

        _M3VIT["graph"] = load_graph(ensure_m3vit_shape())
    return _M3VIT["graph"]
