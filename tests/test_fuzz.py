"""Untrusted input (issue 5): every command over a generated corpus of malformed and adversarial models.

The corpus (tests/fuzz/make_corpus.py) is generated into a temporary folder, never committed. For every
model and every command that applies (inspect, simulate --limit 2, build -o OUT, and csim OUT for models
that build) we check:
- a refused model exits with code 2 and prints exactly one non-empty line on stderr, `hwgen: error: ...`,
  naming the file (and the node/op or tensor when there is one), without a traceback;
- a valid model (hostile names included) works with every command;
- nothing is written outside OUT: each run has a fresh, empty working directory; it, the model's own
  folder, the private $TMPDIR and the directories above are compared before and after, and /tmp gets no
  entry named after the model;
- a failed build leaves no partial project; two builds of one model are byte-identical;
- nothing hangs (60 s per command).

Default run: `inspect` over the whole corpus in one process (through hwgen.cli.run, fast), and the real
CLI in subprocesses over a sample with at least two models per category and expectation. The full
subprocess sweep is marked slow (`pytest -m slow tests/test_fuzz.py`)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT
from fuzz.make_corpus import H_CPP, HOSTILE, load_meta, make_corpus, toy_float

HWGEN = [sys.executable, "-m", "hwgen.cli"]
TIMEOUT = 60
HAS_GXX = shutil.which("g++") is not None
WORKERS = max(1, min(4, os.cpu_count() or 1))


def printable(text: str) -> str:
    from hwgen.errors import _printable

    return _printable(text)


# ---- the corpus -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_corpus")
    cases = make_corpus(root)
    return root, cases, load_meta(root)


@pytest.fixture(scope="session")
def gxx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("gxx_cache")


def test_corpus_is_large_deterministic_and_leaves_bundled_models_alone(corpus, tmp_path):
    root, cases, meta = corpus
    assert len(cases) >= 200
    kinds = {c.kind for c in cases}
    assert {"truncated", "corrupted", "unsupported_op", "dynamic_shape", "zero_shape", "huge_dim", "nan_inf",
            "bad_scale", "bad_zero_point", "cycle", "dangling", "hostile_valid", "hostile_invalid",
            "duplicate_name", "external_data", "structure"} <= kinds
    assert sum(c.expect == "ok" for c in cases) >= 10
    bundled = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "models" / "onnx").glob("*.onnx")}
    again = make_corpus(tmp_path / "again")
    assert [(c.path.relative_to(tmp_path / "again"), c.kind, c.expect) for c in again] == \
        [(c.path.relative_to(root), c.kind, c.expect) for c in cases]
    for a, b in zip(cases, again):
        if str(root).encode() not in a.path.read_bytes():  # (one model names the corpus folder absolutely)
            assert a.path.read_bytes() == b.path.read_bytes(), a.path
    assert bundled == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "models" / "onnx").glob("*.onnx")}


# ---- snapshots: nothing written outside OUT -------------------------------------------------------

def tree(path: Path, skip: Path | None = None) -> dict[str, tuple]:
    """{relative path: (size, mtime_ns, sha256 for small files)} of everything under path."""
    out = {}
    if not path.exists():
        return out
    for p in sorted(path.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        rel = str(p.relative_to(path))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            st = p.stat()
            out[rel] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest() if st.st_size < 1 << 22 else "")
        else:
            out[rel] = ("dir",)
    return out


def pwned_entries(dirs) -> list[str]:
    found = []
    for d in dirs:
        try:
            found += [str(Path(d) / n) for n in os.listdir(d) if "pwned" in n]
        except OSError:
            pass
    return found


def model_names(path: Path) -> set[str]:
    """Node, tensor and graph names of a model (when it parses), to look for in /tmp."""
    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - corrupted models have no names to look for
        return set()
    names = {m.graph.name} | {n.name for n in m.graph.node} | {o for n in m.graph.node for o in n.output}
    names |= {i.name for i in m.graph.input} | {i.name for i in m.graph.initializer}
    return {n for n in names if len(n) >= 4}


# ---- running the CLI ------------------------------------------------------------------------------

def run_cli(args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """One CLI command in its own process group (a hang kills it with its children, e.g. g++)."""
    proc = subprocess.Popen(HWGEN + [str(a) for a in args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return subprocess.CompletedProcess(args, "TIMEOUT", "", f"hang: no answer within {TIMEOUT} s")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def error_problems(stderr: str, model: Path, locate=()) -> list[str]:
    """What is wrong with a refusal's stderr (empty list: it is one good line)."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    problems = []
    if "Traceback" in stderr:
        problems.append("traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr")
    elif not lines[0].startswith("hwgen: error: "):
        problems.append("not an 'hwgen: error:' line")
    elif printable(model.name) not in lines[0]:
        problems.append("the file is not named")
    elif locate and not any(printable(s) in lines[0] for s in locate):
        problems.append(f"none of {locate} is named")
    return problems


