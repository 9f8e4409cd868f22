"""Architecture specifications and the measured-site declaration, without torch.

A study's ``arch`` config (``name``, ``base_width``, ``norm`` or the ViT keys) and a grid
model's width/depth factors and dropout make one *architecture spec*: the keyword
arguments of :func:`intraclass.models.build_model`, stored in every checkpoint
(``arch_spec``). This module turns the config into the spec (:func:`arch_spec`) and
computes the measured layers' widths from it (:func:`site_widths`) without building a
model, so the config checks run before any job without torch. One definition each: the
models are built from the same sizes (:func:`stage_widths`, :func:`units_per_stage`,
:func:`vit_sizes`) and tests check that the built models declare exactly these widths.

Measured sites (:class:`MeasuredSite`): every model declares, in network order, the
layers whose neurons the measures read (paper section 2.1; docs/training.md,
"Measured sites"). A site is a module whose output is the *pre-activation* of a
nonlinearity; its width is the number of neurons; its reduction says how one sample's
output becomes one value per neuron (:func:`reduce_output`):

* ``space``: output (N, C, *spatial), a convolutional feature map: the global max over
  the spatial dimensions (the paper's pooling), giving (N, C). A (N, C) output passes
  through unchanged.
* ``tokens``: output (N, T, C), a sequence of T tokens: the max over tokens, the token
  counterpart of the global max over space, giving (N, C).

The paper's nonlinearity is the ReLU; the Vision Transformer's is the GELU
(``nonlinearity`` of a site). The measures stay the paper's (docs/measures.md): they read
the pre-activations, and where they use activations (c2, c4) they apply the ReLU to the
pre-activations by definition, whatever the network's own nonlinearity.

Spec keys (docs/training.md, "Architectures"):

* every architecture: ``arch``, ``num_classes``, ``in_channels``, ``width``, ``depth``,
  ``base_width``, ``dropout``;
* ``vgg``/``resnet``: ``norm`` (:data:`NORMS`) only when it is not the paper's batch
  norm, so that a spec of the paper's models is the same dict as before norms existed
  (checkpoints, resume fingerprints and reruns do not change);
* ``vit``: ``patch``, ``blocks``, ``heads``, ``mlp_ratio``, always (defaults filled in,
  :data:`VIT_DEFAULTS`);
* a user's builder (``arch: package.module:function``, a grid's ``arch.name`` or a zoo's
  ``zoo.arch``): ``arch``, ``num_classes``, ``in_channels``, ``hparams`` (the model's
  hyperparameters: a grid model's, id left out, or its zoo table row) and ``options``
  (every other key of the grid's ``arch``, or the zoo's ``arch_options``), for
  :func:`intraclass.zoo_import.build_with_builder` (:func:`model_spec`).

Builders are found without importing them (:func:`check_builder`): the config checks
name a module that cannot be found, or a function its source does not define, before
any job, without importing torch or the user's code.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHITECTURES = ("vgg", "resnet", "vit")
CNNS = ("vgg", "resnet")
NORMS = ("batch", "layer", "group", "none")
DEFAULT_NORM = "batch"  # the paper's
NUM_STAGES = 4
#: The ViT's own keys and their defaults: 4x4 patches, 4 pre-norm blocks, 4 heads, MLP
#: hidden width 4 x the embedding width (Dosovitskiy et al. 2021 use ratio 4 too).
VIT_DEFAULTS = {"patch": 4, "blocks": 4, "heads": 4, "mlp_ratio": 4}
#: Options of each architecture beyond the common keys, and their defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "vgg": {"norm": DEFAULT_NORM}, "resnet": {"norm": DEFAULT_NORM}, "vit": dict(VIT_DEFAULTS),
}
REDUCTIONS = ("space", "tokens")
#: Config keys of ``arch`` besides ``name`` and ``base_width`` (config/schema.yaml).
ARCH_KEYS = ("norm", *VIT_DEFAULTS)
#: The hyperparameters a registered architecture is built with, and their values when a
#: zoo table has no such column (a grid model always has them).
FACTORS = {"width": 1.0, "depth": 1.0, "dropout": 0.0}


def is_builder(arch: str) -> bool:
    """True for ``module:function`` (a user's builder), False for a registered name."""
    return ":" in str(arch)


@dataclass(frozen=True)
class MeasuredSite:
    """One measured layer of a model (module doc): ``name`` (the module path, the store's
    layer name), ``width`` (neurons), ``reduction`` (``space`` or ``tokens``), ``module``
    (its forward output is the pre-activation), ``preactivation`` (what that output is, in
    words) and ``nonlinearity`` (what the network applies to it)."""

    name: str
    width: int
    reduction: str
    module: Any = field(default=None, compare=False, repr=False)
    preactivation: str = "BN output"
    nonlinearity: str = "relu"

    def __post_init__(self):
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"site {self.name}: reduction must be one of {REDUCTIONS}, "
                             f"got {self.reduction!r}")

    def describe(self) -> str:
        """E.g. ``global max over space of the BN output (before ReLU)``."""
        shown = {"relu": "ReLU", "gelu": "GELU"}.get(self.nonlinearity, self.nonlinearity)
        return f"global max over {self.reduction} of the {self.preactivation} (before {shown})"


