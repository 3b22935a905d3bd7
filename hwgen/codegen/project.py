"""Write a complete Vitis HLS project for a lowered graph and a Design.

OUT/firmware (top function, config header, kernels, weights), OUT/tb (C testbench), OUT/vivado_scripts
(TCL from the repository's vivado_scripts/ templates), OUT/hwgen_report.{json,md}, OUT/README.md. The
project is staged inside OUT and moved into place at the end, so a failure leaves no partial project and
nothing is written outside OUT. The same inputs give a byte-identical project."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import jinja2
import numpy as np
import onnx

from hwgen import __version__
from hwgen.boards import get_board
from hwgen.codegen.context import EmitContext
from hwgen.design import Design
from hwgen.errors import HwgenError
from hwgen.ir import Graph, sanitize
from hwgen.ops import get

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "templates" / "kernels"
PROJECT_TEMPLATES = ROOT / "templates" / "project"
TCL_TEMPLATES = ROOT / "vivado_scripts"
MANIFEST = "hwgen_project.json"


def display_name(name: str, limit: int = 80) -> str:
    """A model or tensor name as it may appear in generated C++/TCL comments and the README: letters,
    digits and ._+- only (names come from an untrusted model: no newlines, quotes, `*/`, `??/`, `$`, `[`)."""
    text = "".join(ch if (ch.isascii() and (ch.isalnum() or ch in "._+-")) else "_" for ch in str(name))
    return text[:limit] or "model"


def md_name(name: str) -> str:
    """A name in the Markdown report, JSON-escaped: '/' as '\\/', and shell/TCL/Markdown syntax
    ([ ] $ ` | ; * and the like) as \\uXXXX, so no raw hostile string from the model lands in the file."""
    text = json.dumps(str(name), ensure_ascii=True)[1:-1].replace("/", "\\/")
    return "".join(f"\\u{ord(c):04x}" if c in _MD_UNSAFE else c for c in text)


_MD_UNSAFE = "[]{}$`|;*<>()'!&#~^"
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _md_json(value) -> str:
    """JSON for the Markdown report, its strings escaped as md_name does (still valid JSON)."""
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=True)
    return _JSON_STRING.sub(lambda m: "".join(f"\\u{ord(c):04x}" if c in _MD_UNSAFE else c
                                              for c in m.group(0).replace("/", "\\/")), text)


def top_name(graph: Graph, model_path: str | None) -> str:
    stem = Path(model_path).name.split(".")[0] if model_path else graph.name
    return "hwgen_" + sanitize(stem, "model")[:40]


def host_inputs(graph: Graph) -> list[tuple[str, str]]:
    """(graph input, tensor the accelerator receives): float inputs are quantised on the host."""
    pairs = []
    for name in graph.inputs:
        t = graph.tensors[name]
        target = name
        if t.qtype.is_float:
            qs = [n for n in graph.consumers(name) if n.op == "quantize"]
            if len(qs) != 1 or len(graph.consumers(name)) != 1:
                raise HwgenError(f"float input '{name}' must feed exactly one quantize node")
            target = qs[0].outputs[0]
        pairs.append((name, target))
    return pairs