def check_case(path: Path, kind: str, expect: str, locate: list, work: Path, gxx_cache: Path,
               csim: bool = True, twice: bool = False) -> list[str]:
    """Run every command on one model; the list of problems found (empty: all good)."""
    problems = []
    cwd, tmpdir = work / "cwd", work / "tmp"
    cwd.mkdir(parents=True)
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir), HWGEN_GXX_CACHE=str(gxx_cache), PYTHONHASHSEED="0",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("HWGEN_DEBUG", None)
    folder = path.parent
    ancestors = [p for p in list(cwd.parents)[:4] + list(folder.parents)[:3]] + [Path("/tmp")]
    names = model_names(path)
    tmp_before = set(os.listdir("/tmp"))
    folder_before, cwd_before = tree(folder), tree(cwd)
    out = cwd / "OUT"
    commands = [("inspect", [path]), ("simulate", [path, "--limit", "2"]), ("build", [path, "-o", out])]
    results = {}
    for name, args in commands:
        proc = run_cli([name, *args], cwd, env)
        results[name] = proc
        tag = f"{name}: "
        if proc.returncode == "TIMEOUT":
            problems.append(tag + proc.stderr)
            continue
        if "Traceback" in proc.stderr or "Traceback" in proc.stdout:
            problems.append(tag + "traceback: " + proc.stderr.strip()[-300:])
        if proc.returncode not in (0, 2):
            problems.append(tag + f"exit code {proc.returncode}: {proc.stderr.strip()[-300:]}")
            continue
        if proc.returncode == 2:
            bad = error_problems(proc.stderr, path, locate if name == "inspect" else ())
            if bad:
                problems.append(tag + ", ".join(bad) + f": {proc.stderr.strip()[:400]!r}")
        wants_ok = expect == "ok" and not (name == "build" and "no C++ kernel" in proc.stderr)
        if expect == "error" and proc.returncode == 0:
            problems.append(tag + "accepted a model that must be refused")
        if wants_ok and proc.returncode != 0:
            problems.append(tag + f"refused a valid model: {proc.stderr.strip()[:300]}")
        if name == "build" and proc.returncode != 0 and out.exists() and any(out.iterdir()):
            problems.append(tag + f"partial project left: {sorted(p.name for p in out.iterdir())}")
    built = results.get("build") is not None and results["build"].returncode == 0
    if built and csim and HAS_GXX and expect == "ok":  # csim: for the valid models
        proc = run_cli(["csim", out, "--limit", "2"], cwd, env)
        if proc.returncode != 0 and "no C++ kernel" not in proc.stderr:
            problems.append(f"csim: exit {proc.returncode}: {(proc.stderr + proc.stdout).strip()[-400:]}")
    if built:
        problems += check_sanitised(out, [path.name] if any(c in path.name for c in "\"$[\n*\\`") else [])
    if built and twice:
        first = tree_bytes(out)
        proc = run_cli(["build", path, "-o", cwd / "OUT2"], cwd, env)
        if proc.returncode != 0:
            problems.append(f"second build failed: {proc.stderr.strip()[:300]}")
        else:
            second = tree_bytes(cwd / "OUT2")
            drop = {"tb", "dump"}  # csim writes its inputs/outputs and dumps under tb/ and dump/
            a = {k: v for k, v in first.items() if k.split("/")[0] not in drop or k.endswith(".cpp")}
            b = {k: v for k, v in second.items() if k.split("/")[0] not in drop or k.endswith(".cpp")}
            if a != b:
                diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                problems.append(f"two builds differ: {diff[:5]}")
    # nothing outside OUT (and OUT2)
    after = {k: v for k, v in tree(cwd).items() if not re.match(r"^OUT2?(/|$)", k)}
    if after != cwd_before:
        problems.append(f"files written in the working directory: {sorted(set(after) ^ set(cwd_before))[:5]}")
    if tree(folder) != folder_before:
        problems.append("the model's folder changed")
    # onnxruntime (1.2x, OneDS telemetry) writes $TMPDIR/.ses, a session id, whenever it is imported: not ours
    left = sorted(p.name for p in tmpdir.iterdir() if p.name != ".ses")
    if left:
        problems.append(f"left in $TMPDIR: {left[:5]}")
    new_tmp = set(os.listdir("/tmp")) - tmp_before
    hit = [n for n in new_tmp if "pwned" in n or n in names]
    if hit:
        problems.append(f"/tmp got {hit}")
    pw = pwned_entries(ancestors)
    if pw:
        problems.append(f"hostile paths appeared: {pw}")
    return problems


