"""Per-layer, per-class statistics behind Eqs. 1-4 (the parts before any top-k).

Each function takes one layer's pre-activations ``x`` (samples x neurons, any float
dtype) and returns, per class, the quantity the paper ranks and aggregates:

- :func:`selectivity`  (subclasses x neurons): the fraction of Eq. 1,
- :func:`subclass_silhouette` (subclasses,): silhouette(a_l, S_s(i), C_i) of Eq. 2,
- :func:`std_ratio` (classes x neurons): the fraction of Eq. 3,
- :func:`spread_ratio` (classes,): Sigma_{l,C_i} / Sigma_{l,D} of Eq. 4,

with the conventions of REFERENCE.md ("Measures"). All accumulation is in float64.
Nothing here builds an n x n matrix: means and standard deviations come from per-class
moments, the cosine silhouette from class sums of unit vectors (O(n d K)), and the
spread of pairwise cosine distances from per-class d x d Gram matrices (O(n d^2)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import Hierarchy, Partition

EPS = 1e-7  # the guard of REFERENCE.md in the denominators of Eqs. 1, 3 and c4's scaling


@dataclass(frozen=True)
class Moments:
    """Per-class count, mean and centered sum of squares (M2) of every neuron, float64."""

    count: np.ndarray  # (G,)
    mean: np.ndarray  # (G, d)
    m2: np.ndarray  # (G, d): sum over the class of (x - mean)^2

    def std(self) -> np.ndarray:
        """Population standard deviation per class and neuron, (G, d)."""
        return np.sqrt(self.m2 / self.count[:, None])

    def pooled(self, groups=None) -> tuple[float, np.ndarray, np.ndarray]:
        """Count, mean (d,) and M2 (d,) of the union of ``groups`` (all when None).

        Chan et al.'s exact pooling: M2 = sum M2_g + sum n_g (mean_g - mean)^2, free of
        the cancellation of sum(x^2) - n mean^2.
        """
        if groups is None:
            groups = slice(None)
        count, mean, m2 = self.count[groups], self.mean[groups], self.m2[groups]
        total = count.sum()
        pooled_mean = (count[:, None] * mean).sum(axis=0) / total
        pooled_m2 = m2.sum(axis=0) + (count[:, None] * (mean - pooled_mean) ** 2).sum(axis=0)
        return float(total), pooled_mean, pooled_m2


def class_sums(x: np.ndarray, part: Partition) -> np.ndarray:
    """(G, d) float64 sum of the rows of each class (a loop of slice sums: 10x faster
    than ``np.add.reduceat`` along axis 0)."""
    out = np.empty((len(part), x.shape[1]))
    for g, rows in enumerate(part.each):
        out[g] = x[rows].sum(axis=0, dtype=np.float64)
    return out


def class_moments(x: np.ndarray, part: Partition) -> Moments:
    """Moments of every neuron within every class of ``part``: two passes per class, the
    mean, then the sum of squares about it (a view of x per class when samples are
    sorted by class)."""
    count = part.sizes.astype(np.float64)
    mean = class_sums(x, part) / count[:, None]  # (G, d)
    m2 = np.empty_like(mean)
    for g, rows in enumerate(part.each):
        centered = np.asarray(x[rows], dtype=np.float64) - mean[g]  # (n_g, d)
        m2[g] = np.einsum("ij,ij->j", centered, centered)
    return Moments(count=count, mean=mean, m2=m2)


def pool_moments(fine: Moments, hier: Hierarchy) -> Moments:
    """Superclass moments pooled exactly from their subclasses' moments."""
    pooled = [fine.pooled(kids) for kids in hier.children]
    return Moments(
        count=np.array([p[0] for p in pooled]),
        mean=np.stack([p[1] for p in pooled]),
        m2=np.stack([p[2] for p in pooled]),
    )