def generate(graph: Graph, design: Design, model_path: str | None = None, tb_inputs=None,
             tb_errors: list | None = None) -> dict:
    """Everything the project holds, in memory: {relative path: bytes}. With `tb_inputs` (the inputs of some
    images, as hwgen.sim.run takes them), also the testbench's data: tb/tb_data/inputs.bin and
    tb/tb_data/expected.bin, the simulator's input and output codes for those images (hwgen.codegen.tbdata);
    if simulating them fails, the HwgenError is raised, or with `tb_errors` (a list) appended to it and the
    project has no testbench data."""
    board = get_board(design.board)
    part = design.part or board.part
    clock = float(design.clock_mhz or board.clock_mhz)
    top = top_name(graph, model_path)
    ctx = EmitContext(graph, design)
    inputs, outputs = [], []
    host = host_inputs(graph)
    # top-level names: the function, its ports and the weight blobs' ports
    ctx.used.update({top} | {f"in{i}" for i in range(len(host))} | {f"out{i}" for i in range(len(graph.outputs))}
                    | {f"wmem{i}" for i in range(len(graph.nodes) + 1)})
    for i, (_, tensor) in enumerate(host):
        t = graph.tensors[tensor]
        ctx.names[tensor] = f"in{i}"
        inputs.append(_port(f"in{i}", t, i, "input"))
    hosted = {tensor for _, tensor in host}
    dumped = set(ctx.names.values())  # the input ports are not dumped
    for node in graph.nodes:
        if node.op == "quantize" and node.outputs[0] in hosted:
            continue
        get(node.op).emit(graph, node, ctx)  # OpDef.emit: "no C++ kernel for op X yet" when it has none
        for o in node.outputs:
            ident = ctx.tensor(o)
            if ident not in dumped:  # a view (reshape) shares its source's buffer: dump each buffer once
                dumped.add(ident)
                ctx.body.append(f'HWGEN_DUMP_TENSOR("{ident}", {ident}, {max(graph.tensors[o].size, 1)});')
    for i, name in enumerate(graph.outputs):
        t = graph.tensors[name]
        outputs.append(_port(f"out{i}", t, i, "output"))
        ctx.body.append(f"OUTPUT_{i}: for (int i = 0; i < {max(t.size, 1)}; i++) {{")
        ctx.body.append("#pragma HLS PIPELINE II = 1")
        ctx.body.append(f"  out{i}[i] = {ctx.tensor(name)}[i];")
        ctx.body.append("}")
    blobs = [_blob_view(b) for b in sorted(ctx.blobs.values(), key=lambda b: b.port)]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(PROJECT_TEMPLATES), str(TCL_TEMPLATES)]),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    guard = top.upper() + "_H"
    common = {"top": top, "version": __version__,
              "model_name": display_name(Path(model_path).name if model_path else graph.name),
              "guard": guard, "inputs": inputs, "outputs": outputs, "blobs": blobs, "regime": design.regime,
              "part": part, "clock": clock, "period_ns": f"{1000.0 / clock:.3f}", "design": design,
              "summary": graph.summary(), "out_name": "OUT"}
    kernels = sorted(p.name for p in KERNELS.glob("*.h"))
    files: dict[str, bytes] = {}
    files[f"firmware/{top}.h"] = env.get_template("top.h.j2").render(common).encode()
    files[f"firmware/{top}.cpp"] = env.get_template("top.cpp.j2").render(
        common, buffers=ctx.buffers, body=ctx.body,
        io_interface="m_axi" if design.regime == "streaming" else "ap_memory").encode()
    files["firmware/parameters.h"] = env.get_template("parameters.h.j2").render(
        common, headers=sorted(ctx.headers), decls=[_csim_friendly(d) for d in ctx.decls]).encode()
    files["firmware/hwgen_dump.h"] = env.get_template("hwgen_dump.h.j2").render(common).encode()
    for k in kernels:
        files[f"firmware/kernels/{k}"] = (KERNELS / k).read_bytes()
    for b, raw in zip(blobs, _blob_bytes(ctx)):
        files[f"firmware/weights/{b['port']}.bin"] = raw
    files[f"tb/{top}_test.cpp"] = env.get_template("testbench.cpp.j2").render(common).encode()
    sources = [f"firmware/{top}.cpp"]
    tb_sources = [f"tb/{top}_test.cpp"]
    files["vivado_scripts/build_prj.tcl"] = env.get_template("build_prj.tcl.j2").render(
        common, sources=sources, tb_sources=tb_sources).encode()
    files["vivado_scripts/vivado_impl.tcl"] = env.get_template("vivado_impl.tcl.j2").render(common).encode()
    report = _report(graph, design, board, part, clock, top, model_path, inputs, outputs, blobs)
    files["hwgen_report.json"] = (json.dumps(report, indent=1, sort_keys=True) + "\n").encode()
    files["hwgen_report.md"] = _report_md(report).encode()
    files["README.md"] = env.get_template("README.md.j2").render(common).encode()
    if tb_inputs is not None:
        from hwgen.codegen import tbdata

        files.update(tbdata.files(graph, tb_inputs, tb_errors))
    manifest = {"top": top, "inputs": [p["tensor"] for p in inputs], "outputs": [p["tensor"] for p in outputs],
                "design": json.loads(design.to_json()), "model": "model.onnx",
                "buffers": {ident: name for name, ident in sorted(ctx.names.items()) if not ident.startswith("hwgen_cfg::")}, "files": sorted(files) + [MANIFEST, "model.onnx"],
                "hwgen": __version__}
    if graph.meta.get("precision") is not None:  # the Precision the model was lowered with (csim reloads with it)
        manifest["precision"] = graph.meta["precision"]
    files[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return files


def write_project(graph: Graph, design: Design, out: str | os.PathLike, model_path: str | None = None,
                  model_bytes: bytes | None = None, tb_inputs=None, tb_errors: list | None = None) -> Path:
    """Generate and place the project in `out` atomically (staged inside `out`); with `tb_inputs`, the
    testbench's inputs.bin and expected.bin for those images (see `generate`)."""
    files = generate(graph, design, model_path, tb_inputs, tb_errors)
    if model_bytes is None and model_path:
        model_bytes = _self_contained_model(model_path)
    if model_bytes is not None:
        files["model.onnx"] = model_bytes
    out = Path(out)
    created = not out.exists()
    if out.exists() and not out.is_dir():
        raise HwgenError("output path exists and is not a directory", file=str(out))
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).exists():
        raise HwgenError("output directory is not empty and is not an hwgen project; choose another -o",
                         file=str(out))
    for rel in files:  # relative paths made by hwgen from sanitised names; never trust them blindly
        if rel.startswith(("/", "\\")) or ".." in Path(rel).parts or "\0" in rel:
            raise HwgenError(f"refusing to write {rel!r} outside the project", file=str(out))
    out.mkdir(parents=True, exist_ok=True)
    stage = out / f".hwgen-staging-{os.getpid()}"
    previous = out / f".hwgen-previous-{os.getpid()}"
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for rel, data in sorted(files.items()):
            path = stage / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        # swap: the previous project aside (restored on failure), the new one in, then the old one removed
        previous.mkdir()
        for child in sorted(out.iterdir()):
            if child not in (stage, previous):
                child.rename(previous / child.name)
                moved_old.append(child.name)
        for child in sorted(stage.iterdir()):
            child.rename(out / child.name)
            moved_new.append(child.name)
        stage.rmdir()
    except BaseException:
        for name in moved_new:
            p = out / name
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
        for name in moved_old:
            (previous / name).rename(out / name)
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return out


