"""Per-layer, per-class statistics behind Eqs. 1-4 (the parts before any top-k).

Each function takes one layer's pre-activations ``x`` (samples x neurons, any float
dtype) and returns, per class, the quantity the paper ranks and aggregates:

- :func:`selectivity`  (subclasses x neurons): the fraction of Eq. 1,
- :func:`subclass_silhouette` (subclasses,): silhouette(a_l, S_s(i), C_i) of Eq. 2,
- :func:`std_ratio` (classes x neurons): the fraction of Eq. 3,
- :func:`spread_ratio` (classes,): Sigma_{l,C_i} / Sigma_{l,D} of Eq. 4,

with the conventions of docs/measures.md ("Notation"). All accumulation is in float64,
except the off-diagonal products of c4's scatter matrices (float32 on centered rows; see
:func:`similarity_sums`). Nothing here builds an n x n matrix: means and standard
deviations come from per-class moments, the cosine silhouette from class sums of unit
vectors (O(n d K)), and the spread of pairwise cosine distances from per-class d x d
scatter matrices (O(n d^2)). Work goes class by class (superclass by superclass for c2)
so that a class's rows stay in cache across the operations on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import Hierarchy, Partition

EPS = 1e-7  # the guard (docs/measures.md) in the denominators of Eqs. 1, 3 and c4's scaling

#: c4's threshold rules (``measures.c4_active``): "fixed" subtracts the configured quantile
#: in every layer (section 2.3.2: 25% of the samples active per neuron); "narrow" lowers it
#: in narrow layers so that about :data:`NARROW_ACTIVE` neurons fire per sample
#: (:func:`c4_layer_quantile`).
C4_ACTIVE = ("fixed", "narrow")
#: Neurons active per sample, on average, that the "narrow" rule keeps (the authors' code).
NARROW_ACTIVE = 10


def c4_layer_quantile(width: int, quantile: float = 0.75, active: str = "fixed") -> float:
    """The quantile c4 subtracts in a layer of ``width`` live neurons (dead ones dropped).

    A neuron shifted by its q-quantile and ReLU'd is active on a fraction 1 - q of the
    samples, so a sample has (1 - q) x width active neurons on average: with q = 0.75, 2
    in a layer of 8 neurons, 4 in one of 16 -- too few for cosine distances to tell
    samples apart. ``active="fixed"`` returns ``quantile`` (the paper, section 2.3.2);
    ``"narrow"`` returns min(quantile, max(0, 1 - NARROW_ACTIVE / width)): about 10 neurons
    active per sample, i.e. a lower quantile in layers under 10 / (1 - quantile) = 40
    neurons at 0.75, and every sample but each neuron's smallest active in layers of 10 or
    fewer. The authors' published code does the same with whole percentiles,
    ``max(min(round(100 - 1000 / width), 75), 0)``; the exact fraction here differs from it
    by less than half a percentile point (e.g. 0.375 against 0.38 at 16 neurons).
    """
    if active == "fixed":
        return quantile
    if active != "narrow":
        raise ValueError(f"measures.c4_active must be one of {list(C4_ACTIVE)}, got {active!r}")
    if width < 1:
        raise ValueError(f"a c4 layer needs at least one live neuron, got width {width}")
    return min(quantile, max(0.0, 1.0 - NARROW_ACTIVE / width))


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
    """(d,) bool: pre-activation < 0 on every sample (docs/measures.md: dead neuron)."""
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


def inverse_row_norms(a: np.ndarray) -> np.ndarray:
    """(rows,) float64 1 / |a_i| of (rows, d) float64 ``a``, 0 for a zero row: the scaling to
    unit rows of scikit-learn's ``normalize``, which leaves zero rows at zero (cosine
    similarity 0 with every other row)."""
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))
    return np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)


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
    Each superclass is computed from its own rows only, in one block that stays in cache;
    ``x`` may be float32 (accumulation is float64) and is left alone.
    """
    fine = hier.fine
    x = np.asarray(x)
    out = np.empty(len(fine))
    for kids in hier.children:  # superclass by superclass: its rows stay in cache throughout
        sizes = fine.sizes[kids]  # (K,)
        block = fine.rows(kids)  # the superclass's samples, subclass by subclass
        x_s = x[block]  # a view when the samples are sorted by class, else a copy
        in_place = x_s.dtype == np.float64 and not isinstance(block, slice)  # x_s is a copy
        a = np.maximum(x_s, 0.0, out=x_s if in_place else None, dtype=np.float64)
        # a: (n_S, d) post-ReLU activations; the unit rows are a / |a|
        inv = inverse_row_norms(a)  # (n_S,)
        sq = (inv > 0).astype(np.float64)  # |u|^2: 1, or 0 for a zero row
        ends = np.cumsum(sizes)
        sums = np.stack([inv[lo:hi] @ a[lo:hi] for lo, hi in zip(ends - sizes, ends)])  # (K, d)
        dots = (a @ sums.T) * inv[:, None]  # (n_S, K): u_x . sum_C u
        own = np.repeat(np.arange(len(kids)), sizes)  # (n_S,) position in kids
        dist = sizes[None, :] - dots  # (n_S, K): summed distances to each subclass
        at = np.arange(len(own))
        intra = (dist[at, own] - (1.0 - sq)) / (sizes[own] - 1)  # a(x), self excluded
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


