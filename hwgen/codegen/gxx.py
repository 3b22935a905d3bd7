"""Compile and run small C++ programs with g++ against the open ap_types headers (C simulation helper)."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping, Sequence

__all__ = ["ap_types_dir", "kernels_dir", "cache_dir", "compile_and_run"]

CXX_STD = "-std=c++14"
_SOURCE_EXTS = (".cpp", ".cc", ".cxx", ".c++")


def ap_types_dir() -> Path:
    """Directory with ap_fixed.h / ap_int.h / hls_stream.h (shipped by the hls4ml package)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the ap_types headers come from the hls4ml package, which is not installed "
            "(pip install hls4ml) in this Python environment"
        )
    d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (d / "ap_fixed.h").is_file():
        raise RuntimeError(f"hls4ml is installed but {d} has no ap_fixed.h")
    return d


def kernels_dir() -> Path:
    """hwgen's C++ kernel templates (templates/kernels in the repository)."""
    return Path(__file__).resolve().parents[2] / "templates" / "kernels"


def cache_dir() -> Path:
    """Binary cache: $HWGEN_GXX_CACHE, else ~/.cache/hwgen/gxx."""
    env = os.environ.get("HWGEN_GXX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hwgen" / "gxx"


@functools.lru_cache(maxsize=None)
def _ap_types_id() -> str:
    d = ap_types_dir()
    try:
        ver = importlib.metadata.version("hls4ml")
    except importlib.metadata.PackageNotFoundError:
        ver = "?"
    return f"{d}\nhls4ml {ver}"


@functools.lru_cache(maxsize=None)
def _compiler_id(cxx: str) -> str:
    exe = shutil.which(cxx)
    if exe is None:
        raise RuntimeError(f"C++ compiler {cxx!r} not found on PATH")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return exe + "\n" + out.stdout


_INCLUDE_RE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.MULTILINE)


def _include_closure(files: Iterable[Path], dirs: Sequence[Path]) -> list[Path]:
    """Headers reachable through #include from ``files``, looked up in the including file's directory and
    then ``dirs`` (only hwgen-controlled dirs; system and ap_types headers are not followed)."""
    seen: dict[Path, None] = {}
    todo = [Path(f) for f in files]
    while todo:
        f = todo.pop()
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        for name in _INCLUDE_RE.findall(text):
            for d in (f.parent, *dirs):
                cand = (d / name).resolve()
                if cand.is_file():
                    if cand not in seen:
                        seen[cand] = None
                        todo.append(cand)
                    break
    return sorted(seen)


def _run_compiler(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tail = "\n".join(res.stderr.splitlines()[-40:])
        raise RuntimeError(f"g++ failed (exit {res.returncode}): {' '.join(cmd)}\n{tail}")


def _build(cxx: str, flags: list[str], units: list[Path], exe: Path, jobs: int | None) -> None:
    """Compile ``units`` (in parallel when there are several) and link to ``exe`` atomically."""
    with tempfile.TemporaryDirectory(prefix="hwgen_gxx_", dir=exe.parent) as tmpd:
        tmp_exe = Path(tmpd) / exe.name
        if len(units) == 1:
            _run_compiler([cxx, *flags, str(units[0]), "-o", str(tmp_exe)])
        else:
            objs = [Path(tmpd) / f"{i}_{u.stem}.o" for i, u in enumerate(units)]
            n = max(1, min(len(units), jobs or os.cpu_count() or 1))
            with ThreadPoolExecutor(max_workers=n) as pool:
                list(pool.map(_run_compiler, [[cxx, *flags, "-c", str(u), "-o", str(o)]
                                              for u, o in zip(units, objs)]))
            _run_compiler([cxx, *[str(o) for o in objs], "-o", str(tmp_exe)])
        os.replace(tmp_exe, exe)  # atomic: concurrent runs never see a half-written binary


def compile_and_run(
    sources: Mapping[str, str] | Sequence[Path],
    workdir: Path,
    args: Sequence[str] = (),
    opt: str = "-O2",
    cache: bool = True,
    *,
    extra_flags: Sequence[str] = (),
    include_dirs: Sequence[Path] = (),
    timeout: float | None = None,
    cxx: str = "g++",
    jobs: int | None = None,
) -> subprocess.CompletedProcess:
    """Compile C++ sources with ``g++ -std=c++14`` and run the binary in ``workdir``.

    ``sources`` is either {file name: text} (written into ``workdir``; .cpp/.cc files are compiled, the rest
    are headers) or a list of existing paths.  Include path: ``include_dirs``, ``workdir``, the hwgen
    kernels dir, the ap_types dir.  Several translation units are compiled in parallel (``jobs``, default
    the CPU count) and then linked.  With ``cache`` the binary (in :func:`cache_dir`) is reused when the sources,
    the headers they include from hwgen's dirs, the flags and the compiler are unchanged.  Raises RuntimeError with the
    tail of the compiler's stderr if compilation fails; the run's result (stdout/stderr as text, return
    code) is returned as is.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(sources, Mapping):
        paths = []
        for name, text in sources.items():
            p = workdir / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if not p.exists() or p.read_text() != text:
                p.write_text(text)
            paths.append(p)
    else:
        paths = [Path(p).resolve() for p in sources]
    compile_units = [p for p in paths if p.suffix in _SOURCE_EXTS]
    if not compile_units:
        raise ValueError(f"no C++ source file (.cpp/.cc) among {[str(p) for p in paths]}")

    incs = [Path(d).resolve() for d in include_dirs] + [workdir, kernels_dir(), ap_types_dir()]
    flags = [CXX_STD, opt, *extra_flags] + [f"-I{d}" for d in incs]

    # Cache key: compiler, ap_types version, flags (the workdir path itself left out so temporary workdirs
    # still hit the cache), the sources, and every header they reach through #include in the directories
    # hwgen controls (workdir, kernels dir, extra include dirs), by content.
    h = hashlib.sha256()
    h.update(_compiler_id(cxx).encode())
    h.update(_ap_types_id().encode())
    h.update("\0".join(f.replace(str(workdir), "<workdir>") for f in flags).encode())
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    for hdr in _include_closure(paths, incs[:-1]):
        h.update(hdr.name.encode())
        h.update(hdr.read_bytes())
    key = h.hexdigest()[:32]

    bdir = cache_dir() if cache else workdir / ".gxx_build"
    bdir.mkdir(parents=True, exist_ok=True)
    exe = bdir / f"prog_{key}"
    if not (cache and exe.is_file()):
        _build(cxx, flags, compile_units, exe, jobs)
    return subprocess.run([str(exe), *map(str, args)], cwd=workdir, capture_output=True, text=True,
                          timeout=timeout, check=False)
