"""A BERT-style encoder over token ids, trained on the digits data read as text, exported and quantised.

Each 8x8 digit becomes a sentence of 64 tokens: token = pixel intensity 0..16 (the original data's 17 grey
levels), with a [CLS] token (id 17) in front. The model is BERT's shape at toy size: a token embedding
table read by a Gather on the integer input, a learned position embedding, the embedding LayerNorm,
post-LN encoder layers (separate query/key/value projections, erf GELU), a tanh pooler on [CLS] and a
classifier. No attention mask and no token-type embedding: every sentence is full length.

    .venv/bin/python models/bert_digits.py            # reuse checkpoints/bert_digits.pt if present
    .venv/bin/python models/bert_digits.py --retrain

Writes models/onnx/bert_digits.float.legacy.onnx and bert_digits.qdq.legacy.onnx.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from build_digits_models import CKPT, DATA, ONNX_DIR, fix_ir, load_data  # noqa: E402
from digits_vit import MLP, SeparateQKVAttention  # noqa: E402
from readme_sections import write_section  # noqa: E402

from hwgen.bundled import CLS_TOKEN, VOCAB, digits_tokens  # noqa: E402

NAME = "bert_digits"
SEQ = 65


class EncoderLayer(nn.Module):
    """BERT's post-LN layer: x = LN(x + attn(x)); x = LN(x + mlp(x))."""

    def __init__(self, dim: int, heads: int, hidden: int, eps: float = 1e-6):
        super().__init__()
        self.attn = SeparateQKVAttention(dim, heads)
        self.ln1 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, hidden)
        self.ln2 = nn.LayerNorm(dim, eps=eps)

    def forward(self, x):
        x = self.ln1(x + self.attn(x))
        return self.ln2(x + self.mlp(x))


class BertDigits(nn.Module):
    def __init__(self, vocab=VOCAB, seq=SEQ, dim=32, heads=2, depth=2, hidden=64, classes=10, eps=1e-6):
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.zeros(1, seq, dim))
        nn.init.trunc_normal_(self.positions, std=0.02)
        self.ln = nn.LayerNorm(dim, eps=eps)
        self.layers = nn.ModuleList([EncoderLayer(dim, heads, hidden, eps) for _ in range(depth)])
        self.pooler = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, ids):
        x = self.ln(self.tokens(ids) + self.positions)
        for layer in self.layers:
            x = layer(x)
        return self.head(torch.tanh(self.pooler(x[:, 0])))


@torch.no_grad()
def accuracy(model, ids, y) -> float:
    model.eval()
    return float((model(torch.from_numpy(ids)).argmax(-1).numpy() == y).mean())


