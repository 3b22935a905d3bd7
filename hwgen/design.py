"""A Design: the schedule of one accelerator, kept apart from the graph (FINN's folding config idea).

The same graph with another Design is another accelerator. Produced by `hwgen search` or by hand,
saved as JSON, consumed by the cost model, the code generator and (where it matters) the simulator.

Knobs:
- regime: "streaming" (reusable linear kernel fed from off-chip memory, streaming attention) or
  "unrolled" (everything on chip and parallel; tiny models, trigger latency).
- linear: T_IN x T_OUT weight tile, LANES tokens sharing each tile (the reusable linear kernel);
  weight_buffer: "tile" (weight-stationary: each T_IN x T_OUT tile fetched once per op and applied to all
  tokens held on chip), "matrix" (the whole weight matrix of an op on chip in ping/pong buffers, tokens
  streamed, Edge-MoE style) or "none" (tiles re-fetched for every group of LANES tokens); pack_int8: two
  (DSP58: three) int8 MACs per DSP where valid (the kernel must implement the packing).
- attention: P query rows processed in parallel; dot: head-dimension elements per row per cycle (None: the
  whole head dimension, as hwgen's attention kernel); kv_buffer: K and V of a head buffered on chip (else
  re-streamed for every group of P rows); fused: scores stay on chip (one dataflow region for
  Q*K^T -> softmax -> *V; else the scores go through memory between two regions, Edge-MoE style).
- elementwise: PAR elements per cycle for LayerNorm/softmax/GELU/add kernels.
- memory: axi_bits (width of the weight m_axi ports), weight_ports (how many), overlap (weight loads
  overlap compute, ping/pong), intermediates ("onchip" buffers and dataflow, or "dram" round trips between
  kernels), storage of large buffers ("auto": URAM when the board has it, "bram", "uram"), prefetch (weight
  tiles in flight: the buffer depth that hides the memory latency).
- clock_mhz, board / part.
- overrides: per node name, any of the above groups (e.g. a wider tile for the classifier head).

Every field has a default, so design files written before a field existed still load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hwgen.errors import HwgenError

REGIMES = ("streaming", "unrolled")
WEIGHT_BUFFERS = ("tile", "matrix", "none")
INTERMEDIATES = ("onchip", "dram")
STORAGES = ("auto", "bram", "uram")
POW2 = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class LinearKnobs:
    tile_in: int = 16
    tile_out: int = 16
    lanes: int = 1
    weight_buffer: str = "tile"
    pack_int8: bool = False


@dataclass
class AttentionKnobs:
    rows: int = 4  # P: query rows in parallel
    dot: int | None = None  # head-dim elements per row per cycle (None: the whole head dimension)
    kv_buffer: bool = True
    fused: bool = True


@dataclass
class ElementwiseKnobs:
    par: int = 1


@dataclass
class MemoryKnobs:
    axi_bits: int = 256
    weight_ports: int = 1
    overlap: bool = True
    intermediates: str = "onchip"
    storage: str = "auto"
    prefetch: int = 2


GROUPS = {"linear": LinearKnobs, "attention": AttentionKnobs, "elementwise": ElementwiseKnobs,
          "memory": MemoryKnobs}


@dataclass
class Design:
    regime: str = "streaming"
    board: str = "zcu102"
    part: str | None = None
    clock_mhz: float | None = None
    linear: LinearKnobs = field(default_factory=LinearKnobs)
    attention: AttentionKnobs = field(default_factory=AttentionKnobs)
    elementwise: ElementwiseKnobs = field(default_factory=ElementwiseKnobs)
    memory: MemoryKnobs = field(default_factory=MemoryKnobs)
    weights_offchip: bool = True
    overrides: dict[str, dict] = field(default_factory=dict)

    def validate(self) -> "Design":
        if self.regime not in REGIMES:
            raise HwgenError(f"design: regime must be one of {REGIMES}, not {self.regime!r}")
        for name, value in (("linear.tile_in", self.linear.tile_in), ("linear.tile_out", self.linear.tile_out),
                            ("linear.lanes", self.linear.lanes), ("attention.rows", self.attention.rows),
                            ("elementwise.par", self.elementwise.par)):
            if not isinstance(value, int) or value < 1 or value > 4096:
                raise HwgenError(f"design: {name} must be an integer in [1, 4096], not {value!r}")
        if self.clock_mhz is not None and not 10 <= float(self.clock_mhz) <= 1000:
            raise HwgenError(f"design: clock_mhz {self.clock_mhz} is not between 10 and 1000")
        _check_knobs(self.linear, self.attention, self.memory)
        for name, groups in self.overrides.items():
            if not isinstance(groups, dict):
                raise HwgenError(f"design: overrides[{name!r}] must be an object of knob groups")
            for group, values in groups.items():
                if group not in ("linear", "attention", "elementwise"):
                    raise HwgenError(f"design: overrides[{name!r}] has unknown group {group!r}")
                try:
                    self.knobs_for(name, group)
                except TypeError as exc:
                    raise HwgenError(f"design: overrides[{name!r}].{group}: {exc}") from None
        return self

    def copy(self) -> "Design":
        return Design.from_dict(json.loads(self.to_json()))

    def knobs_for(self, node_name: str, group: str):
        base = getattr(self, group)
        over = self.overrides.get(node_name, {}).get(group)
        if not over:
            return base
        return type(base)(**{**asdict(base), **over})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @staticmethod
    def from_dict(raw: dict) -> "Design":
        if not isinstance(raw, dict):
            raise HwgenError("design must be a JSON object")
        known = set(Design.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise HwgenError(f"design: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        raw = dict(raw)
        try:
            for key, cls in GROUPS.items():
                if key in raw:
                    if not isinstance(raw[key], dict):
                        raise HwgenError(f"design: {key} must be an object")
                    raw[key] = cls(**raw[key])
            return Design(**raw).validate()
        except TypeError as exc:
            raise HwgenError(f"design: {exc}") from None

    @staticmethod
    def load(path: str | Path) -> "Design":
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise HwgenError(f"cannot read design: {exc}", file=str(path)) from None
        try:
            return Design.from_dict(raw)
        except HwgenError as err:
            raise err.with_file(str(path))


def _check_knobs(lin: LinearKnobs, att: AttentionKnobs, mem: MemoryKnobs) -> None:
    if lin.weight_buffer not in WEIGHT_BUFFERS:
        raise HwgenError(f"design: linear.weight_buffer must be one of {WEIGHT_BUFFERS}, not {lin.weight_buffer!r}")
    if not isinstance(lin.pack_int8, bool):
        raise HwgenError("design: linear.pack_int8 must be true or false")
    if att.dot is not None and (not isinstance(att.dot, int) or not 1 <= att.dot <= 4096):
        raise HwgenError(f"design: attention.dot must be null or an integer in [1, 4096], not {att.dot!r}")
    for name, value in (("attention.kv_buffer", att.kv_buffer), ("attention.fused", att.fused),
                        ("memory.overlap", mem.overlap)):
        if not isinstance(value, bool):
            raise HwgenError(f"design: {name} must be true or false")
    if mem.axi_bits not in (32, 64, 128, 256, 512, 1024):
        raise HwgenError(f"design: memory.axi_bits must be a power of two in [32, 1024], not {mem.axi_bits!r}")
    if not isinstance(mem.weight_ports, int) or not 1 <= mem.weight_ports <= 64:
        raise HwgenError(f"design: memory.weight_ports must be an integer in [1, 64], not {mem.weight_ports!r}")
    if mem.intermediates not in INTERMEDIATES:
        raise HwgenError(f"design: memory.intermediates must be one of {INTERMEDIATES}, not {mem.intermediates!r}")
    if mem.storage not in STORAGES:
        raise HwgenError(f"design: memory.storage must be one of {STORAGES}, not {mem.storage!r}")
    if not isinstance(mem.prefetch, int) or not 1 <= mem.prefetch <= 4096:
        raise HwgenError(f"design: memory.prefetch must be an integer in [1, 4096], not {mem.prefetch!r}")