def rest_of_superclass(m: Moments, kids: np.ndarray) -> Moments:
    """Moments of S \\ C_i for every subclass i of one superclass S (``kids``), pooled
    exactly from the other subclasses: n_j-weighted means, and M2 = sum_j M2_j +
    sum_j n_j (mean_j - mean_rest)^2 over j != i (no sum-of-squares cancellation)."""
    others = 1.0 - np.eye(len(kids))  # (K, K): j != i
    weights = others * m.count[kids][None, :]  # (K, K): n_j for j != i
    count = weights.sum(axis=1)  # (K,)
    mean = weights @ m.mean[kids] / count[:, None]  # (K, d)
    spread = (m.mean[kids][None, :, :] - mean[:, None, :]) ** 2  # (K, K, d)
    m2 = others @ m.m2[kids] + np.einsum("ij,ijd->id", weights, spread)
    return Moments(count=count, mean=mean, m2=m2)


def dead_neurons(x: np.ndarray) -> np.ndarray:
    """(d,) bool: pre-activation < 0 on every sample (REFERENCE.md: dead neuron)."""
    return np.asarray(x.max(axis=0) < 0)


def selectivity(x: np.ndarray, hier: Hierarchy, moments: Moments | None = None,
                dead: np.ndarray | None = None) -> np.ndarray:
    """Eq. 1's fraction, (subclasses, d): subclass C_i against the rest of S_s(i).

    (mu_Ci - mu_{S\\Ci}) / (sigma_Ci + sigma_{S\\Ci} + 1e-7), population stds; dead
    neurons get 0. ``moments`` (fine-class moments of ``x``) and ``dead``
    (:func:`dead_neurons` of ``x``) may be passed to reuse them.
    """
    m = class_moments(x, hier.fine) if moments is None else moments
    out = np.empty_like(m.mean)
    for kids in hier.children:
        rest = rest_of_superclass(m, kids)
        out[kids] = (m.mean[kids] - rest.mean) / (
            np.sqrt(m.m2[kids] / m.count[kids][:, None]) + rest.std() + EPS)
    out[:, dead_neurons(x) if dead is None else dead] = 0.0
    return out


def std_ratio(x: np.ndarray, part: Partition, moments: Moments | None = None,
              dead: np.ndarray | None = None) -> np.ndarray:
    """Eq. 3's fraction, (classes, d): sigma_{n,Ci} / (sigma_{n,D} + 1e-7); dead neurons 0.

    D is every sample of ``x``. ``moments`` (class moments of ``x``) and ``dead`` may be
    passed to reuse them.
    """
    m = class_moments(x, part) if moments is None else moments
    n_all, _, m2_all = m.pooled()
    out = m.std() / (np.sqrt(m2_all / n_all) + EPS)
    out[:, dead_neurons(x) if dead is None else dead] = 0.0
    return out


