"""Kernel-level harness: one hwgen op's Python ``simulate`` vs its C++ kernel, compared bit for bit.

Shared by the kernel tests (tests/test_kernels_*.py).  A test builds a one-node graph, simulates it, and
describes how to call the C++ kernel for one sample; the harness compiles many such cases into one program
(several translation units, compiled in parallel, binary cached by content via hwgen.codegen.gxx), feeds
every sample's inputs, and compares every output element as an integer code.

Typical use::

    from kernel_harness import Spec, KernelCase, one_op_graph, simulate, random_codes, c_array, check_cases

    g, node = one_op_graph("linear",
                           [Spec("x", (1, 5, 16), qx), Spec("w", (16, 8), qw, data=w_codes)],
                           [Spec("y", (1, 5, 8), qy)])
    x = random_codes(rng, qx, (4, 1, 5, 16))          # batched: leading axis = samples
    case = KernelCase(
        label="linear 5x16x8",
        decls="struct cfg { ... };\n" + c_array("w", weights, "ap_int<9>"),   # namespace-scope C++
        call="hwgen::linear<cfg>(in0, out0, w, b, m0, sh);",                   # one sample
        inputs=[x], in_ctypes=[qx.c_type()],
        expected=simulate(g, node, [x]), out_ctypes=[qy.c_type()])
    check_cases([case, ...], headers=["linear.h"], workdir=tmp_path)

Conventions
-----------
* Arrays are integer codes (int64): an ap_int's value, an ap_fixed's raw bits.  Inputs and expected outputs
  carry a leading batch axis; the kernel sees one sample at a time as a flat row-major C array, i.e. the
  simulator's array minus its batch axis (``in0``, ``in1``, ... and ``out0``, ``out1``, ...; element types
  ``in_ctypes`` / ``out_ctypes``).  Constant inputs of the op are not fed: put them in ``decls``.
* Each case lives in its own C++ namespace, so every case may define a ``struct cfg`` and arrays with the
  same names.  ``decls`` may use anything from the listed ``headers`` (the kernels dir is on the include
  path) and from hwgen_numerics.h (always included).
* Codes travel as int64 through binary files (in.bin / out.bin in ``workdir``); conversion to and from the
  element types uses ``hwgen::from_raw`` / ``hwgen::raw`` (hwgen_numerics.h), so fixed-point elements are
  set from and read as raw bits.  Output arrays are pre-filled with all-ones bits before every call, so an
  element the kernel forgets to write shows up as a mismatch (unless the expected code is all ones too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hwgen.codegen import gxx
from hwgen.codegen.cpp import c_array, c_bool, c_int, int_ctype  # noqa: F401 - re-exported
from hwgen.ir import Graph, Node, QType
from hwgen.ops import SimStats, get

__all__ = ["Spec", "KernelCase", "one_op_graph", "simulate", "random_codes", "c_int", "c_bool", "c_array",
           "int_ctype", "check_cases", "run_cases"]


# ------------------------------------------------------------------------------------------- graphs


@dataclass
class Spec:
    """A tensor of the one-op graph: model shape (no simulator batch axis), type, and data for constants."""

    name: str
    shape: tuple
    qtype: QType | None
    data: np.ndarray | None = None


def one_op_graph(op: str, inputs: Sequence[Spec], outputs: Sequence[Spec], attrs: dict | None = None,
                 check: bool = True) -> tuple[Graph, Node]:
    """A lowered graph with a single ``op`` node.  Non-constant inputs become graph inputs (in order).
    ``check`` runs the op's own ``check`` (so an unsupported configuration fails loudly here)."""
    g = Graph(f"one_{op}")
    names = []
    for s in inputs:
        if s is None:
            names.append("")
            continue
        data = None if s.data is None else np.asarray(s.data)
        shape = tuple(s.shape) if data is None else tuple(np.shape(data))
        g.add_tensor(s.name, shape, s.qtype, data)
        if data is None:
            g.inputs.append(s.name)
        names.append(s.name)
    for s in outputs:
        g.add_tensor(s.name, tuple(s.shape), s.qtype)
    node = g.add_node(op, names, [s.name for s in outputs], attrs=attrs or {})
    g.outputs = [s.name for s in outputs]
    g.lint()
    if check:
        get(op).check(g, node)
    return g, node


