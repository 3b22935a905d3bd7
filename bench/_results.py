"""Where the benchmark scripts save their figures: bench/results/NAME.json (one writer for all of them)."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, data: dict) -> Path:
    """Write `data` as bench/results/NAME.json, print where, and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, default=float) + "\n")
    print(f"saved {path}")
    return path
