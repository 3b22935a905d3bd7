"""Untrained model with M3ViT's shape (for resource / latency estimation only).

D=192, 12 pre-norm blocks, 3 heads (head dim 64), input [1,3,128,256], 16x16
patch Conv (stride 16) -> 8*16 = 128 patches + class token = 129 tokens,
learnable position embedding. Odd blocks (1,3,...,11) are top-2-of-16 MoE
(experts MLP(192,384,192) + GELU, softmax gate over all experts, kept scores not
renormalised, written densely like moe_vit_digits); even blocks are dense MLP
(hidden 768). Separate q/k/v projections. Final LayerNorm, class-token head
Linear(192, 10). Weights are fixed-seed random (torch default init).

    .venv/bin/python models/m3vit_shape.py [--force] [--cache-dir DIR]

`ensure_m3vit_shape()` builds on demand, caches in models/cache/ (gitignored)
and returns the QDQ path; `ensure_m3vit_shape_float()` returns the float path.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / "cache"
FLOAT_NAME = "m3vit_shape.float.onnx"
QDQ_NAME = "m3vit_shape.qdq.onnx"
META_NAME = "m3vit_shape.json"
VERSION = 1  # bump to invalidate caches when the model definition changes
INPUT_SHAPE = (1, 3, 128, 256)
CONFIG = dict(in_chans=3, img_size=(128, 256), patch=16, dim=192, heads=3, depth=12,
              mlp_hidden=768, num_classes=10, fused_qkv=False,
              moe_blocks=tuple(range(1, 12, 2)), moe_hidden=384, num_experts=16, top_k=2,
              eps=1e-6)


def build_torch_model():
    import torch
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from digits_vit import ViT
    torch.manual_seed(0)
    model = ViT(**CONFIG)
    model.eval()
    return model


def _export_float(model, out: Path) -> str:
    import onnx
    import torch
    x = torch.randn(*INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    kw = dict(input_names=["pixels"], output_names=["logits"])
    exporter = "dynamo"
    with torch.no_grad():
        try:
            prog = torch.onnx.export(model, (x,), None, dynamo=True, external_data=False, **kw)
            prog.optimize()
            proto = prog.model_proto
        except Exception as e:  # noqa: BLE001
            print(f"dynamo export failed ({type(e).__name__}: {e}); using legacy exporter")
            exporter = "legacy"
            buf = io.BytesIO()
            torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17, **kw)
            proto = onnx.load_from_string(buf.getvalue())
    if proto.ir_version > 10:
        proto.ir_version = 10
    onnx.checker.check_model(proto)
    proto = onnx.shape_inference.infer_shapes(proto)
    onnx.save(proto, out)
    return exporter


class _RandomReader:
    def __init__(self, n=8):
        import numpy as np
        rng = np.random.default_rng(0)
        self.data = [rng.standard_normal(INPUT_SHAPE).astype(np.float32) for _ in range(n)]
        self.i = 0

    def get_next(self):
        if self.i >= len(self.data):
            return None
        self.i += 1
        return {"pixels": self.data[self.i - 1]}

    def rewind(self):
        self.i = 0


def _quantize(float_path: Path, out: Path) -> str:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(_RandomReader, CalibrationDataReader):
        pass

    src, pre = float_path, "ok"
    tmp = out.with_suffix(".pre.onnx")
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process
        quant_pre_process(str(float_path), str(tmp))
        src = tmp
    except Exception as e:  # noqa: BLE001
        pre = f"failed ({type(e).__name__}); skipped"
    try:
        quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
    finally:
        if tmp.exists():
            tmp.unlink()
    p = onnx.load(out)
    if p.ir_version > 10:
        p.ir_version = 10
        onnx.save(p, out)
    return pre


def _build(cache: Path) -> dict:
    cache.mkdir(parents=True, exist_ok=True)
    gi = cache / ".gitignore"
    if not gi.exists():
        gi.write_text("*\n")
    t0 = time.time()
    model = build_torch_model()
    fpath, qpath = cache / FLOAT_NAME, cache / QDQ_NAME
    exporter = _export_float(model, fpath)
    t1 = time.time()
    pre = _quantize(fpath, qpath)
    t2 = time.time()
    meta = dict(version=VERSION, config={k: list(v) if isinstance(v, tuple) else v
                                         for k, v in CONFIG.items()},
                exporter=exporter, quant_pre_process=pre, export_s=round(t1 - t0, 1),
                quantize_s=round(t2 - t1, 1),
                params=sum(p.numel() for p in model.parameters()))
    (cache / META_NAME).write_text(json.dumps(meta, indent=1))
    return meta


def _cached(cache: Path) -> bool:
    meta = cache / META_NAME
    if not ((cache / FLOAT_NAME).exists() and (cache / QDQ_NAME).exists() and meta.exists()):
        return False
    try:
        return json.loads(meta.read_text()).get("version") == VERSION
    except ValueError:
        return False


def ensure_m3vit_shape(cache_dir=None, force: bool = False) -> Path:
    """Return the path of the int8 QDQ M3ViT-shaped model, building it if needed."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    if force or not _cached(cache):
        _build(cache)
    return cache / QDQ_NAME


def ensure_m3vit_shape_float(cache_dir=None) -> Path:
    """Return the path of the float ONNX M3ViT-shaped model, building it if needed."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    ensure_m3vit_shape(cache)
    return cache / FLOAT_NAME


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = ap.parse_args()
    t0 = time.time()
    q = ensure_m3vit_shape(args.cache_dir, force=args.force)
    dt = time.time() - t0
    f = q.parent / FLOAT_NAME
    for p in (f, q):
        print(f"{p}  {p.stat().st_size / 2**20:.2f} MiB")
    print(f"meta: {(q.parent / META_NAME).read_text()}")
    print(f"total time {dt:.1f}s")


if __name__ == "__main__":
    main()