def tree_bytes(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


RAW_HOSTILE = [h for h in HOSTILE if any(c in h for c in "\"\n[$`*\\/")] + ["../../x", '"; system("id"); //']


def check_sanitised(out: Path, extra=()) -> list[str]:
    """Raw hostile strings only inside JSON files (JSON-escaped); generated C++/TCL/Markdown never has them."""
    problems = []
    raw = RAW_HOSTILE + list(extra)
    for p in sorted(out.rglob("*")):
        if not p.is_file() or p.name == "model.onnx" or p.suffix == ".bin":
            continue
        text = p.read_text(errors="replace")
        rel = str(p.relative_to(out))
        if p.suffix == ".json":
            try:
                json.loads(text)
            except ValueError as exc:
                problems.append(f"{rel} is not valid JSON: {exc}")
            hits = [h for h in raw if h in text and json.dumps(h)[1:-1] != h]
        else:
            hits = [h for h in raw if h in text]
        if hits:
            problems.append(f"{rel} holds raw hostile names {hits}")
    return problems


def sweep(cases, meta, root, base: Path, gxx_cache: Path, csim_for=lambda c: True, twice_for=lambda c: False):
    def one(i_case):
        i, case = i_case
        rel = str(case.path.relative_to(root))
        locate = meta[rel]["locate"]
        try:
            problems = check_case(case.path, case.kind, case.expect, locate, base / f"{i:03d}", gxx_cache,
                                  csim=csim_for(case), twice=twice_for(case))
        except Exception as exc:  # noqa: BLE001 - report, do not abort the sweep
            problems = [f"test harness: {type(exc).__name__}: {exc}"]
        return rel, case, problems

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one, enumerate(cases)))
    failures = [f"{rel} [{case.kind}, expect {case.expect}]: {p}" for rel, case, probs in results for p in probs]
    return failures


def sample(cases, per_group: int = 2):
    """At least `per_group` models per (category, expectation): the default subprocess run."""
    picked, seen = [], {}
    for c in cases:
        key = (c.kind, c.expect)
        if seen.get(key, 0) < per_group:
            seen[key] = seen.get(key, 0) + 1
            picked.append(c)
    return picked


# ---- the default run ------------------------------------------------------------------------------

