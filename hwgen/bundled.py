"""The example models and data that ship in the repository's models/ folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
ONNX = MODELS / "onnx"
DATA = MODELS / "data"
DEFAULT_MODEL = ONNX / "moe_vit_digits.qdq.dynamo.onnx"


def default_model() -> Path:
    return DEFAULT_MODEL


def digits_test() -> tuple[Path, Path]:
    return DATA / "digits_test_x.npy", DATA / "digits_test_y.npy"


def is_digits_model(path: Path) -> bool:
    try:
        return Path(path).resolve().parent == ONNX.resolve() and "digits" in Path(path).name
    except OSError:
        return False
