"""Magnitude-aware sharpness baselines 1/sigma', 1/sigma'', 1/alpha', 1/alpha''.

The paper (section 3.2, last paragraph; Tables 1-3) compares its intraclass measures with
the magnitude-aware sharpness measures of Jiang et al. (2020, "Fantastic generalization
measures", sharpness-based measures and their Algorithms 1-2). Settings follow
docs/measures.md, "Sharpness" (the authors' code); every one is a key of
:data:`DEFAULTS` and can be overridden key by key.

Perturbation of a weight tensor ``w0`` at magnitude ``m`` (``offset`` = 1e-3):

* sigma (random): ``w = w0 + m * (|w0| + offset) * z``, ``z ~ N(0, 1)`` elementwise, i.e.
  noise N(0, (m(|w0| + offset))^2). The accuracy at ``m`` is the mean over ``draws`` = 10
  draws, each with fresh noise on a fresh random ``subset`` = 10% of the training set.
* alpha (worst case): gradient *ascent* on the cross-entropy, ``epochs`` = 5 epochs of
  ``steps_per_epoch`` = 50 SGD steps on random batches of 128 training samples, lr 1.0,
  x0.1 from epoch ``lr_decay_epoch`` = 3 on; after each step, the weights are projected
  onto the box ``w0 +- m * (|w0| + offset)``. The ascent stops early as soon as the
  accuracy on the current batch (measured in the forward pass that computes the loss,
  before that step is applied) is <= ``stop_acc`` = 0.7: the batch is the only data the
  ascent sees, so this costs nothing extra. The accuracy at ``m`` is then the accuracy
  of the perturbed model on a fresh random ``subset`` = 10% of the training set (the authors'
  settings do not say on which data; 10% as for sigma).

Variants (the paper's wording: "perturbations applied on kernels only (i.e. not on
biases and batch normalization weights) with batch normalization layers in batch
statistics mode"):

* ``sigma1`` = 1/sigma', ``alpha1`` = 1/alpha': every trainable tensor is perturbed, the
  model in inference mode (batch norm uses its running statistics, dropout off).
* ``sigma2`` = 1/sigma'', ``alpha2`` = 1/alpha'': kernels only (the tensors the model
  declares as kernels, :func:`intraclass.models.kernel_parameters`: for the paper's CNNs
  the tensors with ndim > 1, convolution and dense weights; for the ViT the weights of
  its patch convolution and dense layers, not its LayerNorm parameters), batch norm
  normalises with the statistics of each evaluation batch, dropout off. The running
  statistics are never updated (batch norm is run with ``track_running_stats=False`` for
  the probe), so with batch statistics the result depends on ``eval_batch_size`` (the
  ascent batches of alpha'' have ``alpha.batch_size`` samples); evaluation splits a
  subset into equal batches.
* Other normalizations (``arch.norm`` layer or group, the ViT's LayerNorm) and networks
  without one: "batch-statistics mode" means that every normalization uses the
  statistics of the data it is given, not stored ones. Layer and group norm always do
  (per sample, no running statistics), so they run the same in both modes, and a network
  without normalization has nothing to switch: for them sigma''/alpha'' differ from
  sigma'/alpha' only in perturbing kernels only. Only batch norm changes mode.

The magnitude ``m`` is found by bisection (Jiang et al., Algorithm 1): the training
accuracy decreases with ``m``; start with ``[m_min, m_max]`` (sigma: [0, 2], alpha:
[0, 0.25]), evaluate the midpoint, stop when ``|acc - target| <= tol`` (target 0.9, tol
5e-3) or when the interval is narrower than ``min_width`` (1e-5), or after ``max_steps``
(20); otherwise keep the half where the target lies. The measure is ``1/m`` at the last
midpoint (Jiang et al. report ``1/sigma'^2``; ranks are the same). "Training accuracy"
is on the set the model was trained on, with the labels it was trained on.

The target (``target_mode``, :func:`search_target`): ``absolute`` (default, the authors'
setting) searches each kind's ``target`` (0.9) for every model; a model whose training
accuracy is below it cannot reach it at any ``m``, its search shrinks ``m`` to ``m_min``
and the model looks maximally sharp. ``relative`` (Jiang et al. 2020: the largest
perturbation whose accuracy deviates by at most 0.1 from the model's own) searches the
model's unperturbed training accuracy minus ``deviation`` (0.1), at least 0. That
accuracy is the one :func:`compute_sharpness` measures first: the whole training set,
inference mode, the same inputs and precision as every probe (not metrics.json's
``train_acc``, which training measures its own way); the same reference serves the four
variants, so ``deviation`` means the same drop for each. Each measure's JSON records its
``target`` and ``target_mode``; :func:`target_description` says it in words for tables.

A search that did not converge and whose final interval ``[low, high]`` still has one
end of the search interval is *at a bound* (``at_bound`` true, ``bound`` says which):
``bound = "lower"`` when ``low == m_min`` (every probe's accuracy was at or below the
target, so the magnitude that reaches the target lies in ``[m_min, high]``: the value
``1/m`` is only a lower limit of the measure, pinned by ``m_min`` and the step budget);
``bound = "upper"`` when ``high == m_max`` (every probe stayed above the target: the
magnitude may lie beyond ``m_max`` and ``1/m`` is only an upper limit). A converged
search is never at a bound, nor is one that stopped on ``min_width`` or ``max_steps``
with both ends moved (a cliff inside the interval). Such values are flagged in the JSON
and in ``models.csv`` (``<measure>_at_bound``).

The model is never changed: every probe restores the perturbed tensors from copies, bit
for bit, and restores every module's mode; batch-norm buffers are never written.
Randomness comes from one seeded :class:`torch.Generator` per measure, on the model's
device: the same seed gives the same result on the CPU.

Magnitude-aware noise is invariant, elementwise, to rescaling a tensor when ``offset``
is 0: scaling a kernel that feeds a batch norm (or the logits, whose argmax is
scale-free) by ``c`` scales its noise by ``c`` too, so sigma' and sigma'' do not change
(tests/test_sharpness.py checks it). The ``offset`` breaks the invariance for tiny
weights, and alpha is not invariant at all: its SGD step ``lr * grad`` does not scale
with the weights.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from intraclass.names import LABEL_LEVELS
from intraclass.sharpness_settings import (  # re-exported: the stage's settings
    DEFAULTS,
    MEASURES,
    VARIANTS,
    resolve_settings,
    search_target,
)

log_default = logging.getLogger(__name__)

# Settings, defaults and targets live in a module without torch, so that the config
# can be checked before any job without importing torch (intraclass.sharpness_settings).


def perturbed_parameters(model: nn.Module, kernels_only: bool) -> list[nn.Parameter]:
    """The tensors a measure perturbs: every trainable one, or the model's declared kernels
    (:func:`intraclass.models.kernel_parameters`; ndim > 1 for a model that declares none)."""
    from intraclass.models import kernel_parameters

    chosen = kernel_parameters(model) if kernels_only else model.parameters()
    return [p for p in chosen if p.requires_grad]


@contextlib.contextmanager
def forward_mode(model: nn.Module, batch_stats: bool) -> Iterator[None]:
    """Inference mode (dropout off); with ``batch_stats``, batch norm normalises with the
    statistics of the current batch and never updates its running statistics.

    Every module's ``training`` flag and every batch norm's ``track_running_stats`` are
    restored on exit. (``BatchNorm`` in training mode with ``track_running_stats=False``
    passes no running buffers to ``F.batch_norm``: batch statistics, buffers untouched.)
    Layer, group and ViT LayerNorm layers keep no running statistics and always use the
    data they are given: eval mode is all they need in either mode (module doc).
    """
    modes = [(module, module.training) for module in model.modules()]
    norms = [(module, module.track_running_stats) for module in model.modules()
             if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    try:
        model.eval()
        if batch_stats:
            for norm, _ in norms:
                norm.train()
                norm.track_running_stats = False
        yield
    finally:
        for norm, tracked in norms:
            norm.track_running_stats = tracked
        for module, training in modes:
            module.training = training


class _Originals:
    """Copies of the perturbed tensors and their noise scales ``|w0| + offset``."""

    def __init__(self, params: list[nn.Parameter], offset: float):
        self.params = params
        self.values = [p.detach().clone() for p in params]
        self.scales = [v.abs() + offset for v in self.values]

    @torch.no_grad()
    def restore(self) -> None:
        for p, value in zip(self.params, self.values):
            p.copy_(value)


# ------------------------------------------------------------------------- evaluation

class Evaluator:
    """Accuracy of a model on device-resident training data, in large batches.

    ``x`` (N, ...) raw samples (uint8 images on the device in the workflow), ``y`` (N,)
    int64 labels; ``preprocess`` maps a batch of ``x`` to the model's input (the
    training normalisation); ``None`` is the identity.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, preprocess: Callable | None,
                 batch_size: int, bf16: bool = True):
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"need as many labels as samples (> 0), got x {tuple(x.shape)} "
                             f"and y {tuple(y.shape)}")
        self.x, self.y = x, y.long()
        self.preprocess = preprocess or (lambda batch: batch)
        self.batch_size = batch_size
        self.device = x.device
        self.use_bf16 = bf16 and self.device.type == "cuda"

    @property
    def size(self) -> int:
        return self.x.shape[0]

    def autocast(self):
        if self.use_bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def logits(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return model(self.preprocess(self.x[idx]))

    @torch.no_grad()
    def correct(self, model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        """Number of correctly classified samples among ``idx`` (a 0-d device tensor).

        ``idx`` is split into equal batches of at most ``batch_size``, so that batch
        statistics (sigma'', alpha'') always come from comparable batches.
        """
        total = torch.zeros((), dtype=torch.int64, device=self.device)
        for chunk in torch.tensor_split(idx, math.ceil(len(idx) / self.batch_size)):
            total += (self.logits(model, chunk).argmax(1) == self.y[chunk]).sum()
        return total

    def random_indices(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count`` distinct random sample indices (all of them when ``count >= size``)."""
        return torch.randperm(self.size, generator=generator, device=self.device)[:count]

    def random_subset(self, fraction: float, generator: torch.Generator) -> torch.Tensor:
        """A fresh random ``fraction`` of the samples (at least one)."""
        return self.random_indices(max(1, round(fraction * self.size)), generator)


# -------------------------------------------------------------------------- bisection

@dataclass
class SearchResult:
    """One measure: ``value`` = 1/m at the last bisection midpoint ``m``."""

    value: float
    m: float
    accuracy: float
    converged: bool           # |accuracy - target| <= tol
    trace: list[dict] = field(default_factory=list)  # [{m, acc, ...}] per bisection step
    seconds: float = 0.0
    at_bound: bool = False    # unresolved, pinned at an end of [m_min, m_max] (module doc)
    bound: str | None = None  # "lower" (low == m_min) or "upper" (high == m_max), else None


def bisect(probe: Callable[[float], dict], *, m_min: float, m_max: float, max_steps: int,
           target: float, tol: float, min_width: float, name: str = "",
           log: logging.Logger | None = None) -> SearchResult:
    """Search the ``m`` at which the accuracy ``probe(m)["acc"]``, decreasing in ``m``,
    reaches ``target`` (Jiang et al. 2020, Algorithm 1; docs/measures.md).

    Each step evaluates the midpoint ``m`` of ``[low, high]``; stop when
    ``|acc - target| <= tol``, else keep ``[m, high]`` if ``acc > target`` (too little
    perturbation) or ``[low, m]``; stop too when ``high - low < min_width`` or after
    ``max_steps``. ``probe`` returns a dict with ``acc`` (and any extra trace fields).
    A search that ends unconverged with ``low == m_min`` or ``high == m_max`` is
    ``at_bound`` (module doc).
    """
    log = log or log_default
    start = time.perf_counter()
    low, high = m_min, m_max
    trace: list[dict] = []
    m = acc = math.nan
    for step in range(1, max_steps + 1):
        m = (low + high) / 2
        point = {"m": m, **probe(m)}
        acc = float(point["acc"])
        trace.append(point)
        log.info("%s step %d/%d: m=%.6g acc=%.4f (target %.3g, interval [%.6g, %.6g]) %.1fs",
                 name, step, max_steps, m, acc, target, low, high, time.perf_counter() - start)
        if abs(acc - target) <= tol:
            break
        if acc > target:
            low = m
        else:
            high = m
        if high - low < min_width:
            break
    converged = abs(acc - target) <= tol
    bound = None if converged else search_bound(low, high, m_min, m_max)
    return SearchResult(value=1.0 / m, m=m, accuracy=acc, converged=converged, trace=trace,
                        seconds=time.perf_counter() - start, at_bound=bound is not None,
                        bound=bound)


def search_bound(low: float, high: float, m_min: float, m_max: float) -> str | None:
    """Which end of ``[m_min, m_max]`` an unconverged search's final interval ``[low,
    high]`` still holds: "lower", "upper" or None (both ends moved). After one step or
    more one end has always moved, so at most one holds."""
    if low == m_min:
        return "lower"
    if high == m_max:
        return "upper"
    return None


# ----------------------------------------------------------------------------- probes

def sigma_probe(model: nn.Module, evaluator: Evaluator, kernels_only: bool, settings: dict,
                generator: torch.Generator) -> Callable[[float], dict]:
    """``probe(m)``: training accuracy under magnitude-aware Gaussian noise of scale ``m``,
    averaged over ``draws`` draws, each on a fresh random ``subset`` of the training set."""
    originals = _Originals(perturbed_parameters(model, kernels_only), settings["offset"])

    @torch.no_grad()
    def probe(m: float) -> dict:
        correct = torch.zeros((), dtype=torch.int64, device=evaluator.device)
        seen = 0
        with forward_mode(model, batch_stats=kernels_only):
            for _ in range(settings["draws"]):
                idx = evaluator.random_subset(settings["subset"], generator)
                try:
                    for p, value, scale in zip(originals.params, originals.values, originals.scales):
                        noise = torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype)
                        p.copy_(torch.addcmul(value, scale, noise, value=m))
                    correct += evaluator.correct(model, idx)
                finally:
                    originals.restore()
                seen += len(idx)
        return {"acc": correct.item() / seen}

    return probe


def alpha_probe(model: nn.Module, evaluator: Evaluator, kernels_only: bool, settings: dict,
                generator: torch.Generator) -> Callable[[float], dict]:
    """``probe(m)``: training accuracy after projected gradient ascent of the cross-entropy
    inside the box ``w0 +- m(|w0| + offset)``; also reports the ascent steps taken."""
    originals = _Originals(perturbed_parameters(model, kernels_only), settings["offset"])

    def ascend(m: float) -> int:
        """Projected SGD ascent; returns the number of steps applied."""
        box = list(zip(originals.values, originals.scales))
        lows = [torch.sub(value, scale, alpha=m) for value, scale in box]
        highs = [torch.add(value, scale, alpha=m) for value, scale in box]
        steps = 0
        for epoch in range(settings["epochs"]):
            lr = settings["lr"] * (settings["lr_decay"] if epoch >= settings["lr_decay_epoch"] else 1.0)
            for _ in range(settings["steps_per_epoch"]):
                idx = evaluator.random_indices(settings["batch_size"], generator)
                logits = evaluator.logits(model, idx).float()
                labels = evaluator.y[idx]
                if (logits.argmax(1) == labels).float().mean().item() <= settings["stop_acc"]:
                    return steps
                grads = torch.autograd.grad(F.cross_entropy(logits, labels), originals.params)
                with torch.no_grad():
                    for p, grad, low, high in zip(originals.params, grads, lows, highs):
                        p.add_(grad, alpha=lr).clamp_(min=low, max=high)
                steps += 1
        return steps

    def probe(m: float) -> dict:
        with forward_mode(model, batch_stats=kernels_only):
            try:
                steps = ascend(m)
                idx = evaluator.random_subset(settings["subset"], generator)
                correct = evaluator.correct(model, idx).item()
            finally:
                originals.restore()
        return {"acc": correct / len(idx), "ascent_steps": steps}

    return probe


_PROBES = {"sigma": sigma_probe, "alpha": alpha_probe}


# ----------------------------------------------------------------------------- driver

def measure_seed(seed: int, name: str) -> int:
    """Seed of one measure's generator: its results do not depend on which others run."""
    return int(np.random.SeedSequence([seed, MEASURES.index(name)]).generate_state(1)[0])


def compute_sharpness(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      settings: Mapping | None = None, *, preprocess: Callable | None = None,
                      log: logging.Logger | None = None) -> dict:
    """All requested sharpness measures of ``model`` on its training set ``(x, y)``.

    ``x``, ``y`` are moved to the model's device (keep them there to avoid a copy);
    ``preprocess`` maps a batch of ``x`` to the model input. Returns a JSON-ready dict:
    ``{"measures": {name: {value, m, accuracy, converged, trace, seconds, at_bound,
    bound, target, target_mode}}, "train_accuracy", "n_train", "device", "settings"}``. The model's parameters,
    buffers and modes are the same afterwards, bit for bit.
    """
    log = log or log_default
    settings = resolve_settings(settings)
    device = next(model.parameters()).device
    evaluator = Evaluator(x.to(device), y.to(device), preprocess, settings["eval_batch_size"],
                          settings["bf16"])
    everything = torch.arange(evaluator.size, device=device)
    with forward_mode(model, batch_stats=False):
        train_accuracy = evaluator.correct(model, everything).item() / evaluator.size
    log.info("sharpness on %d training samples (%s): unperturbed accuracy %.4f",
             evaluator.size, device, train_accuracy)
    results = {}
    for name in settings["measures"]:
        kind, kernels_only = VARIANTS[name]
        target = search_target(settings, kind, train_accuracy)
        if train_accuracy < target:
            log.warning("%s: the unperturbed training accuracy %.4f is below the target %.3g: "
                        "the search will shrink m towards %g and not converge",
                        name, train_accuracy, target, settings[kind]["m_min"])
        generator = torch.Generator(device=device).manual_seed(measure_seed(settings["seed"], name))
        probe = _PROBES[kind](model, evaluator, kernels_only, settings[kind], generator)
        search = {k: settings[kind][k] for k in ("m_min", "m_max", "max_steps", "tol", "min_width")}
        search["target"] = target
        result = bisect(probe, name=name, log=log, **search)
        log.info("%s = 1/m = %.6g (m=%.6g, acc=%.4f, converged=%s) in %.1fs", name, result.value,
                 result.m, result.accuracy, result.converged, result.seconds)
        if result.at_bound:
            log.warning("%s: the search ended on the %s bound of [%g, %g] without reaching the "
                        "target: the value is flagged at_bound", name, result.bound,
                        search["m_min"], search["m_max"])
        results[name] = {**asdict(result), "target": target, "target_mode": settings["target_mode"]}
    return {"measures": results, "train_accuracy": train_accuracy, "n_train": evaluator.size,
            "device": str(device), "settings": settings}


def skipped_result(settings: Mapping, status: str, reason: str | None) -> dict:
    """The JSON of a model whose status is not ok (:mod:`intraclass.status`): its status and
    reason, and every requested measure with a null value, not at a bound."""
    empty = {"value": None, "m": None, "accuracy": None, "converged": False, "trace": [],
             "seconds": 0.0, "at_bound": False, "bound": None, "target": None,
             "target_mode": settings.get("target_mode", DEFAULTS["target_mode"])}
    return {"status": status, "reason": reason,
            "measures": {name: dict(empty) for name in settings["measures"]},
            "train_accuracy": None, "n_train": None, "device": None, "settings": settings}


def run_sharpness(model_path: str | os.PathLike, data_path: str | os.PathLike,
                  out_path: str | os.PathLike, settings: Mapping | None, labels: str,
                  training: Mapping, log: logging.Logger | None = None,
                  metrics_path: str | os.PathLike | None = None) -> dict:
    """The ``sharpness`` rule (docs/stages.md): load the model and its training set, compute
    the measures, write the JSON atomically (``status`` ok, ``reason`` null).

    ``training`` supplies ``train_per_class``, ``data_seed`` (the training subset, as in
    training) and ``device``; ``labels`` (fine | coarse) the labels trained on. Inputs are
    normalized exactly as in training, with the checkpoint's stored ``normalization``
    (a checkpoint without one is refused). ``metrics_path``: the model's metrics.json;
    when its status is not ok (a diverged model) the model is not loaded and the JSON
    says so, with null values (:func:`skipped_result`).
    """
    from intraclass.augment import Normalizer
    from intraclass.data import load_dataset, training_indices
    from intraclass.models import load_checkpoint
    from intraclass.runtime import pick_device, require_keys
    from intraclass.status import OK, skip_unless_ok, write_json

    log = log or log_default
    settings = resolve_settings(settings)  # fail on a bad config before loading anything
    if labels not in LABEL_LEVELS:
        raise ValueError(f"labels must be one of {LABEL_LEVELS}, got {labels!r}")
    require_keys(training, ("train_per_class", "data_seed", "device"), "training")
    skipped = skip_unless_ok(metrics_path, out_path, lambda status, reason: {
        **skipped_result(settings, status, reason), "model": str(model_path)}, log, "sharpness")
    if skipped is not None:
        return skipped
    device = pick_device(str(training["device"]), log)
    model, checkpoint = load_checkpoint(model_path, device, labels)
    dataset = load_dataset(data_path)
    indices = training_indices(dataset, training["train_per_class"], training["data_seed"])
    images = np.ascontiguousarray(dataset.x_train[indices])  # uint8 (N, H, W, C)
    contiguous = device.type != "cuda"  # channels_last views on CUDA, as in training
    normalize = Normalizer.from_checkpoint(checkpoint, device, contiguous=contiguous)
    x = torch.from_numpy(images).to(device)
    y = torch.from_numpy(np.asarray(dataset.labels("train", labels))[indices]).long().to(device)
    result = {"status": OK, "reason": None,
              **compute_sharpness(model, x, y, settings, preprocess=normalize, log=log),
              "model": str(model_path)}
    write_json(out_path, result)
    return result
