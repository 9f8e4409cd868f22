"""c0, the black-box subclass measure: interpolations inside vs across the subclasses of a class.

Source: the measure code the authors published with the paper (its ``blackbox_subclass``)
and the first author's thesis ("Towards understanding deep learning with the natural
clustering prior", Carbonnelle 2022, arXiv 2203.08174). It asks whether the model's
*output* already reflects the subclasses of a class, using nothing but the softmax.

Definition (numbers refer to the steps below; docs/measures.md has the same text):

1. For each subclass ``C_i`` of a class ``S`` (fine label ``i`` inside superclass ``S``;
   the paper's ``S_s(i)``, Sec. 2.2), take at most ``per_subclass`` of its samples
   (a seeded random subset when it has more).
2. Pair every taken sample ``x1`` (a) with a sample of ``C_i`` in shuffled order (a random
   permutation of the taken samples) and (b) with a random sample of ``S \\ C_i`` (as many
   pairs as in (a); drawn without replacement when ``S \\ C_i`` has enough samples).
3. Along the segment ``x(f) = f x1 + (1 - f) x2``, ``f`` in ``fractions`` (0.1, 0.2, ...,
   0.9: the end points are left out), read ``p_S(x(f))``, the softmax probability of the
   class ``S``. The input space is the normalized input the model sees; the
   normalization is affine, so interpolating raw pixels and then normalizing is the same.
4. A pair scores ``max_f (1 - p_S(x(f)))``: how far the model's belief in ``S`` drops on
   the way from one sample to the other.
5. Per subclass: ``r_i = mean over (b) pairs / mean over (a) pairs`` (a ratio of means).
6. ``c0 = median_i r_i`` over the subclasses (those whose class has another subclass).

``1 - p_S`` is computed as ``exp(logsumexp(z_{c != S}) - logsumexp(z))`` from the logits
``z``, not by subtracting a probability from 1: a confident model has ``p_S`` within
1e-7 of 1 on most of a segment, where float32 subtraction would return 0.

Direction (+1, higher = better generalization). The null value is 1: when the model's
output does not care which subclass a sample comes from (no intraclass clustering at
the output, e.g. subclasses that are random splits of the class), within- and
across-subclass segments are alike and both means agree. A model that represents the
subclasses as separate clusters of one class region (the "natural clustering prior" of
the thesis: classes made of several clusters) carves a class region that is a union of
subclass clusters, and segments between two clusters leave it more than segments inside
one: ``r_i > 1``. The paper and the thesis find that such intraclass clustering goes with
better test accuracy (c1-c4 are all +1, paper Tables 1-3), so a larger c0 is expected to
go with better generalization too. (A model whose class region is convex and huge has
both means near 0 and c0 near 1: it does not cluster subclasses, and the measure says
so.)

The data (decided here; the sources do not say which split): the training samples the
model was trained on, with their fine and coarse labels, like c1-c4 (paper Sec. 3: the
measures use training data only, so that no held-out data is needed to rank models).

Everything random comes from one :class:`numpy.random.Generator` seeded with ``seed``:
the pairs, hence the value, are the same on every device. Forward passes run in float32
in eval mode (batch norm with its running statistics, dropout off), batched on the
model's device, ``batch_size`` interpolated images per pass (the value does not depend
on it).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

NAME = "c0"

#: Settings of the measure (config ``studies.<s>.blackbox``, without ``enabled``).
DEFAULTS: dict = {
    "seed": 0,
    "per_subclass": 100,  # samples taken per subclass (null: all of them)
    "fractions": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],  # f of x = f x1 + (1 - f) x2
}

log_default = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- settings

def resolve_settings(overrides: Mapping | None = None) -> dict:
    """:data:`DEFAULTS` overridden key by key; ``ValueError`` naming the key otherwise."""
    settings = copy.deepcopy(DEFAULTS)
    for key, value in dict(overrides or {}).items():
        if key == "enabled":  # the workflow's switch, not a setting of the measure
            continue
        if key not in DEFAULTS:
            raise ValueError(f"blackbox: unknown key {key!r} (known: {', '.join(DEFAULTS)})")
        settings[key] = value
    seed, cap, fractions = settings["seed"], settings["per_subclass"], settings["fractions"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"blackbox.seed must be an integer >= 0, got {seed!r}")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ValueError(f"blackbox.per_subclass must be an integer >= 1 or null, got {cap!r}")
    if (isinstance(fractions, str) or not isinstance(fractions, Sequence) or not fractions
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0.0 <= f <= 1.0
                       for f in fractions)):
        raise ValueError(f"blackbox.fractions must be a non-empty list of numbers in [0, 1], "
                         f"got {fractions!r}")
    settings["fractions"] = [float(f) for f in fractions]
    return settings


# -------------------------------------------------------------------------------- pairs

@dataclass(frozen=True)
class Pairs:
    """The sample pairs of c0 (steps 1-2), all subclasses together; arrays of shape (P,)."""

    first: np.ndarray    # int64, index of x1 (a sample of the subclass)
    second: np.ndarray   # int64, index of x2
    subclass: np.ndarray  # int64, fine label i of x1
    target: np.ndarray   # int64, class S of the subclass (the softmax column read)
    across: np.ndarray   # bool, True: (b) x2 in S \\ C_i; False: (a) x2 in C_i

    def __len__(self) -> int:
        return len(self.first)


def draw_pairs(fine: np.ndarray, coarse: np.ndarray, per_subclass: int | None,
               rng: np.random.Generator) -> Pairs:
    """Steps 1-2 for every subclass in label order, drawn from ``rng``.

    ``fine``, ``coarse``: (N,) int labels of the samples (``coarse`` = the class S the
    model predicts). Subclasses that are alone in their class have no (b) pairs and are
    left out. Raises ``ValueError`` when a fine label sits in two classes.
    """
    fine, coarse = np.asarray(fine, dtype=np.int64), np.asarray(coarse, dtype=np.int64)
    if fine.shape != coarse.shape or fine.ndim != 1:
        raise ValueError(f"fine and coarse must be 1-D of one length, got {fine.shape} and {coarse.shape}")
    parts: list[tuple[np.ndarray, ...]] = []
    for sub in np.unique(fine):
        members = np.flatnonzero(fine == sub)
        classes = np.unique(coarse[members])
        if len(classes) != 1:
            raise ValueError(f"subclass {sub} belongs to several classes {classes.tolist()}")
        others = np.flatnonzero((coarse == classes[0]) & (fine != sub))
        if len(others) == 0:
            continue
        taken = members if per_subclass is None or len(members) <= per_subclass else \
            rng.choice(members, per_subclass, replace=False)
        within = rng.permutation(taken)
        across = rng.choice(others, len(taken), replace=len(others) < len(taken))
        n = len(taken)
        parts.append((np.concatenate([taken, taken]), np.concatenate([within, across]),
                      np.full(2 * n, sub), np.full(2 * n, classes[0]),
                      np.repeat([False, True], n)))
    if not parts:
        return Pairs(*(np.zeros(0, dtype=np.int64),) * 4, np.zeros(0, dtype=bool))
    first, second, subclass, target, across = (np.concatenate(column) for column in zip(*parts))
    return Pairs(first.astype(np.int64), second.astype(np.int64), subclass.astype(np.int64),
                 target.astype(np.int64), across.astype(bool))


# ------------------------------------------------------------------ interpolation scores

def log_not_class(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``log(1 - p_S)`` per row of ``logits`` (B, classes), ``S = target`` (B,), computed
    as ``logsumexp`` over the other classes minus ``logsumexp`` over all (no cancellation)."""
    others = logits.scatter(1, target[:, None], float("-inf"))
    return torch.logsumexp(others, 1) - torch.logsumexp(logits, 1)


