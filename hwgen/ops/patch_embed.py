"""patch_embed: a convolution whose stride equals its kernel (ViT patchify), computed as
im2col + the linear op's integer arithmetic. Output layout stays NCHW like the ONNX Conv."""

from __future__ import annotations

import numpy as np

from hwgen import numerics
from hwgen.ir import Graph, Node, QType
from hwgen.ops import common
from hwgen.ops.base import OpDef, SimStats, get, register


@register
class PatchEmbed(OpDef):
    name = "patch_embed"
    bias_inputs = (2,)
    onnx_types = ("Conv",)

    def lower(self, graph: Graph, node: Node) -> None:
        x_shape = graph.shape(node.inputs[0])
        w = graph.tensors[node.inputs[1]]
        if len(x_shape) != 4 or not w.is_const:
            raise self.unsupported(node, "only 2-D convolutions with constant weights")
        d, c, kh, kw = w.shape
        strides = list(node.attrs.get("strides", [1, 1]))
        pads = list(node.attrs.get("pads", [0, 0, 0, 0]))
        if node.attrs.get("group", 1) != 1 or strides != [kh, kw] or any(pads) or \
                list(node.attrs.get("dilations", [1, 1])) != [1, 1] or node.attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.unsupported(node, "only patch-embedding convolutions (stride = kernel, no padding, "
                                         "no groups or dilation)")
        if x_shape[2] % kh or x_shape[3] % kw:
            raise self.unsupported(node, "image size not a multiple of the patch size")
        qt = w.qtype
        if qt is not None and qt.per_channel and qt.axis != 0:
            raise self.unsupported(node, "per-channel weight scales must be along the output channels")
        if qt is not None and qt.axis is not None:
            qt = QType.integer(qt.bits, qt.signed, qt.scale, qt.zero_point, 1, qt.rounding, qt.overflow)
        w2 = graph.add_const(node.inputs[1] + "_im2col", np.asarray(w.data).reshape(d, c * kh * kw).T.copy(), qt,
                             source=w.source)
        bias = node.inputs[2:3] if len(node.inputs) > 2 and node.inputs[2] else []
        node.op, node.inputs = self.name, [node.inputs[0], w2.name] + bias
        node.attrs = {"kernel": [kh, kw], "channels": c}

    def check(self, graph: Graph, node: Node) -> None:
        get("linear").check(graph, node)

    def params(self, graph: Graph, node: Node) -> dict:
        return get("linear").params(graph, node)

    def exact_output_type(self, graph: Graph, node: Node):
        return get("linear").exact_output_type(graph, node)  # same weights and bias, im2col rows

    # -- C++ kernel (templates/kernels/patch_embed.h: im2col addressing around linear.h's core) --------
    kernel_header = "patch_embed.h"

    def schedule(self, graph: Graph, node: Node, design) -> tuple[int, int, int]:
        return get("linear").schedule(graph, node, design)

    def kernel_config(self, graph: Graph, node: Node, knobs=None) -> tuple[str, str]:
        """hwgen::patch_embed<cfg>(x, y, w, b, m0, sh); knobs = (tile_in, tile_out, n_lanes)."""
        from hwgen.ops.linear import linear_kernel_config

        return linear_kernel_config(graph, node, knobs)

    def emit_config(self, graph: Graph, node: Node, ctx) -> tuple[str, str]:
        from hwgen.ops.linear import linear_kernel_config

        return linear_kernel_config(graph, node, self.schedule(graph, node, ctx.design), ctx)

    cost_groups = ('linear', 'memory')

    def cost(self, graph: Graph, node: Node, design, board, ctx=None):
        """The linear kernel with im2col addressing: rows = patches (H/kh * W/kw), K = C*kh*kw, N = embed
        dim; every formula is Linear.cost's (hwgen/ops/linear.py)."""
        from hwgen.cost.model import default_context
        from hwgen.ops.linear import linear_cost, linear_rows

        ctx = ctx or default_context(design, board)
        k, n = graph.shape(node.inputs[1])
        return linear_cost(self.name, ctx, node, linear_rows(graph, node), k, n, graph.tensors[node.inputs[0]].qtype,
                           graph.tensors[node.inputs[1]].qtype, graph.tensors[node.outputs[0]].qtype)

    def simulate(self, graph: Graph, node: Node, inputs: list[np.ndarray], stats: SimStats) -> list[np.ndarray]:
        x = np.asarray(inputs[0], dtype=np.int64)
        n, one, c, h, w = x.shape
        kh, kw = node.attrs["kernel"]
        gh, gw = h // kh, w // kw
        patches = x.reshape(n, one, c, gh, kh, gw, kw).transpose(0, 1, 3, 5, 2, 4, 6).reshape(n, one, gh * gw, c * kh * kw)
        p = self.params(graph, node)
        acc = p["_matmul"](patches)  # zero point and bias: the requantisation's offset
        y = common.rescale(p["_rescale"], [acc], stats, node.outputs[0])
        return [y.reshape(n, one, gh, gw, -1).transpose(0, 1, 4, 2, 3).copy()]
