"""C++ spelling shared by the op modules' kernel configs, the code generator and the kernel tests:
integer and boolean literals, the narrowest ap_int for a set of values, constant arrays, a type's
rounding/overflow fields, and the broadcast pattern of an elementwise operand (bcast_iter in requant.h).

Pure functions of their arguments (no state), so the same graph always spells the same C++."""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.ir import QType

__all__ = ["c_int", "c_bool", "int_ctype", "c_array", "member_array", "struct", "modes", "bcast_pattern"]


def c_int(v) -> str:
    """A C++ integer literal for any int64 value (long long when it does not fit an int)."""
    v = int(v)
    if v == -(2**63):
        return "(-9223372036854775807LL - 1)"
    if -(2**31) <= v < 2**31:
        return str(v)
    return f"{v}LL"


def c_bool(v) -> str:
    return "true" if v else "false"


def int_ctype(values, signed: bool | None = None, min_bits: int = 1) -> str:
    """The narrowest ``ap_int<B>`` / ``ap_uint<B>`` holding every value (signed unless told otherwise)."""
    a = np.asarray(values, dtype=np.int64).reshape(-1)
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    signed = True if signed is None else signed
    bits = max(min_bits, numerics.bits_for_range(lo, hi, signed))
    return f"ap_int<{bits}>" if signed else f"ap_uint<{bits}>"


def c_array(name: str, codes, ctype: str | QType | None = None, static: bool = True) -> str:
    """``static const T name[n] = {...};`` holding integer ``codes`` (flattened).

    ``ctype`` a C++ type string, a QType (its ``c_type()``), or None (:func:`int_ctype`).  For a fixed-point
    QType the initialisers are the exact real values (raw * 2**-frac, exact in a double for widths <= 53),
    so the stored raw bits equal ``codes``; otherwise they are the integers themselves."""
    a = np.asarray(codes, dtype=np.int64).reshape(-1)
    if ctype is None:
        ctype = int_ctype(a)
    if isinstance(ctype, QType):
        qt = ctype
        ctype = qt.c_type()
        if qt.kind == "fixed":
            f = qt.bits - qt.int_bits
            if qt.bits > 53:
                raise ValueError("c_array: fixed-point constants wider than 53 bits need raw initialisation")
            items = [repr(float(np.ldexp(float(v), -f))) for v in a.tolist()]
        else:
            items = [c_int(v) for v in a.tolist()]
    else:
        items = [c_int(v) for v in a.tolist()]
    body = ",".join(items) if items else "0"
    n = max(a.size, 1)
    return f"{'static ' if static else ''}const {ctype} {name}[{n}] = {{{body}}};\n"


def member_array(cfg: str, ctype: str, name: str, values) -> tuple[str, str]:
    """(in-class declaration, out-of-class definition) of a ``static const`` integer member array of struct
    ``cfg`` (kernels read tables as ``CONFIG::name[i]``); a member typedef (``*_t``) is qualified outside."""
    a = np.asarray(values, dtype=np.int64).reshape(-1)
    n = max(a.size, 1)
    body = ",".join(c_int(v) for v in a.tolist()) or "0"
    qual = f"{cfg}::{ctype}" if ctype.endswith("_t") else ctype
    return f"  static const {ctype} {name}[{n}];\n", f"const {qual} {cfg}::{name}[{n}] = {{{body}}};\n"


def struct(name: str, fields: str, arrays=()) -> str:
    """``struct name { fields + member array declarations };`` followed by the arrays' definitions."""
    arrays = list(arrays)
    return (f"struct {name} {{\n{fields}" + "".join(d for d, _ in arrays) + "};\n"
            + "".join(d for _, d in arrays))


def modes(qt: QType) -> str:
    """The ``rounding`` / ``overflow`` config fields of an output type (indented struct members)."""
    return (f"  static const ap_q_mode rounding = {qt.rounding.value};\n"
            f"  static const ap_o_mode overflow = {qt.overflow.value};\n")


def bcast_pattern(shape, out_shape) -> tuple[int, int]:
    """(inner, size) of an operand broadcast against the output (see bcast_iter in requant.h)."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    keep = []
    for d, (s, o) in enumerate(zip(shape, out_shape)):
        if o == 1:
            continue
        if s == o:
            keep.append(d)
        elif s != 1:
            raise ValueError(f"cannot broadcast {shape} to {out_shape}")
    if not keep:
        return 1, 1
    non_neutral = [d for d in range(len(out_shape)) if out_shape[d] != 1]
    first, last = non_neutral.index(keep[0]), non_neutral.index(keep[-1])
    if last - first + 1 != len(keep):
        raise ValueError(f"broadcast of {shape} over {out_shape} is not one contiguous block")
    size = int(np.prod([out_shape[d] for d in keep]))
    inner = int(np.prod(out_shape[keep[-1] + 1:]))
    return inner, size