@torch.no_grad()
def pair_scores(model: nn.Module, x: torch.Tensor, pairs: Pairs, fractions: Sequence[float],
                batch_size: int = 1000, preprocess: Callable | None = None) -> np.ndarray:
    """Steps 3-4: ``max_f (1 - p_S(f x1 + (1 - f) x2))`` per pair, float64 (P,).

    ``x``: (N, ...) samples on the model's device (uint8 images or floats), interpolated
    as float32 and then passed through ``preprocess`` (the training normalization; None:
    the identity). ``batch_size``: interpolated inputs per forward pass. The model is
    evaluated in eval mode and its modes are restored afterwards.
    """
    preprocess = preprocess or (lambda batch: batch)
    device = x.device
    f = torch.tensor(list(fractions), dtype=torch.float32, device=device)
    shape = (len(f),) + (1,) * x.ndim  # broadcasts f over (pairs, *sample shape)
    per_pass = max(1, batch_size // len(f))  # pairs per forward pass
    first, second = torch.from_numpy(pairs.first).to(device), torch.from_numpy(pairs.second).to(device)
    target = torch.from_numpy(pairs.target).to(device)
    scores = []
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        for start in range(0, len(pairs), per_pass):
            chunk = slice(start, start + per_pass)
            x1, x2 = x[first[chunk]].float(), x[second[chunk]].float()
            mixed = f.view(shape) * x1 + (1 - f.view(shape)) * x2  # (F, m, ...)
            logits = model(preprocess(mixed.flatten(0, 1))).float()  # (F * m, classes)
            m = x1.shape[0]
            logs = log_not_class(logits, target[chunk].repeat(len(f))).view(len(f), m)
            scores.append(logs.amax(0).double().exp().cpu())
    finally:
        for module, training in modes:
            module.training = training
    return torch.cat(scores).numpy() if scores else np.zeros(0)


# ------------------------------------------------------------------------ aggregation

def subclass_ratios(scores: np.ndarray, pairs: Pairs) -> list[dict]:
    """Step 5 per subclass: ``{subclass, target, within, between, ratio, pairs}`` where
    ``within`` / ``between`` are the mean scores of the (a) / (b) pairs and ``ratio`` =
    between / within (NaN when ``within`` is 0: the model is certain of S on every segment)."""
    out = []
    for sub in np.unique(pairs.subclass):
        mine = pairs.subclass == sub
        within = float(np.mean(scores[mine & ~pairs.across]))
        between = float(np.mean(scores[mine & pairs.across]))
        ratio = between / within if within > 0 else math.nan
        out.append({"subclass": int(sub), "target": int(pairs.target[mine][0]), "within": within,
                    "between": between, "ratio": ratio, "pairs": int(mine.sum() // 2)})
    return out


def c0_value(ratios: Sequence[float]) -> float:
    """Step 6: the median of the finite subclass ratios (NaN when there is none)."""
    finite = np.asarray([r for r in ratios if math.isfinite(r)], dtype=np.float64)
    return float(np.median(finite)) if len(finite) else math.nan


def c0(model: nn.Module, x: torch.Tensor, fine: np.ndarray, coarse: np.ndarray,
       settings: Mapping | None = None, *, batch_size: int = 1000,
       preprocess: Callable | None = None) -> float:
    """c0 of ``model`` on samples ``x`` with subclass labels ``fine`` and class labels ``coarse``."""
    value = compute_c0(model, x, fine, coarse, settings, batch_size=batch_size,
                       preprocess=preprocess)["measures"][NAME]["value"]
    return math.nan if value is None else value


def compute_c0(model: nn.Module, x: torch.Tensor, fine: np.ndarray, coarse: np.ndarray,
               settings: Mapping | None = None, *, batch_size: int = 1000,
               preprocess: Callable | None = None, names: Sequence[str] | None = None,
               log: logging.Logger | None = None) -> dict:
    """Steps 1-6; a JSON-ready dict ``{"measures": {"c0": {"value", "subclasses"}},
    "n_pairs", "device", "seconds", "settings"}`` (``value`` None when undefined).
    ``x`` is moved to the model's device; ``names`` names the fine labels in the output."""
    log = log or log_default
    settings = resolve_settings(settings)
    start = time.perf_counter()
    device = next(model.parameters()).device
    pairs = draw_pairs(fine, coarse, settings["per_subclass"], np.random.default_rng(settings["seed"]))
    if len(pairs) == 0:
        raise ValueError("c0 needs a class with at least two subclasses; no class has one")
    scores = pair_scores(model, x.to(device), pairs, settings["fractions"], batch_size, preprocess)
    subclasses = subclass_ratios(scores, pairs)
    for entry in subclasses:
        if names is not None:
            entry["name"] = str(names[entry["subclass"]])
        if not math.isfinite(entry["ratio"]):
            log.warning("c0: subclass %s has no drop of p_S on any within-subclass segment; "
                        "left out of the median", entry.get("name", entry["subclass"]))
    value = c0_value([e["ratio"] for e in subclasses])
    seconds = time.perf_counter() - start
    log.info("c0 = %.6g over %d subclasses (%d pairs x %d fractions) on %s in %.1fs", value,
             len(subclasses), len(pairs), len(settings["fractions"]), device, seconds)
    return {"measures": {NAME: {"value": _json_number(value), "subclasses": _json_clean(subclasses)}},
            "n_pairs": len(pairs), "device": str(device), "seconds": seconds, "settings": settings}


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _json_clean(entries: list[dict]) -> list[dict]:
    """NaN -> None, so the file is strict JSON."""
    return [{k: (_json_number(v) if isinstance(v, float) else v) for k, v in e.items()} for e in entries]


# ----------------------------------------------------------------------------- stage

def skipped_result(settings: Mapping, status: str, reason: str | None) -> dict:
    """The JSON of a model whose status is not ok (:mod:`intraclass.status`): its status and
    reason, c0 null and no subclass entries."""
    return {"status": status, "reason": reason, "measures": {NAME: {"value": None, "subclasses": []}},
            "n_pairs": None, "device": None, "seconds": 0.0, "settings": dict(settings)}


def run_blackbox(model_path: str | os.PathLike, data_path: str | os.PathLike,
                 out_path: str | os.PathLike, settings: Mapping | None, labels: str,
                 training: Mapping, log: logging.Logger | None = None,
                 metrics_path: str | os.PathLike | None = None) -> dict:
    """The ``blackbox`` rule (docs/measures.md, "c0"): c0 of one model on its training samples.

    ``training`` supplies ``train_per_class`` and ``data_seed`` (the training subset, as
    in training) and the run-only ``device`` and ``eval_batch_size`` (inputs per forward
    pass). ``labels`` must be ``coarse``: c0 reads the softmax of the class S, so the
    model must have been trained on the superclasses. Writes the JSON atomically.
    ``metrics_path``: the model's metrics.json; when its status is not ok (a diverged
    model) the model is not loaded and the JSON says so (:func:`skipped_result`).
    """
    from intraclass.augment import Normalizer
    from intraclass.data import load_dataset, training_indices
    from intraclass.models import load_checkpoint
    from intraclass.runtime import pick_device, require_keys
    from intraclass.status import OK, skip_unless_ok, write_json

    log = log or log_default
    settings = resolve_settings(settings)  # fail on a bad config before loading anything
    if labels != "coarse":
        raise ValueError(f"c0 (blackbox) needs models trained on superclasses (labels: coarse), "
                         f"got labels {labels!r}; disable blackbox for this study")
    require_keys(training, ("train_per_class", "data_seed", "device", "eval_batch_size"), "training")
    skipped = skip_unless_ok(metrics_path, out_path, lambda status, reason: {
        **skipped_result(settings, status, reason), "model": str(model_path)}, log, "c0")
    if skipped is not None:
        return skipped
    device = pick_device(str(training["device"]))
    model, checkpoint = load_checkpoint(model_path, device, labels)
    dataset = load_dataset(data_path)
    indices = training_indices(dataset, training["train_per_class"], training["data_seed"])
    x = torch.from_numpy(np.ascontiguousarray(dataset.x_train[indices])).to(device)  # uint8 NHWC
    normalize = Normalizer.from_checkpoint(checkpoint, device, contiguous=device.type != "cuda")
    result = compute_c0(model, x, dataset.labels("train", "fine")[indices],
                        dataset.labels("train", "coarse")[indices], settings,
                        batch_size=int(training["eval_batch_size"]), preprocess=normalize,
                        names=dataset.fine_names, log=log)
    result = {"status": OK, "reason": None, **result, "model": str(model_path)}
    write_json(out_path, result)  # non-finite values as null: always valid JSON
    return result
