"""The design space the search explores: a list of legal values per knob (Design fields), derived from the
model's dimensions and the board, or given explicitly (small spaces for the exhaustive check)."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field, fields

from hwgen.boards import Board
from hwgen.design import AttentionKnobs, Design, ElementwiseKnobs, LinearKnobs, MemoryKnobs
from hwgen.ir import Graph
from hwgen.ir.graph import walk

# knob -> (Design group, field)
KNOBS = {
    "tile_in": ("linear", "tile_in"), "tile_out": ("linear", "tile_out"), "lanes": ("linear", "lanes"),
    "weight_buffer": ("linear", "weight_buffer"), "pack_int8": ("linear", "pack_int8"),
    "rows": ("attention", "rows"), "dot": ("attention", "dot"), "kv_buffer": ("attention", "kv_buffer"),
    "fused": ("attention", "fused"),
    "par": ("elementwise", "par"),
    "axi_bits": ("memory", "axi_bits"), "weight_ports": ("memory", "weight_ports"),
    "overlap": ("memory", "overlap"), "intermediates": ("memory", "intermediates"),
    "storage": ("memory", "storage"), "prefetch": ("memory", "prefetch"),
}
NUMERIC = {"tile_in", "tile_out", "lanes", "rows", "dot", "par", "axi_bits", "weight_ports", "prefetch"}
WIDE_STEPS = {"tile_in", "tile_out", "lanes"}  # stage 2 also tries two steps at once on these
_NONE = object()  # "no neighbour" in Space.neighbours


@dataclass
class Space:
    regimes: list = field(default_factory=lambda: ["streaming"])
    tile_in: list = field(default_factory=lambda: [16])
    tile_out: list = field(default_factory=lambda: [16])
    lanes: list = field(default_factory=lambda: [1])
    weight_buffer: list = field(default_factory=lambda: ["tile"])
    pack_int8: list = field(default_factory=lambda: [False])
    rows: list = field(default_factory=lambda: [4])
    dot: list = field(default_factory=lambda: [None])
    kv_buffer: list = field(default_factory=lambda: [True])
    fused: list = field(default_factory=lambda: [True])
    par: list = field(default_factory=lambda: [1])
    axi_bits: list = field(default_factory=lambda: [256])
    weight_ports: list = field(default_factory=lambda: [1])
    overlap: list = field(default_factory=lambda: [True])
    intermediates: list = field(default_factory=lambda: ["onchip"])
    storage: list = field(default_factory=lambda: ["auto"])
    prefetch: list = field(default_factory=lambda: [2])
    clock_mhz: float | None = None

    def __post_init__(self) -> None:
        for k in KNOBS:
            vals = getattr(self, k)
            if k in NUMERIC:  # None ("the whole dimension", attention.dot) is the widest: last
                vals = sorted(set(vals), key=lambda v: math.inf if v is None else v)
            else:
                vals = list(dict.fromkeys(vals))
            if not vals:
                raise ValueError(f"search space: no values for {k}")
            setattr(self, k, vals)

    # -- size and enumeration ----------------------------------------------------------------------------
    def knobs(self) -> list:
        return [k for k in KNOBS if len(getattr(self, k)) > 1]

    def size(self) -> int:
        return len(self.regimes) * math.prod(len(getattr(self, k)) for k in KNOBS)

    def designs(self, board: str, regime: str = "streaming"):
        """Every design of the space for one regime (the exhaustive search)."""
        keys = list(KNOBS)
        for combo in itertools.product(*(getattr(self, k) for k in keys)):
            yield self.make(dict(zip(keys, combo)), board, regime)

    def make(self, values: dict, board: str, regime: str = "streaming") -> Design:
        groups = {"linear": {}, "attention": {}, "elementwise": {}, "memory": {}}
        for k, (g, f) in KNOBS.items():
            groups[g][f] = values.get(k, getattr(self, k)[0])
        return Design(regime=regime, board=board, clock_mhz=self.clock_mhz, linear=LinearKnobs(**groups["linear"]),
                      attention=AttentionKnobs(**groups["attention"]),
                      elementwise=ElementwiseKnobs(**groups["elementwise"]), memory=MemoryKnobs(**groups["memory"]))

    @staticmethod
    def values_of(design: Design) -> dict:
        return {k: getattr(getattr(design, g), f) for k, (g, f) in KNOBS.items()}

    def neighbours(self, design: Design) -> list:
        """Designs one step away: each knob to its adjacent values, and paired moves that trade parallelism
        between the linear kernel's three dimensions or between the linear and attention kernels (so a
        search at the edge of the DSP budget can still move)."""
        vals = self.values_of(design)
        out = []

        def step(k, d):  # _NONE when there is no such neighbour (None itself is a legal dot value)
            options = getattr(self, k)
            cur = vals[k]
            if cur not in options:
                return _NONE
            i = options.index(cur) + d
            return options[i] if 0 <= i < len(options) else _NONE

        for k in self.knobs():
            for d in (-1, 1, -2, 2) if k in WIDE_STEPS else (-1, 1):
                v = step(k, d)
                if v is not _NONE and v != vals[k]:
                    out.append({**vals, k: v})
        pairs = [("tile_in", "tile_out"), ("tile_in", "lanes"), ("tile_out", "lanes"), ("tile_in", "rows"),
                 ("tile_out", "rows"), ("lanes", "rows"), ("tile_in", "par"), ("tile_out", "par"), ("rows", "dot")]
        for a, b in pairs:
            if len(getattr(self, a)) < 2 or len(getattr(self, b)) < 2:
                continue
            for da, db in ((1, -1), (-1, 1)):
                va, vb = step(a, da), step(b, db)
                if va is not _NONE and vb is not _NONE:
                    out.append({**vals, a: va, b: vb})
        seen, designs = set(), []
        for v in out:
            key = tuple(sorted((k, str(x)) for k, x in v.items()))
            if key not in seen:
                seen.add(key)
                d = self.make(v, design.board, design.regime)
                d.overrides = dict(design.overrides)
                designs.append(d)
        return designs

    def as_dict(self) -> dict:
        return asdict(self)

    # -- spaces derived from a model -------------------------------------------------------------------------
    @staticmethod
    def for_model(graph: Graph, board: Board, pack: bool = True, regimes=("streaming", "unrolled")) -> "Space":
        """Powers of two up to the model's largest dimensions plus the divisors of its common widths
        (e.g. 12, 24, 48 for D = 192), attention rows and dot widths up to the head dimension, element-wise
        parallelism, and memory ports up to the board's."""
        dims, heads_dim, tokens = set(), 0, 1
        for g, n in walk(graph):
            if n.op in ("linear", "patch_embed"):
                k, m = g.shape(n.inputs[1])
                dims.update((k, m))
            elif n.op == "attention":
                heads_dim = max(heads_dim, int(n.attrs.get("head_dim", 0)))
                tokens = max(tokens, int(n.attrs.get("queries", 1)))
        big = max(dims) if dims else 64
        widths = [d for d in dims]
        counts: dict = {}
        for g, n in walk(graph):
            if n.op in ("linear", "patch_embed"):
                for d in g.shape(n.inputs[1]):
                    counts[d] = counts.get(d, 0) + 1
        common = max(counts, key=lambda d: (counts[d], d)) if counts else 16  # the model width (D)
        tiles = sorted({v for v in (2, 4, 8, 16, 32, 64, 128) if v <= big}
                       | {d for d in _divisors(common) if 8 <= d <= 128})
        dots = [None] + [v for v in (8, 16, 32) if heads_dim and v < heads_dim]
        ports = [p for p in (1, 2, 4, 8, 16, 32) if p <= board.mem_ports]
        return Space(
            regimes=list(regimes), tile_in=tiles, tile_out=tiles, lanes=[1, 2, 3, 4, 6, 8],
            weight_buffer=["tile", "matrix"], pack_int8=[True, False] if pack else [False],
            rows=[v for v in (1, 2, 4, 8, 16, 32) if v <= max(tokens, 1)] or [1], dot=dots, kv_buffer=[True, False],
            fused=[True], par=[1, 2, 4, 8, 16, 32], axi_bits=[256, 512] if board.mem_port_bits >= 512 else [128, 256],
            weight_ports=ports, overlap=[True], intermediates=["onchip", "dram"],
            storage=["auto", "bram"] if board.resources.uram else ["bram"], prefetch=[2, 8, 32])


def _divisors(n: int) -> list:
    return [d for d in range(1, n + 1) if n % d == 0]


def space_fields() -> list:
    return [f.name for f in fields(Space)]