def test_inspect_whole_corpus_in_process(corpus, tmp_path, monkeypatch):
    """`hwgen inspect` on every model, in this process through hwgen.cli.run (the cheap full pass)."""
    import hwgen.cli as cli

    root, cases, meta = corpus
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HWGEN_DEBUG", raising=False)

    def alarm(*_):
        raise TimeoutError(f"no answer within {TIMEOUT} s")

    old = signal.signal(signal.SIGALRM, alarm)
    failures, outcome = [], {}
    try:
        for case in cases:
            rel = str(case.path.relative_to(root))
            err, out = io.StringIO(), io.StringIO()
            monkeypatch.setattr(sys, "argv", ["hwgen", "inspect", str(case.path)])
            code = 0
            signal.alarm(TIMEOUT)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    cli.run()
            except SystemExit as exc:
                code = exc.code
            except BaseException as exc:  # noqa: BLE001 - a hang or an escaped exception is a failure
                code = f"{type(exc).__name__}: {exc}"
            finally:
                signal.alarm(0)
            outcome[rel] = code
            if code not in (0, 2):
                failures.append(f"{rel}: {code}")
                continue
            if code == 2:
                bad = error_problems(err.getvalue(), case.path, meta[rel]["locate"])
                if bad:
                    failures.append(f"{rel}: {', '.join(bad)}: {err.getvalue().strip()[:300]!r}")
            if case.expect == "error" and code == 0:
                failures.append(f"{rel} [{case.kind}]: accepted")
            if case.expect == "ok" and code != 0:
                failures.append(f"{rel} [{case.kind}]: refused: {err.getvalue().strip()[:300]}")
            if code == 0 and any(ch in out.getvalue() for ch in "\x1b\x07\x00"):
                failures.append(f"{rel}: control characters from the model reach the terminal")
    finally:
        signal.signal(signal.SIGALRM, old)
    assert not list(tmp_path.iterdir()), "inspect wrote files"
    assert not failures, "\n".join(failures)
    assert sum(1 for c in outcome.values() if c == 2) > 150


def test_cli_subprocess_sample(corpus, tmp_path, gxx_cache):
    """The real CLI (exit codes, stderr, files) on a sample covering every category; csim on a few."""
    root, cases, meta = corpus
    picked = sample(cases)
    ok = [c for c in picked if c.expect == "ok"]
    csim_on = {ok[0].path, ok[-1].path} if ok else set()
    failures = sweep(picked, meta, root, tmp_path, gxx_cache, csim_for=lambda c: c.path in csim_on,
                     twice_for=lambda c: c.expect == "ok")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_cli_subprocess_full_corpus(corpus, tmp_path, gxx_cache):
    """Every command on every model of the corpus (csim and a second build for every valid one)."""
    root, cases, meta = corpus
    failures = sweep(cases, meta, root, tmp_path, gxx_cache, twice_for=lambda c: c.expect in ("ok", "any"))
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures)


# ---- a valid model with hostile names compiles -------------------------------------------------------

@pytest.mark.cpp
def test_hostile_names_build_and_compile(tmp_path, gxx_cache):
    """Node names `../../x` and `"; system("id"); //` (and more) in a valid model: build and csim work, the
    generated C++/TCL holds only sanitised identifiers, nothing is written outside OUT."""
    names = {"mm": "../../x", "rs": '"; system("id"); //', "h": "../../x", "r": '"; system("id"); //_r',
             "tr": "[exec rm -rf pwned_tcl] $(id) */", "t": "*/ /* pwned", "gemm": "ünï\\\n", "graph": H_CPP}
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "hostile.onnx"
    path.write_bytes(toy_float(names, seed=42).SerializeToString())
    problems = check_case(path, "hostile_valid", "ok", [], tmp_path / "run", gxx_cache, csim=True, twice=True)
    assert not problems, "\n".join(problems)
    # and the raw strings really are in the model, and JSON-escaped in the report
    out = tmp_path / "run" / "cwd" / "OUT"
    report = (out / "hwgen_report.json").read_text()
    assert json.dumps('"; system("id"); //_r')[1:-1] in report and "../../x" in json.loads(report)["types"]
    for p in out.rglob("*"):
        if p.suffix in (".cpp", ".h", ".tcl", ".md") or p.name == "README.md":
            text = p.read_text()
            assert "../../x" not in text and 'system("id")' not in text and "[exec" not in text, p
    assert not (tmp_path / "run" / "x").exists() and not (tmp_path / "x").exists()


