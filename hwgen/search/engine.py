"""Design-space search over resource budgets.

Two stages (hwgen's own; UbiMoE's "two-stage heuristic" is not public):

1. Coarse: choose the regime and split the budget. Streaming: for each fraction s of the DSP budget left
   after the fixed kernels, the linear/MoE kernel gets the largest T_IN x T_OUT x LANES whose DSPs fit
   s * budget and the attention kernel the largest P x dot that fits the rest; a candidate that exceeds
   another budget (LUT, BRAM...) is shrunk until it fits. Unrolled: FINN-style folding, every node gets the
   least parallelism that meets a target cycle count (per-node overrides), and the target is halved until
   the budget is exceeded.
2. Fine: from the best few candidates, hill-climb in the space (tile sizes, lanes, P, dot, element-wise
   parallelism, buffer kinds and depths, memory ports), one knob or one traded pair at a time, taking the
   best feasible improvement until none is left.

`exhaustive` enumerates a whole (small) space, to check the heuristic against the true optimum.
Every evaluation goes through hwgen.cost (cached per design); every feasible one is kept for the Pareto
front (latency vs DSP and BRAM).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

from hwgen.boards import RESOURCES, Board, get_board
from hwgen.cost.estimate import Estimator
from hwgen.design import Design
from hwgen.errors import HwgenError
from hwgen.ir import Graph
from hwgen.ir.graph import walk
from hwgen.search.space import Space

DEFAULT_BUDGET = {"dsp": 0.8, "bram18k": 0.8, "lut": 0.7, "ff": 0.7, "uram": 0.8}
_ALIASES = {"bram": "bram18k", "bram_18k": "bram18k", "bram18k": "bram18k", "dsp": "dsp", "lut": "lut",
            "ff": "ff", "uram": "uram"}


def parse_budget(text: str | None, base: dict | None = None) -> dict:
    """'dsp=0.8,bram=0.8,lut=0.7,uram=0.8' -> fractions of the device per resource (unnamed ones keep
    `base`, default DEFAULT_BUDGET)."""
    out = dict(DEFAULT_BUDGET if base is None else base)
    if not text:
        return out
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise HwgenError(f"budget: expected key=value, got '{part.strip()}'")
        k, v = (s.strip() for s in part.split("=", 1))
        key = _ALIASES.get(k.lower())
        if key is None:
            raise HwgenError(f"budget: unknown resource '{k}' (dsp, bram, lut, ff, uram)")
        try:
            f = float(v)
        except ValueError:
            raise HwgenError(f"budget: '{v}' is not a number") from None
        if not 0 < f <= 1:
            raise HwgenError(f"budget: {k}={v} must be a fraction in (0, 1]")
        out[key] = f
    return out


@dataclass
class Result:
    design: Design
    latency_cycles: float
    interval_cycles: float
    latency_ms: float
    images_per_s: float
    gops: float
    resources: dict
    utilisation: dict
    fits: bool
    score: float
    stage: str = ""

    def as_dict(self) -> dict:
        return {"latency_cycles": self.latency_cycles, "latency_ms": self.latency_ms,
                "interval_cycles": self.interval_cycles, "images_per_s": self.images_per_s, "gops": self.gops,
                "resources": self.resources, "utilisation": self.utilisation, "fits": self.fits,
                "stage": self.stage, "design": json.loads(self.design.to_json())}


class Evaluator:
    """Estimates designs (each once) and scores them: latency or 1/throughput, infinite when over budget."""

    def __init__(self, graph: Graph, board: Board, budget: dict, objective: str = "latency",
                 realistic: bool = True, progress=None) -> None:
        if objective not in ("latency", "throughput"):
            raise HwgenError(f"objective must be latency or throughput, not '{objective}'")
        self.graph, self.board, self.budget, self.objective = graph, board, budget, objective
        self.realistic = realistic
        self.results: dict = {}
        self.progress = progress
        self.evaluations = 0

    def key(self, design: Design) -> str:
        return design.to_json()

    def __call__(self, design: Design, stage: str = "") -> Result:
        k = self.key(design)
        r = self.results.get(k)
        if r is not None:
            return r
        e = Estimator(design, self.board, self.realistic).run(self.graph)
        fits = e.fits(self.budget)
        raw = e.latency_cycles if self.objective == "latency" else e.interval_cycles
        util = e.utilisation
        r = Result(design, e.latency_cycles, e.interval_cycles, e.latency_ms, e.images_per_s, e.gops,
                   e.resources.as_dict(), util, fits, raw if fits else math.inf, stage)
        self.results[k] = r
        self.evaluations += 1
        if self.progress is not None:
            self.progress(1)
        return r

    def feasible(self) -> list:
        return [r for r in self.results.values() if r.fits]


def _tiebreak(r: Result) -> tuple:
    return (r.score, r.resources["dsp"], r.resources["bram18k"], r.resources["lut"])


def best_of(results) -> Result | None:
    ok = [r for r in results if r.fits]
    return min(ok, key=_tiebreak) if ok else None


# ------------------------------------------------------------------------------------------------------------
# stage 1
# ------------------------------------------------------------------------------------------------------------
def _base(space: Space, board: str) -> dict:
    """Stage 1 defaults for the knobs it does not split: the most capable memory settings, mid element-wise
    parallelism, on-chip intermediates and buffers, packing when allowed."""
    mid = space.par[min(len(space.par) - 1, len(space.par) // 2)]
    return {
        "weight_buffer": "tile" if "tile" in space.weight_buffer else space.weight_buffer[0],
        "pack_int8": True in space.pack_int8, "dot": space.dot[0], "kv_buffer": True in space.kv_buffer,
        "fused": True in space.fused, "par": mid, "axi_bits": space.axi_bits[-1], "weight_ports": space.weight_ports[-1],
        "overlap": True in space.overlap, "intermediates": "onchip" if "onchip" in space.intermediates else space.intermediates[0],
        "storage": space.storage[0], "prefetch": space.prefetch[len(space.prefetch) // 2],
        "tile_in": space.tile_in[0], "tile_out": space.tile_out[0], "lanes": space.lanes[0], "rows": space.rows[0],
    }


def _kernel_dsp(ev: Evaluator, design: Design) -> tuple[float, float, float]:
    """(DSPs of the linear kernels, of the attention kernels, of everything else) of a design."""
    e = Estimator(design, ev.board, ev.realistic).run(ev.graph)
    lin = sum(k.res.dsp for k in e.kernels if k.name.startswith(("linear", "matmul")))
    att = sum(k.res.dsp for k in e.kernels if k.name.startswith("attention."))
    return lin, att, e.resources.dsp - lin - att


def _linear_shapes(space: Space) -> list:
    """(MACs, tile_in, tile_out, lanes), largest first; among equal MACs prefer few lanes (MoE experts see
    few tokens) and square tiles."""
    shapes = [(ti * to * l, ti, to, l) for ti in space.tile_in for to in space.tile_out for l in space.lanes]
    return sorted(shapes, key=lambda s: (-s[0], s[3], abs(math.log2(s[1] / s[2]))))


def _attention_shapes(space: Space, head_dim: int) -> list:
    shapes = []
    for p in space.rows:
        for w in space.dot:
            shapes.append((p * (w or head_dim or 1), p, w))
    return sorted(shapes, key=lambda s: (-s[0], -s[1]))


def stage1_streaming(ev: Evaluator, space: Space, board: str, splits=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95)) -> list:
    """For each element-wise parallelism (low, middle, high of the space) and each split of the DSP budget
    left after the fixed kernels, the largest linear and attention kernels that fit their shares."""
    out = []
    pars = sorted({space.par[0], space.par[len(space.par) // 2], space.par[-1]})
    for par in pars:
        out += _stage1_split(ev, space, board, splits, par)
    return out


def _stage1_split(ev: Evaluator, space: Space, board: str, splits, par) -> list:
    base = {**_base(space, board), "par": par}
    head_dim = max([int(n.attrs.get("head_dim", 0)) for _, n in walk(ev.graph) if n.op == "attention"] or [0])
    probe = space.make(base, board)
    lin0, att0, fixed = _kernel_dsp(ev, probe)
    m0 = base["tile_in"] * base["tile_out"] * base["lanes"]
    a0 = base["rows"] * (base["dot"] or head_dim or 1)
    per_mac_l = lin0 / max(m0, 1)
    per_mac_a = att0 / max(a0, 1)
    budget = ev.budget.get("dsp", 1.0) * ev.board.resources.dsp - fixed
    lin_shapes, att_shapes = _linear_shapes(space), _attention_shapes(space, head_dim)
    out = []
    for s in splits:
        lin_budget, att_budget = s * budget, (1 - s) * budget
        lin = [x for x in lin_shapes if x[0] * per_mac_l <= lin_budget] or [lin_shapes[-1]]
        att = [x for x in att_shapes if x[0] * per_mac_a <= att_budget] or [att_shapes[-1]]
        li, ai = 0, 0
        for _ in range(6):  # shrink until it fits the other budgets too
            _, ti, to, l = lin[min(li, len(lin) - 1)]
            _, p, w = att[min(ai, len(att) - 1)]
            d = space.make({**base, "tile_in": ti, "tile_out": to, "lanes": l, "rows": p, "dot": w}, board)
            r = ev(d, f"stage1 split {s:.2f}")
            if r.fits:
                out.append(r)
                break
            li, ai = li + 2, ai + 1
    return out


# unrolled: FINN-style folding -------------------------------------------------------------------------------
def fold(graph: Graph, space: Space, board: str, target: float, base: dict) -> Design:
    """Per-node overrides giving every node the least parallelism (from the space's values) whose cycles
    meet `target` (a MoE expert's linears see the expected T*k/E rows)."""
    d = space.make(base, board, "unrolled")
    over: dict = {}
    memo: dict = {}
    for g, n, rows in _walk_rows(graph):
        if n.op in ("linear", "patch_embed"):
            k, m = g.shape(n.inputs[1])
            key = (k, m, rows)
            best = memo.get(key)
            if best is None:
                best = memo[key] = _fold_linear(space, k, m, rows, target)
            over[n.name] = {"linear": {"tile_in": best[1], "tile_out": best[2], "lanes": best[3]}}
        elif n.op == "attention":
            heads, q = int(n.attrs.get("heads", 1)), int(n.attrs.get("queries", 1))
            kv = int(n.attrs.get("keys", 1))
            p = next((p for p in space.rows if heads * math.ceil(q / p) * kv <= target), space.rows[-1])
            for c in n.attrs["_chain"].nodes:
                over[c.name] = {"attention": {"rows": p}}
        elif n.op != "reshape":
            size = max(math.prod(g.shape(o)) for o in n.outputs)
            if n.op == "moe":
                size = size * int(n.attrs["k"])
            par = next((v for v in space.par if size / v <= target), space.par[-1])
            over.setdefault(n.name, {})["elementwise"] = {"par": par}
    d.overrides = over
    return d


def _fold_linear(space: Space, k: int, m: int, rows: float, target: float) -> tuple:
    """(MACs, tile_in, tile_out, lanes) with the fewest MACs whose cycles meet `target`."""
    full_rows = max(1, math.ceil(rows))
    lanes = sorted(set(space.lanes) | {full_rows})
    best = None
    for ti in sorted(set(v for v in space.tile_in if v <= k) | {k}):
        for to in sorted(set(v for v in space.tile_out if v <= m) | {m}):
            per_group = math.ceil(m / to) * math.ceil(k / ti)
            groups = int(target // per_group)
            if groups < 1:
                continue
            need = math.ceil(rows / groups)
            lane = next((v for v in lanes if v >= need), None)
            if lane is None:
                continue
            macs = ti * to * lane
            if best is None or macs < best[0]:
                best = (macs, ti, to, lane)
    return best or (k * m * full_rows, k, m, full_rows)


def _walk_rows(graph: Graph, scale: float = 1.0):
    for n in graph.nodes:
        if n.op == "moe":
            gate, experts = n.attrs["_gate"], n.attrs["_experts"]
            x = graph.tensors[n.inputs[0]]
            tokens = x.size // max(x.shape[-1], 1)
            yield from _walk_rows(gate, scale)
            for sg in experts:
                yield from _walk_rows(sg, scale * int(n.attrs["k"]) / len(experts))
            yield graph, n, tokens * scale
            continue
        rows = 1.0
        if n.op == "linear":
            rows = graph.tensors[n.inputs[0]].size // graph.shape(n.inputs[1])[0] * scale
        elif n.op == "patch_embed":
            from hwgen.ops.linear import linear_rows

            rows = linear_rows(graph, n) * scale
        yield graph, n, rows


def stage1_unrolled(ev: Evaluator, space: Space, board: str, max_steps: int = 14) -> list:
    """Halve the target cycle count from 'everything sequential' until the budget is exceeded."""
    base = _base(space, board)
    base["weight_buffer"] = "matrix"
    # a cheap lower bound: all weights must sit on chip
    bits = sum(t.size * (t.qtype.bits if t.qtype is not None and not t.qtype.is_float else 32)
               for g, n in walk(ev.graph) for t in (g.tensors[i] for i in n.inputs if i) if t.is_const)
    onchip = ev.board.resources.bram18k * 18 * 1024 * ev.budget.get("bram18k", 1.0) + \
        ev.board.resources.uram * 288 * 1024 * ev.budget.get("uram", 1.0)
    if bits > onchip:
        return []
    target = float(max(1, sum(math.prod(g.shape(o)) for g, n in walk(ev.graph) for o in n.outputs)))
    out = []
    lo = None  # the last target that did not fit
    for _ in range(max_steps):
        r = ev(fold(ev.graph, space, board, target, base), f"stage1 unrolled target {target:.0f}")
        if r.fits:
            out.append(r)
        elif out:
            lo = target
            break
        target = max(1.0, target / 2)
    if lo is not None:  # bisect between the last fitting target and the first that did not fit
        hi = target * 2
        for _ in range(4):
            mid = math.sqrt(lo * hi)
            r = ev(fold(ev.graph, space, board, mid, base), f"stage2 unrolled target {mid:.0f}")
            if r.fits:
                out.append(r)
                hi = mid
            else:
                lo = mid
    return out


# ------------------------------------------------------------------------------------------------------------
# stage 2 and the drivers
# ------------------------------------------------------------------------------------------------------------
def hill_climb(ev: Evaluator, space: Space, start: Result, max_moves: int = 40, deadline: float | None = None) -> Result:
    """First-improvement local search: walk the neighbours in order, move to the first strictly better
    feasible one, until a whole neighbourhood brings nothing (a local optimum) or the move/time limit."""
    cur = start
    if cur.design.regime == "unrolled":
        return cur  # unrolled designs are refined through their folding target (stage 1)
    for _ in range(max_moves):
        moved = False
        for d in space.neighbours(cur.design):
            if deadline is not None and time.perf_counter() > deadline:
                return cur
            r = ev(d, "stage2")
            if r.fits and _tiebreak(r) < _tiebreak(cur):
                cur, moved = r, True
                break
        if not moved:
            break
    return cur


@dataclass
class SearchResult:
    best: Result
    results: list
    evaluations: int
    seconds: float
    stage1_best: Result | None = None
    space: Space | None = None
    pareto: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"best": self.best.as_dict(), "evaluations": self.evaluations, "seconds": self.seconds,
                "stage1_best": self.stage1_best.as_dict() if self.stage1_best else None,
                "pareto": [r.as_dict() for r in self.pareto]}


def search(graph: Graph, board: str | Board, budget: dict | None = None, objective: str = "latency",
           space: Space | None = None, realistic: bool = True, top_k: int = 3, time_limit: float | None = 8.0,
           progress=None) -> SearchResult:
    """The two-stage search. Returns the best design that fits `budget` (fractions per resource).
    Stage 2 stops refining after `time_limit` seconds of search (None: never)."""
    t0 = time.perf_counter()
    board = get_board(board) if not isinstance(board, Board) else board
    budget = parse_budget(None) if budget is None else budget
    space = space or Space.for_model(graph, board)
    ev = Evaluator(graph, board, budget, objective, realistic, progress)
    bname = board.name
    cands = []
    if "streaming" in space.regimes:
        cands += stage1_streaming(ev, space, bname)
    if "unrolled" in space.regimes:
        cands += stage1_unrolled(ev, space, bname)
    if not cands:  # nothing fits: try the smallest design of the space before giving up
        small = {k: getattr(space, k)[0] for k in ("tile_in", "tile_out", "lanes", "rows", "par")}
        r = ev(space.make({**_base(space, bname), **small, "pack_int8": True in space.pack_int8}, bname), "stage1 minimum")
        cands = [r] if r.fits else []
    if not cands:
        raise HwgenError(f"no design fits the budget {budget} on {bname} (the smallest needs "
                         + ", ".join(f"{k} {v:.0%}" for k, v in ev(space.make(_base(space, bname), bname)).utilisation.items()
                                     if v > budget.get(k, 1.0)) + ")")
    stage1 = best_of(cands)
    deadline = t0 + time_limit if time_limit else None
    uniq = sorted({id(r): r for r in cands}.values(), key=_tiebreak)
    ranked = []
    for regime in space.regimes:  # the best of each regime, then the next best overall
        ranked += [r for r in uniq if r.design.regime == regime][:1]
    ranked += [r for r in uniq if r not in ranked][:max(0, top_k - len(ranked))]
    finals = [hill_climb(ev, space, r, deadline=deadline) for r in ranked]
    best = best_of(finals + [stage1])
    feas = ev.feasible()
    return SearchResult(best, feas, ev.evaluations, time.perf_counter() - t0, stage1, space, pareto_front(feas))


def exhaustive(graph: Graph, board: str | Board, budget: dict, space: Space, objective: str = "latency",
               realistic: bool = True, progress=None) -> SearchResult:
    """Every design of `space` (streaming regime and uniform unrolled knobs); only for small spaces."""
    t0 = time.perf_counter()
    board = get_board(board) if not isinstance(board, Board) else board
    ev = Evaluator(graph, board, budget, objective, realistic, progress)
    for regime in space.regimes:
        for d in space.designs(board.name, regime):
            ev(d, "exhaustive")
    feas = ev.feasible()
    best = best_of(feas)
    if best is None:
        raise HwgenError(f"no design of the space fits the budget {budget} on {board.name}")
    return SearchResult(best, feas, ev.evaluations, time.perf_counter() - t0, None, space, pareto_front(feas))


def pareto_front(results: list) -> list:
    """Feasible results not dominated in (latency, DSP, BRAM_18K), sorted by latency."""
    pts = sorted(results, key=lambda r: (r.latency_cycles, r.resources["dsp"], r.resources["bram18k"]))
    front: list = []
    for r in pts:
        dominated = any(f.latency_cycles <= r.latency_cycles and f.resources["dsp"] <= r.resources["dsp"]
                        and f.resources["bram18k"] <= r.resources["bram18k"] for f in front)
        if not dominated:
            front.append(r)
    return front


def budget_resources(board: Board, budget: dict) -> dict:
    return {k: getattr(board.resources, k) * budget.get(k, 1.0) for k in RESOURCES}
