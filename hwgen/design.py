"""A Design: the schedule of one accelerator, kept apart from the graph (FINN's folding config idea).

The same graph with another Design is another accelerator. Produced by `hwgen search` or by hand,
saved as JSON, consumed by the cost model, the code generator and (where it matters) the simulator.

Knobs:
- regime: "streaming" (reusable linear kernel fed from off-chip memory, streaming attention) or
  "unrolled" (everything on chip and parallel; tiny models, trigger latency).
- linear: T_IN x T_OUT weight tile, LANES tokens sharing each tile (the reusable linear kernel).
- attention: P query rows processed in parallel.
- elementwise: PAR elements per cycle for LayerNorm/softmax/GELU/add kernels.
- clock_mhz, board / part.
- overrides: per node name, any of the above groups (e.g. a wider tile for the classifier head).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hwgen.errors import HwgenError

REGIMES = ("streaming", "unrolled")
POW2 = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class LinearKnobs:
    tile_in: int = 16
    tile_out: int = 16
    lanes: int = 1


@dataclass
class AttentionKnobs:
    rows: int = 4  # P: query rows in parallel


@dataclass
class ElementwiseKnobs:
    par: int = 1


@dataclass
class Design:
    regime: str = "streaming"
    board: str = "zcu102"
    part: str | None = None
    clock_mhz: float | None = None
    linear: LinearKnobs = field(default_factory=LinearKnobs)
    attention: AttentionKnobs = field(default_factory=AttentionKnobs)
    elementwise: ElementwiseKnobs = field(default_factory=ElementwiseKnobs)
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
        return self

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
            for key, cls in (("linear", LinearKnobs), ("attention", AttentionKnobs), ("elementwise", ElementwiseKnobs)):
                if key in raw:
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