# ---- the simulator's saturation report and --strict -----------------------------------------------------

def _saturating_model(path: Path) -> Path:
    """Float MatMul with large weights: its output exceeds the default ap_fixed<16,6> range."""
    w = numpy_helper.from_array(np.full((8, 4), 50.0, np.float32), "w_big")
    node = helper.make_node("MatMul", ["x", "w_big"], ["y_big"], name="mm_big")
    g = helper.make_graph([node], "sat", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y_big", TensorProto.FLOAT, [1, 4])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 10
    path.write_bytes(m.SerializeToString())
    return path


def test_simulate_strict_fails_on_saturation(tmp_path):
    path = _saturating_model(tmp_path / "sat.onnx")
    report = tmp_path / "r.json"
    plain = subprocess.run(HWGEN + ["simulate", str(path), "--limit", "4", "--json", str(report)], capture_output=True,
                           text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "saturations per tensor" in plain.stdout and "y_big" in plain.stdout
    sat = json.loads(report.read_text())["saturations"]
    assert sat["y_big"] > 0 and sat.get("x_q", 0) == 0
    strict = subprocess.run(HWGEN + ["simulate", str(path), "--limit", "4", "--strict"], capture_output=True, text=True,
                            timeout=TIMEOUT, cwd=tmp_path)
    assert strict.returncode == 1, (strict.returncode, strict.stderr)
    assert "saturation" in strict.stderr and "Traceback" not in strict.stderr
    # a model that does not saturate passes --strict
    small = tmp_path / "small.onnx"
    small.write_bytes(toy_float(seed=3).SerializeToString())
    ok = subprocess.run(HWGEN + ["simulate", str(small), "--limit", "4", "--strict"], capture_output=True, text=True,
                        timeout=TIMEOUT, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr


# ---- memory ----------------------------------------------------------------------------------------

def _chain_graph(tmp_path):
    from hwgen.frontend import load_graph

    path = tmp_path / "chain.onnx"
    path.write_bytes(toy_float(seed=5).SerializeToString())
    return load_graph(path), path


def test_estimate_memory_counts_the_live_tensors(tmp_path):
    from hwgen import sim

    g, _ = _chain_graph(tmp_path)
    assert [n.op for n in g.nodes] == ["quantize", "linear", "transpose", "reshape", "linear"]
    # per image: x (32, an input: kept) + x_q 32 -> + h 64 (x_q freed) -> + t 64 (h freed) -> + r 64 -> + y 96
    # peak at the last linear: x 32 + r 64 + y 96 = 192 elements
    consts = sim.estimate_memory(g, 0)
    assert consts == sum(np.asarray(t.data).nbytes for t in g.tensors.values() if t.is_const)
    assert sim.estimate_memory(g, 1) - consts == 8 * 192
    assert sim.estimate_memory(g, 100) - consts == 100 * 8 * 192
    assert sim.estimate_memory(g, 3, keep=True) - consts == 3 * 8 * (32 + 32 + 64 + 64 + 64 + 96)


def test_plan_batch_lowers_the_chunk_then_refuses(tmp_path):
    from hwgen import sim
    from hwgen.errors import HwgenError

    g, _ = _chain_graph(tmp_path)
    x = np.random.default_rng(0).standard_normal((300, 4, 8)).astype(np.float32)
    chunk, need = sim.plan_batch(g, 300, available=1 << 40)
    assert chunk == sim.BATCH
    small = sim.estimate_memory(g, 16) * 2 + sim._run_bytes(g, 300, False)
    chunk, need = sim.plan_batch(g, 300, available=small)
    assert 1 <= chunk <= 16 and need <= small
    with pytest.raises(HwgenError, match="needs about .* but only .* is available"):
        sim.plan_batch(g, 300, available=1000)
    # chunking does not change results
    a = sim.run(g, x, batch_size=7).outputs
    b = sim.run(g, x).outputs
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_simulate_prints_the_memory_estimate_and_refuses_beyond_the_limit(tmp_path):
    _, path = _chain_graph(tmp_path)
    env = dict(os.environ)
    proc = subprocess.run(HWGEN + ["simulate", str(path), "--limit", "4"], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"memory: about [\d.]+ \w+ for 4 inputs \(simulator chunks of 4", proc.stdout), proc.stdout
    env["HWGEN_MEMORY_LIMIT"] = "2K"
    proc = subprocess.run(HWGEN + ["simulate", str(path), "--limit", "4"], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=tmp_path, env=env)
    assert proc.returncode == 2
    line = error_problems(proc.stderr, path)
    assert not line, (line, proc.stderr)
    assert "memory" in proc.stderr and "--limit" in proc.stderr


def test_huge_but_legal_tensor_is_refused_before_allocating(tmp_path):
    """2^27-element activations import (below the per-tensor cap); simulating them must not start."""
    from hwgen.errors import HwgenError

    n = 1 << 27
    node = helper.make_node("Relu", ["x"], ["y"], name="big_relu")
    g = helper.make_graph([node, helper.make_node("MatMul", ["y", "w"], ["z"], name="mm")], "big",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n // 8, 8])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, n // 8, 2])],
                          [numpy_helper.from_array(np.ones((8, 2), np.float32), "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 10
    path = tmp_path / "big.onnx"
    path.write_bytes(m.SerializeToString())
    env = dict(os.environ, HWGEN_MEMORY_LIMIT="1G")
    proc = subprocess.run(HWGEN + ["simulate", str(path), "--limit", "2"], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=tmp_path, env=env)
    assert proc.returncode == 2 and not error_problems(proc.stderr, path), proc.stderr
    assert "memory" in proc.stderr
    assert isinstance(HwgenError("x"), Exception)


# ---- no partial project -----------------------------------------------------------------------------

def test_failed_build_keeps_the_previous_project(tmp_path, monkeypatch):
    """A failure while the new project is moved into OUT restores the previous project, byte for byte;
    a failed first build leaves no OUT at all."""
    from hwgen.codegen import project
    from hwgen.design import Design
    from hwgen.frontend import load_graph

    path = tmp_path / "m.onnx"
    path.write_bytes(toy_float(seed=7).SerializeToString())
    graph, design = load_graph(path), Design().validate()
    out = tmp_path / "OUT"
    try:
        project.write_project(graph, design, out, str(path))
    except Exception as exc:  # noqa: BLE001 - codegen still in progress for some ops
        pytest.skip(f"cannot build the toy model yet: {exc}")
    before = tree_bytes(out)
    real_rename = Path.rename
    calls = {"n": 0}

    def flaky(self, target):
        if ".hwgen-staging-" in str(self):  # moving the new project in
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError("disk full (simulated)")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", flaky)
    path.write_bytes(toy_float(seed=8).SerializeToString())  # a different model: different files
    with pytest.raises(OSError, match="simulated"):
        project.write_project(load_graph(path), design, out, str(path))
    assert tree_bytes(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted({k.split("/")[0] for k in before})
    calls["n"] = 0
    fresh = tmp_path / "FRESH"
    with pytest.raises(OSError, match="simulated"):
        project.write_project(load_graph(path), design, fresh, str(path))
    assert not fresh.exists()
