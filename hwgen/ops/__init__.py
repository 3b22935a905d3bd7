"""Hardware ops: one module each, all registered in hwgen.ops.base.REGISTRY on import."""

from hwgen.ops import (add, attention, embedding, layernorm, linear, lut, matmul, moe, movement, mul, patch_embed,  # noqa: F401
                       quantize, reduce_mean, softmax)
from hwgen.ops.base import BY_ONNX_TYPE, REGISTRY, OpDef, SimStats, get, register

__all__ = ["REGISTRY", "BY_ONNX_TYPE", "OpDef", "SimStats", "get", "register"]