def simulate(graph: Graph, node: Node, feeds: Sequence[np.ndarray], stats: SimStats | None = None) -> list[np.ndarray]:
    """The op's Python simulation of ``node``; ``feeds`` are the batched non-constant inputs in order."""
    feeds = list(feeds)
    ins = []
    for name in node.inputs:
        if not name:
            ins.append(None)
        elif graph.tensors[name].is_const:
            ins.append(graph.tensors[name].data)
        else:
            ins.append(np.asarray(feeds.pop(0), dtype=np.int64))
    if feeds:
        raise ValueError(f"{len(feeds)} feeds left over")
    outs = get(node.op).simulate(graph, node, ins, stats if stats is not None else SimStats())
    return [np.asarray(o, dtype=np.int64) for o in outs]


def random_codes(rng: np.random.Generator, qtype: QType, shape, lo: int | None = None,
                 hi: int | None = None) -> np.ndarray:
    """Uniform random integer codes of ``qtype`` (optionally within [lo, hi]), int64."""
    qlo, qhi = qtype.qmin, qtype.qmax
    lo = qlo if lo is None else max(int(lo), qlo)
    hi = qhi if hi is None else min(int(hi), qhi)
    return rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)


# --------------------------------------------------------------------------------- C++ spelling


# c_int, c_bool, int_ctype and c_array live in hwgen.codegen.cpp (the code generator spells the same C++).


# ------------------------------------------------------------------------------------------ cases


@dataclass
class KernelCase:
    """One kernel configuration and the data to run it on.

    label      printed on mismatch
    decls      C++ at namespace scope inside the case's own namespace (config structs, constant arrays)
    call       C++ statement(s) running the kernel on one sample: reads in0.., writes out0..
    inputs     batched int64 code arrays (leading batch axis, same length for all) of non-constant inputs
    in_ctypes  C++ element type of each input
    expected   batched int64 code arrays the kernel must produce
    out_ctypes C++ element type of each output
    """

    label: str
    decls: str
    call: str
    inputs: list
    in_ctypes: list
    expected: list
    out_ctypes: list
    meta: dict = field(default_factory=dict)

    @property
    def batch(self) -> int:
        arrs = list(self.inputs) + list(self.expected)
        return int(arrs[0].shape[0]) if arrs else 0


_COMMON = r"""#pragma once
#include <cstdio>
#include <cstdlib>
#include <ap_int.h>
#include <ap_fixed.h>
#include "hwgen_numerics.h"
{includes}
namespace harness {{
template <class T> inline void read(FILE* f, T* a, int n) {{
  for (int i = 0; i < n; i++) {{
    long long v;
    if (std::fread(&v, sizeof v, 1, f) != 1) {{ std::fprintf(stderr, "input underrun\n"); std::exit(3); }}
    a[i] = hwgen::from_raw<T>(v);
  }}
}}
template <class T> inline void write(FILE* f, const T* a, int n) {{
  for (int i = 0; i < n; i++) {{
    long long v = hwgen::raw(a[i]);
    std::fwrite(&v, sizeof v, 1, f);
  }}
}}
template <class T> inline void poison(T* a, int n) {{
  for (int i = 0; i < n; i++) a[i] = hwgen::from_raw<T>(-1);
}}
}}  // namespace harness
"""


def _case_source(k: int, case: KernelCase) -> str:
    n = case.batch
    lines = [f"namespace case_{k} {{", case.decls, f"void run(FILE* in, FILE* out) {{"]
    in_sizes = [int(np.prod(a.shape[1:], dtype=np.int64)) for a in case.inputs]
    out_sizes = [int(np.prod(a.shape[1:], dtype=np.int64)) for a in case.expected]
    for i, (t, s) in enumerate(zip(case.in_ctypes, in_sizes)):
        lines.append(f"  static {t} in{i}[{max(s, 1)}];")
    for i, (t, s) in enumerate(zip(case.out_ctypes, out_sizes)):
        lines.append(f"  static {t} out{i}[{max(s, 1)}];")
    lines.append(f"  for (int sample = 0; sample < {n}; sample++) {{")
    for i, s in enumerate(in_sizes):
        lines.append(f"    harness::read(in, in{i}, {s});")
    for i, s in enumerate(out_sizes):
        lines.append(f"    harness::poison(out{i}, {s});")
    lines.append("    {\n" + case.call + "\n    }")
    for i, s in enumerate(out_sizes):
        lines.append(f"    harness::write(out, out{i}, {s});")
    lines += ["  }", "}", f"}}  // namespace case_{k}",
              f"void case_{k}_run(FILE* in, FILE* out) {{ case_{k}::run(in, out); }}", ""]
    return "\n".join(lines)


