"""The paper's VGG and Wide ResNet variants (and a small ViT), their measured sites, and
checkpoints.

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

Normalization (``norm``, :data:`intraclass.archspec.NORMS`; the paper's is ``batch``):
every conv unit is ``conv3x3 -> norm -> ReLU`` with

* ``batch``: ``BatchNorm2d`` (module ``bn``; the paper's models, unchanged);
* ``layer``: layer norm over each sample's whole feature map (channels and space), with a
  per-channel scale and shift: ``GroupNorm(1, C)`` (module ``norm``);
* ``group``: group norm (Wu & He 2018) with ``gcd(C, 32)`` groups: their 32 groups at
  every width the paper uses (16 at 48 channels), fewer at tiny widths (module ``norm``);
* ``none``: no normalization; the convolution then has a bias (module ``conv``).

Measured sites (the architecture protocol; :class:`intraclass.archspec.MeasuredSite`):
every model has ``measured_sites()``, its sites in network order, and may have
``kernel_parameters()``, its kernels (default: :func:`kernel_parameters`). A CNN's site is
the output of each conv unit's norm (``...bn``/``...norm``), or of its convolution without
a norm (``...conv``): the tensor the ReLU receives, one neuron per channel, reduced by the
global max over space. Its kernels are the default, the tensors with more than one
dimension (convolution and dense weights): what the paper's "kernels only" names,
unchanged from the first release. Stages that need sites or kernels read them through
:func:`measured_sites` and :func:`kernel_parameters`, never through module types. The
Vision Transformer is in :mod:`intraclass.vit`.

Choices the paper leaves open, made here and documented once:

* Dropout (rate ``dropout``): VGG, after each of the three max-pools and before the
  dense layer (the Keras-style VGG for CIFAR); ResNet, between the two convolutions of
  every block (Zagoruyko & Komodakis 2016). Dropout always follows a ReLU, so it never
  sits between a site's BN and its ReLU.
* The stages end with a global average pool, so any input size works; the max-pools use
  ``ceil_mode=True`` so that odd sizes keep their border row and tiny inputs (8x8 down
  to 1x1) never collapse to zero.
* ReLUs are not in-place: a forward hook on a site's module sees the pre-activations
  unchanged (the activation extractor relies on it).
* Weight initialisation: PyTorch's defaults.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from intraclass.archspec import (  # noqa: F401  (re-exported: the sizes live there, torch-free)
    ARCHITECTURES,
    NUM_STAGES,
    MeasuredSite,
    check_options,
    is_builder,
    stage_widths,
    units_per_stage,
)
from intraclass.runtime import write_atomic

CHECKPOINT_KEYS = ("state_dict", "arch_spec", "hparams", "labels", "epoch")
GROUP_NORM_GROUPS = 32  # Wu & He 2018's default; gcd(C, 32) groups at C channels


def make_norm(norm: str, channels: int) -> nn.Module:
    """The normalization layer of a conv unit (module doc, "Normalization")."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(channels, GROUP_NORM_GROUPS), channels)
    raise ValueError(f"norm must be one of batch, layer, group (or none: no layer), got {norm!r}")


class ConvNormReLU(nn.Sequential):
    """conv3x3 -> norm -> ReLU, one measured site (module doc, "Normalization").

    ``norm="batch"`` registers ``conv`` (no bias), ``bn``, ``relu``: the paper's unit, with
    the state-dict keys of the first release. ``layer``/``group``: ``conv``, ``norm``,
    ``relu``; ``none``: ``conv`` (with bias), ``relu``. ``site`` is the attribute name of
    the module whose output is the pre-activation."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm == "none")
        self.site = "conv"
        if norm != "none":
            self.site = "bn" if norm == "batch" else "norm"
            self.add_module(self.site, make_norm(norm, out_channels))
        self.relu = nn.ReLU(inplace=False)
        self.width = out_channels
        self.preactivation = {"bn": "BN output", "norm": f"{norm} norm output",
                              "conv": "convolution output"}[self.site]


class ResidualBlock(nn.Module):
    """``shortcut(x) + unit2(dropout(unit1(x)))`` with two conv units (2 sites)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float, norm: str = "batch"):
        super().__init__()
        self.unit1 = ConvNormReLU(in_channels, out_channels, norm)
        self.dropout = nn.Dropout(dropout)
        self.unit2 = ConvNormReLU(out_channels, out_channels, norm)
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

    def measured_sites(self) -> list[MeasuredSite]:
        """One site per conv unit, in forward order (modules are registered in forward
        order, so ``named_modules`` order is the forward order; tests check it with hooks)."""
        return [MeasuredSite(f"{name}.{unit.site}", unit.width, "space", getattr(unit, unit.site),
                             preactivation=unit.preactivation)
                for name, unit in self.named_modules() if isinstance(unit, ConvNormReLU)]


