"""The example models and data that ship in the repository's models/ folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
ONNX = MODELS / "onnx"
DATA = MODELS / "data"
DEFAULT_MODEL = ONNX / "moe_vit_digits.qdq.dynamo.onnx"


def default_model() -> Path:
    return DEFAULT_MODEL


def digits_test() -> tuple[Path, Path]:
    return DATA / "digits_test_x.npy", DATA / "digits_test_y.npy"


# bert_digits reads each digit as a sentence: [CLS] then its 64 pixels as tokens 0..16 (the 17 grey levels).
GREY_LEVELS = 17
CLS_TOKEN = GREY_LEVELS
VOCAB = GREY_LEVELS + 1


def digits_tokens(images: np.ndarray) -> np.ndarray:
    """Token ids [N, 65] (int64) of digit images [N, 1, 8, 8] with pixels in [0, 1]."""
    images = np.asarray(images, dtype=np.float64)
    pixels = np.rint(images.reshape(len(images), -1) * (GREY_LEVELS - 1)).astype(np.int64)
    cls = np.full((len(images), 1), CLS_TOKEN, dtype=np.int64)
    return np.concatenate([cls, np.clip(pixels, 0, GREY_LEVELS - 1)], axis=1)


def is_digits_model(path: Path) -> bool:
    try:
        return Path(path).resolve().parent == ONNX.resolve() and "digits" in Path(path).name
    except OSError:
        return False


def is_token_model(path: Path) -> bool:
    """A bundled model that reads the digits as sentences (token ids) rather than images."""
    return is_digits_model(path) and Path(path).name.startswith("bert_")


def digits_test_inputs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of the digits test split in the form bundled model `path` reads: images, or for a
    token model the sentences of `digits_tokens`."""
    xp, yp = digits_test()
    x = np.load(xp)
    return (digits_tokens(x) if is_token_model(path) else x.astype(np.float32)), np.load(yp)

