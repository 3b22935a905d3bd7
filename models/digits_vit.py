"""Tiny ViT / MoE-ViT reference models (plain nn.Modules) used by hwgen.

Both models share the same building blocks; they differ in how attention
projections are written (fused qkv vs separate q/k/v) and in the MLP (dense vs
top-2 mixture of experts written densely).
"""
from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()  # exact (erf) GELU
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class FusedQKVAttention(nn.Module):
    """timm style: one Linear(D, 3D), reshape/permute into q, k, v."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q @ k.transpose(-2, -1)) * self.scale
        attn = scores.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(B, T, D)
        return self.proj(out)


class SeparateQKVAttention(nn.Module):
    """HF BERT/ViT style: separate q, k, v Linear(D, D) layers."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def _split(self, t, B, T):
        return t.view(B, T, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        B, T, D = x.shape
        q = self._split(self.query(x), B, T)
        k = self._split(self.key(x), B, T)
        v = self._split(self.value(x), B, T)
        scores = (q @ k.transpose(-2, -1)) * self.scale
        attn = torch.softmax(scores, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(B, T, D)
        return self.proj(out)


class MoEMLP(nn.Module):
    """Top-k mixture of experts, written densely (every expert runs).

    Kept gate scores are the full-softmax probabilities (not renormalised).
    """

    def __init__(self, dim: int, hidden: int, num_experts: int = 4, top_k: int = 2):
        super().__init__()
        self.num_experts = num_experts
        self.top_k = top_k
        self.gate = nn.Linear(dim, num_experts, bias=False)
        self.experts = nn.ModuleList([MLP(dim, hidden) for _ in range(num_experts)])
        self.last_aux_loss = None

    def forward(self, x):
        probs = torch.softmax(self.gate(x), dim=-1)
        topk_vals, topk_idx = torch.topk(probs, self.top_k, dim=-1)
        mask = torch.zeros_like(probs).scatter(-1, topk_idx, topk_vals)
        if self.training:
            # Switch-style load balancing loss: E * sum_e f_e * P_e
            sel = (mask > 0).float().reshape(-1, self.num_experts)
            frac = sel.mean(0) / self.top_k
            pmean = probs.reshape(-1, self.num_experts).mean(0)
            self.last_aux_loss = self.num_experts * (frac * pmean).sum()
        out = None
        for e, expert in enumerate(self.experts):
            y = mask[..., e:e + 1] * expert(x)
            out = y if out is None else out + y
        return out


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_hidden, fused_qkv: bool, moe: bool = False,
                 num_experts: int = 4, top_k: int = 2, eps: float = 1e-6):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=eps)
        self.attn = FusedQKVAttention(dim, heads) if fused_qkv else SeparateQKVAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MoEMLP(dim, mlp_hidden, num_experts, top_k) if moe else MLP(dim, mlp_hidden)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return x


class ViT(nn.Module):
    def __init__(self, in_chans=1, img_size=(8, 8), patch=2, dim=32, heads=2, depth=2,
                 mlp_hidden=64, num_classes=10, fused_qkv=True, moe_blocks=(),
                 moe_hidden=None, num_experts=4, top_k=2, eps=1e-6):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        n_patches = (img_size[0] // patch) * (img_size[1] // patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        moe_hidden = moe_hidden or mlp_hidden
        self.blocks = nn.ModuleList([
            Block(dim, heads, moe_hidden if i in moe_blocks else mlp_hidden, fused_qkv,
                  moe=i in moe_blocks, num_experts=num_experts, top_k=top_k, eps=eps)
            for i in range(depth)
        ])
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, N, D]
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return self.head(x[:, 0])

    def aux_loss(self):
        losses = [b.mlp.last_aux_loss for b in self.blocks
                  if isinstance(b.mlp, MoEMLP) and b.mlp.last_aux_loss is not None]
        return sum(losses) if losses else torch.zeros(())


def vit_digits() -> ViT:
    return ViT(dim=32, heads=2, depth=2, mlp_hidden=64, fused_qkv=True)


def moe_vit_digits() -> ViT:
    return ViT(dim=32, heads=2, depth=4, mlp_hidden=64, fused_qkv=False,
               moe_blocks=(1, 3), moe_hidden=64, num_experts=4, top_k=2)


MODELS = {"vit_digits": vit_digits, "moe_vit_digits": moe_vit_digits}