def neuron_quantiles(x: np.ndarray, quantile: float) -> np.ndarray:
    """(d,) float64: ``np.quantile(x, quantile, axis=0)`` (method linear), exactly.

    One partition per neuron on the contiguous rows of x's transpose instead of a sort
    along the sample axis (6x faster); float32 input is partitioned as float32.
    """
    n = len(x)
    virtual = (n - 1) * float(quantile)  # np.quantile's position: order statistics lo, lo + 1
    lo = int(np.floor(virtual))
    rows = _transpose(x)  # (d, n): one neuron per contiguous row, x's values exactly
    rows.partition(lo, axis=1)  # one kth: a second kth makes numpy's partition 6x slower
    x_lo = rows[:, lo].astype(np.float64)
    if lo == n - 1:
        return x_lo
    x_hi = rows[:, lo + 1 :].min(axis=1).astype(np.float64)  # the next order statistic
    return _lerp(x_lo, x_hi, virtual - lo)


@dataclass(frozen=True)
class C4Transform:
    """Section 2.3.2's transform of one layer's live neurons: r = relu(x - t) / scale.

    Each neuron is standardized, z = (x - mean) / (std + 1e-7) (population std over all
    samples), shifted by its ``quantile`` of z (np.quantile, method linear) and passed
    through a ReLU, so that 1 - quantile of the samples are active (25% by default).
    Standardization is an increasing affine map, so the quantile of z is the standardized
    quantile t of x, and relu(z - quantile(z)) = relu(x - t) / (std + 1e-7): one
    subtraction, no z.
    """

    threshold: np.ndarray  # (d,) t, float64
    scale: np.ndarray  # (d,) population std + 1e-7, float64

    @classmethod
    def fit(cls, x: np.ndarray, quantile: float = 0.75, moments: Moments | None = None,
            live: np.ndarray | None = None, active: str = "fixed") -> C4Transform:
        """The transform of (n, d) ``x``, whose dead neurons are already dropped
        (:func:`live_neurons`). The std comes from the sums of (x - t) and (x - t)^2, free
        of the cancellation of sum(x^2) - n mean^2 since |mean - t| <= std sqrt(q / (1 - q))
        for any distribution (Cantelli; sqrt(3) std at q = 0.75), or from ``moments`` (any
        partition's class moments of the layer, pooled; ``live`` selects x's neurons among
        theirs). ``active``: the threshold rule, applied to the live width d
        (:func:`c4_layer_quantile`; the authors' code counts live neurons too)."""
        if not 0.0 <= quantile < 1.0:
            raise ValueError(f"the c4 quantile must lie in [0, 1), got {quantile}")
        if x.shape[1]:
            quantile = c4_layer_quantile(x.shape[1], quantile, active)
        t = neuron_quantiles(x, quantile)  # (d,)
        if moments is None:
            n = len(x)
            shift = np.zeros_like(t)  # sum of x - t, then sum of (x - t)^2, block by block
            m2 = np.zeros_like(t)
            for start in range(0, n, 4096):
                block = np.subtract(x[start : start + 4096], t, dtype=np.float64)
                shift += block.sum(axis=0)
                m2 += np.einsum("ij,ij->j", block, block)
            m2 -= shift * shift / n
        else:
            n, _, m2 = moments.pooled()
            m2 = m2 if live is None else m2[live]
        return cls(threshold=t, scale=np.sqrt(np.maximum(m2, 0.0) / n) + EPS)

    @property
    def width(self) -> int:
        return len(self.threshold)

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(rows, d) float64 r of (rows, d) ``x`` (any rows of the fitted layer); into
        ``out`` (float64, (rows, d)) when given."""
        r = np.subtract(x, self.threshold, out=out, dtype=np.float64)
        np.maximum(r, 0.0, out=r)
        r *= 1.0 / self.scale  # a multiply: 1.4x faster than a division, within an ulp of it
        return r


def live_neurons(x: np.ndarray, dead: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``x`` without its dead neurons (a copy only when there are some) and the (d,) bool
    mask of the live ones (None when all are live); ``dead``: :func:`dead_neurons` of x."""
    x = np.asarray(x)
    dead = dead_neurons(x) if dead is None else dead
    if not dead.any():
        return x, None
    return x[:, ~dead], ~dead


