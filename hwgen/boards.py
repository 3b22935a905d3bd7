"""Board database: whole-device and per-SLR resources, off-chip bandwidth, default clock.

Facts from the vendors' device tables as collected in shared/reference/ANCHORS.md. Users add their own
board from a YAML or JSON file with the same fields (`Board.load`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    resources: Resources
    slrs: tuple[Resources, ...] = ()
    bandwidth_gbs: float = 19.2      # off-chip bandwidth available to the accelerator
    memory: str = "DDR4"
    clock_mhz: float = 300.0
    dsp_kind: str = "DSP48E2"
    notes: str = ""

    @staticmethod
    def load(path: str | Path) -> "Board":
        p = Path(path)
        try:
            text = p.read_text()
            raw = json.loads(text) if p.suffix == ".json" else _yaml(text)
            res = Resources(**raw.pop("resources"))
            slrs = tuple(Resources(**s) for s in raw.pop("slrs", []))
            return Board(resources=res, slrs=slrs, **raw)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise HwgenError(f"cannot read board description: {exc}", file=str(path)) from None


def _yaml(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


BOARDS: dict[str, Board] = {
    "zcu102": Board("zcu102", "xczu9eg-ffvb1156-2-e", Resources(274080, 548160, 1824, 0, 2520),
                    bandwidth_gbs=19.2, memory="PS DDR4", clock_mhz=300.0),
    "zcu104": Board("zcu104", "xczu7ev-ffvc1156-2-e", Resources(230400, 460800, 624, 96, 1728),
                    bandwidth_gbs=19.2, memory="PS DDR4", clock_mhz=300.0),
    "u50": Board("u50", "xcu50-fsvh2104-2-e", Resources(871680, 1743360, 2688, 640, 5952),
                 slrs=(Resources(435840, 871680, 1344, 320, 2976), Resources(435840, 871680, 1344, 320, 2976)),
                 bandwidth_gbs=316.0, memory="HBM2", clock_mhz=300.0,
                 notes="per-SLR split assumed even; 316 GB/s is the datasheet HBM2 figure"),
    "u250": Board("u250", "xcu250-figd2104-2l-e", Resources(1728000, 3456000, 5376, 1280, 12288),
                  slrs=tuple(Resources(432000, 864000, 1344, 320, 3072) for _ in range(4)),
                  bandwidth_gbs=77.0, memory="DDR4 x4", clock_mhz=300.0,
                  notes="per-SLR split assumed even; bandwidth = 4 DDR4 channels x 19.2 GB/s"),
    "u280": Board("u280", "xcu280-fsvh2892-2l-e", Resources(1303680, 2607360, 4032, 960, 9024),
                  slrs=(Resources(400800, 801600, 1200, 320, 2736), Resources(381000, 762000, 1152, 320, 2880),
                        Resources(381000, 762000, 1152, 320, 2880)),
                  bandwidth_gbs=460.0, memory="HBM2", clock_mhz=300.0),
    "vck190": Board("vck190", "xcvc1902-vsva2197-2mp-e-s", Resources(899840, 1799680, 1934, 463, 1968),
                    bandwidth_gbs=25.6, memory="DDR4", clock_mhz=300.0, dsp_kind="DSP58",
                    notes="bandwidth: one DDR4-3200 channel"),
}


def get_board(name_or_path: str) -> Board:
    key = str(name_or_path).lower()
    if key in BOARDS:
        return BOARDS[key]
    if Path(name_or_path).is_file():
        return Board.load(name_or_path)
    raise HwgenError(f"unknown board '{name_or_path}'; known: {', '.join(BOARDS)} (or a YAML/JSON file)")
