"""Project generation time for m3vit_shape (target: under 30 s), and the project's size.

    python bench/build_speed.py [--board zcu102]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from _results import save

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", default="zcu102,u280")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "models"))
    from m3vit_shape import ensure_m3vit_shape

    model = ensure_m3vit_shape()
    hwgen = str(Path(sys.executable).with_name("hwgen"))
    rows = []
    for board in args.boards.split(","):
        out = Path(tempfile.mkdtemp()) / "prj"
        t = time.perf_counter()
        proc = subprocess.run([hwgen, "build", str(model), "-o", str(out), "--board", board], capture_output=True, text=True)
        seconds = time.perf_counter() - t
        if proc.returncode:
            sys.exit(proc.stderr)
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        rows.append({"board": board, "seconds": seconds, "files": sum(1 for p in out.rglob("*") if p.is_file()),
                     "megabytes": size / 1e6})
        print(f"{board:8s} hwgen build m3vit_shape: {seconds:6.1f} s (target < 30 s), {rows[-1]['files']} files, "
              f"{rows[-1]['megabytes']:.1f} MB")
        shutil.rmtree(out.parent, ignore_errors=True)
    save("build_speed", {"model": model.name, "results": rows})


if __name__ == "__main__":
    main()