def build_cnn(arch: str, num_classes: int, in_channels: int, width: float, depth: float,
              base_width: int, dropout: float, norm: str) -> StagedCNN:
    """The paper's VGG or Wide ResNet (module doc) with normalization ``norm``."""
    widths = stage_widths(width, base_width)
    units = units_per_stage(depth)
    stages: list[nn.Module] = []
    previous = in_channels
    if arch == "vgg":
        stem: nn.Module = nn.Identity()
        for w in widths:
            layers = [ConvNormReLU(previous if u == 0 else w, w, norm) for u in range(units)]
            stages.append(nn.Sequential(*layers))
            previous = w
        pool_dropout = head_dropout = dropout
    else:
        stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        previous = widths[0]
        for w in widths:
            blocks = [ResidualBlock(previous if b == 0 else w, w, dropout, norm)
                      for b in range(units)]
            stages.append(nn.Sequential(*blocks))
            previous = w
        pool_dropout = head_dropout = 0.0
    return StagedCNN(stem, stages, pool_dropout, head_dropout, widths[-1], num_classes)


def build_model(arch: str, num_classes: int, in_channels: int, width: float = 1.0,
                depth: float = 1.0, base_width: int = 32, dropout: float = 0.0,
                **options: Any) -> nn.Module:
    """Build the paper's VGG (``arch="vgg"``), Wide ResNet (``"resnet"``) or the small
    ViT (``"vit"``, :mod:`intraclass.vit`). ``options``: ``norm`` (CNNs) or ``patch``,
    ``blocks``, ``heads``, ``mlp_ratio`` (ViT), defaults filled in
    (:func:`intraclass.archspec.check_options`); the kwargs are a checkpoint's ``arch_spec``.
    ``arch="package.module:function"`` (a user's builder, in a grid or a zoo: docs/zoo.md,
    "Builders") calls that function instead; ``options`` are then ``hparams`` and
    ``options`` (:func:`intraclass.archspec.model_spec`,
    :func:`intraclass.zoo_import.build_with_builder`)."""
    if is_builder(arch):
        from intraclass.zoo_import import build_with_builder

        return build_with_builder(arch, num_classes, in_channels, **options)
    options = check_options(arch, options)  # names an arch or option that does not exist
    if int(num_classes) < 2 or int(in_channels) < 1:
        raise ValueError(f"need num_classes >= 2 and in_channels >= 1, "
                         f"got {num_classes} and {in_channels}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if arch == "vit":
        from intraclass.vit import build_vit

        return build_vit(num_classes, in_channels, width, depth, base_width, dropout, **options)
    return build_cnn(arch, num_classes, in_channels, width, depth, base_width, dropout, **options)


def measured_sites(model: nn.Module) -> list[MeasuredSite]:
    """The model's measured sites in network order (the architecture protocol, module doc);
    ``TypeError`` for a model that does not declare them."""
    declared = getattr(model, "measured_sites", None)
    if not callable(declared):
        raise TypeError(f"{type(model).__name__} does not declare its measured sites: give it a "
                        "measured_sites() method returning intraclass.archspec.MeasuredSite's")
    return list(declared())


def kernel_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The model's kernels (sharpness's "kernels only", layer rotation): its own
    ``kernel_parameters()`` when it declares them, else the parameters with more than one
    dimension (convolution and dense weights), the definition of the paper's CNNs."""
    declared = getattr(model, "kernel_parameters", None)
    if callable(declared):
        return list(declared())
    return [p for p in model.parameters() if p.ndim > 1]


def count_neurons(model: nn.Module) -> int:
    """Total width of the measured sites (960/1440 VGG, 1920/2880 ResNet at base 32)."""
    return sum(site.width for site in measured_sites(model))


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


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu",
                    labels: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint on ``device`` in eval mode; return (model, dict).

    The weights are read to the CPU and copied to the device once (:func:`place`); the
    returned dict keeps its CPU copy. ``labels`` (fine | coarse): what the caller needs the
    model to have been trained on; another level is a ``ValueError`` naming the file."""
    checkpoint = read_checkpoint(path, "cpu")
    if labels is not None and checkpoint["labels"] != labels:
        raise ValueError(f"{path} was trained on {checkpoint['labels']!r} labels, "
                         f"but the rule asks for {labels!r}")
    model = build_model(**checkpoint["arch_spec"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {path}: weights do not fit its arch_spec "
                         f"{checkpoint['arch_spec']}: {error}") from error
    return place(model, device).eval(), checkpoint