def run_cases(cases: Sequence[KernelCase], headers: Sequence[str], workdir: Path, *, units: int | None = None,
              opt: str = "-O1", timeout: float = 600, extra_flags: Sequence[str] = ()) -> list[list[np.ndarray]]:
    """Compile ``cases`` into one program, run it, and return each case's outputs (batched int64 arrays,
    shaped like ``expected``)."""
    workdir = Path(workdir)
    cases = list(cases)
    for c in cases:
        if len(c.inputs) != len(c.in_ctypes) or len(c.expected) != len(c.out_ctypes):
            raise ValueError(f"{c.label}: inputs/in_ctypes or expected/out_ctypes lengths differ")
        if any(a.shape[0] != c.batch for a in list(c.inputs) + list(c.expected)):
            raise ValueError(f"{c.label}: all arrays need the same leading batch size")
    includes = "\n".join(f'#include "{h}"' for h in headers)
    files = {"harness_common.h": _COMMON.format(includes=includes)}
    n_units = max(1, min(len(cases), units or os.cpu_count() or 1))
    for u in range(n_units):
        body = "".join(_case_source(k, cases[k]) for k in range(u, len(cases), n_units))
        files[f"harness_unit{u}.cpp"] = '#include "harness_common.h"\n' + body
    decl = "".join(f"void case_{k}_run(FILE* in, FILE* out);\n" for k in range(len(cases)))
    calls = "".join(f"  case_{k}_run(in, out);\n" for k in range(len(cases)))
    files["harness_main.cpp"] = (
        "#include <cstdio>\n" + decl + "int main() {\n"
        '  FILE* in = std::fopen("in.bin", "rb");\n  FILE* out = std::fopen("out.bin", "wb");\n'
        "  if (!in || !out) return 2;\n" + calls
        + '  if (std::fgetc(in) != EOF) { std::fprintf(stderr, "input left over\\n"); return 4; }\n'
        "  std::fclose(out);\n  return 0;\n}\n")
    blob = [np.asarray(a, dtype=np.int64)[s].reshape(-1)
            for c in cases for s in range(c.batch) for a in c.inputs]
    (workdir / "in.bin").write_bytes(np.concatenate(blob).astype("<i8").tobytes() if blob else b"")
    res = gxx.compile_and_run(files, workdir, opt=opt, timeout=timeout, extra_flags=list(extra_flags))
    if res.returncode != 0:
        raise RuntimeError(f"kernel program failed (exit {res.returncode}): {res.stderr[-2000:]}")
    out = np.frombuffer((workdir / "out.bin").read_bytes(), dtype="<i8").astype(np.int64)
    results, pos = [], 0
    per_case = []
    for c in cases:
        sizes = [int(np.prod(a.shape[1:], dtype=np.int64)) for a in c.expected]
        got = [np.empty(a.shape, dtype=np.int64) for a in c.expected]
        for s in range(c.batch):
            for g, n in zip(got, sizes):
                g[s] = out[pos:pos + n].reshape(g.shape[1:])
                pos += n
        per_case.append(got)
    if pos != out.size:
        raise RuntimeError(f"output length {out.size} != expected {pos}")
    results = per_case
    return results


def check_cases(cases: Sequence[KernelCase], headers: Sequence[str], workdir: Path, max_report: int = 12,
                **kw) -> int:
    """Run ``cases`` (see :func:`run_cases`) and assert every output element equals ``expected``.
    Returns the number of elements compared.  The assertion message lists the failing cases with the
    first differing elements."""
    results = run_cases(cases, headers, workdir, **kw)
    failures, compared = [], 0
    for c, got in zip(cases, results):
        for j, (g, e) in enumerate(zip(got, c.expected)):
            compared += e.size
            bad = np.argwhere(g != e)
            if bad.size:
                idx = [tuple(int(v) for v in b) for b in bad[:4]]
                detail = ", ".join(f"{i}: C++ {int(g[i])} py {int(e[i])}" for i in idx)
                failures.append(f"{c.label} out{j}: {len(bad)}/{e.size} differ ({detail})")
    assert not failures, f"{len(failures)}/{len(cases)} kernel cases differ:\n" + "\n".join(failures[:max_report])
    return compared
