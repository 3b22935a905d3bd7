"""C simulation: compile the generated testbench with g++, run it, compare every output with the
simulator as integers. On a mismatch, rebuild with HWGEN_DUMP to find the first tensor that differs."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hwgen import sim
from hwgen.codegen import gxx, tbdata
from hwgen.codegen.project import MANIFEST
from hwgen.errors import HwgenError
from hwgen.frontend import load_graph
from hwgen.precision import Precision


@dataclass
class CsimReport:
    images: int
    elements: int
    mismatches: int
    per_output: dict = field(default_factory=dict)
    first_mismatch: dict | None = None
    testbench_mismatches: int | None = None  # what the testbench's own check against expected.bin counted
    compile_cached: bool = False
    seconds_compile: float = 0.0
    seconds_run: float = 0.0

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0 and self.elements > 0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["bit_exact"] = self.bit_exact
        return d


def load_project(out: Path) -> tuple[dict, object]:
    manifest_path = Path(out) / MANIFEST
    if not manifest_path.is_file():
        raise HwgenError("not an hwgen project (no hwgen_project.json); run hwgen build first", file=str(out))
    manifest = json.loads(manifest_path.read_text())
    try:
        precision = Precision.from_dict(manifest["precision"]) if "precision" in manifest else None
    except HwgenError as err:  # a hand-edited manifest
        raise HwgenError(f"{MANIFEST}: {err.message}", file=str(out)) from None
    graph = load_graph(Path(out) / manifest["model"], precision)
    return manifest, graph


def run_csim(out: str | Path, x: np.ndarray, dump_on_mismatch: bool = True, opt: str = "-O1") -> CsimReport:
    import time

    out = Path(out).resolve()
    manifest, graph = load_project(out)
    top = manifest["top"]
    result = sim.run(graph, x, keep=True)
    data_dir = out / "tb" / "tb_data"
    data_dir.mkdir(parents=True, exist_ok=True)
    # the same files hwgen build writes: the testbench reads inputs.bin and checks itself against expected.bin
    for name, data in tbdata.encode(graph, x, result).items():
        (data_dir / name).write_bytes(data)
    sources = [out / "firmware" / f"{top}.cpp", out / "tb" / f"{top}_test.cpp"]
    incs = [out / "firmware", out / "firmware" / "kernels"]
    t0 = time.perf_counter()
    try:
        proc = gxx.compile_and_run(sources, out, args=[str(out)], opt=opt, include_dirs=incs, timeout=3600)
    except RuntimeError as exc:
        raise HwgenError(f"g++ failed to compile the project: {str(exc)[-800:]}", file=str(out)) from None
    elapsed = time.perf_counter() - t0
    own = _testbench_mismatches(proc.stdout)
    # exit 1 with the testbench's own comparison printed: outputs that differ, compared and located below
    if proc.returncode != 0 and not (proc.returncode == 1 and own):
        raise HwgenError(f"the testbench failed (exit {proc.returncode}): {proc.stderr.strip()[-400:]}", file=str(out))
    raw = np.fromfile(data_dir / "outputs.bin", dtype="<i8")
    report = CsimReport(images=x.shape[0], elements=0, mismatches=0, seconds_run=elapsed,
                        testbench_mismatches=own)
    offset = 0
    got_all = {}
    for name in graph.outputs:
        t = graph.tensors[name]
        want = np.asarray(result.outputs[name]).reshape(x.shape[0], -1)
        size = max(t.size, 1)
        got = raw.reshape(x.shape[0], -1)[:, offset:offset + size]
        offset += size
        bad = int(np.count_nonzero(got != want))
        report.per_output[name] = {"elements": int(want.size), "mismatches": bad}
        report.elements += int(want.size)
        report.mismatches += bad
        got_all[name] = got
    if report.mismatches and dump_on_mismatch:
        report.first_mismatch = _localise(out, graph, manifest, result, x, got_all, sources, incs, opt)
    return report


def _testbench_mismatches(stdout: str) -> int | None:
    """The mismatch count the testbench printed after comparing with expected.bin (None: it did not)."""
    m = re.search(r"compared with .*: (\d+) mismatches$", stdout, re.M)
    return int(m.group(1)) if m else None


def _localise(out, graph, manifest, result, x, got_all, sources, incs, opt) -> dict | None:
    """Re-run the first mismatching image with tensor dumps; report the first tensor that differs."""
    image = None
    for name, got in got_all.items():
        want = np.asarray(result.outputs[name]).reshape(x.shape[0], -1)
        rows = np.nonzero(np.any(got != want, axis=1))[0]
        if rows.size:
            image = int(rows[0]) if image is None else min(image, int(rows[0]))
    if image is None:
        return None
    dump = out / "dump"
    shutil.rmtree(dump, ignore_errors=True)
    dump.mkdir()
    single = out / "tb" / "tb_data" / "single.bin"
    with open(out / "tb" / "tb_data" / "inputs.bin", "rb") as f:
        per_image = len(f.read()) // x.shape[0]
        f.seek(per_image * image)
        single.write_bytes(f.read(per_image))
    proc = gxx.compile_and_run(sources, out, args=[str(out), str(single), str(out / "tb" / "tb_data" / "single_out.bin")],
                               opt=opt, include_dirs=incs, extra_flags=["-DHWGEN_DUMP"], timeout=3600)
    if proc.returncode != 0:
        return {"image": image, "note": "the dump run failed"}
    top_cpp = (out / "firmware" / f"{manifest['top']}.cpp").read_text()
    order = [line.split('"')[1] for line in top_cpp.splitlines() if "HWGEN_DUMP_TENSOR(" in line]
    idents = manifest.get("buffers", {})
    for ident in order:
        path = dump / f"{ident}.bin"
        tensor = idents.get(ident)
        if tensor is None or not path.exists() or tensor not in result.tensors:
            continue
        got = np.fromfile(path, dtype="<i8")
        want = np.asarray(result.tensors[tensor][image]).reshape(-1)
        if got.size == want.size and np.any(got != want):
            idx = int(np.nonzero(got != want)[0][0])
            return {"image": image, "tensor": tensor, "element": idx, "simulator": int(want[idx]),
                    "csim": int(got[idx]), "mismatches_in_tensor": int(np.count_nonzero(got != want))}
    return {"image": image, "note": "intermediate tensors agree; only the outputs differ"}
