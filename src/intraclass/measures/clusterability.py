"""Subclass clusterability: do a layer's activations cluster into the subclasses?

After the BREEDS clustering study (Santurkar et al. 2021, "BREEDS: benchmarks for
subpopulation shift", and its clustering code in google-research/representation_clustering):
models trained on superclasses; for each superclass S and layer l, the representations of
S's samples are clustered without labels by Ward agglomerative clustering (Euclidean)
into ``n_sub(S) * factor`` clusters (n_sub(S): the subclasses of S; factor: the
over-clustering factor, 1-5, theirs 5) and the clusters are scored against the subclass
labels:

- AMI: adjusted mutual information (scikit-learn's ``adjusted_mutual_info_score``,
  arithmetic normalization): 0 for clusters unrelated to the subclasses, 1 when they
  coincide (over-clustering keeps it below 1);
- purity: the fraction of samples whose subclass is the majority subclass of their
  cluster, sum_c max_i |c ∩ C_i| / |S| (1 for pure clusters; its floor is the share of
  S's largest subclass and it rises with the number of clusters).

Representation: the post-ReLU activations of each measured site (relu of the stored,
globally max-pooled pre-activations, which equals the max-pool of the ReLU output), the
representation c2 (Eq. 2) clusters too; BREEDS used each stage's block output. Ward
cost grows as n^2 per superclass, so at most ``max_samples`` samples of each superclass
are clustered (a seeded random subset, the same for every layer and checkpoint).

As a measure (registry: ``clusterability`` = AMI, ``purity``), the shape of c2: a
(superclasses, layers) table; per superclass the mean of its top-k layers; the median over
superclasses. Per-layer values (Figure 5): the median over superclasses of each layer.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_mutual_info_score

from .labels import Hierarchy

SCORES = ("clusterability", "purity")


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """sum over clusters of the count of their majority label, over all samples."""
    _, label_ids = np.unique(labels, return_inverse=True)
    _, cluster_ids = np.unique(clusters, return_inverse=True)
    counts = np.zeros((cluster_ids.max() + 1, label_ids.max() + 1), dtype=np.int64)
    np.add.at(counts, (cluster_ids, label_ids), 1)
    return float(counts.max(axis=1).sum() / len(labels))


def ward_clusters(x: np.ndarray, n_clusters: int) -> np.ndarray:
    """(n,) Ward cluster of each row of (n, d) ``x`` (at most n clusters)."""
    n_clusters = min(int(n_clusters), len(x))
    if n_clusters == len(x):  # every sample its own cluster; Ward cannot do fewer merges
        return np.arange(len(x))
    return AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(x)


def sample_rows(hier: Hierarchy, max_samples: int, seed: int) -> list[np.ndarray]:
    """Per superclass, the sorted sample indices clustered: all, or a random subset of
    ``max_samples`` drawn from ``(seed, superclass label)`` (layer-independent)."""
    chosen = []
    for s, label in enumerate(hier.coarse.ids):
        rows = hier.coarse.members[s]
        if len(rows) > max_samples:
            rng = np.random.default_rng([int(seed), int(label) & 0xFFFFFFFF])
            rows = np.sort(rng.choice(rows, size=max_samples, replace=False))
        chosen.append(rows)
    return chosen


def layer_scores(x: np.ndarray, hier: Hierarchy, factor: int = 5, rows: list[np.ndarray] | None = None,
                 max_samples: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """AMI and purity of each superclass at one layer: ``{"clusterability": (S,),
    "purity": (S,)}``.

    ``x``: (n, d) pre-activations of the layer (ReLU applied here); ``hier``: the subclass
    hierarchy of its samples; ``rows``: the samples of each superclass to cluster
    (default :func:`sample_rows`).
    """
    rows = sample_rows(hier, max_samples, seed) if rows is None else rows
    fine_of = np.empty(hier.fine.n_samples, dtype=np.int64)
    for g, members in enumerate(hier.fine.members):
        fine_of[members] = g
    ami, pure = np.empty(len(rows)), np.empty(len(rows))
    for s, idx in enumerate(rows):
        z = np.maximum(np.asarray(x[idx], dtype=np.float64), 0.0)  # (n_S, d) post-ReLU
        subs = fine_of[idx]
        clusters = ward_clusters(z, len(hier.children[s]) * factor)
        ami[s] = adjusted_mutual_info_score(subs, clusters)
        pure[s] = purity(subs, clusters)
    return {"clusterability": ami, "purity": pure}
