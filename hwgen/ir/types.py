"""Hardware numeric types carried by every tensor of the lowered graph.

One class covers the three kinds hwgen meets:
- ``int``: an integer code q of `bits` bits; real value = scale * (q - zero_point), scale per tensor or
  per channel (`axis`). This is how QDQ and QONNX graphs describe activations and weights.
- ``fixed``: ap_fixed<W, I, Q, O>; the same thing with scale = 2**(I - W) and zero point 0.
- ``float``: host-side float32 (the model input before its first quantisation, the dequantised output).
`rounding`/`overflow` say what happens when a value is converted *into* this type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwgen.numerics import Overflow, Rounding, int_range


@dataclass(frozen=True, eq=False)
class QType:
    kind: str
    bits: int = 32
    signed: bool = True
    scale: np.ndarray = field(default_factory=lambda: np.array(1.0))
    zero_point: np.ndarray = field(default_factory=lambda: np.array(0, dtype=np.int64))
    axis: int | None = None
    rounding: Rounding = Rounding.RND_CONV
    overflow: Overflow = Overflow.SAT
    int_bits: int | None = None  # I of ap_fixed<W, I>; only for kind == "fixed"

    # ---- constructors -------------------------------------------------------------------------
    @staticmethod
    def integer(bits: int, signed: bool, scale, zero_point=0, axis: int | None = None,
                rounding: Rounding = Rounding.RND_CONV, overflow: Overflow = Overflow.SAT) -> "QType":
        scale = np.asarray(scale, dtype=np.float64)
        zp = np.asarray(zero_point, dtype=np.int64)
        if scale.ndim > 1 or zp.ndim > 1:
            raise ValueError("scale and zero point must be scalars or 1-D (per channel)")
        if scale.ndim == 0 and zp.ndim == 0:
            axis = None
        return QType("int", bits, signed, scale, zp, axis, rounding, overflow)

    @staticmethod
    def fixed(width: int, int_bits: int, signed: bool = True, rounding: Rounding = Rounding.TRN,
              overflow: Overflow = Overflow.WRAP) -> "QType":
        scale = np.asarray(2.0 ** (int_bits - width), dtype=np.float64)
        return QType("fixed", width, signed, scale, np.asarray(0, dtype=np.int64), None, rounding,
                     overflow, int_bits)

    @staticmethod
    def float32() -> "QType":
        return QType("float", 32, True)

    # ---- properties ---------------------------------------------------------------------------
    @property
    def is_float(self) -> bool:
        return self.kind == "float"

    @property
    def per_channel(self) -> bool:
        return self.axis is not None and (self.scale.ndim == 1 or self.zero_point.ndim == 1)

    @property
    def narrow(self) -> bool:
        """Signed and saturating symmetrically (AP_SAT_SYM): codes never take the asymmetric minimum
        -2**(bits-1) (QONNX narrow=1, the default for Brevitas weights)."""
        return self.kind != "float" and self.signed and self.bits > 1 and self.overflow == Overflow.SAT_SYM

    @property
    def qmin(self) -> int:
        lo, hi = int_range(self.bits, self.signed)
        return -hi if self.narrow else lo

    @property
    def qmax(self) -> int:
        return int_range(self.bits, self.signed)[1]

    @property
    def frac_bits(self) -> int:
        """Fractional bits when the scale is a power of two (fixed point); else raises."""
        if self.kind == "fixed":
            return self.bits - self.int_bits
        s = np.unique(self.scale)
        if len(s) == 1 and np.all(self.zero_point == 0):
            m, e = np.frexp(float(s[0]))
            if m == 0.5:
                return int(1 - e)
        raise ValueError(f"{self} is not a power-of-two fixed-point type")

    @property
    def has_zero_point(self) -> bool:
        return bool(np.any(self.zero_point != 0))

    def c_type(self) -> str:
        """The C++ storage type of one element."""
        if self.kind == "float":
            return "float"
        if self.kind == "fixed":
            base = "ap_fixed" if self.signed else "ap_ufixed"
            return f"{base}<{self.bits},{self.int_bits},{self.rounding.value},{self.overflow.value}>"
        return f"ap_int<{self.bits}>" if self.signed else f"ap_uint<{self.bits}>"

    def same_as(self, other: "QType") -> bool:
        return (self.kind == other.kind and self.bits == other.bits and self.signed == other.signed
                and self.axis == other.axis and self.int_bits == other.int_bits
                and self.rounding == other.rounding and self.overflow == other.overflow
                and self.scale.shape == other.scale.shape and np.array_equal(self.scale, other.scale)
                and self.zero_point.shape == other.zero_point.shape
                and np.array_equal(self.zero_point, other.zero_point))

    def channel_params(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """Scale and zero point broadcast to `channels` entries (for per-channel arithmetic)."""
        scale = np.broadcast_to(self.scale, (channels,)) if self.scale.ndim else np.full(channels, float(self.scale))
        zp = np.broadcast_to(self.zero_point, (channels,)) if self.zero_point.ndim else np.full(channels, int(self.zero_point))
        return np.asarray(scale, dtype=np.float64), np.asarray(zp, dtype=np.int64)

    def dequantize(self, q: np.ndarray, axis_in_array: int | None = None) -> np.ndarray:
        """Real values of integer codes (float64, for analysis and references only)."""
        if self.kind == "float":
            return np.asarray(q, dtype=np.float64)
        scale, zp = self.scale, self.zero_point
        if self.per_channel and axis_in_array is not None:
            shape = [1] * q.ndim
            shape[axis_in_array] = -1
            scale = scale.reshape(shape) if scale.ndim else scale
            zp = zp.reshape(shape) if zp.ndim else zp
        return (np.asarray(q, dtype=np.float64) - zp) * scale

    def __str__(self) -> str:
        if self.kind == "float":
            return "f32"
        if self.kind == "fixed":
            base = "fixed" if self.signed else "ufixed"
            return f"{base}<{self.bits},{self.int_bits},{_mode(self.rounding)},{_mode(self.overflow)}>"
        tag = f"{'i' if self.signed else 'u'}{self.bits}{'n' if self.narrow else ''}"  # i8n: narrow range
        if self.per_channel:
            return f"{tag}[per-ch ax{self.axis} x{self.scale.size}]"
        zp = int(self.zero_point)
        return f"{tag}(s={float(self.scale):.4g}" + (f",z={zp})" if zp else ")")

    __repr__ = __str__


def _mode(mode) -> str:
    return mode.value.replace("AP_", "")
