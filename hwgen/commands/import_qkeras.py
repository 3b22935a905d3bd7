"""hwgen import-qkeras: a QKeras model (.h5, .keras or SavedModel) to a QONNX file that hwgen reads.

The converter is qonnx 0.4.0's `qonnx.converters.from_keras` (later qonnx releases dropped it). It needs
TensorFlow 2.14, QKeras 0.9.0 and tf2onnx 1.16.1, which cannot live next to hwgen's own dependencies
(numpy<2, protobuf 3.20): `make qkeras-env` builds them into .venv-qkeras, where this command runs as
`.venv-qkeras/bin/hwgen import-qkeras`. Everything heavy is imported inside functions, so this module
loads (and the command explains itself) in an environment without TensorFlow.

What the converter emits is repaired so onnx.checker, onnxruntime and hwgen accept it: the opset import
for the Quant domain is added (the converter leaves it out), the tensor shapes are inferred afresh (it
writes unknown dimensions as 0) and the IR version is capped at 10. The result is then run with
qonnx's executor and compared with the Keras model on random inputs, because the converter can emit
graphs that do not run or that compute something else (see models/README.md, "QKeras digits").
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import click

from hwgen.cli import console, err_console, main
from hwgen.errors import HwgenError

QUANT_DOMAIN = "qonnx.custom_op.general"
MAX_IR = 10
ENV_HINT = "run `make qkeras-env` and use `.venv-qkeras/bin/hwgen import-qkeras`"
REQUIRED = (("tensorflow", "tensorflow"), ("qkeras", "qkeras"), ("tf2onnx", "tf2onnx"),
            ("qonnx.converters", "qonnx==0.4.0 (the last qonnx with the QKeras converter)"))


def missing_requirement() -> str | None:
    """The first converter dependency this Python lacks (None when all are there)."""
    for module, label in REQUIRED:
        try:
            if importlib.util.find_spec(module) is None:
                return label
        except (ImportError, ValueError):
            return label
    return None


def require_environment() -> None:
    missing = missing_requirement()
    if missing:
        raise HwgenError(f"import-qkeras needs TensorFlow 2.14 + QKeras 0.9.0 + qonnx 0.4.0, and this Python "
                         f"({sys.prefix}) has no {missing}: {ENV_HINT}")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", module="tensorflow")
    warnings.filterwarnings("ignore", module="keras")


def load_keras(path: str | os.PathLike):
    """A QKeras model from .h5/.keras/SavedModel, with QKeras's layers and quantizers known."""
    _quiet_tensorflow()
    from qkeras.utils import load_qmodel

    try:
        return load_qmodel(str(path), compile=False)
    except Exception as exc:
        raise HwgenError(f"cannot load the Keras model ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})",
                         file=str(path)) from None


def finalize(proto):
    """Make the converter's ModelProto valid and self-describing (see the module doc)."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    uses_quant = any(n.domain == QUANT_DOMAIN for n in proto.graph.node)
    if uses_quant and not any(o.domain == QUANT_DOMAIN for o in proto.opset_import):
        proto.opset_import.append(onnx.helper.make_opsetid(QUANT_DOMAIN, 1))
    as_converted = onnx.ModelProto.FromString(proto.SerializeToString())
    del proto.graph.value_info[:]
    for out in proto.graph.output:  # from_keras sets the batch to 1 and writes other unknown dims as 0
        dims = out.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            out.type.tensor_type.ClearField("shape")
    wrapper = ModelWrapper(proto).transform(InferShapes())
    proto = wrapper.model
    proto.ir_version = min(proto.ir_version, MAX_IR)
    for vi in list(proto.graph.value_info) + list(proto.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if not vi.type.tensor_type.HasField("shape") or any(not d.HasField("dim_value") or d.dim_value <= 0 for d in dims):
            why = _run_error(as_converted) or f"no static shape for tensor '{vi.name}'"
            raise HwgenError(f"the converter's graph is inconsistent: {why} (models/README.md, 'QKeras digits', "
                             "lists the QKeras constructs that convert)")
    onnx.checker.check_model(proto)
    return proto


def _run_error(proto) -> str | None:
    """What qonnx's executor says when it runs `proto` on zeros (None if it runs)."""
    import numpy as np

    try:
        from qonnx.core.modelwrapper import ModelWrapper

        model = ModelWrapper(proto)
        inp = model.graph.input[0].name
        run_qonnx(proto, np.zeros((1,) + tuple(model.get_tensor_shape(inp)), dtype=np.float32))
    except Exception as exc:
        return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:240]}"
    return None


