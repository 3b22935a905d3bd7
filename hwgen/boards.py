"""Board database: whole-device and per-SLR resources, off-chip memory system, default clock.

Device resources are the vendors' device tables as collected in shared/reference/ANCHORS.md. The memory
system fields feed the cost model (hwgen/cost):

- ``bandwidth_gbs``: peak off-chip bandwidth available to the accelerator (all ports together).
- ``mem_ports`` x ``mem_port_bits``: how many independent AXI ports reach that memory and how wide each is
  at the fabric boundary (Zynq UltraScale+ S_AXI_HP ports are 128 bits; an Alveo HBM pseudo-channel port is
  256 bits; an Alveo DDR4 MIG port is 512 bits). A kernel's m_axi port wider than this is width-converted,
  so it moves at most ``mem_port_bits`` per cycle of the kernel clock.
- ``mem_efficiency``: the sustained fraction of peak for long sequential bursts with several masters
  (refresh, page misses, read/write turnaround). Typical measured values: PS DDR4 from the PL 0.6-0.8,
  HBM2 pseudo-channels 0.8-0.9. Only the "realistic" memory model applies it.
- ``mem_latency_ns``: read round-trip latency seen by a kernel for a new burst sequence.
- ``dsp_kind``: DSP48E2 (27x18 signed multiplier, two int8 MACs per DSP with WP486-style packing) or DSP58
  (27x24, three int8 MACs per DSP in its int8 dot-product mode).

Users add their own board from a YAML or JSON file with the same fields (`Board.load`, or pass the file
path wherever a board name is accepted), e.g.::

    name: myboard
    part: xczu7ev-ffvc1156-2-e
    resources: {lut: 230400, ff: 460800, bram18k: 624, uram: 96, dsp: 1728}
    bandwidth_gbs: 19.2
    mem_ports: 4
    mem_port_bits: 128
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hwgen.errors import HwgenError

RESOURCES = ("lut", "ff", "bram18k", "uram", "dsp")


@dataclass(frozen=True)
class Resources:
    lut: float = 0
    ff: float = 0
    bram18k: float = 0
    uram: float = 0
    dsp: float = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(getattr(self, k) + getattr(other, k) for k in RESOURCES))

    def scale(self, f: float) -> "Resources":
        return Resources(*(getattr(self, k) * f for k in RESOURCES))

    def max(self, other: "Resources") -> "Resources":
        """Element-wise maximum (a kernel shared by several ops is sized for the largest)."""
        return Resources(*(max(getattr(self, k), getattr(other, k)) for k in RESOURCES))

    def fits(self, limit: "Resources") -> bool:
        return all(getattr(self, k) <= getattr(limit, k) + 1e-9 for k in RESOURCES)

    def utilisation(self, total: "Resources") -> dict:
        """Fraction of `total` per resource (0 of 0 is 0; anything of 0 is infinite)."""
        out = {}
        for k in RESOURCES:
            have, used = getattr(total, k), getattr(self, k)
            out[k] = (used / have) if have else (0.0 if used <= 0 else float("inf"))
        return out

    def as_dict(self) -> dict:
        return asdict(self)

    def rounded(self) -> "Resources":
        return Resources(*(float(round(getattr(self, k))) for k in RESOURCES))


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    resources: Resources
    slrs: tuple[Resources, ...] = ()
    bandwidth_gbs: float = 19.2      # peak off-chip bandwidth available to the accelerator
    memory: str = "DDR4"
    clock_mhz: float = 300.0
    dsp_kind: str = "DSP48E2"
    mem_ports: int = 4
    mem_port_bits: int = 128
    mem_efficiency: float = 0.7
    mem_latency_ns: float = 250.0
    notes: str = ""

    # -- DSP facts ---------------------------------------------------------------------------------
    @property
    def dsp_widths(self) -> tuple[int, int]:
        """Signed operand widths of one DSP multiplier (A/B ports)."""
        return (27, 24) if self.dsp_kind.upper() == "DSP58" else (27, 18)

    @property
    def int8_macs_per_dsp(self) -> int:
        return 3 if self.dsp_kind.upper() == "DSP58" else 2

    @property
    def slr_count(self) -> int:
        return max(1, len(self.slrs))

    @property
    def largest_slr(self) -> Resources:
        """The most one SLR offers (a single kernel instance should not straddle SLRs)."""
        if not self.slrs:
            return self.resources
        out = self.slrs[0]
        for s in self.slrs[1:]:
            out = out.max(s)
        return out

    # -- files -------------------------------------------------------------------------------------
    def as_dict(self) -> dict:
        d = asdict(self)
        d["slrs"] = [asdict(s) for s in self.slrs]
        return d

    @staticmethod
    def from_dict(raw: dict) -> "Board":
        if not isinstance(raw, dict):
            raise HwgenError("board description must be a mapping")
        raw = dict(raw)
        known = {f.name for f in fields(Board)}
        unknown = set(raw) - known
        if unknown:
            raise HwgenError(f"board: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        for key in ("name", "part", "resources"):
            if key not in raw:
                raise HwgenError(f"board: missing '{key}'")
        try:
            res = Resources(**raw.pop("resources"))
            slrs = tuple(Resources(**s) for s in raw.pop("slrs", []) or [])
            board = Board(resources=res, slrs=slrs, **raw)
        except TypeError as exc:
            raise HwgenError(f"board: {exc}") from None
        board.validate()
        return board

    def validate(self) -> "Board":
        for k in RESOURCES:
            if getattr(self.resources, k) < 0:
                raise HwgenError(f"board {self.name}: negative {k}")
        if self.bandwidth_gbs <= 0 or self.clock_mhz <= 0:
            raise HwgenError(f"board {self.name}: bandwidth and clock must be positive")
        if self.mem_ports < 1 or self.mem_port_bits < 8 or not 0 < self.mem_efficiency <= 1:
            raise HwgenError(f"board {self.name}: mem_ports >= 1, mem_port_bits >= 8, 0 < mem_efficiency <= 1")
        if self.dsp_kind.upper() not in ("DSP48E2", "DSP58", "DSP48E1"):
            raise HwgenError(f"board {self.name}: dsp_kind must be DSP48E2, DSP48E1 or DSP58")
        return self

    @staticmethod
    def load(path: str | Path) -> "Board":
        p = Path(path)
        try:
            text = p.read_text()
            raw = json.loads(text) if p.suffix == ".json" else _yaml(text)
        except (OSError, ValueError) as exc:
            raise HwgenError(f"cannot read board description: {exc}", file=str(path)) from None
        try:
            return Board.from_dict(raw)
        except HwgenError as err:
            raise err.with_file(str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=1) + "\n")


def _yaml(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


_HBM = dict(memory="HBM2", mem_ports=32, mem_port_bits=256, mem_efficiency=0.85, mem_latency_ns=350.0)
_PS_DDR = dict(mem_ports=4, mem_port_bits=128, mem_efficiency=0.7, mem_latency_ns=250.0)

BOARDS: dict[str, Board] = {
    "zcu102": Board("zcu102", "xczu9eg-ffvb1156-2-e", Resources(274080, 548160, 1824, 0, 2520),
                    bandwidth_gbs=19.2, memory="PS DDR4", clock_mhz=300.0, **_PS_DDR,
                    notes="PS DDR4-2400 64-bit; PL reaches it through four 128-bit S_AXI_HP ports"),
    "zcu104": Board("zcu104", "xczu7ev-ffvc1156-2-e", Resources(230400, 460800, 624, 96, 1728),
                    bandwidth_gbs=19.2, memory="PS DDR4", clock_mhz=300.0, **_PS_DDR,
                    notes="PS DDR4-2400 64-bit; four 128-bit S_AXI_HP ports"),
    "u50": Board("u50", "xcu50-fsvh2104-2-e", Resources(871680, 1743360, 2688, 640, 5952),
                 slrs=(Resources(435840, 871680, 1344, 320, 2976), Resources(435840, 871680, 1344, 320, 2976)),
                 bandwidth_gbs=316.0, clock_mhz=300.0, **_HBM,
                 notes="per-SLR split assumed even; 316 GB/s is the datasheet HBM2 figure (32 pseudo-channels)"),
    "u250": Board("u250", "xcu250-figd2104-2l-e", Resources(1728000, 3456000, 5376, 1280, 12288),
                  slrs=tuple(Resources(432000, 864000, 1344, 320, 3072) for _ in range(4)),
                  bandwidth_gbs=77.0, memory="DDR4 x4", clock_mhz=300.0, mem_ports=4, mem_port_bits=512,
                  mem_efficiency=0.75, mem_latency_ns=300.0,
                  notes="per-SLR split assumed even; bandwidth = 4 DDR4 channels x 19.2 GB/s, 512-bit MIG ports"),
    "u280": Board("u280", "xcu280-fsvh2892-2l-e", Resources(1303680, 2607360, 4032, 960, 9024),
                  slrs=(Resources(400800, 801600, 1200, 320, 2736), Resources(381000, 762000, 1152, 320, 2880),
                        Resources(381000, 762000, 1152, 320, 2880)),
                  bandwidth_gbs=460.0, clock_mhz=300.0, **_HBM,
                  notes="per-SLR figures are the usable ones observed in Vivado (FINN's platform table); "
                        "8 GB HBM2, 32 pseudo-channels; DDR4 2x19.2 GB/s not used by the model"),
    "vck190": Board("vck190", "xcvc1902-vsva2197-2mp-e-s", Resources(899840, 1799680, 1934, 463, 1968),
                    bandwidth_gbs=25.6, memory="DDR4", clock_mhz=300.0, dsp_kind="DSP58", mem_ports=4,
                    mem_port_bits=128, mem_efficiency=0.7, mem_latency_ns=300.0,
                    notes="bandwidth: one DDR4-3200 channel through the NoC (128-bit NMUs)"),
}


def get_board(name_or_path: str) -> Board:
    key = str(name_or_path).lower()
    if key in BOARDS:
        return BOARDS[key]
    if Path(name_or_path).is_file():
        return Board.load(name_or_path)
    raise HwgenError(f"unknown board '{name_or_path}'; known: {', '.join(BOARDS)} (or a YAML/JSON file)")