def reduce_output(output, reduction: str):
    """A site's forward output -> (N, C) per :class:`MeasuredSite`'s ``reduction``: max
    over the spatial dims of (N, C, *spatial) or over the tokens of (N, T, C)."""
    if reduction == "space":
        return output if output.ndim == 2 else output.amax(dim=tuple(range(2, output.ndim)))
    if reduction == "tokens":
        if output.ndim != 3:
            raise ValueError(f"a token site's output must be (N, T, C), got {tuple(output.shape)}")
        return output.amax(dim=1)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


# ----------------------------------------------------------------------------- sizes

def stage_widths(width: float = 1.0, base_width: int = 32) -> list[int]:
    """Channels of the four CNN stages: ``round(base_width * width)`` doubling per stage."""
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


def vit_sizes(width: float, depth: float, base_width: int, blocks: int, heads: int,
              mlp_ratio: int) -> tuple[int, int, int]:
    """(embedding width, blocks, MLP hidden width) of a ViT: the width factor scales the
    embedding (``round(base_width * width)``, a multiple of 4 for the 2-d sine-cosine
    position code and of ``heads``) and with it the MLP (``mlp_ratio`` x embedding); the
    depth factor scales the number of blocks (``round(blocks * depth)``)."""
    dim = round(base_width * width)
    if dim < 4 or dim % 4 or dim % heads:
        raise ValueError(f"ViT embedding width round(base_width * width) = {dim} must be a "
                         f"multiple of 4 and of heads = {heads} (base_width {base_width}, "
                         f"width {width})")
    count = round(blocks * depth)
    if count < 1:
        raise ValueError(f"depth factor {depth} x blocks {blocks} gives no ViT block")
    return dim, count, mlp_ratio * dim