def _self_contained_model(model_path: str) -> bytes:
    """The model's bytes for OUT/model.onnx; with its external data folded in (the project must not point
    to files outside OUT; the external data was checked to lie inside the model's folder on import)."""
    raw = Path(model_path).read_bytes()
    try:
        proto = onnx.ModelProto.FromString(raw)
    except Exception:  # noqa: BLE001 - the importer already read it; keep the bytes as they are
        return raw
    from hwgen.frontend.onnx_import import _all_tensors, load_model

    if not any(t.data_location == onnx.TensorProto.EXTERNAL for t in _all_tensors(proto)):
        return raw
    model, _ = load_model(model_path)
    try:
        return model.SerializeToString()
    except Exception as exc:  # noqa: BLE001 - above 2 GiB
        raise HwgenError(f"cannot embed the external data in the project ({type(exc).__name__})",
                         file=str(model_path)) from None


# Element types of constant parameter arrays only (never of MAC operands or activations).
_PARAM_TYPEDEF = re.compile(r"^(\s*)typedef (ap_u?int<\d+>) (bias_t|shift_t|mult_t|zp_t|table_t);[ \t]*$", re.M)


def _csim_friendly(decl: str) -> str:
    """Constant parameter arrays (biases, multipliers, shifts, zero points, integer tables) keep their exact
    ap_int type for synthesis and become `long long` in C simulation: the values are the same and the
    kernels convert them explicitly, but g++ compiles megabytes of ap_int initialisers in minutes and
    gigabytes (m3vit_shape: > 15 min, 5 GB) where plain integers take about a minute."""
    return _PARAM_TYPEDEF.sub(lambda m: f"{m.group(1)}#ifdef __SYNTHESIS__\n{m.group(1)}typedef {m.group(2)} {m.group(3)};\n"
                              f"{m.group(1)}#else\n{m.group(1)}typedef long long {m.group(3)};\n{m.group(1)}#endif", decl)


