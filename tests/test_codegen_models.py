"""End to end: the generated Vitis HLS project of a real model, compiled with g++ (C simulation), equals the
simulator bit for bit on the digits test images, under several Designs (the same graph with another Design
is another accelerator: other tiles, lanes, attention rows, regime); the generation is deterministic; the
TCL names the top function, the part, the clock and every source file.

All projects are generated and C-simulated by one module fixture, two at a time (the compiles dominate;
binaries are cached by content in ~/.cache/hwgen/gxx, so a rerun only simulates).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hwgen import bundled
from hwgen.codegen.csim import run_csim
from hwgen.codegen.project import generate, write_project
from hwgen.design import AttentionKnobs, Design, ElementwiseKnobs, LinearKnobs
from hwgen.frontend import load_graph

pytestmark = [pytest.mark.cpp, pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")]

ROOT = Path(__file__).resolve().parents[1]
ONNX = ROOT / "models" / "onnx"
N_IMAGES = 64

VIT = "vit_digits.qdq.dynamo.onnx"
MOE = "moe_vit_digits.qdq.dynamo.onnx"
VIT_LEGACY = "vit_digits.qdq.legacy.onnx"
MOE_LEGACY = "moe_vit_digits.qdq.legacy.onnx"
BERT = "bert_digits.qdq.legacy.onnx"


def design_a(graph) -> Design:
    """UbiMoE-like defaults: 16x16 weight tile, one lane, P = 4 query rows."""
    return Design(regime="streaming", linear=LinearKnobs(tile_in=16, tile_out=16, lanes=1),
                  attention=AttentionKnobs(rows=4)).validate()


def design_b(graph) -> Design:
    """Odd tiles (8x4, 3 token lanes: 17 rows leave a partial group), P = 2, 4-wide elementwise, and per-node
    overrides: the first attention with P = 3 (17 queries: a partial group), the first linear 5x7x2."""
    attn = next(graph.find("attention")).name
    lin = next(graph.find("linear")).name
    return Design(regime="streaming", linear=LinearKnobs(tile_in=8, tile_out=4, lanes=3),
                  attention=AttentionKnobs(rows=2), elementwise=ElementwiseKnobs(par=4),
                  overrides={attn: {"attention": {"rows": 3}},
                             lin: {"linear": {"tile_in": 5, "tile_out": 7, "lanes": 2}}}).validate()


def design_unrolled(graph) -> Design:
    return Design(regime="unrolled").validate()


CASES = {
    "vit-a": (VIT, design_a),
    "vit-b": (VIT, design_b),
    "vit-unrolled": (VIT, design_unrolled),
    "moe-a": (MOE, design_a),
    "moe-b": (MOE, design_b),
    "vit_legacy-b": (VIT_LEGACY, design_b),
    "moe_legacy-a": (MOE_LEGACY, design_a),
    "bert-b": (BERT, design_b),
}


@pytest.fixture(scope="module")
def graphs():
    return {m: load_graph(ONNX / m) for m in sorted({m for m, _ in CASES.values()})}


@pytest.fixture(scope="module")
def images():
    """{model: its first N_IMAGES test inputs} (images, or token ids for the BERT-style model)."""
    return {m: bundled.digits_test_inputs(ONNX / m)[0][:N_IMAGES] for m in {m for m, _ in CASES.values()}}


@pytest.fixture(scope="module")
def csim_results(graphs, images, tmp_path_factory):
    """{case: (project dir, CsimReport or the exception)} for every case, two C simulations at a time."""
    root = tmp_path_factory.mktemp("codegen_models")

    def one(case):
        model, make = CASES[case]
        out = root / case
        try:
            write_project(graphs[model], make(graphs[model]), out, str(ONNX / model))
            return out, run_csim(out, images[model])
        except Exception as exc:  # reported by the case's own test
            return out, exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(CASES, pool.map(one, CASES)))


@pytest.mark.parametrize("case", list(CASES))
def test_csim_bit_exact(csim_results, case):
    out, report = csim_results[case]
    if isinstance(report, Exception):
        raise report
    assert report.images == N_IMAGES
    assert report.bit_exact, f"{case}: {report.mismatches}/{report.elements} differ; first: {report.first_mismatch}"


def test_designs_reach_the_code(csim_results):
    """The Designs are really different accelerators: their knobs appear in the generated configs."""
    def params(case):
        return (csim_results[case][0] / "firmware" / "parameters.h").read_text()

    a, b, u = params("vit-a"), params("vit-b"), params("vit-unrolled")
    assert "tile_in = 16, tile_out = 16, n_lanes = 1" in a
    assert "tile_in = 8, tile_out = 4, n_lanes = 3" in b
    assert "tile_in = 5, tile_out = 7, n_lanes = 2" in b  # the override of the first linear
    assert "parallel = 4;" in a and "parallel = 2;" in b and "parallel = 3;" in b  # attention P (+ override)
    assert "parallel = 17;" in u  # unrolled: every query row at once
    # streaming: weights off chip (m_axi blobs); unrolled: none
    for case in ("vit-a", "moe-a", "moe-b"):
        assert list((csim_results[case][0] / "firmware" / "weights").glob("wmem*.bin"))
    assert not (csim_results["vit-unrolled"][0] / "firmware" / "weights").exists()
    moe_b = params("moe-b")
    assert "hwgen::linear_rows<cfg>(" in moe_b and "moe_n);" in moe_b  # experts on their routed tokens only
    top = (csim_results["moe-b"][0] / "firmware" / "hwgen_moe_vit_digits.cpp").read_text()
    assert re.search(r"hwgen::moe<cfg>\(\w+, \w+, wmem0\);", top)


def test_generation_is_deterministic(graphs, tmp_path):
    """Same graph and Design -> the same bytes: twice in this process, and from the CLI in two processes with
    different hash seeds (no set or dict order leaks into the project)."""
    g = graphs[MOE]
    d = design_b(g)
    first, second = generate(g, d, str(ONNX / MOE)), generate(g, d, str(ONNX / MOE))
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    write_project(g, d, tmp_path / "p1", str(ONNX / MOE))
    write_project(g, d, tmp_path / "p2", str(ONNX / MOE))
    assert _tree(tmp_path / "p1") == _tree(tmp_path / "p2")
    cli = Path(sys.executable).with_name("hwgen")
    trees = []
    for seed in ("1", "2"):
        out = tmp_path / f"cli{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([str(cli), "build", str(ONNX / MOE), "-o", str(out)], check=True, env=env,
                       capture_output=True, timeout=600)
        trees.append(_tree(out))
    assert trees[0] == trees[1]


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _tcl_sets(text: str) -> dict:
    return dict(re.findall(r"^set (\w+) (\S+)\s*$", text, re.M))


def test_tcl_names_top_part_clock_and_sources(graphs, tmp_path):
    g = graphs[MOE]
    d = design_a(g)
    d.part, d.clock_mhz = "xcvu9p-flga2104-2L-e", 250.0
    out = write_project(g, d.validate(), tmp_path / "prj", str(ONNX / MOE))
    top = "hwgen_moe_vit_digits"
    build = (out / "vivado_scripts" / "build_prj.tcl").read_text()
    impl = (out / "vivado_scripts" / "vivado_impl.tcl").read_text()
    for text in (build, impl):
        sets = _tcl_sets(text)
        assert sets["top"] == top and sets["part"] == "xcvu9p-flga2104-2L-e"
        assert float(sets["clock_period"]) == pytest.approx(4.0)
    assert re.search(r"^set_top \$top$", build, re.M) and re.search(r"^set_part \$part$", build, re.M)
    assert re.search(r"^create_clock -period \$clock_period", build, re.M)
    assert re.search(r"^set_property top \$top", impl, re.M) and "-part $part" in impl
    assert re.search(r"^create_clock -period \$clock_period", impl, re.M)
    # every add_files names an existing file; every C++ source of the project is added (tb ones with -tb)
    added = re.findall(r"^add_files (-tb )?\$project_dir/(\S+)", build, re.M)
    design_srcs = {f for tb, f in added if not tb}
    tb_srcs = {f for tb, f in added if tb}
    assert design_srcs and tb_srcs
    for f in design_srcs | tb_srcs:
        assert (out / f).is_file(), f"build_prj.tcl adds {f}, which the project does not have"
    assert design_srcs == {str(p.relative_to(out)) for p in (out / "firmware").glob("*.cpp")}
    assert tb_srcs == {str(p.relative_to(out)) for p in (out / "tb").glob("*.cpp")}
    assert re.search(rf"^void {top}\(", (out / "firmware" / f"{top}.cpp").read_text(), re.M)
    # the testbench's inputs live under the project, whatever the working directory of vitis_hls
    assert "csim_design -argv $project_dir" in build
    # vivado_impl.tcl reads the RTL where build_prj.tcl's project puts it
    rtl = re.search(r"^set rtl_dir (\S+)", impl, re.M).group(1)
    assert rtl.startswith("$project_dir/${top}_prj/solution1/")
    assert re.search(r"^cd \$project_dir$", build, re.M), "build_prj.tcl must create its project in the project dir"
    assert build.index("cd $project_dir") < build.index("open_project")


@pytest.mark.cpp
def test_searched_design_builds_bit_exact(tmp_path):
    """hwgen search -> design.json -> hwgen build --design -> hwgen csim, through the CLI, bit-exact."""
    from click.testing import CliRunner

    from hwgen.cli import main

    model = str(Path(__file__).resolve().parents[1] / "models/onnx/moe_vit_digits.qdq.dynamo.onnx")
    design = tmp_path / "design.json"
    res = CliRunner().invoke(main, ["search", model, "--board", "zcu102", "-o", str(design)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = tmp_path / "prj"
    res = CliRunner().invoke(main, ["build", model, "-o", str(out), "--design", str(design)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["csim", str(out), "--limit", "64", "--json", str(tmp_path / "c.json")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    import json

    report = json.loads((tmp_path / "c.json").read_text())
    assert report["bit_exact"] and report["images"] == 64