def check_options(arch: str, options: Mapping) -> dict:
    """The options of ``arch`` with defaults filled in; ``ValueError`` naming a key that
    does not apply to ``arch`` or a bad value."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    unknown = sorted(set(options) - set(OPTIONS[arch]))
    if unknown:
        raise ValueError(f"arch {arch!r} takes no option(s) {unknown} (its options: "
                         f"{sorted(OPTIONS[arch])})")
    filled = {**OPTIONS[arch], **options}
    if arch in CNNS and filled["norm"] not in NORMS:
        raise ValueError(f"arch.norm must be one of {NORMS}, got {filled['norm']!r}")
    if arch == "vit":
        bad = {k: v for k, v in filled.items()
               if isinstance(v, bool) or not isinstance(v, int) or v < 1}
        if bad:
            raise ValueError(f"ViT options {sorted(bad)} must be integers >= 1, got {bad}")
    return filled


def arch_spec(arch: Mapping, *, num_classes: int, in_channels: int, width: float, depth: float,
              dropout: float) -> dict:
    """The kwargs of :func:`intraclass.models.build_model` for a study's ``arch`` config and
    one grid model (module doc, "Spec keys"); ``ValueError`` naming a bad key."""
    name = arch["name"]
    options = check_options(name, {k: arch[k] for k in ARCH_KEYS if k in arch})
    spec = dict(arch=name, num_classes=int(num_classes), in_channels=int(in_channels),
                width=float(width), depth=float(depth), base_width=int(arch.get("base_width", 32)),
                dropout=float(dropout))
    if name in CNNS:
        if options["norm"] != DEFAULT_NORM:
            spec["norm"] = options["norm"]
    else:
        spec.update(options)
    return spec


def model_spec(name: str, options: Mapping, hparams: Mapping, *, num_classes: int,
               in_channels: int) -> dict:
    """The kwargs of :func:`intraclass.models.build_model` for one model of a grid or a zoo
    (module doc, "Spec keys"): architecture ``name`` with ``options`` (the grid's ``arch``
    keys but ``name``, or the zoo's ``arch_options``) and the model's ``hparams``. A
    registered architecture takes the factors :data:`FACTORS` from ``hparams``; a builder
    gets ``hparams`` whole, so that it can scale itself."""
    if is_builder(name):
        return {"arch": name, "num_classes": int(num_classes), "in_channels": int(in_channels),
                "hparams": dict(hparams), "options": dict(options)}
    return arch_spec({**options, "name": name}, num_classes=num_classes, in_channels=in_channels,
                     **factors(hparams))


def factors(hparams: Mapping) -> dict[str, float]:
    """A model's :data:`FACTORS` (width, depth, dropout) from its hyperparameters, each
    taking its default where ``hparams`` has none (a zoo table without the column)."""
    return {k: float(default if hparams.get(k) is None else hparams[k]) for k, default in FACTORS.items()}


def site_widths(arch: str | Mapping, width: float, depth: float,
                base_width: int | None = None) -> list[int]:
    """Neurons of each measured site of a model, in network order, without building it.

    ``arch``: a name or a study's ``arch`` config (``base_width`` overrides its
    ``base_width``). VGG: ``units_per_stage(depth)`` sites per stage; ResNet: two per
    residual block; all at the stage's width, whatever the norm. ViT: one site per block,
    the MLP hidden width. Tested against the built models' declarations."""
    config = {"name": arch} if isinstance(arch, str) else dict(arch)
    if base_width is not None:
        config["base_width"] = base_width
    spec = arch_spec(config, num_classes=2, in_channels=1, width=width, depth=depth, dropout=0.0)
    if spec["arch"] == "vit":
        _dim, blocks, hidden = vit_sizes(width, depth, spec["base_width"], spec["blocks"],
                                         spec["heads"], spec["mlp_ratio"])
        return [hidden] * blocks
    per_unit = 1 if spec["arch"] == "vgg" else 2
    units = units_per_stage(depth) * per_unit
    return [w for w in stage_widths(width, spec["base_width"]) for _ in range(units)]


# -------------------------------------------------------------------------- builders

def find_module(name: str) -> tuple[Any, str | None]:
    """Where module ``name`` (``package.module``) is imported from, found without importing
    it or its packages: ``(spec, None)`` on the Python path, ``(spec, directory)`` in the
    working directory only (a builder file beside the config; the importer then adds it
    to the path, :func:`intraclass.zoo_import.import_builder`), ``(None, None)`` nowhere."""
    parts = name.split(".")
    for directory in (None, os.getcwd()):
        spec = importlib.util.find_spec(parts[0]) if directory is None else \
            importlib.machinery.PathFinder.find_spec(parts[0], [directory])
        for i in range(1, len(parts)):
            if spec is None or spec.submodule_search_locations is None:
                spec = None
                break
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:i + 1]),
                                                            spec.submodule_search_locations)
        if spec is not None:
            return spec, directory
    return None, None


def _defined_names(source: str) -> set[str] | None:
    """Names a module's source binds at its top level (defs, classes, assignments, imports,
    also inside top-level if/try blocks); None when it may bind others that the source does
    not show (``from x import *``, a module ``__getattr__``)."""
    names: set[str] = set()
    statements = list(ast.parse(source).body)
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            statements += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                           *(s for handler in getattr(node, "handlers", []) for s in handler.body)]
    return None if "__getattr__" in names else names


def check_builder(arch: str) -> None:
    """A builder ``package.module:function`` whose module can be found (:func:`find_module`)
    and, when the module is a Python source file, whose source defines ``function``;
    checked without importing anything. ``ValueError`` saying what is missing."""
    module_name, _, function = str(arch).partition(":")
    spec, _directory = find_module(module_name)
    if spec is None:
        raise ValueError(f"builder {arch!r}: cannot find module {module_name} on the Python path or in "
                         f"the working directory {os.getcwd()}")
    origin = spec.origin if spec.has_location else None
    if origin is None or not origin.endswith(".py"):
        return  # compiled or namespace module: its names are known only by importing it
    try:
        names = _defined_names(Path(origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"builder {arch!r}: cannot read module {module_name} ({origin}): {error}") from None
    if names is not None and function not in names:
        raise ValueError(f"builder {arch!r}: module {module_name} ({origin}) defines no {function}")
