"""The spine's acceptance checks on the bundled models, over the whole held-out test split."""

import numpy as np
import pytest

from hwgen.compare import compare
from hwgen.frontend import load_graph
from hwgen.reference import run_onnxruntime

from conftest import ONNX

QDQ_MODELS = ["vit_digits.qdq.dynamo", "vit_digits.qdq.legacy", "moe_vit_digits.qdq.dynamo",
              "moe_vit_digits.qdq.legacy", "vit_digits.qdq_u8.dynamo"]


@pytest.fixture(scope="module", params=QDQ_MODELS)
def report(request, digits_test):
    x, y = digits_test
    path = ONNX / f"{request.param}.onnx"
    graph = load_graph(path)
    float_path = ONNX / (request.param.split(".")[0] + ".float." + request.param.split(".")[-1] + ".onnx")
    float_logits = run_onnxruntime(float_path, x)["logits"]
    return request.param, graph, compare(graph, path, x, y, layers=True), float(np.mean(float_logits.argmax(1) == y))


def test_bundled_model_is_trained(report):
    name, _, r, acc_float = report
    assert acc_float >= 0.9 and r.accuracy_ref >= 0.9, (name, acc_float, r.accuracy_ref)


def test_argmax_agreement(report):
    name, _, r, _ = report
    assert r.argmax_agreement >= 0.99, name


def test_accuracy_close_to_onnxruntime_and_float(report):
    name, _, r, acc_float = report
    assert abs(r.accuracy_sim - r.accuracy_ref) <= 0.01, (name, r.accuracy_sim, r.accuracy_ref)
    assert abs(r.accuracy_sim - acc_float) <= 0.01, (name, r.accuracy_sim, acc_float)


def test_linear_layers_within_one_lsb(report):
    name, graph, r, _ = report
    linear = [l for l in r.layers if l.op in ("linear", "patch_embed")]
    # every linear layer of the model is compared, the MoE experts' ones included
    n_linear = sum(1 for _ in _all_ops(graph, {"linear", "patch_embed"}))
    assert len(linear) == n_linear and n_linear > 0
    for layer in linear:
        assert layer.within_1lsb >= 0.999, (name, layer)


def test_data_movement_is_exact(report):
    _, _, r, _ = report
    for layer in r.layers:
        if layer.op in ("reshape", "transpose", "gather", "slice", "split"):
            assert layer.max_lsb == 0, layer


def _all_ops(graph, ops):
    from hwgen.ir.graph import walk

    return [n for _, n in walk(graph) if n.op in ops]