def c4_representation(x: np.ndarray, quantile: float = 0.75, dead: np.ndarray | None = None,
                      moments: Moments | None = None, active: str = "fixed") -> np.ndarray:
    """Section 2.3.2's representation of one layer, (n, live neurons), float64 (see
    :class:`C4Transform`; ``active``: the threshold rule, :func:`c4_layer_quantile`);
    ``x`` is left alone."""
    x, live = live_neurons(x, dead)
    return C4Transform.fit(x, quantile, moments, live, active)(x)


@dataclass(frozen=True)
class SimilaritySums:
    """Centered sums of a set of n unit (or zero) rows u_i that give the mean and std of
    their cosine similarities s_ij = u_i . u_j over ordered pairs i != j.

    With m the mean row, v_i = u_i - m and C = sum_i v_i v_i^T (the scatter matrix):
    sum_{i != j} s_ij = n^2 |m|^2 - Q and sum_{i != j} s_ij^2 = ||C||_F^2 + 2 n m^T C m
    + n^2 |m|^4 - Q, where Q is the number of nonzero rows (s_ii = |u_i|^2 is 1 or 0).
    Only ||C||_F^2 needs O(n d^2) work; centering removes the cancellation that the
    uncentered form sum s^2 / P - (sum s / P)^2 suffers when the pairs' mean similarity
    is large against their spread.
    """

    n: int
    nonzero: int  # Q
    mean: np.ndarray  # (d,) m
    scatter: np.ndarray  # (d, d) C, float64
    quad: float  # m^T C m = sum_i (u_i . m - |m|^2)^2, from the rows in float64

    def spread(self) -> float:
        """Population std of s_ij (= that of the cosine distances 1 - s_ij) over the
        n (n - 1) ordered pairs i != j (Eq. 4's Sigma_E), from the identities above."""
        n, q = float(self.n), float(self.nonzero)
        pairs = n * (n - 1)
        a = float(self.mean @ self.mean)  # |m|^2
        frob = float(np.einsum("ij,ij->", self.scatter, self.scatter))
        # E[s^2] - E[s]^2 with the n^2 |m|^4 terms cancelled analytically
        var = ((frob + 2 * n * self.quad - q) / pairs
               - (n**3 * a * a - 2 * n * n * a * q + q * q) / pairs**2)
        return float(np.sqrt(max(var, 0.0)))


def _mean_quad(u: np.ndarray, mean: np.ndarray) -> float:
    """m^T C m = sum_i ((u_i - m) . m)^2 of rows ``u`` about ``mean``, in float64 from the
    rows (not from a float32 C)."""
    along = u @ mean - mean @ mean  # (n,): v_i . m
    return float(along @ along)


def similarity_sums(u: np.ndarray, nonzero: np.ndarray, buffer: np.ndarray) -> SimilaritySums:
    """:class:`SimilaritySums` of (n, d) float64 unit (or zero) rows ``u``.

    The scatter matrix is a float32 product of the centered rows (BLAS syrk, 2x the float64
    speed), with its diagonal -- the largest entries, most of ||C||_F^2 -- summed in
    float64 from the same rows. Centered, the rounding is relative to C itself, not to the
    uncentered Gram matrix: the std agrees with a float64 computation to ~1e-9 relative
    (~1e-7 without the float64 diagonal; tests hold it to 1e-6 against explicit n x n
    distances). ``nonzero``: (n,) bool, the rows that are not zero; ``buffer``: float32,
    at least (n, d).
    """
    n = len(u)
    mean = u.sum(axis=0) / n  # (d,)
    centered = np.subtract(u, mean, out=buffer[:n], casting="same_kind")  # (n, d) float32 v
    scatter = (centered.T @ centered).astype(np.float64)  # (d, d)
    np.fill_diagonal(scatter, np.square(centered, dtype=np.float64).sum(axis=0))
    return SimilaritySums(n=n, nonzero=int(np.count_nonzero(nonzero)), mean=mean,
                          scatter=scatter, quad=_mean_quad(u, mean))


