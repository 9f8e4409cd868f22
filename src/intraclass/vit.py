"""A small Vision Transformer whose measured sites are its MLP hidden units.

Architecture (Dosovitskiy et al. 2021, "An image is worth 16x16 words", with the plain
choices of Beyer, Zhai & Kolesnikov 2022, "Better plain ViT baselines for ImageNet-1k";
docs/training.md, "Vision Transformer"):

* Patch embedding: a ``patch`` x ``patch`` convolution with stride ``patch`` turns an
  (N, C, H, W) image into ``ceil(H/p) * ceil(W/p)`` tokens of width ``dim``. Images are
  zero-padded at the right and bottom to a multiple of ``patch`` (zero is the mean of the
  normalized input), so the border is kept, as the CNNs' ceil-mode pools keep theirs.
* Position: a fixed 2-d sine-cosine code of the token's row and column (no parameter,
  any input size), added to the tokens.
* ``blocks`` pre-norm blocks: ``x = x + drop(attn(LN(x)))``, then
  ``x = x + drop(fc2(drop(GELU(fc1(LN(x))))))``; multi-head self-attention with ``heads``
  heads; the MLP's hidden width is ``mlp_ratio * dim``.
* Head: a final LayerNorm, the **mean over tokens** (global average pooling, no class
  token, as the CNNs' global average pool) and a dense layer to the classes.

Measured sites (:class:`intraclass.archspec.MeasuredSite`): the output of every block's
``fc1``, (N, T, hidden): the pre-activation of the GELU, one neuron per hidden unit,
reduced by the **max over tokens** (the token counterpart of the paper's global max over
space; with mean pooling every token is an image patch). Kernels (sharpness's "kernels
only", layer rotation): the weights of the patch convolution and of every dense layer
(attention ``qkv`` and ``proj``, ``fc1``, ``fc2``, the head), in network order; never
biases or LayerNorm parameters. Dropout (rate ``dropout``) follows the attention output,
the GELU and ``fc2``, never sits between a site and its GELU. Weights: PyTorch's default
initialization. Sizes from the grid's factors: :func:`intraclass.archspec.vit_sizes`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from intraclass.archspec import MeasuredSite, vit_sizes


def sincos_position_code(rows: int, cols: int, dim: int, device: torch.device,
                         temperature: float = 10000.0) -> torch.Tensor:
    """(rows * cols, dim) fixed 2-d position code, row-major like the tokens: per axis,
    ``sin`` and ``cos`` of the coordinate at ``dim/4`` frequencies ``temperature^(-i/(dim/4 - 1))``
    (Beyer et al. 2022; ``dim`` a multiple of 4)."""
    quarter = dim // 4
    omega = 1.0 / temperature ** (torch.arange(quarter, device=device) / max(quarter - 1, 1))
    y, x = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device),
                          indexing="ij")
    y = y.flatten()[:, None] * omega[None]  # (T, dim/4)
    x = x.flatten()[:, None] * omega[None]
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), dim=1)


class PatchEmbedding(nn.Module):
    """(N, C, H, W) -> (N, T, dim) tokens with the position code added (module doc)."""

    def __init__(self, in_channels: int, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = (-x.shape[-2]) % self.patch, (-x.shape[-1]) % self.patch
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        grid = self.proj(x)  # (N, dim, rows, cols)
        tokens = grid.flatten(2).transpose(1, 2)  # (N, T, dim)
        code = sincos_position_code(grid.shape[2], grid.shape[3], grid.shape[1], x.device)
        return tokens + code.to(tokens.dtype)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention: (N, T, dim) -> (N, T, dim)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, dim = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # (N, heads, T, dim / heads)
        return self.proj(out.transpose(1, 2).reshape(n, t, dim))


class MLP(nn.Module):
    """``fc2(drop(GELU(fc1(x))))``; ``fc1``'s output is the measured pre-activation."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm transformer block (module doc)."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, hidden, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    """``embed -> blocks -> LayerNorm -> mean over tokens -> head``; input (N, C, H, W)
    float, output (N, classes). Declares its measured sites and kernels (module doc)."""

    def __init__(self, num_classes: int, in_channels: int, dim: int, blocks: int, heads: int,
                 hidden: int, patch: int, dropout: float):
        super().__init__()
        self.embed = PatchEmbedding(in_channels, dim, patch)
        self.blocks = nn.ModuleList(Block(dim, heads, hidden, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))

    def measured_sites(self) -> list[MeasuredSite]:
        """Each block's ``fc1`` (MLP hidden units before the GELU), max over tokens."""
        return [MeasuredSite(f"blocks.{i}.mlp.fc1", block.mlp.fc1.out_features, "tokens",
                             block.mlp.fc1, preactivation="MLP hidden pre-activation",
                             nonlinearity="gelu")
                for i, block in enumerate(self.blocks)]

    def kernel_parameters(self) -> list[nn.Parameter]:
        """Weights of the patch convolution and of every dense layer, in network order."""
        return [m.weight for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def build_vit(num_classes: int, in_channels: int, width: float, depth: float, base_width: int,
              dropout: float, patch: int, blocks: int, heads: int, mlp_ratio: int
              ) -> VisionTransformer:
    """The ViT of an architecture spec (sizes: :func:`intraclass.archspec.vit_sizes`)."""
    dim, count, hidden = vit_sizes(width, depth, base_width, blocks, heads, mlp_ratio)
    return VisionTransformer(num_classes, in_channels, dim, count, heads, hidden, patch, dropout)