def convert(keras_model, opset: int = 13, name: str | None = None):
    """qonnx 0.4.0's from_keras plus `finalize`."""
    _quiet_tensorflow()
    from qonnx.converters import from_keras

    try:
        proto, _ = from_keras(keras_model, name=name or keras_model.name, opset=opset)
    except HwgenError:
        raise
    except Exception as exc:
        raise HwgenError(f"the QKeras -> QONNX converter failed ({type(exc).__name__}: "
                         f"{(str(exc).splitlines() or [''])[0][:200]})") from None
    try:
        return finalize(proto)
    except HwgenError:
        raise
    except Exception as exc:
        raise HwgenError(f"the converted graph is not valid ONNX ({type(exc).__name__}: "
                         f"{(str(exc).splitlines() or [''])[0][:200]})") from None


def run_qonnx(proto, x):
    """The QONNX graph on inputs x [N, ...] with qonnx's executor (one sample at a time)."""
    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    model = ModelWrapper(proto)
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    shape = tuple(model.get_tensor_shape(iname))
    out = []
    for sample in np.asarray(x, dtype=np.float32):
        out.append(execute_onnx(model, {iname: sample.reshape(shape)})[oname].reshape(-1))
    return np.stack(out)


def check_against_keras(keras_model, proto, x) -> dict:
    """Keras (QKeras fake quantisation) and the QONNX graph (qonnx executor) on the same inputs."""
    import numpy as np

    try:
        got = run_qonnx(proto, x)
    except Exception as exc:
        raise HwgenError(f"the converted graph does not run in qonnx's executor ({type(exc).__name__}: "
                         f"{(str(exc).splitlines() or [''])[0][:200]}); models/README.md lists the QKeras "
                         "constructs that convert") from None
    want = np.asarray(keras_model.predict(np.asarray(x, dtype=np.float32), verbose=0)).reshape(len(x), -1)
    return {"inputs": len(x), "max_abs_diff": float(np.abs(got - want).max()),
            "argmax_agreement": float(np.mean(got.argmax(-1) == want.argmax(-1))), "qonnx": got, "keras": want}


def summary(proto) -> str:
    import collections

    ops = collections.Counter(n.op_type for n in proto.graph.node)
    return ", ".join(f"{k} x{v}" for k, v in ops.most_common())


@main.command("import-qkeras")
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False), help="QONNX file to write.")
@click.option("--opset", type=int, default=13, show_default=True, help="ONNX opset for tf2onnx.")
@click.option("--check", "n_check", type=int, default=8, show_default=True,
              help="Compare the QONNX graph (qonnx executor) with Keras on N random inputs (0: skip).")
def import_qkeras(model, out, opset, n_check) -> None:
    """Convert the QKeras model MODEL (.h5/.keras/SavedModel) to QONNX (needs .venv-qkeras)."""
    require_environment()
    if not Path(model).exists():
        raise HwgenError("no such file", file=model)
    import numpy as np
    import onnx

    with err_console.status("loading TensorFlow and the model..."):
        keras_model = load_keras(model)
    with err_console.status("converting with qonnx 0.4.0 (tf2onnx 1.16.1)..."):
        proto = convert(keras_model, opset=opset)
    if n_check > 0:
        shape = tuple(d or 1 for d in keras_model.input_shape[1:])
        x = np.random.default_rng(0).uniform(0.0, 1.0, (n_check,) + shape).astype(np.float32)
        with err_console.status(f"checking against Keras on {n_check} random inputs..."):
            res = check_against_keras(keras_model, proto, x)
        console.print(f"QONNX (qonnx executor) vs Keras on {res['inputs']} random inputs: max |diff| "
                      f"{res['max_abs_diff']:.3g}, argmax agreement {res['argmax_agreement']:.0%}")
        if res["max_abs_diff"] > 1e-6 + 1e-4 * float(np.abs(res["keras"]).max()):
            err_console.print("warning: the QONNX graph does not compute what the Keras model computes; the "
                              "converter drops some quantizers (e.g. QActivation(quantized_bits) has no Quant "
                              "node): see models/README.md, 'QKeras digits'", markup=False)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    console.print(f"wrote {out}: {summary(proto)}")
    console.print(f"next (main environment): hwgen simulate {out} --per-layer")
