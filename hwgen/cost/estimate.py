"""Compose the per-op costs over a graph under a Design: latency per image, throughput, resources.

Schedule (a list schedule in topological order, one pass):
- every node runs on its kernel (hwgen.cost.model.Cost.kernel; a MoE also occupies the kernels of its
  experts); a kernel runs one node at a time, so ops that share the reusable linear kernel run in sequence;
- a node may start when its inputs are ready: a producer that streams (row by row, in order) to a
  consumer that does not need its whole input lets the consumer start one granule after the producer
  starts (dataflow overlap), and then the consumer cannot finish before the producer's last granule has
  passed through it: finish = max(start + cycles, producer finish + cycles/granules). Otherwise the
  consumer waits for the producer to finish. Streaming needs the activations on chip
  (memory.intermediates "onchip") and an order-preserving path (reshapes only); a lookup table fused into
  the linear kernel's write-out always streams.
- latency = the last finish, and never less than all off-chip bytes over the bandwidth.
- throughput: the streaming regime runs one image at a time (its kernels are shared and its weights
  reloaded per image): interval = latency. The unrolled regime is one dataflow pipeline over images:
  interval = the busiest kernel (and the off-chip bytes over the bandwidth).

Resources: a shared kernel is sized for its largest user (element-wise max); distinct kernels add up;
plus the on-chip activation buffers (peak of the bits alive at once under the schedule, when
intermediates are on chip), the top level's control and its activation m_axi ports.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from hwgen.boards import RESOURCES, Board, Resources, get_board
from hwgen.cost import analysis
from hwgen.cost import model as cm
from hwgen.design import GROUPS, Design
from hwgen.ir import Graph
from hwgen.ops.base import get

TOP = Resources(lut=1200, ff=1800)  # s_axilite control and the top-level FSM
_NOFACTS: dict = {}
GROUP_NAMES = tuple(GROUPS)
_INTERN: dict = {}


def _astuple(knobs) -> tuple:
    return tuple(sorted(vars(knobs).items()))


@dataclass
class KernelRow:
    name: str
    ops: list
    nodes: int
    cycles: float          # busy cycles per image
    macs: float
    res: Resources
    weight_bytes: float
    act_bytes: float


@dataclass
class Estimate:
    design: Design
    board: Board
    clock_mhz: float
    realistic: bool
    latency_cycles: float
    interval_cycles: float
    macs: float
    weight_bytes: float
    act_bytes: float
    resources: Resources
    kernels: list = field(default_factory=list)
    costs: list = field(default_factory=list)
    compute_cycles: float = 0.0
    load_cycles: float = 0.0
    memory_floor_cycles: float = 0.0
    slr_ok: bool = True
    io_cycles: float = 0.0
    limited_cycles: dict = field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        return self.latency_cycles / (self.clock_mhz * 1e3)

    @property
    def images_per_s(self) -> float:
        return self.clock_mhz * 1e6 / max(self.interval_cycles, 1.0)

    @property
    def gops(self) -> float:
        return 2.0 * self.macs * self.images_per_s / 1e9

    @property
    def bandwidth_gbs(self) -> float:
        """Average off-chip traffic at the achieved throughput."""
        return (self.weight_bytes + self.act_bytes) * self.images_per_s / 1e9

    @property
    def utilisation(self) -> dict:
        return self.resources.utilisation(self.board.resources)

    def fits(self, budget: dict | None = None) -> bool:
        """Within `budget` (fractions of the device per resource; default 1.0 each) and per-SLR limits."""
        budget = budget or {}
        util = self.utilisation
        return self.slr_ok and all(util[k] <= budget.get(k, 1.0) + 1e-9 for k in RESOURCES)

    def bound(self) -> str:
        """What limits the latency: the whole model's off-chip traffic when that floor sets it, else the term
        (compute, weight loading, activation traffic) that limits the nodes holding most of the cycles."""
        if self.memory_floor_cycles >= 0.98 * self.latency_cycles:
            return "off-chip bandwidth"
        parts = self.limited_cycles or {"compute": self.compute_cycles, "weight loading": self.load_cycles,
                                        "activation traffic": self.io_cycles}
        return max(parts, key=parts.get)

    def bound_detail(self) -> str:
        """bound() with the share of the node cycles each term limits, e.g. 'compute (compute 64%, weight
        loading 33%, activation traffic 3%)'."""
        total = sum(self.limited_cycles.values())
        if not total:
            return self.bound()
        shares = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(self.limited_cycles.items(), key=lambda kv: -kv[1]))
        return f"{self.bound()} ({shares} of the node cycles)"

    def as_dict(self) -> dict:
        return {
            "board": self.board.name, "clock_mhz": self.clock_mhz, "memory_model": "realistic" if self.realistic else "ideal",
            "latency_cycles": self.latency_cycles, "latency_ms": self.latency_ms, "interval_cycles": self.interval_cycles,
            "images_per_s": self.images_per_s, "gops": self.gops, "macs": self.macs,
            "weight_bytes": self.weight_bytes, "act_bytes": self.act_bytes, "bandwidth_gbs": self.bandwidth_gbs,
            "resources": self.resources.as_dict(), "utilisation": self.utilisation, "slr_ok": self.slr_ok,
            "bound": self.bound(), "limited_cycles": self.limited_cycles,
            "kernels": [{"kernel": k.name, "ops": k.ops, "nodes": k.nodes, "cycles": k.cycles, "macs": k.macs,
                         "resources": k.res.as_dict(), "weight_bytes": k.weight_bytes, "act_bytes": k.act_bytes}
                        for k in self.kernels],
            "design": json.loads(self.design.to_json()),
        }


