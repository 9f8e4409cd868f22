"""Conditional mutual information between a measure and generalization (Jiang et al., 2020, Sec. 4).

Over the *ordered* pairs of distinct models ``(i, j)`` (each unordered pair appears twice),

    V_g  = 1[g_i > g_j]      V_mu = 1[mu_i > mu_j]

with ``mu`` the oriented measure (``direction * value``). A tie gives 0 in both orders (a
tie is "not greater"). For a conditioning set ``S`` of hyperparameter axes, the slice
``u`` of a pair is the values of ``S`` for both models, ``(h_i, h_j)`` for each ``h`` in
``S`` (``S`` empty: one slice). Per slice, from the 2 x 2 table of (V_mu, V_g) counts,
``I_u = I(V_mu; V_g | U_S = u)`` and ``H_u = H(V_g | U_S = u)`` in bits (plug-in
estimates; ``0 log 0 = 0``). Two weightings of the slices:

- ``jiang`` (Jiang et al., their Eq. for the normalized CMI): slice ``u`` weighs its
  share of the pairs, ``p(u)``:

      CMI_S = sum_u p(u) I_u / sum_u p(u) H_u = I(V_mu; V_g | U_S) / H(V_g | U_S)

  and ``K(mu) = min over |S| <= 2`` (S empty, the single axes and the pairs of axes),
  against the study's generalization (test accuracy, or minus the gap);
- ``pgdl`` (the scoring program of the PGDL competition, NeurIPS 2020): every non-empty
  slice weighs the same, ``CMI_S = mean_u I_u / mean_u H_u``, only sets of exactly two
  axes, the target is the generalization gap ``train_acc - test_acc`` and the measure
  predicts it as a complexity measure (``V_mu = 1[-mu_i > -mu_j]``, mu oriented); the
  score is reported x 100 (the competition's winner scored 22.92). The competition's
  program also counted the pairs ``i == i``; here, as in the definition, only ``i != j``.

Degenerate cases, defined so that nothing is NaN unless there is nothing to explain:
only observed slices are summed (an empty slice has no pairs and no weight); a slice
where V_g is constant has ``I_u = H_u = 0`` and adds nothing; a set ``S`` whose slices
leave no uncertainty in V_g (``sum H_u = 0``) says nothing about the measure and is left
out of the minimum. ``K`` is NaN only when every set is left out (all models tie) or a
measure has fewer than 2 models with values. Pairs where either model lacks the measure
or the generalization are dropped.

CMI does not see the sign of the relation: a measure that orders the models exactly
backwards scores 1 like one that orders them exactly; orientation only decides how ties
fall. The Kendall table carries the sign.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from intraclass.kendall import axis_columns

VARIANTS = ("jiang", "pgdl")
#: The pgdl score is reported in percent, as the competition did.
PGDL_SCALE = 100.0
EMPTY = "∅"


def conditioning_sets(axes: Sequence[str], variant: str) -> list[tuple[str, ...]]:
    """The sets S the minimum runs over: |S| <= 2 (jiang) or |S| == 2 (pgdl)."""
    if variant not in VARIANTS:
        raise ValueError(f"CMI variant must be one of {list(VARIANTS)}, not {variant!r}")
    pairs = list(itertools.combinations(axes, 2))
    if variant == "pgdl":
        return pairs
    return [(), *((a,) for a in axes), *pairs]


def _entropy_bits(counts: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of ``counts`` (rows, outcomes); 0 for an empty row."""
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, counts / total, 0.0)
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=-1)


