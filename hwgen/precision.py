"""Fixed-point precision for float models (and for tensors a quantised model leaves in float).

Like hls4ml's configuration: one model-wide default, overrides per op type and per node name, given as
ap_fixed strings, e.g. {"default": "ap_fixed<16,6>", "op": {"softmax": "ap_ufixed<16,1,AP_RND,AP_SAT>"},
"name": {"head": "ap_fixed<24,10>"}, "weight": "ap_fixed<16,6>", "bias": "ap_fixed<16,6>",
"input": "ap_fixed<16,6>"}.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from hwgen.errors import HwgenError
from hwgen.ir import QType
from hwgen.numerics import Overflow, Rounding

DEFAULT = "ap_fixed<16,6>"
_FIXED = re.compile(r"^\s*ap_(u?)fixed\s*<\s*(\d+)\s*,\s*(-?\d+)\s*(?:,\s*(AP_\w+)\s*)?(?:,\s*(AP_\w+)\s*)?>\s*$")


def parse_fixed(text: str) -> QType:
    m = _FIXED.match(text)
    if not m:
        raise HwgenError(f"cannot parse precision '{text}' (expected e.g. ap_fixed<16,6> or ap_ufixed<8,0,AP_RND,AP_SAT>)")
    unsigned, width, ibits, rnd, ovf = m.groups()
    width, ibits = int(width), int(ibits)
    if not 1 <= width <= 48:
        raise HwgenError(f"precision '{text}': width must be between 1 and 48")
    try:
        rounding = Rounding(rnd) if rnd else Rounding.TRN
        overflow = Overflow(ovf) if ovf else Overflow.WRAP
    except ValueError:
        raise HwgenError(f"precision '{text}': unknown rounding or overflow mode") from None
    return QType.fixed(width, ibits, not unsigned, rounding, overflow)


@dataclass
class Precision:
    default: str = DEFAULT
    op: dict[str, str] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)
    weight: str = DEFAULT
    bias: str = DEFAULT
    input: str = DEFAULT

    @staticmethod
    def load(path: str | Path | None) -> "Precision":
        if path is None:
            return Precision()
        try:
            raw = json.loads(Path(path).read_text()) if str(path).endswith(".json") else _yaml(path)
        except (OSError, ValueError) as exc:
            raise HwgenError(f"cannot read precision config: {exc}", file=str(path)) from None
        try:
            return Precision.from_dict(raw)
        except HwgenError as err:
            raise err.with_file(str(path)) from None

    @staticmethod
    def from_dict(raw) -> "Precision":
        """A Precision from its config mapping (a file's content, or `to_dict()` as a project manifest keeps it)."""
        if not isinstance(raw, dict):
            raise HwgenError("precision config must be a mapping")
        known = {"default", "op", "name", "weight", "bias", "input"}
        unknown = set(raw) - known
        if unknown:
            raise HwgenError(f"unknown precision keys {sorted(unknown)}; known: {sorted(known)}")
        for key in ("op", "name"):
            if not isinstance(raw.get(key, {}), dict):
                raise HwgenError(f"precision key '{key}' must be a mapping")
        p = Precision(**{k: (dict(raw[k]) if k in ("op", "name") else raw[k]) for k in raw})
        for text in [p.default, p.weight, p.bias, p.input, *p.op.values(), *p.name.values()]:
            if not isinstance(text, str):
                raise HwgenError(f"precision {text!r} is not a string like ap_fixed<16,6>")
            parse_fixed(text)
        return p

    def to_dict(self) -> dict:
        """The full config (every key), such that Precision.from_dict(p.to_dict()) types a model identically."""
        return {"default": self.default, "op": dict(sorted(self.op.items())), "name": dict(sorted(self.name.items())),
                "weight": self.weight, "bias": self.bias, "input": self.input}

    def type_for(self, node, role: str | None = None) -> QType:
        if role is None:
            for key in node.source + [node.name]:
                if key in self.name:
                    return parse_fixed(self.name[key])
            if node.op in self.op:
                return parse_fixed(self.op[node.op])
            return parse_fixed(self.default)
        return parse_fixed(self.weight if role == "weight" else self.bias)

    def input_type(self) -> QType:
        return parse_fixed(self.input)


def _yaml(path):
    import yaml

    return yaml.safe_load(Path(path).read_text())
