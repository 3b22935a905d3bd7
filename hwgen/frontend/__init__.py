"""Frontend: an ONNX file (QDQ, QONNX or float) to a lowered, typed hwgen Graph."""

from __future__ import annotations

import os

import onnx

from hwgen.errors import HwgenError
from hwgen.frontend.onnx_import import import_onnx, load_model
from hwgen.ir import Graph
from hwgen.precision import Precision


def lower_pipeline(precision: Precision):
    from hwgen.passes.lower import AssignTypes, CheckLowered, LowerOnnxOps
    from hwgen.passes.attention import FuseAttention
    from hwgen.passes.exact import AbsorbReluIntoType, ExactAccumulatorTypes, FuseLinearBias
    from hwgen.passes.moe import FuseMoE
    from hwgen.passes.patterns import FuseDecomposedLayerNorm, FuseElementwiseRegions, ReluAsClamp
    from hwgen.passes.qdq import AbsorbQDQ, HoistTypesThroughMovement

    return [AbsorbQDQ(), HoistTypesThroughMovement(), FuseLinearBias(), AbsorbReluIntoType(),
            FuseDecomposedLayerNorm(), FuseElementwiseRegions(), LowerOnnxOps(), FuseMoE(), ExactAccumulatorTypes(),
            AssignTypes(precision), ReluAsClamp(), FuseAttention(), CheckLowered()]


def load_graph(source: str | os.PathLike | onnx.ModelProto, precision: Precision | None = None) -> Graph:
    """Import, lower and type a model. Errors name the file, node and op."""
    from hwgen.passes.base import run_passes

    graph = import_onnx(source)
    ops = {n.op for n in graph.nodes}
    graph.meta["format"] = ("qdq" if "onnx.QuantizeLinear" in ops or "onnx.DequantizeLinear" in ops
                            else "qonnx" if "onnx.Quant" in ops or "onnx.IntQuant" in ops else "float")
    graph.meta["file"] = str(source) if not isinstance(source, onnx.ModelProto) else graph.name
    precision = precision or Precision()
    graph.meta["precision"] = precision.to_dict()  # kept in a project's manifest: csim reloads the model with it
    try:
        run_passes(graph, lower_pipeline(precision))
        graph.lint(require_types=True)
    except HwgenError as err:
        raise err.with_file(graph.meta["file"])
    return graph


__all__ = ["load_graph", "import_onnx", "load_model"]
