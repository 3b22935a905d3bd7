import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ONNX = ROOT / "models" / "onnx"
DATA = ROOT / "models" / "data"


@pytest.fixture(scope="session")
def digits_test():
    return np.load(DATA / "digits_test_x.npy"), np.load(DATA / "digits_test_y.npy")


def pytest_collection_modifyitems(config, items):
    if shutil.which("g++") is None:
        skip = pytest.mark.skip(reason="g++ is not installed")
        for item in items:
            if "cpp" in item.keywords:
                item.add_marker(skip)