def _port(arg: str, t, index: int, kind: str) -> dict:
    return {"arg": arg, "typedef": f"{arg}_t", "ctype": t.qtype.c_type(), "size": max(t.size, 1),
            "label": display_name(t.name, 60),
            "size_name": f"N_{arg.upper()}", "tensor": t.name, "shape": list(t.shape),
            "comment": f"{kind} {index}: {t.qtype}, shape {list(t.shape)}".replace("\n", " ")}


def _blob_view(b) -> dict:
    cstorage = {"int8": "signed char", "int16": "short", "int32": "int", "int64": "long long"}[b.storage]
    return {"port": b.port, "ctype": b.ctype, "size": b.size, "storage": b.storage, "cstorage": cstorage}


def _blob_bytes(ctx: EmitContext) -> list[bytes]:
    out = []
    for b in sorted(ctx.blobs.values(), key=lambda b: b.port):
        data = np.concatenate(b.chunks) if b.chunks else np.zeros(0, dtype=np.int64)
        out.append(data.astype("<" + {"int8": "i1", "int16": "i2", "int32": "i4", "int64": "i8"}[b.storage]).tobytes())
    return out


def _report(graph, design, board, part, clock, top, model_path, inputs, outputs, blobs) -> dict:
    from hwgen.ir.graph import walk

    types = {}
    for g, node in walk(graph):
        for o in node.outputs:
            types[o] = str(g.tensors[o].qtype)
    report = {
        "top": top, "model": Path(model_path).name if model_path else graph.name,
        "model_sha256": hashlib.sha256(Path(model_path).read_bytes()).hexdigest() if model_path else None,
        "format": graph.meta.get("format"), "summary": graph.summary(), "design": json.loads(design.to_json()),
        "board": board.name, "part": part, "clock_mhz": clock,
        "inputs": [{k: p[k] for k in ("tensor", "ctype", "shape")} for p in inputs],
        "outputs": [{k: p[k] for k in ("tensor", "ctype", "shape")} for p in outputs],
        "offchip_weights": {b["port"]: {"ctype": b["ctype"], "elements": b["size"]} for b in blobs},
        "types": types,
    }
    try:
        from hwgen.cost import estimate  # the cost model (issue 4), when present
        report["estimate"] = estimate(graph, design, board).as_dict()
    except Exception as exc:  # noqa: BLE001 - the report says why there is no estimate
        report["estimate"] = {"unavailable": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return report


def _report_md(r: dict) -> str:
    lines = [f"# {r['top']}", "", f"Model `{md_name(r['model'])}` ({r['format']}), {r['summary']['nodes']} hardware ops, "
             f"{r['summary']['parameters']:,} parameters.", "",
             f"Board {r['board']} (`{r['part']}`), {r['clock_mhz']} MHz, {r['design']['regime']} regime.", "",
             "## Ops", "", "| op | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(r["summary"]["ops"].items())]
    lines += ["", "## Design", "", "```json", _md_json(r["design"]), "```", ""]
    est = r.get("estimate", {})
    lines += ["## Estimate", ""]
    if "unavailable" in est:
        lines.append(f"No estimate: {md_name(est['unavailable'])}")
    else:
        lines += ["```json", _md_json(est), "```"]
    lines += ["", "## Numeric types", "", "| tensor | type |", "|---|---|"]
    lines += [f"| `{md_name(k)}` | `{v}` |" for k, v in list(r["types"].items())[:400]]
    return "\n".join(lines) + "\n"
