"""Layer rotation: how far each layer's kernel has turned away from its initialization.

Source: Carbonnelle & De Vleeschouwer, "Layer rotation: a surprisingly powerful indicator
of generalization in deep networks?" (ICML workshop "Identifying and Understanding
Deep Learning Phenomena", cited by the paper as 2020; arXiv 1806.01603): for layer ``l`` with flattened
kernel ``w_l(t)`` at epoch ``t``,

    rotation_l(t) = 1 - cos(w_l(0), w_l(t)) = 1 - <w_l(0), w_l(t)> / (|w_l(0)| |w_l(t)|),

the cosine distance between the initial and the current kernel, in [0, 2]; plotted
against the layer index it is their "layer rotation curve". Their finding: larger and
more uniform rotations across layers go with better test accuracy, so the direction here
is +1 (higher = better generalization). The scalar of the tables is the mean over
layers, ``rotation = (1/L) sum_l rotation_l(T)`` at the end of training ``T``.

Kernels only: convolution and dense weights, never biases or normalization parameters.
Which tensors are kernels is declared by the model, in one place,
:func:`intraclass.models.kernel_parameters` (for the paper's CNNs the tensors with more
than one dimension; for the ViT the patch convolution and dense weights, not its
position code or LayerNorms), shared with the sharpness measures 1/sigma'' and
1/alpha''. Layers are in the declared order (the forward order of the paper's networks;
a ResNet's 1x1 shortcut convolution is a layer of its own, right after the block's
second convolution).

A cosine distance does not change when a kernel is rescaled (``cos(a, c b) = cos(a, b)``
for ``c > 0``): weight decay's shrinking alone is not rotation. A layer whose initial or
current kernel is zero has no angle: its value is NaN and the mean skips it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

NAME = "rotation"

log_default = logging.getLogger(__name__)


def kernel_names(model: nn.Module) -> list[str]:
    """Names (``state_dict`` keys) of ``model``'s declared kernels, in declared order."""
    from intraclass.models import kernel_parameters

    names = {id(p): name for name, p in model.named_parameters()}
    return [names[id(p)] for p in kernel_parameters(model)]


def cosine_distance(initial: torch.Tensor, current: torch.Tensor) -> float:
    """``1 - cos`` of two tensors of one shape, flattened, in float64 (NaN for a zero tensor)."""
    if initial.shape != current.shape:
        raise ValueError(f"kernel shapes differ: {tuple(initial.shape)} vs {tuple(current.shape)}")
    a, b = initial.detach().double().flatten(), current.detach().double().flatten()
    norms = float(a.norm() * b.norm())
    if norms == 0.0:
        return math.nan
    return 1.0 - float(a @ b) / norms


def layer_rotations(initial: Mapping[str, torch.Tensor], current: Mapping[str, torch.Tensor],
                    names: Sequence[str]) -> np.ndarray:
    """Per-layer rotation ``1 - cos(w_l(0), w_l(t))`` (float64, one per name) between two
    state dicts; ``KeyError`` naming a kernel missing from either."""
    for which, state in (("initial", initial), ("current", current)):
        missing = [n for n in names if n not in state]
        if missing:
            raise KeyError(f"{which} weights lack kernel(s) {missing}")
    return np.array([cosine_distance(initial[n], current[n]) for n in names], dtype=np.float64)


def mean_rotation(per_layer: Sequence[float]) -> float:
    """The scalar: mean over the layers with a defined angle (NaN when there is none)."""
    values = np.asarray(per_layer, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def rotation_result(names: Sequence[str], curves: Mapping[str, np.ndarray],
                    epochs: Mapping[str, int]) -> dict:
    """The JSON of one model: the measure at ``final`` (``value`` = mean over layers,
    ``layers`` = its curve) and every checkpoint's curve under ``checkpoints``.

    ``curves``: checkpoint name (``final``, ``epoch{E}``) -> per-layer rotations;
    ``epochs``: checkpoint name -> the training epoch its weights are from.
    """
    if "final" not in curves:
        raise ValueError(f"rotation needs the final checkpoint's curve, got {list(curves)}")
    checkpoints = {
        name: {"epoch": int(epochs[name]), "value": _json_number(mean_rotation(curve)),
               "layers": [_json_number(v) for v in curve]}
        for name, curve in curves.items()
    }
    final = checkpoints["final"]
    return {"measures": {NAME: {"value": final["value"], "layers": final["layers"],
                                "checkpoints": checkpoints}},
            "layer_names": list(names), "settings": {}}


def skipped_result(status: str, reason: str | None) -> dict:
    """The JSON of a model whose status is not ok (:mod:`intraclass.status`): its status and
    reason, the rotation null, no per-layer curve and no checkpoints."""
    return {"status": status, "reason": reason,
            "measures": {NAME: {"value": None, "layers": None, "checkpoints": {}}},
            "layer_names": [], "settings": {}}


def run_rotation(init_path: str | os.PathLike, model_path: str | os.PathLike,
                 out_path: str | os.PathLike, checkpoints: Mapping[str, str | os.PathLike] | None = None,
                 log: logging.Logger | None = None,
                 metrics_path: str | os.PathLike | None = None) -> dict:
    """The ``rotation`` rule (docs/measures.md, "Layer rotation"): the rotation curves of one model.

    ``init_path``: the checkpoint of the initial weights (epoch 0); ``model_path``: the
    final one; ``checkpoints``: ``{"epoch{E}": path}`` of the evolution checkpoints (empty
    for most models). All must hold the same architecture. Writes the JSON atomically.
    ``metrics_path``: the model's metrics.json; when its status is not ok (a diverged
    model) no weights are read and the JSON says so (:func:`skipped_result`).
    """
    from intraclass.models import build_model, read_checkpoint
    from intraclass.status import OK, skip_unless_ok, write_json

    log = log or log_default
    skipped = skip_unless_ok(metrics_path, out_path, lambda status, reason: {
        **skipped_result(status, reason), "model": str(model_path)}, log, "rotation")
    if skipped is not None:
        return skipped
    initial = read_checkpoint(init_path)
    names = kernel_names(build_model(**initial["arch_spec"]))
    curves, epochs = {}, {}
    for name, path in {"final": model_path, **dict(checkpoints or {})}.items():
        checkpoint = read_checkpoint(path)
        if checkpoint["arch_spec"] != initial["arch_spec"]:
            raise ValueError(f"{path} holds architecture {checkpoint['arch_spec']}, but the "
                             f"initial weights {init_path} hold {initial['arch_spec']}")
        curves[name] = layer_rotations(initial["state_dict"], checkpoint["state_dict"], names)
        epochs[name] = checkpoint["epoch"]
        log.info("%s (epoch %d): mean rotation %.4f over %d layers", name, epochs[name],
                 mean_rotation(curves[name]), len(names))
    result = {"status": OK, "reason": None, **rotation_result(names, curves, epochs),
              "model": str(model_path)}
    write_json(out_path, result)  # non-finite values as null: always valid JSON
    return result
