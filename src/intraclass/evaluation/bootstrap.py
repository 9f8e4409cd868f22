"""Percentile intervals of the granulated Kendall coefficient: a paired bootstrap over test images.

What varies: the test set. A resample draws ``n`` of the ``n`` test images with
replacement, the *same* draw for every model (paired: two models are always compared on
the same images), and recomputes each model's test accuracy from its per-image
correctness, ``acc_b = correct @ counts_b / n`` (counts_b: how often each image was
drawn). With ``generalization == "gap"`` the resampled score is ``acc_b - train_acc``
(minus the gap; the training accuracy is held fixed). The measure values are held fixed:
they do not depend on the test set. Every cell of the table (each axis psi_a and the
total, paper Sec. 3.2) and every k of the k curves is recomputed per resample; the
interval is the percentile interval ``[q_{(1-level)/2}, q_{(1+level)/2}]`` of the
``resamples`` replicates. The draws come from ``numpy.random.default_rng(seed)``, so the
same seed gives the same interval.

What it does not cover: which models were trained (seed-to-seed variance of training),
the choice of the hyperparameter grid, and noise in the measures themselves.

Why it is fast: within an axis, psi_a is *linear* in the signs of the pairwise
generalization differences. For the pairs ``p = (i, j)`` of every group of axis ``a``,

    psi_a = sum_p w_p * sign(g_i - g_j),   w_p = sign(mu_i - mu_j) / (pairs of p's group) / (groups)

where the pair and group counts only depend on which measure values are present, so the
weights ``w`` (pairs x columns) are computed once and each resample costs one matrix
product ``w.T @ signs`` (columns x pairs x resamples). :func:`replicates` is tested
against :func:`intraclass.kendall.granulated_kendall_columns` run on each resample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Resamples drawn at once (memory: CHUNK x test images x 8 bytes for the draw). Fixed, so
#: the random stream and thus the intervals do not depend on the machine.
CHUNK = 50


@dataclass(frozen=True)
class BootstrapSettings:
    """``analysis.bootstrap`` of the config: ``resamples`` (0 disables the intervals),
    ``seed`` of the draws, ``level`` of the percentile interval."""

    resamples: int = 1000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self):
        if int(self.resamples) != self.resamples or self.resamples < 0:
            raise ValueError(f"analysis.bootstrap.resamples must be an integer >= 0, not {self.resamples!r}")
        if not 0.0 < float(self.level) < 1.0:
            raise ValueError(f"analysis.bootstrap.level must lie in (0, 1), not {self.level!r}")

    @classmethod
    def from_config(cls, mapping: Mapping | None) -> BootstrapSettings:
        mapping = dict(mapping or {})
        unknown = sorted(set(mapping) - {"resamples", "seed", "level"})
        if unknown:
            raise KeyError(f"unknown analysis.bootstrap key(s) {unknown}; known: resamples, seed, level")
        return cls(**mapping)

    @property
    def quantiles(self) -> tuple[float, float]:
        return interval_quantiles(self.level)


def _axis_design(values: np.ndarray, usable: np.ndarray, members: Sequence[np.ndarray]):
    """Pairs of one axis and their weights.

    values: (models, columns) oriented measure; usable: (models,) bool, generalization known.
    Returns (first, second) model positions (pairs,), weights (pairs, columns) and
    defined (columns,) bool: whether psi_a exists for the column (some group has a pair).
    """
    first, second, group = [], [], []
    for q, idx in enumerate(members):
        ii, jj = np.triu_indices(len(idx), k=1)
        first.append(idx[ii])
        second.append(idx[jj])
        group.append(np.full(len(ii), q))
    columns = values.shape[1]
    if not first:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, columns)), np.zeros(columns, bool)
    first, second, group = np.concatenate(first), np.concatenate(second), np.concatenate(group)
    with np.errstate(invalid="ignore"):
        mu_sign = np.sign(values[first] - values[second])  # (pairs, columns), NaN if a value is missing
    valid = ~np.isnan(mu_sign) & (usable[first] & usable[second])[:, None]
    pairs_in_group = np.zeros((len(members), columns))
    np.add.at(pairs_in_group, group, valid)  # (groups, columns): pairs with both values present
    groups_present = (pairs_in_group > 0).sum(axis=0)  # (columns,)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(valid, mu_sign, 0.0) / pairs_in_group[group] / groups_present
    weights[~valid] = 0.0
    return first, second, np.nan_to_num(weights, nan=0.0, posinf=0.0), groups_present > 0


class KendallDesign:
    """The granulated Kendall of fixed measure columns as a linear function of the signs of
    the pairwise generalization differences (see the module docstring).

    values: (models, columns) oriented measure values (NaN = no value); usable: (models,)
    bool, False where a model's generalization is unknown; groups: axis -> row positions
    (:func:`intraclass.kendall.axis_groups`).
    """

    def __init__(self, values: np.ndarray, usable: np.ndarray, groups: Mapping[str, Sequence[np.ndarray]]):
        values = np.asarray(values, dtype=float)
        self.values = values[:, None] if values.ndim == 1 else values
        self.axes = list(groups)
        self.parts = [_axis_design(self.values, np.asarray(usable, bool), groups[a]) for a in self.axes]

    def evaluate(self, generalization: np.ndarray) -> np.ndarray:
        """(axes + 1, columns, resamples): psi of each axis, then the total, for each column
        of ``generalization`` (models, resamples). NaN where a cell is missing."""
        g = np.asarray(generalization, dtype=float)
        g = g[:, None] if g.ndim == 1 else g
        out = np.full((len(self.axes) + 1, self.values.shape[1], g.shape[1]), np.nan)
        for a, (first, second, weights, defined) in enumerate(self.parts):
            # (pairs, resamples); a pair with an unknown generalization has weight 0 and sign 0
            signs = np.sign(g[first] - g[second])
            signs[np.isnan(signs)] = 0.0
            psi = weights.T @ signs  # (columns, resamples)
            out[a][defined] = psi[defined]
        psi_all = out[:-1]
        present = ~np.isnan(psi_all)
        count = present.sum(axis=0)  # (columns, resamples)
        np.divide(np.where(present, psi_all, 0.0).sum(axis=0), count, out=out[-1], where=count > 0)
        return out


def resample_counts(rng: np.random.Generator, images: int, size: int) -> np.ndarray:
    """(images, size) float64: how often each test image is drawn in each of ``size``
    resamples of ``images`` draws with replacement."""
    draws = rng.integers(0, images, size=(size, images))
    offsets = (np.arange(size) * images)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=size * images)
    return np.ascontiguousarray(counts.reshape(size, images).T, dtype=np.float64)


def resampled_generalization(correct: np.ndarray, counts: np.ndarray, generalization: str = "test_acc",
                             train_acc: np.ndarray | None = None) -> np.ndarray:
    """(models, resamples): test accuracy (or minus the gap) of every model on each resample.

    correct: (models, images) bool/0-1; counts: (images, resamples). The hit counts are
    exact integers (float64; float32 was not faster here)."""
    images = correct.shape[1]
    hits = np.asarray(correct, dtype=np.float64) @ counts  # (models, resamples)
    accuracy = hits / images
    if generalization == "test_acc":
        return accuracy
    if generalization == "gap":
        if train_acc is None:
            raise ValueError("generalization 'gap' needs the training accuracies")
        return accuracy - np.asarray(train_acc, dtype=float)[:, None]
    raise ValueError(f"generalization must be 'test_acc' or 'gap', not {generalization!r}")


def replicates(values: np.ndarray, groups: Mapping[str, Sequence[np.ndarray]], correct: np.ndarray,
               settings: BootstrapSettings, generalization: str = "test_acc",
               train_acc: np.ndarray | None = None) -> np.ndarray:
    """(axes + 1, columns, resamples) float64: the granulated Kendall of every oriented
    measure column of ``values`` (models, columns) on each paired resample of the test
    images of ``correct`` (models, images)."""
    correct = np.asarray(correct)
    if correct.ndim != 2 or correct.shape[0] != np.shape(values)[0]:
        raise ValueError(f"correctness matrix of shape {correct.shape} does not match "
                         f"{np.shape(values)[0]} models")
    correct = correct.astype(np.float64)  # once, not per chunk (exact 0/1)
    usable = np.ones(correct.shape[0], bool)
    if generalization == "gap":
        usable = ~np.isnan(np.asarray(train_acc, dtype=float))
    design = KendallDesign(values, usable, groups)
    rng = np.random.default_rng(settings.seed)
    out = np.empty((len(design.axes) + 1, design.values.shape[1], settings.resamples))
    for start in range(0, settings.resamples, CHUNK):
        size = min(CHUNK, settings.resamples - start)
        counts = resample_counts(rng, correct.shape[1], size)
        g = resampled_generalization(correct, counts, generalization, train_acc)
        out[..., start:start + size] = design.evaluate(g)
    return out


def interval_quantiles(level: float) -> tuple[float, float]:
    """The quantiles that bound a central ``level`` interval: (1 - level) / 2 on each side."""
    tail = (1.0 - float(level)) / 2.0
    return tail, 1.0 - tail


def percentile_interval(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Low and high percentile bounds over the last axis (NaN where the cell is missing)."""
    if reps.shape[-1] == 0:
        nan = np.full(reps.shape[:-1], np.nan)
        return nan, nan.copy()
    low, high = np.quantile(reps, list(interval_quantiles(level)), axis=-1)
    return low, high


def standard_error(accuracy: np.ndarray, images: int) -> np.ndarray:
    """Binomial standard error of a test accuracy on ``images`` test images, sqrt(a (1 - a) / n)."""
    accuracy = np.asarray(accuracy, dtype=float)
    if images <= 0:
        return np.full(accuracy.shape, math.nan)
    return np.sqrt(accuracy * (1.0 - accuracy) / images)