def pool_similarity_sums(parts: list[SimilaritySums], u: np.ndarray) -> SimilaritySums:
    """Sums of the union of disjoint sets ``parts`` (all rows of ``u``, cross pairs
    included): C = sum_c C_c + sum_c n_c (m_c - m)(m_c - m)^T exactly, and m^T C m from
    the rows (one matrix-vector product over ``u``)."""
    counts = np.array([p.n for p in parts], dtype=np.float64)  # (G,)
    means = np.stack([p.mean for p in parts])  # (G, d)
    n = counts.sum()
    mean = counts @ means / n
    offsets = means - mean  # (G, d)
    scatter = sum(p.scatter for p in parts) + (offsets.T * counts) @ offsets
    return SimilaritySums(n=int(n), nonzero=sum(p.nonzero for p in parts), mean=mean,
                          scatter=scatter, quad=_mean_quad(u, mean))


def _unit_rows(r: np.ndarray) -> np.ndarray:
    """Scale the rows of float64 ``r`` to unit L2 norm in place (:func:`inverse_row_norms`);
    returns (rows,) bool: the nonzero rows."""
    inv = inverse_row_norms(r)
    r *= inv[:, None]
    return inv > 0


def spread_ratio(x: np.ndarray, part: Partition, quantile: float = 0.75,
                 dead: np.ndarray | None = None, moments: Moments | None = None,
                 out: np.ndarray | None = None, active: str = "fixed") -> np.ndarray:
    """Sigma_{l,Ci} / Sigma_{l,D} of Eq. 4 for every class, (classes,).

    Sigma_E is the population std of the cosine distances between the samples of E over
    ordered pairs i != j, in :func:`c4_representation`. A zero row after the ReLU (no
    neuron active) has cosine similarity 0, i.e. distance 1, with every other sample
    (scikit-learn's cosine_distances convention, as in c2). D is every sample of ``x``.
    Degenerate layers get 0 for every class: a layer whose neurons are all dead, or one
    where every pair of D is at the same distance (Sigma_D = 0). ``dead``: see
    :func:`live_neurons`; ``moments``: see :class:`C4Transform`; ``out``: a float64 array of at least x's size
    whose memory may hold the unit rows (saves allocating a layer-sized array); ``active``:
    the threshold rule, fixed or narrow (:func:`c4_layer_quantile` of the live width).

    O(n d^2) time, O(n d) memory. The transform, the unit rows and the class's sums are
    made class by class, so that each class's rows stay in cache from the subtraction to
    the scatter matrix; the layer is read once and the unit rows written once.
    """
    x, live = live_neurons(x, dead)  # dead neurons dropped once, for every class
    transform = C4Transform.fit(x, quantile, moments, live, active)
    n, d = len(x), transform.width
    if d == 0:
        return np.zeros(len(part))
    if out is None or out.dtype != np.float64 or out.size < n * d:
        out = np.empty(n * d)
    u = out.reshape(-1)[: n * d].reshape(n, d)  # (n, d) unit rows, filled class by class
    nonzero = np.empty(n, dtype=bool)
    buffer = np.empty((int(part.sizes.max()), d), dtype=np.float32)
    classes = []
    for rows in part.each:
        view = isinstance(rows, slice)  # class-sorted samples: u[rows] is a view of u
        u_c = transform(x[rows], out=u[rows] if view else None)
        nonzero[rows] = _unit_rows(u_c)
        classes.append(similarity_sums(u_c, nonzero[rows], buffer))
        if not view:
            u[rows] = u_c
    sigma_d = pool_similarity_sums(classes, u).spread()
    if sigma_d == 0.0:
        return np.zeros(len(part))
    return np.array([c.spread() for c in classes]) / sigma_d