class Estimator:
    """Costs and schedules graphs under one Design on one board."""

    def __init__(self, design: Design, board: Board | str | None = None, realistic: bool = True,
                 clock_mhz: float | None = None) -> None:
        self.design = design
        self.board = get_board(board or design.board) if not isinstance(board, Board) else board
        self.clock_mhz = float(clock_mhz or design.clock_mhz or self.board.clock_mhz)
        self.realistic = realistic
        self.mem = cm.MemSystem(self.board, self.clock_mhz, realistic)
        self.ctx = cm.CostContext(design, self.board, self.clock_mhz, self.mem, {}, estimator=self)
        self.root: Graph | None = None
        self._unrolled = design.regime == "unrolled"
        self._keys: dict = {}
        self._struct: dict = {}
        self.memo: dict = self.ctx.cache
        self._proj: dict = {}
        self._groups = {g: _astuple(getattr(design, g)) for g in GROUP_NAMES}
        self._common = (design.regime, design.weights_offchip, json.dumps(self.board.as_dict(), sort_keys=True),
                        self.clock_mhz, realistic)

    # -- costs ---------------------------------------------------------------------------------------------
    def node_cost(self, graph: Graph, node, ctx: cm.CostContext) -> cm.Cost:
        sid = self._keys.get(id(node))
        if sid is None:
            sid = self._keys[id(node)] = analysis.static_key(self.root or graph, graph, node)
        op = get(node.op)
        proj = self._proj.get(node.op)
        if proj is None:
            groups = op.cost_groups or GROUP_NAMES
            full = (self._common,) + tuple(self._groups[g] for g in groups)
            proj = self._proj[node.op] = _INTERN.setdefault(full, len(_INTERN))
        if self._unrolled:
            over = self.design.overrides.get(node.name)
            key = (sid, ctx.row_scale, proj, node.name, ctx.prefix, json.dumps(over, sort_keys=True) if over else "")
        elif node.name in self.design.overrides:
            key = (sid, ctx.row_scale, proj, node.name, json.dumps(self.design.overrides[node.name], sort_keys=True))
        else:
            key = (sid, ctx.row_scale, proj)
        memo = self.memo
        hit = memo.get(key)
        if hit is not None:
            return hit
        c = op.cost(graph, node, self.design, self.board, ctx)
        if not isinstance(c, cm.Cost):
            raise TypeError(f"{node.op}.cost returned {type(c).__name__}, not a Cost")
        memo[key] = c
        return c

    def structure(self, sg: Graph) -> tuple:
        """Static keys of a subgraph's nodes: equal tuples mean equal costs under any Design."""
        st = self._struct.get(id(sg))
        if st is None:
            root = self.root or sg
            st = self._struct[id(sg)] = tuple(analysis.static_key(root, sg, n) for n in sg.nodes)
        return st

    def subgraph(self, sg: Graph, ctx: cm.CostContext) -> list:
        if self.root is None:
            self.root = sg
            ctx.info = analysis.analyse(sg)
        pl = analysis.plan(self.root, sg)
        views = pl.get("view_kinds")
        if views is None:  # one cost per kind of view (they are all alike)
            views = pl["view_kinds"] = {i: (sg.nodes[i].op, len(sg.tensors[sg.nodes[i].outputs[0]].shape))
                                        for i in pl["views"]}
        out = [None] * len(sg.nodes)
        for i, kind in views.items():
            c = ctx.cache.get(kind)
            if c is None:
                c = ctx.cache[kind] = self.node_cost(sg, sg.nodes[i], ctx)
            out[i] = c
        nodes = sg.nodes
        for i in pl["order"]:
            out[i] = self.node_cost(sg, nodes[i], ctx)
        return out

    # -- schedule ------------------------------------------------------------------------------------------
    def schedule(self, graph: Graph, costs: list, ctx: cm.CostContext | None = None) -> dict:
        """List schedule of one (sub)graph; returns start/finish per node, latency, busy cycles per kernel and
        the peak bits of activations alive at once."""
        ctx = ctx or self.ctx
        pl = analysis.plan(self.root or graph, graph)
        if graph is not self.root:  # identical subgraphs (experts, attention chains) with identical costs
            key = ("schedule", pl["key"], tuple(map(id, costs)), self.design.attention.fused,
                   self.design.memory.intermediates, self.design.regime)
            hit = self.memo.get(key)
            if hit is None:
                hit = self.memo[key] = self._schedule(graph, costs, ctx, pl)
            return hit
        return self._schedule(graph, costs, ctx, pl)

    def _schedule(self, graph: Graph, costs: list, ctx: cm.CostContext, pl: dict) -> dict:
        onchip = self.design.memory.intermediates == "onchip" or self.design.regime == "unrolled"
        fused_attn = self.design.attention.fused
        nodes = graph.nodes
        start: dict = {}
        finish: dict = {}
        lead: dict = {}
        free: dict = {}
        busy: dict = {}
        for idx in pl["order"]:
            c = costs[idx]
            n = nodes[idx]
            facts = ctx.facts(n)
            ai = facts.get("a_internal")
            internal = ai is True or (ai == "fused" and fused_attn)
            fused_into = facts.get("fused_into")
            ready, tail_after = 0.0, 0.0
            for real, ordered in pl["ins"][idx]:
                pc = costs[real]
                if internal or (fused_into is not None and fused_into == nodes[real].name) or \
                        (onchip and ordered and pc.streams and not c.blocking):
                    ready = max(ready, start[real] + lead[real])
                    tail_after = max(tail_after, finish[real] + c.cycles / max(c.rows, 1.0))
                else:
                    ready = max(ready, finish[real])
            s = ready
            kf = free.get(c.kernel)
            if kf is not None and kf > s:
                s = kf
            for k in c.uses:
                kf = free.get(k)
                if kf is not None and kf > s:
                    s = kf
            f = s + c.cycles
            if tail_after > f:
                f = tail_after
            start[idx], finish[idx] = s, f
            lead[idx] = c.cycles / max(c.rows, 1.0) + c.depth
            free[c.kernel] = f
            for k in c.uses:
                free[k] = f
            busy[c.kernel] = busy.get(c.kernel, 0.0) + c.cycles
        latency = max(finish.values()) if finish else 0.0
        peak = self._peak_bits(graph, pl, start, finish) if onchip and graph is self.root else 0.0
        return {"start": start, "finish": finish, "latency": latency, "busy": busy, "peak_bits": peak}

    @staticmethod
    def _peak_bits(graph, pl, start, finish) -> float:
        """Peak of activation bits alive at once: a tensor lives from its producer's start to its last
        consumer's finish (views alias their source)."""
        last: dict = {}
        for idx in pl["order"]:
            for real, _ in pl["ins"][idx]:
                last[real] = max(last.get(real, 0.0), finish[idx])
        events = []
        out_bits = pl.get("out_bits")
        if out_bits is None:
            out_bits = pl["out_bits"] = {i: sum(math.prod(graph.tensors[o].shape) * cm.op_bits(graph.tensors[o].qtype)
                                                for o in graph.nodes[i].outputs) for i in pl["order"]}
        for real, end in last.items():
            bits = out_bits[real]
            events.append((start[real], bits))
            events.append((end, -bits))
        events.sort(key=lambda e: (e[0], e[1]))
        live = peak = 0.0
        for _, b in events:
            live += b
            peak = max(peak, live)
        return peak

    # -- the whole graph -----------------------------------------------------------------------------------
    def run(self, graph: Graph) -> Estimate:
        ctx = self.ctx
        self.root = graph
        ctx.info = analysis.analyse(graph)
        entry = analysis._entry(graph)
        self._keys = entry.setdefault("keys", {})
        self._struct = entry.setdefault("struct", {})
        self.memo = entry.setdefault("memo", {})  # costs shared by every design evaluated on this graph
        if len(self.memo) > 200000:
            self.memo.clear()
        costs = self.subgraph(graph, ctx)
        costs = self._graph_io(graph, costs)
        sched = self.schedule(graph, costs, ctx)
        # kernels: every distinct cost object once, with its multiplicity (identical layers share one)
        counts: dict = {}
        level = []
        for c in costs:
            e = counts.get(id(c))
            if e is None:
                e = counts[id(c)] = [c, 0]
                if c.children:
                    level.append(e)
            e[1] += 1
        while level:
            nxt = []
            for parent, mult in level:
                for ch in parent.children:
                    e = counts.get(id(ch))
                    if e is None:
                        e = counts[id(ch)] = [ch, 0]
                        if ch.children:
                            nxt.append(e)
                    e[1] += mult
            level = nxt
        rows: dict = {}
        compute = load = io = 0.0
        limited: dict = {}  # each node's cycles, under the term that limits that node
        for c, mult in counts.values():
            key = "views" if c.view else c.kernel
            r = rows.get(key)
            if r is None:
                r = rows[key] = KernelRow(key, [], 0, 0.0, 0.0, cm.ZERO, 0.0, 0.0)
            if c.op not in r.ops:
                r.ops.append(c.op)
            r.nodes += mult
            r.res = r.res.max(c.res)
            if c.children:
                r.cycles += mult * max(0.0, c.cycles - sum(ch.cycles for ch in c.children))
            else:
                r.cycles += mult * c.cycles
                r.macs += mult * c.macs
                r.weight_bytes += mult * c.weight_bytes
                r.act_bytes += mult * c.act_bytes
                compute += mult * c.compute
                load += mult * c.load
                io += mult * c.io
                limiter = max((("compute", c.compute), ("weight loading", c.load), ("activation traffic", c.io)),
                              key=lambda kv: kv[1])[0]
                limited[limiter] = limited.get(limiter, 0.0) + mult * c.cycles
        kernels = sorted(rows.values(), key=lambda r: -r.cycles)
        total = TOP
        for r in kernels:
            total = total + r.res
        if sched["peak_bits"] > 0 and self.design.regime == "streaming":
            buf = cm.memory(64, sched["peak_bits"] / 64, 1, self.design.memory.storage, self.board)
            kernels.append(KernelRow("activation buffers", [], 0, 0.0, 0.0, buf, 0.0, 0.0))
            total = total + buf
        if self.design.regime == "streaming":
            ports = 2 + (4 if self.design.memory.intermediates == "dram" else 0)
            axi = cm.axi_adapter(self.design.memory.axi_bits, ports)
            kernels.append(KernelRow("activation m_axi ports", [], 0, 0.0, 0.0, axi, 0.0, 0.0))
            total = total + axi
        macs = sum(c.macs for c in costs)
        wbytes = sum(c.weight_bytes for c in costs)
        abytes = sum(c.act_bytes for c in costs)
        floor = (wbytes + abytes) / self.mem.total
        latency = max(sched["latency"], floor)
        if self.design.regime == "unrolled":
            interval = max([max(sched["busy"].values(), default=1.0), floor])
        else:
            interval = latency
        slr_ok = True
        if self.board.slrs:
            limit = self.board.largest_slr
            slr_ok = all(r.res.fits(limit) for r in kernels)
        return Estimate(self.design, self.board, self.clock_mhz, self.realistic, latency, interval, macs, wbytes, abytes,
                        total.rounded(), kernels, costs, compute, load, floor, slr_ok, io, limited)

    def _graph_io(self, graph: Graph, costs: list) -> list:
        """The model's inputs are read from, and its outputs written to, off-chip memory (by the first and last
        kernels, overlapped with their work)."""
        out = list(costs)
        inputs = set(graph.inputs)
        for i, n in enumerate(graph.nodes):
            nbytes = sum(graph.tensors[t].size * cm.op_bits(graph.tensors[t].qtype) / 8 for t in n.inputs if t in inputs)
            if nbytes and not out[i].view and not self.ctx.dram_io(n):
                t = self.mem.transfer(nbytes, self.design.memory.axi_bits)
                c = out[i]
                out[i] = _replace(c, cycles=max(c.cycles, t + c.depth), io=c.io + t, act_bytes=c.act_bytes + nbytes)
        for name, i in analysis.plan(graph, graph)["outputs"]:
            if i is None or self.ctx.dram_io(graph.nodes[i]):
                continue  # (with intermediates in DRAM the producer already writes it there)
            nbytes = graph.tensors[name].size * cm.op_bits(graph.tensors[name].qtype) / 8
            t = self.mem.transfer(nbytes, self.design.memory.axi_bits)
            c = out[i]
            out[i] = _replace(c, cycles=c.cycles + t, io=c.io + t, act_bytes=c.act_bytes + nbytes)
        return out


def _replace(c: cm.Cost, **kw) -> cm.Cost:
    from dataclasses import replace

    return replace(c, **kw)


def _descendants(c: cm.Cost):
    for ch in c.children:
        yield ch
        yield from _descendants(ch)


def estimate(graph: Graph, design: Design | None = None, board: Board | str | None = None, realistic: bool = True,
             clock_mhz: float | None = None) -> Estimate:
    """Latency, throughput and resources of `graph` under `design` on `board` (default: the design's)."""
    design = design or Design()
    return Estimator(design, board, realistic, clock_mhz).run(graph)
