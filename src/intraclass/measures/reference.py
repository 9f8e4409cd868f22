"""Plain, slow implementations of Eqs. 1-4, written straight from docs/measures.md.

They exist to check the fast code (tests) and to time it (benchmarks/measures.py):
explicit loops over classes and neurons, scikit-learn's ``silhouette_samples`` with
``metric="cosine"``, and explicit n x n cosine-distance matrices. They share nothing
with :mod:`intraclass.measures.stats` except the constant 1e-7. Do not use them on
real caches: c2 and c4 here are O(n^2 d) in time and O(n^2) in memory.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import silhouette_samples
from sklearn.metrics.pairwise import cosine_distances

EPS = 1e-7


def _is_dead(column: np.ndarray) -> bool:
    return bool(np.all(column < 0))


def reference_selectivity(preacts, fine, coarse) -> np.ndarray:
    """(subclasses, all neurons): Eq. 1's fraction, neuron by neuron; dead neurons 0."""
    fine, coarse = np.asarray(fine), np.asarray(coarse)
    rows = []
    for i in np.unique(fine):
        in_class = fine == i
        rest = (coarse == coarse[in_class][0]) & ~in_class
        row = []
        for layer in preacts:
            layer = np.asarray(layer, dtype=np.float64)
            for n in range(layer.shape[1]):
                a, b = layer[in_class, n], layer[rest, n]
                value = (a.mean() - b.mean()) / (a.std() + b.std() + EPS)
                row.append(0.0 if _is_dead(layer[:, n]) else value)
        rows.append(row)
    return np.array(rows)


def reference_std_ratio(preacts, labels) -> np.ndarray:
    """(classes, all neurons): Eq. 3's fraction, neuron by neuron; dead neurons 0."""
    labels = np.asarray(labels)
    rows = []
    for i in np.unique(labels):
        row = []
        for layer in preacts:
            layer = np.asarray(layer, dtype=np.float64)
            for n in range(layer.shape[1]):
                value = layer[labels == i, n].std() / (layer[:, n].std() + EPS)
                row.append(0.0 if _is_dead(layer[:, n]) else value)
        rows.append(row)
    return np.array(rows)


def reference_silhouette(preacts, fine, coarse) -> np.ndarray:
    """(subclasses, layers): mean scikit-learn cosine silhouette of each subclass's samples
    within its superclass, on post-ReLU activations (Eq. 2)."""
    fine, coarse = np.asarray(fine), np.asarray(coarse)
    subclasses = np.unique(fine)
    out = np.empty((len(subclasses), len(preacts)))
    for li, layer in enumerate(preacts):
        act = np.maximum(np.asarray(layer, dtype=np.float64), 0)
        for s in np.unique(coarse):
            in_super = coarse == s
            sil = silhouette_samples(act[in_super], fine[in_super], metric="cosine")
            for i in np.unique(fine[in_super]):
                out[np.searchsorted(subclasses, i), li] = sil[fine[in_super] == i].mean()
    return out


def reference_c4_representation(layer, quantile: float = 0.75, active: str = "fixed") -> np.ndarray:
    """Section 2.3.2's representation, neuron by neuron: drop dead neurons, standardize
    (population std + 1e-7), subtract the quantile, ReLU. ``active="narrow"``: in a layer
    of d live neurons with d (1 - quantile) < 10 the quantile is 1 - 10 / d (at least 0),
    so that 10 neurons are active per sample on average."""
    layer = np.asarray(layer, dtype=np.float64)
    live = [n for n in range(layer.shape[1]) if not _is_dead(layer[:, n])]
    if active == "narrow" and live and len(live) * (1 - quantile) < 10:
        quantile = max(0.0, 1.0 - 10 / len(live))
    columns = []
    for n in live:
        v = layer[:, n]
        z = (v - v.mean()) / (v.std() + EPS)
        columns.append(np.maximum(z - np.quantile(z, quantile), 0.0))
    return np.stack(columns, axis=1) if columns else np.zeros((len(layer), 0))


def _pairwise_distance_std(r: np.ndarray) -> float:
    """Std of scikit-learn's cosine distances over ordered pairs i != j (explicit matrix)."""
    dist = cosine_distances(r)
    return float(dist[~np.eye(len(r), dtype=bool)].std())


def reference_spread_ratio(preacts, labels, quantile: float = 0.75, active: str = "fixed") -> np.ndarray:
    """(classes, layers): Sigma_{l,Ci} / Sigma_{l,D} of Eq. 4 from explicit n x n distance
    matrices; 0 for a layer with no live neuron or with Sigma_D = 0."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    out = np.zeros((len(classes), len(preacts)))
    for li, layer in enumerate(preacts):
        r = reference_c4_representation(layer, quantile, active)
        if r.shape[1] == 0:
            continue
        sigma_d = _pairwise_distance_std(r)
        if sigma_d == 0.0:
            continue
        for c, i in enumerate(classes):
            out[c, li] = _pairwise_distance_std(r[labels == i]) / sigma_d
    return out


def _top_k_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k largest entries of each row."""
    return np.sort(values, axis=1)[:, ::-1][:, :k].mean(axis=1)


def reference_c1(preacts, fine, coarse, k: int = 30) -> float:
    """Eq. 1: median over subclasses of the mean of the top-k selectivities."""
    return float(np.median(_top_k_mean(reference_selectivity(preacts, fine, coarse), k)))


def reference_c2(preacts, fine, coarse, k: int = 5) -> float:
    """Eq. 2: median over subclasses of the mean of the top-k layer silhouettes."""
    return float(np.median(_top_k_mean(reference_silhouette(preacts, fine, coarse), k)))


def reference_c3(preacts, labels, k: int = 30) -> float:
    """Eq. 3: mean over classes of the mean of the top-k std ratios."""
    return float(np.mean(_top_k_mean(reference_std_ratio(preacts, labels), k)))


def reference_c4(preacts, labels, k: int = 1, quantile: float = 0.75, active: str = "fixed") -> float:
    """Eq. 4: mean over classes of the mean of the top-k layer spread ratios."""
    return float(np.mean(_top_k_mean(reference_spread_ratio(preacts, labels, quantile, active), k)))
