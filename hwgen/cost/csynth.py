"""Vitis HLS synthesis reports (csynth.xml) against the cost model, kernel by kernel.

A report is the `<profile>` document Vitis HLS writes to <solution>/syn/report/csynth.xml for the top
function and to <module>_csynth.xml for every sub-function:

    profile/UserAssignments/{Part, TopModelName, TargetClockPeriod}
    profile/PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod
    profile/PerformanceEstimates/SummaryOfOverallLatency/{Best-caseLatency, Average-caseLatency,
        Worst-caseLatency, Interval-min, Interval-max}          (numbers of cycles, or "undef")
    profile/PerformanceEstimates/SummaryOfLoopLatency/<loop>/{TripCount, Latency, PipelineII, PipelineDepth}
    profile/AreaEstimates/Resources/{BRAM_18K, DSP (DSP48E in older versions), FF, LUT, URAM}
    profile/AreaEstimates/AvailableResources/(the same)

Some versions also list sub-modules inside the top report (ModuleInformation/Module/{Name,
PerformanceEstimates, AreaEstimates}); both forms are read.

Matching: a report module belongs to the estimate's kernel whose name (before any "[", ":" or ".")
starts the module name, e.g. modules "linear_cfg3_s" and "linear_cfg7_s" -> kernel "linear",
"attention_cfg1_s" -> the attention kernels. An explicit {module: kernel} mapping overrides this.
Each module is taken to be one call of its kernel: its latency is compared with the estimate's mean
cycles per node of that kernel (times the number of modules). Resources compare the sum of the modules
with the estimate's kernel, which the streaming regime shares between all its nodes: a report far above
the estimate there means the generated code instantiates a kernel per node instead of sharing one.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from hwgen.boards import Resources
from hwgen.errors import HwgenError

_RES_TAGS = {"BRAM_18K": "bram18k", "DSP": "dsp", "DSP48E": "dsp", "DSP58E": "dsp", "FF": "ff", "LUT": "lut",
             "URAM": "uram"}


@dataclass
class SynthReport:
    name: str
    part: str | None = None
    target_clock_ns: float | None = None
    estimated_clock_ns: float | None = None
    latency_best: int | None = None
    latency_avg: int | None = None
    latency_worst: int | None = None
    interval_min: int | None = None
    interval_max: int | None = None
    resources: Resources = field(default_factory=Resources)
    available: Resources | None = None
    loops: list = field(default_factory=list)
    modules: list = field(default_factory=list)
    file: str | None = None

    @property
    def latency(self) -> int | None:
        """Worst-case latency in cycles (None when the tool could not bound it)."""
        for v in (self.latency_worst, self.latency_avg, self.latency_best):
            if v is not None:
                return v
        return None


def _num(text: str | None, kind=int):
    if text is None:
        return None
    t = text.strip()
    if not t or t.lower() in ("undef", "-", "n/a"):
        return None
    try:
        return kind(float(t)) if kind is int else kind(t)
    except ValueError:
        return None


def _resources(node) -> Resources | None:
    if node is None:
        return None
    vals = {}
    for child in node:
        key = _RES_TAGS.get(child.tag)
        if key is not None:
            v = _num(child.text, float)
            vals[key] = vals.get(key, 0.0) + (v or 0.0)
    return Resources(**vals)


def _from_element(root, default_name: str = "?", file: str | None = None) -> SynthReport:
    ua = root.find("UserAssignments")
    perf = root.find("PerformanceEstimates")
    area = root.find("AreaEstimates")
    name = None
    if ua is not None:
        name = (ua.findtext("TopModelName") or "").strip() or None
    name = name or (root.findtext("Name") or "").strip() or default_name
    rep = SynthReport(name=name, file=file)
    if ua is not None:
        rep.part = (ua.findtext("Part") or "").strip() or None
        rep.target_clock_ns = _num(ua.findtext("TargetClockPeriod"), float)
    if perf is not None:
        rep.estimated_clock_ns = _num(perf.findtext("SummaryOfTimingAnalysis/EstimatedClockPeriod"), float)
        lat = perf.find("SummaryOfOverallLatency")
        if lat is not None:
            rep.latency_best = _num(lat.findtext("Best-caseLatency"))
            rep.latency_avg = _num(lat.findtext("Average-caseLatency"))
            rep.latency_worst = _num(lat.findtext("Worst-caseLatency"))
            rep.interval_min = _num(lat.findtext("Interval-min"))
            rep.interval_max = _num(lat.findtext("Interval-max"))
        loops = perf.find("SummaryOfLoopLatency")
        if loops is not None:
            for lp in loops:
                rep.loops.append({"name": (lp.findtext("Name") or lp.tag).strip(),
                                  "trip_count": _num(lp.findtext("TripCount")), "latency": _num(lp.findtext("Latency")),
                                  "ii": _num(lp.findtext("PipelineII")), "depth": _num(lp.findtext("PipelineDepth"))})
    if area is not None:
        rep.resources = _resources(area.find("Resources")) or Resources()
        rep.available = _resources(area.find("AvailableResources"))
    info = root.find("ModuleInformation")
    if info is not None:
        for m in info.findall("Module"):
            sub = _from_element(m, file=file)
            if sub.name != rep.name:
                rep.modules.append(sub)
    return rep


def parse_csynth(source: str | Path) -> SynthReport:
    """One csynth.xml (a path, or the XML text itself)."""
    text, file = None, None
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("<")):
        file = str(source)
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise HwgenError(f"cannot read synthesis report: {exc}", file=file) from None
    else:
        text = source
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise HwgenError(f"not a csynth.xml report: {exc}", file=file) from None
    if root.tag != "profile" or root.find("PerformanceEstimates") is None and root.find("AreaEstimates") is None:
        raise HwgenError("not a csynth.xml report (no profile/PerformanceEstimates or AreaEstimates)", file=file)
    return _from_element(root, file=file)


def load_reports(path: str | Path) -> SynthReport:
    """A report file, or a directory holding csynth.xml and <module>_csynth.xml (a solution's syn/report,
    or any folder above it). Returns the top report with every module report attached."""
    p = Path(path)
    if p.is_file():
        top = parse_csynth(p)
        folder = p.parent
    elif p.is_dir():
        found = sorted(p.rglob("csynth.xml"))
        if not found:
            raise HwgenError("no csynth.xml under this folder", file=str(p))
        top = parse_csynth(found[0])
        folder = found[0].parent
    else:
        raise HwgenError("no such report file or folder", file=str(p))
    known = {m.name for m in top.modules} | {top.name}
    for f in sorted(folder.glob("*_csynth.xml")):
        try:
            sub = parse_csynth(f)
        except HwgenError:
            continue
        if sub.name not in known:
            top.modules.append(sub)
            known.add(sub.name)
    return top


def _base(kernel: str) -> str:
    return re.split(r"[\[:.]", kernel, maxsplit=1)[0].lower()


def compare(estimate, report: SynthReport, mapping: dict | None = None) -> dict:
    """Per kernel: estimated busy cycles and resources vs the sum over its report modules; and the totals.
    Ratios are report / estimate."""
    mapping = mapping or {}
    bases: dict = {}
    for k in estimate.kernels:
        if k.cycles > 0 or k.res.dsp or k.res.lut:
            bases.setdefault(_base(k.name), []).append(k)
    rows: dict = {}
    unmatched = []
    for m in report.modules:
        target = mapping.get(m.name)
        if target is None:
            low = m.name.lower()
            cands = [b for b in bases if low.startswith(b)]
            target = max(cands, key=len) if cands else None
        else:
            target = _base(target)
        if target is None or target not in bases:
            unmatched.append(m.name)
            continue
        row = rows.setdefault(target, {"kernel": target, "modules": [], "report_cycles": 0, "report": Resources()})
        row["modules"].append(m.name)
        row["report_cycles"] += m.latency or 0
        row["report"] = row["report"] + m.resources
    calls: dict = {}
    for c in getattr(estimate, "costs", []):
        if not c.view:
            calls.setdefault(_base(c.kernel), []).append(c.cycles)
    out = []
    for base, row in sorted(rows.items()):
        ks = bases[base]
        # each report module is taken to be one call (one top-level node) of its kernel: the estimate's mean
        # cycles per call times the number of modules
        per = calls.get(base)
        if per:
            mean = sum(per) / len(per)
        else:
            mean = sum(k.cycles for k in ks) / (sum(k.nodes for k in ks if k.cycles > 0) or 1)
        est_cycles = mean * len(row["modules"])
        est_res = Resources()
        for k in ks:
            est_res = est_res + k.res
        out.append({**row, "estimate_cycles": est_cycles, "estimate": est_res,
                    "cycles_ratio": (row["report_cycles"] / est_cycles) if est_cycles else None,
                    "ratios": {r: (getattr(row["report"], r) / getattr(est_res, r)) if getattr(est_res, r) else None
                               for r in ("lut", "ff", "bram18k", "uram", "dsp")}})
    total = {"report_cycles": report.latency, "estimate_cycles": estimate.latency_cycles,
             "report": report.resources, "estimate": estimate.resources,
             "cycles_ratio": (report.latency / estimate.latency_cycles) if report.latency and estimate.latency_cycles else None}
    return {"kernels": out, "total": total, "unmatched": unmatched, "top": report.name}