def unit_rows(a: np.ndarray, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit L2 norm, zero rows left at zero (scikit-learn's ``normalize``);
    in place when ``overwrite`` and ``a`` is float64.

    Returns the scaled rows (float64) and their squared norms, taken as exactly 1, or 0
    for zero rows (the computed |u|^2 differs from 1 by rounding only).
    """
    u = np.asarray(a, dtype=np.float64) if overwrite else np.array(a, dtype=np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", u, u))
    nonzero = norms > 0
    u /= np.where(nonzero, norms, 1.0)[:, None]
    return u, nonzero.astype(np.float64)


def subclass_silhouette(x: np.ndarray, hier: Hierarchy) -> np.ndarray:
    """silhouette(a_l, S_s(i), C_i) of Eq. 2 for every subclass, (subclasses,).

    The mean over C_i's samples of scikit-learn's ``silhouette_samples(relu(x_S),
    subclass, metric="cosine")`` computed within the superclass S: cosine distance
    1 - u.v on unit rows u, v, where a zero row (all activations 0 after the ReLU) has
    distance 1 to every other sample and 0 to itself (scikit-learn's cosine_distances
    on a superclass that fits one distance chunk, i.e. up to about 11,500 samples under
    its default 1 GiB working memory; for larger inputs scikit-learn's chunking leaves
    a zero row at distance 1 from itself, an artefact not reproduced here).

    O(n d K): the distance sum from sample x to class C is |C| - u_x . sum_C u, minus
    its own term 1 - u_x . u_x when x is in C; no pairwise matrix is formed.
    """
    fine = hier.fine
    a = np.maximum(np.asarray(x, dtype=np.float64), 0.0)  # (n, d) post-ReLU; unit rows a / |a|
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))  # (n,)
    sq = (norms > 0).astype(np.float64)  # |u|^2: 1, or 0 for a zero row
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    sums = np.stack([inv[rows] @ a[rows] for rows in fine.each])  # (G, d): sum of unit rows
    out = np.empty(len(fine))
    for kids in hier.children:
        sizes = fine.sizes[kids].astype(np.float64)  # (K,)
        block = fine.rows(kids)  # the superclass's samples, subclass by subclass
        dots = (a[block] @ sums[kids].T) * inv[block, None]  # (n_S, K): u_x . sum_C u
        sq_s = sq[block]
        own = np.repeat(np.arange(len(kids)), fine.sizes[kids])  # (n_S,) position in kids
        dist = sizes[None, :] - dots  # (n_S, K): summed distances to each subclass
        at = np.arange(len(own))
        intra = (dist[at, own] - (1.0 - sq_s)) / (sizes[own] - 1)  # a(x), self excluded
        dist /= sizes[None, :]
        dist[at, own] = np.inf
        inter = dist.min(axis=1)  # b(x): nearest other subclass
        denom = np.maximum(intra, inter)
        sil = np.divide(inter - intra, denom, out=np.zeros_like(intra), where=denom > 0)
        out[kids] = np.bincount(own, weights=sil, minlength=len(kids)) / sizes
    return out


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """numpy's linear interpolation of ``np.quantile`` (method "linear"), bit for bit."""
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def _transpose(x: np.ndarray, block: int = 256) -> np.ndarray:
    """C-contiguous (d, n) copy of (n, d) ``x``, in blocks of rows that stay in cache (2x
    faster than ``np.ascontiguousarray(x.T)``); float32 for float16/32 input (exact)."""
    dtype = np.float32 if x.dtype in (np.float16, np.float32) else np.float64
    out = np.empty(x.shape[::-1], dtype=dtype)
    for start in range(0, len(x), block):
        out[:, start : start + block] = x[start : start + block].T
    return out


def c4_representation(x: np.ndarray, quantile: float = 0.75, dead: np.ndarray | None = None,
                      overwrite: bool = False) -> np.ndarray:
    """Section 2.3.2's representation of one layer, (n, live neurons), float64.

    Dead neurons are dropped; each neuron is standardized, z = (x - mean) / (std + 1e-7)
    (population std), shifted by its ``quantile`` of z (``np.quantile``, method linear)
    and passed through a ReLU, so that 1 - quantile of the samples are active (25% by
    default). ``dead`` (:func:`dead_neurons` of ``x``) may be passed to reuse it;
    ``overwrite`` lets a float64 ``x`` without dead neurons be transformed in place.

    The quantile is exact but found without sorting z: standardization is monotone, also
    in floating point, so the two order statistics that np.quantile interpolates are the
    standardized order statistics of x, which one partition per neuron finds, on
    contiguous rows of x's transpose (6x faster than np.quantile along the sample axis).
    """
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"the c4 quantile must lie in [0, 1), got {quantile}")
    dead = dead_neurons(x) if dead is None else dead
    x = np.asarray(x) if not dead.any() else np.asarray(x)[:, ~dead]
    n = len(x)
    rows = _transpose(x)  # (d, n): one neuron per contiguous row, x's values exactly
    z = x if overwrite and x.dtype == np.float64 else x.astype(np.float64)  # (n, d)
    mean = z.mean(axis=0)
    z -= mean
    scale = np.sqrt(np.einsum("ij,ij->j", z, z) / n) + EPS  # population std + 1e-7
    z /= scale
    # np.quantile's "linear" positions: the order statistics lo and lo + 1, weight gamma
    virtual = (n - 1) * float(quantile)
    lo = int(np.floor(virtual))
    gamma = virtual - lo
    rows.partition(lo + 1, axis=1)  # lo + 1 <= n - 1 as quantile < 1
    x_lo = rows[:, : lo + 1].max(axis=1).astype(np.float64)
    x_hi = rows[:, lo + 1].astype(np.float64)
    z -= _lerp((x_lo - mean) / scale, (x_hi - mean) / scale, gamma)
    return np.maximum(z, 0.0, out=z)


@dataclass(frozen=True)
class GramMoments:
    """Sums that give the mean and std of the cosine similarities over pairs i != j."""

    n: float  # samples
    sum_sq: float  # sum_i |u_i|^2 (the diagonal of U U^T)
    sum_quad: float  # sum_i |u_i|^4 (the diagonal of (U U^T)^2)
    total: np.ndarray  # (d,) sum_i u_i
    gram: np.ndarray  # (d, d) U^T U

    def spread(self) -> float:
        """Population std of the cosine distances 1 - u_i . u_j over ordered pairs i != j.

        sum_{i != j} s_ij = |sum u|^2 - sum |u_i|^2, sum_{i != j} s_ij^2 = ||U^T U||_F^2 -
        sum |u_i|^4 (as ||U U^T||_F = ||U^T U||_F); the std of 1 - s is the std of s.
        """
        pairs = self.n * (self.n - 1)
        mean = (self.total @ self.total - self.sum_sq) / pairs
        mean_sq = (np.einsum("ij,ij->", self.gram, self.gram) - self.sum_quad) / pairs
        return float(np.sqrt(max(mean_sq - mean * mean, 0.0)))

    def __add__(self, other: GramMoments) -> GramMoments:
        """Moments of the union of two disjoint sample sets (cross pairs included)."""
        return GramMoments(
            n=self.n + other.n,
            sum_sq=self.sum_sq + other.sum_sq,
            sum_quad=self.sum_quad + other.sum_quad,
            total=self.total + other.total,
            gram=self.gram + other.gram,
        )


def gram_moments(u: np.ndarray, sq: np.ndarray) -> GramMoments:
    """GramMoments of unit (or zero) rows ``u`` with squared norms ``sq``."""
    return GramMoments(
        n=float(len(u)),
        sum_sq=float(sq.sum()),
        sum_quad=float((sq * sq).sum()),
        total=u.sum(axis=0),
        gram=u.T @ u,
    )


def spread_ratio(x: np.ndarray, part: Partition, quantile: float = 0.75,
                 dead: np.ndarray | None = None, overwrite: bool = False) -> np.ndarray:
    """Sigma_{l,Ci} / Sigma_{l,D} of Eq. 4 for every class, (classes,).

    Sigma_E is the population std of the cosine distances between the samples of E over
    ordered pairs i != j, in :func:`c4_representation`. A zero row after the ReLU (no
    neuron active) has cosine similarity 0, i.e. distance 1, with every other sample
    (scikit-learn's cosine_distances convention, as in c2). D is every sample of ``x``.
    Degenerate layers get 0 for every class: a layer whose neurons are all dead, or one
    where every pair of D is at the same distance (Sigma_D = 0). ``dead`` and
    ``overwrite`` are passed to :func:`c4_representation`.
    """
    r = c4_representation(x, quantile, dead, overwrite)
    if r.shape[1] == 0:
        return np.zeros(len(part))
    u, sq = unit_rows(r, overwrite=True)
    within = np.empty(len(part))
    everything = None  # GramMoments of D, summed class by class
    for g, rows in enumerate(part.each):
        moments = gram_moments(u[rows], sq[rows])
        within[g] = moments.spread()
        everything = moments if everything is None else everything + moments
    sigma_d = everything.spread()
    if sigma_d == 0.0:
        return np.zeros(len(part))
    return within / sigma_d