def slice_terms(v_mu: np.ndarray, v_g: np.ndarray, slices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per observed slice: pair count n_u, I(V_mu; V_g | u) and H(V_g | u) in bits.

    v_mu, v_g: (pairs,) 0/1; slices: (pairs,) int slice codes. I = H(V_g) + H(V_mu) - H(V_mu, V_g).
    """
    _, code = np.unique(slices, return_inverse=True)
    k = int(code.max()) + 1 if len(code) else 0
    table = np.bincount(code * 4 + v_mu * 2 + v_g, minlength=4 * k).reshape(k, 2, 2).astype(float)
    h_g = _entropy_bits(table.sum(axis=1))  # (slices,) over V_g
    h_mu = _entropy_bits(table.sum(axis=2))
    h_joint = _entropy_bits(table.reshape(k, 4))
    mutual = np.maximum(h_g + h_mu - h_joint, 0.0)  # clip -1e-16 rounding
    return table.sum(axis=(1, 2)), mutual, h_g


def normalized_cmi(v_mu: np.ndarray, v_g: np.ndarray, slices: np.ndarray, variant: str) -> float:
    """CMI_S of one conditioning set (module docstring); NaN when sum_u H_u = 0."""
    n_u, mutual, h_g = slice_terms(v_mu, v_g, slices)
    weights = n_u if variant == "jiang" else np.ones_like(n_u)
    denominator = float((weights * h_g).sum())
    if denominator <= 0.0:
        return float("nan")
    return float((weights * mutual).sum()) / denominator


def _slice_codes(codes: np.ndarray, first: np.ndarray, second: np.ndarray, subset: Sequence[int]) -> np.ndarray:
    """(pairs,) int: one code per combination of (h_i, h_j) over the axes in ``subset``.
    codes: (models, axes) int category codes, each < its axis' number of values."""
    out = np.zeros(len(first), dtype=np.int64)
    for a in subset:
        levels = int(codes[:, a].max()) + 1
        out = (out * levels + codes[first, a]) * levels + codes[second, a]
    return out


def axis_codes(hparams: pd.DataFrame, axes: Sequence[str]) -> np.ndarray:
    """(models, axes) int: each axis' values as category codes (NaN is a value of its own)."""
    columns = list(axis_columns(axes).values())  # the paper's axes or a zoo's {label: column}
    missing = [c for c in columns if c not in hparams.columns]
    if missing:
        raise KeyError(f"models table lacks hyperparameter column(s) {missing} (needed for the CMI)")
    return np.stack([pd.factorize(hparams[c], use_na_sentinel=False)[0] for c in columns], axis=1)


def cmi_scores(measure: np.ndarray, target: np.ndarray, codes: np.ndarray, axes: Sequence[str],
               variant: str = "jiang") -> dict[tuple[str, ...], float]:
    """CMI_S for every conditioning set of ``variant``.

    measure: (models,) oriented measure; target: (models,) higher = the side V_g marks
    (generalization for jiang, the gap for pgdl; the caller orients); codes: (models,
    axes) from :func:`axis_codes`. Pairs are the ordered pairs i != j with both values.
    """
    measure, target = np.asarray(measure, float), np.asarray(target, float)
    keep = np.flatnonzero(~np.isnan(measure) & ~np.isnan(target))
    first, second = (m.ravel() for m in np.meshgrid(keep, keep, indexing="ij"))
    distinct = first != second
    first, second = first[distinct], second[distinct]
    v_mu = (measure[first] > measure[second]).astype(np.int64)
    v_g = (target[first] > target[second]).astype(np.int64)
    out = {}
    for subset in conditioning_sets(axes, variant):
        positions = [list(axes).index(a) for a in subset]
        if len(first) == 0:
            out[subset] = float("nan")
            continue
        out[subset] = normalized_cmi(v_mu, v_g, _slice_codes(codes, first, second, positions), variant)
    return out


def summarize(scores: dict[tuple[str, ...], float], axes: Sequence[str], variant: str) -> dict:
    """One row of the CMI table: K (min over the defined sets), the set attaining it, the
    unconditioned CMI (jiang) and, per axis, the minimum over the sets containing it."""
    scale = PGDL_SCALE if variant == "pgdl" else 1.0
    defined = {s: v for s, v in scores.items() if not np.isnan(v)}
    row: dict = {"K": np.nan, "S_min": ""}
    if defined:
        best = min(defined, key=lambda s: (defined[s], len(s)))
        row = {"K": defined[best] * scale, "S_min": "+".join(best) if best else EMPTY}
    if variant == "jiang":
        row["none"] = scores.get((), np.nan)
    for axis in axes:
        values = [v for s, v in defined.items() if axis in s]
        row[axis] = min(values) * scale if values else np.nan
    return row


def cmi_table(models: pd.DataFrame, measures: Sequence[str], oriented_values: np.ndarray,
              generalization: np.ndarray, axes: Sequence[str], variant: str = "jiang") -> pd.DataFrame:
    """One row per measure (index ``measure``): K, S_min, [none], one column per axis.

    oriented_values: (models, measures); generalization: (models,) higher = better
    (:func:`intraclass.kendall.generalization_values`); ignored by ``pgdl``, which ranks
    against the gap ``train_acc - test_acc`` of ``models``.
    """
    codes = axis_codes(models, axes)
    if variant == "pgdl":
        target = (models["train_acc"] - models["test_acc"]).to_numpy(float)
        values = -np.asarray(oriented_values, float)  # a complexity measure predicts a larger gap
    else:
        target, values = np.asarray(generalization, float), np.asarray(oriented_values, float)
    rows = [summarize(cmi_scores(values[:, c], target, codes, axes, variant), axes, variant)
            for c in range(len(measures))]
    return pd.DataFrame(rows, index=pd.Index(list(measures), name="measure"))
