"""The paper's VGG and Wide ResNet variants, their BN->ReLU sites, and checkpoints.

Architecture (paper appendix A.2; docs/training.md, "Architectures"): four stages separated
by three 2x2 max-pools; the first stage is ``round(base_width * width)`` channels wide
(32 or 48 at the paper's ``base_width=32``) and the width doubles after every pool. Batch
norm precedes every ReLU. The paper's neuron totals (channels of BN->ReLU sites) pin
the depth down exactly:

* VGG: ``round(2 * depth)`` conv3x3-BN-ReLU units per stage (2, or 3 at depth x1.5),
  then a dense layer: 8 + 1 = 9 or 12 + 1 = 13 layers; sites per stage = units, so
  2 * (32 + 64 + 128 + 256) = 960 neurons, 1440 at width or depth x1.5.
* Wide ResNet: a linear stem conv, ``round(2 * depth)`` two-conv residual blocks per
  stage, then a dense layer: 1 + 16 + 1 = 18 or 1 + 24 + 1 = 26 layers. The block is
  ``x -> shortcut(x) + ReLU(BN(conv(ReLU(BN(conv(x))))))`` (the "ReLU before addition"
  form of He et al. 2016, "Identity mappings", Fig. 4c): both of its BN->ReLU sites sit
  at the stage's width, so a stage holds exactly 4 (depth x1.5: 6) sites and the totals
  are 4 * 480 = 1920 and 2880. (A pre-activation block would put its first BN at the
  previous stage's width after each pool, and a post-activation block has only one BN
  that feeds a ReLU directly: neither reproduces the paper's counts.) The shortcut is
  the identity, or a 1x1 convolution (no BN, not counted as a layer, as in ResNet layer
  counts) where the width changes at the first block of stages 2-4.

Choices the paper leaves open, made here and documented once:

* Dropout (rate ``dropout``): VGG, after each of the three max-pools and before the
  dense layer (the Keras-style VGG for CIFAR); ResNet, between the two convolutions of
  every block (Zagoruyko & Komodakis 2016). Dropout always follows a ReLU, so it never
  sits between a site's BN and its ReLU.
* The stages end with a global average pool, so any input size works; the max-pools use
  ``ceil_mode=True`` so that odd sizes keep their border row and tiny inputs (8x8 down
  to 1x1) never collapse to zero.
* ReLUs are not in-place: a forward hook on a site's BN sees the pre-activations
  unchanged (the activation extractor relies on it).
* Weight initialisation: PyTorch's defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from intraclass.runtime import write_atomic

ARCHITECTURES = ("vgg", "resnet")
NUM_STAGES = 4
CHECKPOINT_KEYS = ("state_dict", "arch_spec", "hparams", "labels", "epoch")


class ConvBNReLU(nn.Sequential):
    """conv3x3 (no bias: BN follows) -> BatchNorm -> ReLU; ``bn`` is one BN->ReLU site."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=False)