def shift(ids: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random +-1 pixel translation of the 8x8 image behind each sentence (zero padded)."""
    img = ids[:, 1:].reshape(-1, 8, 8)
    dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=gen))
    out = torch.zeros_like(img)
    ys, yd = (slice(0, 8 - dy), slice(dy, 8)) if dy >= 0 else (slice(-dy, 8), slice(0, 8 + dy))
    xs, xd = (slice(0, 8 - dx), slice(dx, 8)) if dx >= 0 else (slice(-dx, 8), slice(0, 8 + dx))
    out[:, yd, xd] = img[:, ys, xs]
    return torch.cat([ids[:, :1], out.reshape(-1, 64)], dim=1)


def train(ids_tr, ytr, ids_te, yte, epochs: int, lr=3e-3, bs=64) -> BertDigits:
    torch.manual_seed(0)
    model, gen = BertDigits(), torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = (len(ids_tr) + bs - 1) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.1)
    X, Y, t0 = torch.from_numpy(ids_tr), torch.from_numpy(ytr), time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(X), generator=gen)
        for s in range(steps):
            idx = perm[s * bs:(s + 1) * bs]
            loss = F.cross_entropy(model(shift(X[idx], gen)), Y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if ep % 20 == 0 or ep == epochs - 1:
            print(f"  epoch {ep + 1}/{epochs} test acc {accuracy(model, ids_te, yte):.4f} ({time.time() - t0:.0f} s)",
                  flush=True)
    return model.eval()


class TokenReader(CalibrationDataReader):
    def __init__(self, ids: np.ndarray):
        self.ids, self.i = ids, 0

    def get_next(self):
        if self.i >= len(self.ids):
            return None
        self.i += 1
        return {"input_ids": self.ids[self.i - 1:self.i]}

    def rewind(self):
        self.i = 0


def export(model: BertDigits, sample: np.ndarray) -> Path:
    out = ONNX_DIR / f"{NAME}.float.legacy.onnx"
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.from_numpy(sample),), buf, dynamo=False, opset_version=17,
                          do_constant_folding=True, input_names=["input_ids"], output_names=["logits"])
    proto = fix_ir(onnx.load_from_string(buf.getvalue()))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True), out)
    return out


def ort_logits(path: Path, ids: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"input_ids": ids[i:i + 1]})[0] for i in range(len(ids))])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--epochs", type=int, default=400)
    args = ap.parse_args()
    xtr, ytr, xte, yte = load_data()
    ids_tr, ids_te = digits_tokens(xtr), digits_tokens(xte)
    assert ids_te[:, 0].tolist() == [CLS_TOKEN] * len(ids_te)
    ckpt = CKPT / f"{NAME}.pt"
    if ckpt.exists() and not args.retrain:
        model = BertDigits()
        model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
        model.eval()
    else:
        model = train(ids_tr, ytr, ids_te, yte, args.epochs)
        CKPT.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), ckpt)
    print(f"torch float test accuracy {accuracy(model, ids_te, yte):.4f}")
    fpath = export(model, ids_te[:1])
    flog = ort_logits(fpath, ids_te)
    with torch.no_grad():
        diff = float(np.abs(model(torch.from_numpy(ids_te)).numpy() - flog).max())
    assert diff < 1e-4, f"torch vs onnxruntime max diff {diff}"
    print(f"wrote {fpath.name}: accuracy {(flog.argmax(1) == yte).mean():.4f}, torch vs onnxruntime {diff:.1e}")
    qpath = ONNX_DIR / f"{NAME}.qdq.legacy.onnx"
    quantize_static(str(fpath), str(qpath), TokenReader(ids_tr[:256]), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=False)
    proto = fix_ir(onnx.load(qpath))
    onnx.checker.check_model(proto)
    onnx.save(proto, qpath)
    qlog = ort_logits(qpath, ids_te)
    figures = {"torch": accuracy(model, ids_te, yte), "float": float((flog.argmax(1) == yte).mean()),
               "qdq": float((qlog.argmax(1) == yte).mean()), "agree": float((qlog.argmax(1) == flog.argmax(1)).mean()),
               "params": sum(p.numel() for p in model.parameters()), "epochs": args.epochs}
    print(f"wrote {qpath.name}: accuracy {figures['qdq']:.4f}, argmax agreement with float {figures['agree']:.4f}")
    write_readme(figures)


def write_readme(f: dict) -> None:
    """This model's section of models/README.md, between its markers (the rest of the file is left alone)."""
    text = f"""## BERT-style digits (`bert_digits.*.legacy.onnx`)

Each digit read as a sentence: `hwgen.bundled.digits_tokens` turns its 64 pixels into tokens 0..16 (the 17
grey levels) after a [CLS] token (id 17), input `input_ids` int64 [1, 65]. `bert_digits.py`: token
embedding (18 x 32, a Gather on the integer input), learned position embedding, embedding LayerNorm, 2
post-LN encoder layers (separate query/key/value, 2 heads, erf GELU MLP 64), tanh pooler on [CLS],
classifier; {f['params']:,} parameters, {f['epochs']} epochs (seed 0, +-1 pixel shifts). No attention mask
and no token types: every sentence is full length. QDQ: `quantize_static` on 256 training sentences, int8
per-tensor (onnxruntime quantises the table and shares its scale with the Gather's output).

| file | test accuracy (onnxruntime) |
|---|---|
| torch | {f['torch']:.4f} |
| bert_digits.float.legacy.onnx | {f['float']:.4f} |
| bert_digits.qdq.legacy.onnx | {f['qdq']:.4f} (argmax agreement with float {f['agree']:.4f}) |

Rebuild: `.venv/bin/python models/bert_digits.py [--retrain]`.
"""
    write_section(NAME, text)


if __name__ == "__main__":
    main()
