"""Cost model: every op has a cost, the resource rules, the composition, the calibration against Edge-MoE,
the board database and the csynth.xml parser."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hwgen.boards import BOARDS, Board, Resources, get_board
from hwgen.cost import Estimator, estimate
from hwgen.cost import model as cm
from hwgen.cost.calibration import EDGE_MOE, edge_moe_design, edge_moe_types
from hwgen.cost.csynth import compare, load_reports, parse_csynth
from hwgen.design import AttentionKnobs, Design, ElementwiseKnobs, LinearKnobs, MemoryKnobs
from hwgen.errors import HwgenError
from hwgen.ir import Graph, QType
from hwgen.ir.graph import walk
from hwgen.ops.base import REGISTRY, OpDef

ROOT = Path(__file__).resolve().parents[1]
ONNX = ROOT / "models" / "onnx"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@lru_cache(maxsize=None)
def digits(name: str = "moe_vit_digits") -> Graph:
    from hwgen.frontend import load_graph

    return load_graph(ONNX / f"{name}.qdq.dynamo.onnx")


def m3vit() -> Graph:
    """The M3ViT-shaped model (built on first use, which needs torch; cached in models/cache)."""
    if not (ROOT / "models" / "cache" / "m3vit_shape.qdq.onnx").exists():
        pytest.importorskip("torch")
    from hwgen.cost.calibration import load_m3vit_shape

    return load_m3vit_shape()


# ------------------------------------------------------------------------------------------------------------
# every op has a cost
# ------------------------------------------------------------------------------------------------------------
def _small_graphs() -> list:
    """Tiny graphs for ops the bundled models do not use (standalone matmul/mul/softmax, slice, split,
    reduce_mean)."""
    q = QType.integer(8, True, 0.05, 3)
    out = []
    g = Graph("extra")
    g.add_tensor("a", (1, 2, 5, 8), q)
    g.add_tensor("b", (1, 2, 8, 6), q)
    g.inputs = ["a", "b"]
    g.add_tensor("mm", (1, 2, 5, 6), q)
    g.add_node("matmul", ["a", "b"], ["mm"])
    g.add_tensor("ml", (1, 2, 5, 6), q)
    g.add_node("mul", ["mm", "mm"], ["ml"])
    g.add_tensor("sm", (1, 2, 5, 6), QType.integer(8, False, 1 / 255, 0))
    g.add_node("softmax", ["ml"], ["sm"])
    g.add_tensor("sl", (1, 2, 3, 6), q)
    g.add_node("slice", ["sm"], ["sl"], attrs={"index": [(0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 6, 1)]})
    g.add_tensor("s1", (1, 2, 3, 2), q)
    g.add_tensor("s2", (1, 2, 3, 4), q)
    g.add_node("split", ["sl"], ["s1", "s2"], attrs={"axis": 3, "sizes": [2, 4]})
    g.add_tensor("rm", (1, 2, 1, 4), q)
    g.add_node("reduce_mean", ["s2"], ["rm"], attrs={"axes": [2], "keepdims": 1})
    g.outputs = ["rm", "s1"]
    out.append(g)
    return out


def _all_nodes():
    from hwgen.frontend import load_graph

    bert = load_graph(ONNX / "bert_digits.qdq.legacy.onnx")
    for graph in (digits("moe_vit_digits"), digits("vit_digits"), bert, *_small_graphs()):
        yield graph


def test_every_registered_op_has_its_own_cost_method():
    missing = [name for name, op in REGISTRY.items() if type(op).cost is OpDef.cost]
    assert not missing, f"ops without a cost model: {missing}"


def test_the_default_cost_raises():
    class Dummy(OpDef):
        name = "dummy"

    with pytest.raises(NotImplementedError):
        Dummy().cost(None, None, Design(), get_board("zcu102"))


@pytest.mark.parametrize("regime", ["streaming", "unrolled"])
def test_every_op_returns_a_nonzero_cost(regime):
    seen = set()
    design = Design(regime=regime)
    for graph in _all_nodes():
        est = Estimator(design, "zcu102")
        est.run(graph)  # analysis + schedule on the whole graph
        for g, node in walk(graph):
            ctx = est.ctx
            c = REGISTRY[node.op].cost(g, node, design, est.board, ctx)
            assert isinstance(c, cm.Cost), node.op
            assert c.nonzero(), f"{node.op} {node.name}: zero cost"
            assert c.cycles >= 0 and all(v >= 0 for v in c.res.as_dict().values())
            seen.add(node.op)
    assert set(REGISTRY) <= seen, f"not exercised: {set(REGISTRY) - seen}"


def test_cost_without_a_context_works_for_a_single_node():
    g = digits()
    node = next(g.find("linear"))
    c = REGISTRY["linear"].cost(g, node, Design(), get_board("zcu102"))
    assert c.cycles > 0 and c.macs > 0 and c.res.dsp > 0


# ------------------------------------------------------------------------------------------------------------
# resource rules
# ------------------------------------------------------------------------------------------------------------
def test_dsp_rules():
    z, v = get_board("zcu102"), get_board("vck190")
    assert cm.dsp_per_mult(8, 8, z) == 1
    assert cm.dsp_per_mult(27, 18, z) == 1 and cm.dsp_per_mult(18, 27, z) == 1
    assert cm.dsp_per_mult(32, 16, z) == 2        # Edge-MoE's 32-bit activations x 16-bit weights
    assert cm.dsp_per_mult(32, 32, z) == 4
    assert cm.dsp_per_mult(4, 8, z) == 0          # fabric multiplier
    assert cm.dsp_per_mult(27, 24, v) == 1 and cm.dsp_per_mult(27, 24, z) == 2
    assert cm.packable(9, 8, z) and not cm.packable(10, 9, z)
    assert cm.packable(8, 8, v) and not cm.packable(9, 8, v)
    plain = cm.mac_array(256, 9, 8, 26, z, pack=False)
    packed = cm.mac_array(256, 9, 8, 26, z, pack=True)
    assert plain.dsp == 256 and packed.dsp == 128 and packed.lut > plain.lut
    assert cm.mac_array(256, 9, 8, 26, v, pack=True).dsp == 256  # DSP58 packing needs 8-bit operands
    assert cm.mac_array(300, 8, 8, 20, v, pack=True).dsp == 100


def test_memory_rules():
    assert cm.bram18k(36, 512) == 1 and cm.bram18k(8, 2048) == 1 and cm.bram18k(8, 2049) == 2
    assert cm.bram18k(72, 512) == 2 and cm.bram18k(1, 16384) == 1 and cm.bram18k(0, 10) == 0
    assert cm.uram(72, 4096) == 1 and cm.uram(73, 4096) == 2
    z, u = get_board("zcu102"), get_board("u280")
    assert cm.memory(8, 1, 4).ff == 32                        # registers
    assert cm.memory(8, 64, 2).lut == 2 * 8 and cm.memory(8, 64, 2).bram18k == 0   # LUTRAM
    assert cm.memory(8, 4096, 3, "bram", z).bram18k == 3 * 2
    assert cm.memory(64, 8192, 1, "auto", u).uram == 2          # 512 Kb bank -> 2 URAMs (4096 deep each)
    assert cm.memory(64, 8192, 1, "auto", z).uram == 0          # ZCU102 has none
    assert cm.memory(64, 8192, 1, "bram", u).uram == 0
    assert cm.memory(8, 4096, 1, "uram", u).uram == 1 and cm.memory(8, 1024, 1, "auto", u).uram == 0
    assert cm.memory(8, 4096, 3, "bram", z, copies=2).bram18k == 12


def test_memory_system_ideal_and_realistic():
    z = get_board("zcu102")
    ideal, real = cm.MemSystem(z, 300, False), cm.MemSystem(z, 300, True)
    assert ideal.total == pytest.approx(64.0)          # 19.2 GB/s at 300 MHz
    assert ideal.port(256) == 32 and ideal.latency == 0
    assert real.port(256) == pytest.approx(16 * 0.7)   # 128-bit HP port, 70% sustained
    assert real.rate(256, 8) == pytest.approx(real.total)   # capped by the four ports and the DDR
    assert real.latency == pytest.approx(75.0)
    assert real.transfer(1120, 256) == pytest.approx(100 + 75)


# ------------------------------------------------------------------------------------------------------------
# op formulas
# ------------------------------------------------------------------------------------------------------------
def _linear_graph(t=129, k=192, n=192, wbits=8):
    g = Graph("lin")
    g.add_tensor("x", (t, k), QType.integer(8, True, 0.1, 3))
    g.add_const("w", np.zeros((k, n), dtype=np.int64), QType.integer(wbits, True, 0.01, 0))
    g.add_tensor("y", (t, n), QType.integer(8, True, 0.1, -2))
    g.inputs, g.outputs = ["x"], ["y"]
    g.add_node("linear", ["x", "w"], ["y"], name="fc")
    return g


def test_linear_cycle_formula():
    g = _linear_graph()
    node = g.nodes[0]
    z = get_board("zcu102")
    d = Design(linear=LinearKnobs(16, 16, 1, weight_buffer="matrix"), memory=MemoryKnobs(overlap=False))
    c = REGISTRY["linear"].cost(g, node, d, z, cm.default_context(d, z, realistic=False))
    tiles = 12 * 12
    assert c.compute - c.depth == 129 * tiles                      # ceil(T/L) * ceil(N/T_OUT) * ceil(K/T_IN)
    assert c.macs == 129 * 192 * 192
    wbytes = 192 * 192 + 4 * 192
    assert c.weight_bytes == wbytes
    assert c.load == pytest.approx(wbytes / 32)                      # 256-bit port, ideal
    assert c.cycles == pytest.approx(c.compute + c.load)             # no overlap
    d2 = Design(linear=LinearKnobs(16, 16, 3, weight_buffer="matrix"), memory=MemoryKnobs(overlap=True))
    c2 = REGISTRY["linear"].cost(g, node, d2, z, cm.default_context(d2, z, realistic=False))
    assert c2.compute - c2.depth == math.ceil(129 / 3) * tiles
    assert c2.cycles == pytest.approx(max(c2.compute, c2.load))       # ping/pong overlap
    assert c2.res.dsp > 3 * 256 - 1                                   # one DSP per 9x8 MAC, plus requantisers
    d3 = Design(linear=LinearKnobs(16, 16, 3, pack_int8=True))
    c3 = REGISTRY["linear"].cost(g, node, d3, z, cm.default_context(d3, z))
    assert c3.res.dsp < c2.res.dsp * 0.6                              # packed two per DSP
    d4 = Design(linear=LinearKnobs(16, 16, 3, weight_buffer="none"))
    c4 = REGISTRY["linear"].cost(g, node, d4, z, cm.default_context(d4, z))
    assert c4.weight_bytes == pytest.approx(43 * wbytes)              # re-fetched per lane group


def test_linear_is_memory_bound_when_the_weights_cannot_keep_up():
    g = _linear_graph(t=16)  # an expert's handful of tokens
    node = g.nodes[0]
    z = get_board("zcu102")
    d = Design(linear=LinearKnobs(64, 64, 8), memory=MemoryKnobs(weight_ports=4))
    c = REGISTRY["linear"].cost(g, node, d, z, cm.default_context(d, z))
    assert c.cycles >= c.weight_bytes / cm.MemSystem(z, 300).total
    assert c.cycles > 2 * c.compute


# ------------------------------------------------------------------------------------------------------------
# composition
# ------------------------------------------------------------------------------------------------------------
def test_composition_sequences_shared_kernels_and_overlaps_dataflow():
    g = digits()
    base = Design(linear=LinearKnobs(16, 16, 1, weight_buffer="matrix"), elementwise=ElementwiseKnobs(4))
    e_on = estimate(g, base, "zcu102")
    dram = base.copy()
    dram.memory.intermediates = "dram"
    e_dram = estimate(g, dram, "zcu102")
    assert e_dram.latency_cycles > e_on.latency_cycles        # no dataflow overlap through DRAM
    busy = {k.name: k.cycles for k in e_on.kernels}
    # the shared linear kernel runs its ops one after another: latency at least its busy time
    assert e_on.latency_cycles >= busy["linear"]
    # ... and the dataflow overlap makes the latency less than the sum of all kernels' busy time
    assert e_on.latency_cycles < sum(busy.values())
    assert e_on.interval_cycles == e_on.latency_cycles         # streaming: one image at a time
    unrolled = estimate(g, Design(regime="unrolled"), "zcu102")
    assert unrolled.interval_cycles < unrolled.latency_cycles  # a pipeline over images
    assert unrolled.resources.dsp > 10 * e_on.resources.dsp


def test_estimate_totals_and_utilisation():
    g = digits()
    e = estimate(g, Design(), "zcu102")
    tot = sum((k.res for k in e.kernels), Resources())
    assert e.resources.dsp == pytest.approx(round(tot.dsp + 0))
    assert e.utilisation["dsp"] == pytest.approx(e.resources.dsp / 2520)
    assert e.macs == pytest.approx(sum(k.macs for k in e.kernels))
    assert e.gops == pytest.approx(2 * e.macs * e.images_per_s / 1e9)
    assert e.latency_ms == pytest.approx(e.latency_cycles / 300e3)
    d = e.as_dict()
    assert d["board"] == "zcu102" and d["kernels"] and json.dumps(d)
    assert e.fits({"dsp": 1.0}) and not e.fits({"dsp": 1e-4})


def test_moe_cost_recurses_expert_by_expert():
    g = digits()
    node = next(g.find("moe"))
    est = Estimator(Design(), "zcu102")
    est.run(g)
    c = REGISTRY["moe"].cost(g, node, Design(), est.board, est.ctx)
    experts = node.attrs["_experts"]
    lin = [ch for ch in c.children if ch.op == "linear"]
    assert len(lin) == 1 + 2 * len(experts)                     # the gate, then fc1/fc2 of every expert
    tokens, k = 17, int(node.attrs["k"])
    expert_macs = sum(ch.macs for ch in lin[1:])
    dense = sum(math.prod(sg.tensors[n.inputs[1]].shape) for sg in experts for n in sg.nodes if n.op == "linear")
    assert expert_macs == pytest.approx(dense * tokens * k / len(experts))   # expected T*k/E rows each
    assert sum(ch.weight_bytes for ch in lin[1:]) >= dense                    # each expert's weights once
    assert "linear" in c.uses


# ------------------------------------------------------------------------------------------------------------
# calibration against Edge-MoE on M3ViT's shape
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def edge_moe_graph():
    return edge_moe_types(m3vit())


def test_m3vit_shape_has_the_expected_work():
    e = estimate(m3vit(), Design(), "zcu102")
    assert e.macs == pytest.approx(0.78e9, rel=0.02)             # about 0.78 GMAC per image


def test_edge_moe_attention_matches_its_loop_bounds(edge_moe_graph):
    e = estimate(edge_moe_graph, edge_moe_design(), "zcu102", realistic=False)
    qk = next(k for k in e.kernels if k.name == "attention.qk")
    # per layer: ceil((129)/4) groups x 129 keys x 192/8 feature blocks = 102,168 cycles (+ pipeline depth)
    assert qk.cycles / 12 == pytest.approx(33 * 129 * 24, rel=0.002)


def test_calibration_ideal_cycle_count_within_10_percent(edge_moe_graph):
    e = estimate(edge_moe_graph, edge_moe_design(), "zcu102", realistic=False)
    assert e.clock_mhz == 300
    assert e.latency_cycles == pytest.approx(EDGE_MOE["ideal_cycles"], rel=0.10)
    assert e.latency_ms == pytest.approx(EDGE_MOE["ideal_ms"], rel=0.10)


def test_calibration_with_memory_effects_within_25_percent_of_measured(edge_moe_graph):
    e = estimate(edge_moe_graph, edge_moe_design(), "zcu102", realistic=True)
    assert e.latency_ms == pytest.approx(EDGE_MOE["measured_ms"], rel=0.25)
    ideal = estimate(edge_moe_graph, edge_moe_design(), "zcu102", realistic=False)
    assert e.latency_ms > 1.5 * ideal.latency_ms


# ------------------------------------------------------------------------------------------------------------
# boards
# ------------------------------------------------------------------------------------------------------------
ANCHOR_DEVICES = {  # shared/reference/ANCHORS.md, "Device budgets"
    "zcu102": (274080, 548160, 1824, 0, 2520), "zcu104": (230400, 460800, 624, 96, 1728),
    "u50": (871680, 1743360, 2688, 640, 5952), "u250": (1728000, 3456000, 5376, 1280, 12288),
    "u280": (1303680, 2607360, 4032, 960, 9024), "vck190": (899840, 1799680, 1934, 463, 1968),
}


def test_board_database_matches_the_device_tables():
    assert set(BOARDS) == set(ANCHOR_DEVICES)
    for name, (lut, ff, bram, uram, dsp) in ANCHOR_DEVICES.items():
        assert BOARDS[name].resources == Resources(lut, ff, bram, uram, dsp), name
        BOARDS[name].validate()
    u280 = BOARDS["u280"]
    assert u280.slrs[0] == Resources(400800, 801600, 1200, 320, 2736)
    assert u280.slrs[1].dsp == 2880 and u280.bandwidth_gbs == 460 and BOARDS["zcu102"].bandwidth_gbs == 19.2
    assert BOARDS["vck190"].dsp_kind == "DSP58" and BOARDS["vck190"].int8_macs_per_dsp == 3


def test_user_boards_from_yaml_and_json(tmp_path):
    y = tmp_path / "mine.yaml"
    y.write_text("name: mine\npart: xczu7ev-ffvc1156-2-e\nresources: {lut: 230400, ff: 460800, bram18k: 624, "
                 "uram: 96, dsp: 1728}\nbandwidth_gbs: 12.8\nmem_ports: 2\nmem_port_bits: 128\n")
    b = get_board(str(y))
    assert b.name == "mine" and b.resources.dsp == 1728 and b.bandwidth_gbs == 12.8
    j = tmp_path / "mine.json"
    b.save(j)
    assert Board.load(j) == b
    e = estimate(digits(), Design(), str(y))
    assert e.board.name == "mine"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npart: y\nresources: {lut: 1}\nflux: 3\n")
    with pytest.raises(HwgenError, match="unknown keys"):
        get_board(str(bad))
    with pytest.raises(HwgenError, match="unknown board"):
        get_board("zcu999")


def test_design_round_trip_and_old_files(tmp_path):
    d = Design(linear=LinearKnobs(32, 8, 3, weight_buffer="matrix", pack_int8=True),
               attention=AttentionKnobs(8, dot=16, kv_buffer=False),
               memory=MemoryKnobs(weight_ports=4, intermediates="dram", storage="uram", prefetch=8),
               overrides={"fc": {"linear": {"tile_in": 4}}})
    p = tmp_path / "d.json"
    d.save(p)
    assert Design.load(p) == d
    old = {"regime": "streaming", "board": "zcu102", "linear": {"tile_in": 8, "tile_out": 8, "lanes": 2},
           "attention": {"rows": 2}, "elementwise": {"par": 4}, "weights_offchip": True, "overrides": {}}
    d2 = Design.from_dict(old)
    assert d2.linear.weight_buffer == "tile" and d2.memory.axi_bits == 256 and d2.attention.dot is None
    for bad in ({"memory": {"intermediates": "disk"}}, {"linear": {"weight_buffer": "x"}},
                {"attention": {"dot": 0}}, {"overrides": {"n": {"memory": {}}}}):
        with pytest.raises(HwgenError):
            Design.from_dict(bad)


# ------------------------------------------------------------------------------------------------------------
# Vitis HLS reports
# ------------------------------------------------------------------------------------------------------------
def test_parse_a_csynth_report():
    r = parse_csynth(FIXTURES / "csynth" / "solution1" / "syn" / "report" / "csynth.xml")
    assert r.name == "hwgen_top" and r.part == "xczu9eg-ffvb1156-2-e"
    assert r.target_clock_ns == pytest.approx(3.33) and r.estimated_clock_ns == pytest.approx(2.433)
    assert r.latency == 21873 and r.interval_max == 21874
    assert r.resources == Resources(lut=33871, ff=40412, bram18k=21, uram=0, dsp=508)
    assert r.available.dsp == 2520
    m = parse_csynth(FIXTURES / "csynth" / "solution1" / "syn" / "report" / "linear_cfg3_s_csynth.xml")
    assert m.name == "linear_cfg3_s" and m.loops[0]["ii"] == 1 and m.loops[0]["trip_count"] == 608


def test_load_reports_of_a_solution_folder():
    top = load_reports(FIXTURES / "csynth")
    names = sorted(m.name for m in top.modules)
    assert names == ["add_cfg1_s", "ap_memcpy_helper", "attention_cfg5_s", "layernorm_cfg2_s", "linear_cfg3_s",
                     "linear_cfg9_s"]


def test_single_report_with_module_information_undef_and_dsp48e():
    r = load_reports(FIXTURES / "csynth_single" / "csynth.xml")
    assert r.latency_worst is None and r.latency == 4077 and r.interval_max is None
    assert r.resources.dsp == 1734 and r.resources.uram == 4
    assert [m.name for m in r.modules] == ["linear_cfg1_s", "layernorm_cfg4_s"]
    assert r.modules[0].resources.dsp == 1568 and r.modules[0].latency == 1301


def test_compare_report_with_estimate_per_kernel():
    e = estimate(digits(), Design(), "zcu102")
    cmp = compare(e, load_reports(FIXTURES / "csynth"))
    rows = {r["kernel"]: r for r in cmp["kernels"]}
    assert set(rows) == {"linear", "layernorm", "attention", "add"}
    assert rows["linear"]["modules"] == ["linear_cfg3_s", "linear_cfg9_s"]
    assert rows["linear"]["report_cycles"] == 640 + 1184
    assert rows["linear"]["report"].dsp == 544 and rows["linear"]["cycles_ratio"] > 0
    assert cmp["unmatched"] == ["ap_memcpy_helper"]
    assert cmp["total"]["report_cycles"] == 21873
    forced = compare(e, load_reports(FIXTURES / "csynth"), {"ap_memcpy_helper": "add"})
    assert not forced["unmatched"]


def test_malformed_reports_are_one_line_errors(tmp_path):
    bad = tmp_path / "csynth.xml"
    bad.write_text("<profile><PerformanceEstimates>")
    with pytest.raises(HwgenError, match="not a csynth.xml"):
        parse_csynth(bad)
    with pytest.raises(HwgenError):
        parse_csynth("<notes/>")
    with pytest.raises(HwgenError):
        load_reports(tmp_path / "missing")


# ------------------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------------------
def test_hwgen_estimate_cli(tmp_path):
    from hwgen.cli import main

    dpath = tmp_path / "d.json"
    Design(linear=LinearKnobs(8, 8, 2)).save(dpath)
    out = tmp_path / "e.json"
    res = CliRunner().invoke(main, ["estimate", str(ONNX / "moe_vit_digits.qdq.dynamo.onnx"), "--design", str(dpath),
                                    "--board", "u280", "--json", str(out), "--csynth", str(FIXTURES / "csynth")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "latency" in res.output and "linear" in res.output and "Vitis HLS report" in res.output
    data = json.loads(out.read_text())
    assert data["board"] == "u280" and data["latency_cycles"] > 0 and data["csynth"]["kernels"]


def test_bound_names_the_term_that_limits_most_node_cycles():
    """Wide tiles fed by one narrow weight port wait on weights; small tiles with wide ports wait on compute."""
    g = digits()
    starved = estimate(g, Design(linear=LinearKnobs(64, 64, 8, weight_buffer="none"),
                                 memory=MemoryKnobs(axi_bits=32, overlap=False)), "zcu102")
    fed = estimate(g, Design(linear=LinearKnobs(2, 2, 1), memory=MemoryKnobs(axi_bits=512, weight_ports=4)), "zcu102")
    assert starved.bound() == "weight loading", starved.limited_cycles
    assert fed.bound() == "compute", fed.limited_cycles
    for e in (starved, fed):
        assert set(e.limited_cycles) <= {"compute", "weight loading", "activation traffic"}
        assert sum(e.limited_cycles.values()) >= 0.99 * e.latency_cycles  # overlap only shortens the sum
        assert e.bound() in e.bound_detail() and "% of the node cycles" in e.bound_detail()