class ResidualBlock(nn.Module):
    """``shortcut(x) + unit2(dropout(unit1(x)))`` with two ConvBNReLU units (2 sites)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float):
        super().__init__()
        self.unit1 = ConvBNReLU(in_channels, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.unit2 = ConvBNReLU(out_channels, out_channels)
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.unit2(self.dropout(self.unit1(x)))


class StagedCNN(nn.Module):
    """``stem -> stage1 -> pool -> stage2 -> pool -> stage3 -> pool -> stage4 -> head``.

    ``stem`` is the identity (VGG) or a linear conv3x3 (ResNet); ``head`` is global
    average pool -> dropout (VGG) -> dense. Input (N, C, H, W) float, output (N, classes).
    """

    def __init__(self, stem: nn.Module, stages: list[nn.Module], pool_dropout: float,
                 head_dropout: float, features: int, num_classes: int):
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.pools = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2, ceil_mode=True), nn.Dropout(pool_dropout))
            for _ in stages[1:]
        )
        self.head_dropout = nn.Dropout(head_dropout)
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.pools[i - 1](x)
            x = stage(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)  # (N, features)
        return self.fc(self.head_dropout(x))


def stage_widths(width: float = 1.0, base_width: int = 32) -> list[int]:
    """Channels of the four stages: ``round(base_width * width)`` doubling per stage."""
    first = round(base_width * width)
    if first < 1:
        raise ValueError(f"base_width * width = {base_width * width} gives no channels")
    return [first * 2**s for s in range(NUM_STAGES)]


def units_per_stage(depth: float = 1.0) -> int:
    """Conv units (VGG) or residual blocks (ResNet) per stage: 2 at depth x1, 3 at x1.5."""
    units = round(2 * depth)
    if units < 1:
        raise ValueError(f"depth factor {depth} gives no layers per stage")
    return units


def build_model(arch: str, num_classes: int, in_channels: int, width: float = 1.0,
                depth: float = 1.0, base_width: int = 32, dropout: float = 0.0) -> nn.Module:
    """Build the paper's VGG (``arch="vgg"``) or Wide ResNet (``"resnet"``); see module doc."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    if int(num_classes) < 2 or int(in_channels) < 1:
        raise ValueError(f"need num_classes >= 2 and in_channels >= 1, "
                         f"got {num_classes} and {in_channels}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    widths = stage_widths(width, base_width)
    units = units_per_stage(depth)
    stages: list[nn.Module] = []
    if arch == "vgg":
        stem: nn.Module = nn.Identity()
        previous = in_channels
        for w in widths:
            layers = [ConvBNReLU(previous if u == 0 else w, w) for u in range(units)]
            stages.append(nn.Sequential(*layers))
            previous = w
        pool_dropout = head_dropout = dropout
    else:
        stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        previous = widths[0]
        for w in widths:
            blocks = [ResidualBlock(previous if b == 0 else w, w, dropout) for b in range(units)]
            stages.append(nn.Sequential(*blocks))
            previous = w
        pool_dropout = head_dropout = 0.0
    return StagedCNN(stem, stages, pool_dropout, head_dropout, widths[-1], num_classes)


def bn_relu_sites(model: nn.Module) -> list[tuple[str, nn.BatchNorm2d]]:
    """The BatchNorm modules whose output feeds a ReLU, in forward order, with their names.

    These are the paper's neurons (section 2: one neuron per channel of a BN->ReLU
    site). Modules are registered in forward order, so ``named_modules`` order is the
    forward order (tests check it with hooks).
    """
    return [(f"{name}.bn", unit.bn) for name, unit in model.named_modules()
            if isinstance(unit, ConvBNReLU)]


def count_neurons(model: nn.Module) -> int:
    """Total channels over the BN->ReLU sites (960/1440 VGG, 1920/2880 ResNet at base 32)."""
    return sum(bn.num_features for _, bn in bn_relu_sites(model))


def _plain(value: Any, where: str) -> Any:
    """Convert to the plain types ``torch.load(weights_only=True)`` accepts, or say where not."""
    if value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalar
        return value.item()
    for plain in (bool, int, float, str):  # also strips subclasses such as numpy.float64
        if isinstance(value, plain):
            return plain(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    raise TypeError(f"checkpoint field {where} has type {type(value).__name__}; "
                    "only plain values, lists, dicts and tensors can be stored")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, arch_spec: dict,
                    hparams: dict, labels: str, epoch: int, **extra: Any) -> Path:
    """Write ``{state_dict, arch_spec, hparams, labels, epoch, **extra}`` to ``path`` atomically.

    ``arch_spec`` is the kwargs of :func:`build_model`. Tensors are stored contiguous on
    the CPU, so a GPU-trained (channels_last) checkpoint loads anywhere.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    checkpoint = {
        "state_dict": state,
        "arch_spec": _plain(dict(arch_spec), "arch_spec"),
        "hparams": _plain(dict(hparams), "hparams"),
        "labels": str(labels),
        "epoch": int(epoch),
        **{k: _plain(v, k) for k, v in extra.items()},
    }
    return write_atomic(path, lambda tmp: torch.save(checkpoint, tmp))


def load_error_message(error: BaseException) -> str:
    """A ``torch.load`` error's message without PyTorch's advice to retry with
    ``weights_only=False`` (unpickling a file that failed the safe load can run arbitrary
    code; this project never does it): the first line and the unpickler's own finding."""
    text = str(error)
    if "weights_only" not in text:
        return text
    found = [line.strip() for line in text.splitlines() if "WeightsUnpickler error" in line]
    return "; ".join([text.splitlines()[0].strip(), *found])


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict with ``weights_only=True``; clear errors for missing/corrupt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # pickle, zip and weights_only errors all mean "unreadable"
        raise ValueError(f"checkpoint {path} is corrupt or not a checkpoint (loaded with "
                         f"weights_only=True): {load_error_message(error)}") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {', '.join(missing)}")
    return checkpoint


def place(model: nn.Module, device: str | torch.device) -> nn.Module:
    """Move ``model`` to ``device``; on CUDA also to the channels_last memory format, the
    layout of cuDNN's fast NHWC convolutions (the inputs, uint8 NHWC images normalized by
    :class:`intraclass.augment.Normalizer`, are channels_last views already). Every stage
    that runs a model (training, extraction, sharpness) places it through here."""
    model = model.to(device)
    if torch.device(device).type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def load_checkpoint(path: str | os.PathLike,
                    device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint on ``device`` in eval mode; return (model, dict).

    The weights are read to the CPU and copied to the device once (:func:`place`); the
    returned dict keeps its CPU copy."""
    checkpoint = read_checkpoint(path, "cpu")
    model = build_model(**checkpoint["arch_spec"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {path}: weights do not fit its arch_spec "
                         f"{checkpoint['arch_spec']}: {error}") from error
    return place(model, device).eval(), checkpoint
