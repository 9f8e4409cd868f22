"""The related work's activation measures against plain references: bimodality (Sarle's
coefficient from scipy.stats' bias-corrected skewness and kurtosis, loops over classes and
neurons) and subclass clusterability (scipy's Ward linkage cut into clusters, scikit-learn's
AMI, a counting loop for purity), on random and structured data."""

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.stats import kurtosis, skew
from sklearn.metrics import adjusted_mutual_info_score

from intraclass.measures import MeasureSettings, compute_all, measure_stats
from intraclass.measures.bimodality import class_bimodality, coefficient
from intraclass.measures.clusterability import layer_scores, purity, sample_rows
from intraclass.measures.labels import hierarchy, partition

# ----------------------------------------------------------------------- references


def reference_bc(values) -> float:
    """Sarle's BC of one sample, from scipy.stats (bias-corrected G1, G2)."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if np.all(v == v[0]):
        return 0.0
    g1, g2 = skew(v, bias=False), kurtosis(v, bias=False)
    return (g1**2 + 1) / (g2 + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))


def reference_bimodality(layers, labels, k) -> float:
    """Per class and neuron BC (dead neurons 0), top-k over all neurons, mean over classes."""
    x = np.concatenate(layers, axis=1).astype(np.float64)
    per_class = []
    for c in np.unique(labels):
        values = []
        for j in range(x.shape[1]):
            dead = x[:, j].max() < 0
            values.append(0.0 if dead else reference_bc(x[labels == c, j]))
        per_class.append(np.mean(sorted(values)[-k:]))
    return float(np.mean(per_class))


def reference_purity(labels, clusters) -> float:
    total = 0
    for c in set(clusters.tolist()):
        members = labels[clusters == c].tolist()
        total += max(members.count(s) for s in set(members))
    return total / len(labels)


def reference_scores(x, fine, coarse, factor):
    """{superclass: (AMI, purity)} of Ward clusters (scipy) of relu(x) within each superclass."""
    out = {}
    for s in np.unique(coarse):
        z = np.maximum(x[coarse == s].astype(np.float64), 0)
        subs = fine[coarse == s]
        n_clusters = min(len(np.unique(subs)) * factor, len(z))
        clusters = fcluster(linkage(z, method="ward"), t=n_clusters, criterion="maxclust")
        out[int(s)] = (adjusted_mutual_info_score(subs, clusters), reference_purity(subs, clusters))
    return out


def reference_clusterability(layers, fine, coarse, factor, k, score=0) -> float:
    """Per superclass the mean of its top-k layers, median over superclasses."""
    per_layer = [reference_scores(x, fine, coarse, factor) for x in layers]
    supers = sorted(per_layer[0])
    per_super = [np.mean(sorted(layer[s][score] for layer in per_layer)[-k:]) for s in supers]
    return float(np.median(per_super))


def hier_model(seed, n_super=3, n_sub=3, per=15, widths=(5, 7, 4), signal=0.0):
    """Random layers; with ``signal`` > 0 each subclass has its own mean on every neuron."""
    rng = np.random.default_rng(seed)
    fine = np.repeat(np.arange(n_super * n_sub), per)
    rng.shuffle(fine)  # samples not sorted by class: exercises the sorting
    coarse = fine // n_sub
    layers = []
    for d in widths:
        centers = rng.normal(size=(n_super * n_sub, d)) * signal
        layers.append((centers[fine] + rng.normal(size=(len(fine), d))).astype(np.float32))
    return layers, fine, coarse


# ----------------------------------------------------------------------- bimodality


@pytest.mark.parametrize("n", [4, 5, 9, 40])
def test_coefficient_matches_scipy(n):
    rng = np.random.default_rng(n)
    x = np.concatenate([rng.normal(size=(n, 6)), rng.exponential(size=(n, 2))], axis=1)
    expected = [reference_bc(x[:, j]) for j in range(x.shape[1])]
    np.testing.assert_allclose(coefficient(x), expected, rtol=1e-10)


def test_coefficient_high_for_two_peaks_and_near_null_for_a_normal():
    rng = np.random.default_rng(0)
    two_peaks = np.concatenate([rng.normal(-4, 0.5, 500), rng.normal(4, 0.5, 500)])[:, None]
    normal = rng.normal(size=(1000, 1))
    assert coefficient(two_peaks)[0] > 0.85  # approaches 1
    assert coefficient(normal)[0] == pytest.approx(1 / 3, abs=0.03)  # a normal's BC
    assert coefficient(rng.uniform(size=(20000, 1)))[0] == pytest.approx(5 / 9, abs=0.01)
    assert coefficient(np.ones((6, 2))).tolist() == [0.0, 0.0]  # constant: no evidence
    with pytest.raises(ValueError, match="at least 4 samples"):
        coefficient(np.arange(3.0)[:, None])


def test_class_bimodality_matches_loops_with_dead_neurons():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=60)
    x = rng.normal(size=(60, 7))
    x[:, 2] = -np.abs(x[:, 2]) - 0.1  # dead
    part = partition(labels, 60)
    table = class_bimodality(x.astype(np.float32), part)
    for g, c in enumerate(part.ids):
        for j in range(7):
            expected = 0.0 if j == 2 else reference_bc(x[labels == c, j].astype(np.float32))
            assert table[g, j] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    tiny = partition(np.r_[np.zeros(3, int), np.ones(5, int)], 8)
    with pytest.raises(ValueError, match="class 0 has 3 sample"):
        class_bimodality(np.zeros((8, 2)), tiny)


@pytest.mark.parametrize("signal", [0.0, 3.0])
def test_bimodality_measure_matches_reference(signal):
    layers, _, coarse = hier_model(2, signal=signal)
    st = measure_stats(layers, labels=coarse, measures=("bimodality",))
    for k in (1, 4, 16):
        assert st.total("bimodality", k) == pytest.approx(reference_bimodality(layers, coarse, k), rel=1e-9)


def test_bimodality_sees_subclasses_without_their_labels():
    """Trained-on classes made of two far-apart subclasses: high BC; one blob per class: near 1/3."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(4), 200)
    half = np.tile(np.repeat([-1.0, 1.0], 100), 4)
    split = [(half[:, None] * 4 + rng.normal(size=(800, 5))).astype(np.float32)]
    blob = [rng.normal(size=(800, 5)).astype(np.float32)]
    assert measure_stats(split, labels=labels, measures=("bimodality",)).total("bimodality", 3) > 0.8
    null = measure_stats(blob, labels=labels, measures=("bimodality",)).total("bimodality", 3)
    assert 0.3 < null < 0.5  # top-3 of 5 normal neurons: a little above 1/3


# ------------------------------------------------------------------- clusterability


def test_purity_matches_loop():
    rng = np.random.default_rng(4)
    for _ in range(5):
        labels, clusters = rng.integers(0, 4, 50), rng.integers(0, 7, 50)
        assert purity(labels, clusters) == pytest.approx(reference_purity(labels, clusters))
    assert purity(np.array([0, 0, 1, 1]), np.array([5, 5, 9, 9])) == 1.0


@pytest.mark.parametrize("factor", [1, 2, 5])
def test_layer_scores_match_scipy_ward(factor):
    layers, fine, coarse = hier_model(5, signal=0.7)
    order = np.lexsort((fine, coarse))
    hier = hierarchy(fine[order], coarse[order], len(fine))
    for x in layers:
        scores = layer_scores(x[order], hier, factor, max_samples=10_000)
        expected = reference_scores(x, fine, coarse, factor)
        for s, label in enumerate(hier.coarse.ids):
            assert scores["clusterability"][s] == pytest.approx(expected[int(label)][0], abs=1e-12)
            assert scores["purity"][s] == pytest.approx(expected[int(label)][1], abs=1e-12)


@pytest.mark.parametrize("score", ["clusterability", "purity"])
def test_clusterability_measure_matches_reference(score):
    layers, fine, coarse = hier_model(6, signal=0.5)
    settings = {"factor": 2, "max_samples": 10_000, "seed": 0}
    st = measure_stats(layers, fine, coarse, measures=(score,), cluster=settings)
    for k in (1, 2, 3):
        expected = reference_clusterability(layers, fine, coarse, 2, k, score=("clusterability", "purity").index(score))
        assert st.total(score, k) == pytest.approx(expected, abs=1e-12)
    assert st.row_labels(score).tolist() == [0, 1, 2]  # rows are superclasses


def test_clusterability_high_for_separated_subclasses_and_near_zero_for_noise():
    separated, fine, coarse = hier_model(7, per=30, widths=(16,), signal=6.0)
    noise, _, _ = hier_model(7, per=30, widths=(16,), signal=0.0)
    cluster = {"factor": 1}
    high = measure_stats(separated, fine, coarse, measures=("clusterability", "purity"), cluster=cluster)
    null = measure_stats(noise, fine, coarse, measures=("clusterability",), cluster=cluster)
    assert high.total("clusterability", 1) > 0.95 and high.total("purity", 1) > 0.97
    assert abs(null.total("clusterability", 1)) < 0.1  # AMI's null value is 0


def test_sample_cap_is_seeded_and_layer_independent():
    layers, fine, coarse = hier_model(8, per=20)
    order = np.lexsort((fine, coarse))
    hier = hierarchy(fine[order], coarse[order], len(fine))
    rows = sample_rows(hier, 25, seed=3)
    assert [len(r) for r in rows] == [25, 25, 25]
    assert all(np.isin(r, m).all() for r, m in zip(rows, hier.coarse.members))
    assert all(np.array_equal(a, b) for a, b in zip(rows, sample_rows(hier, 25, seed=3)))
    assert not all(np.array_equal(a, b) for a, b in zip(rows, sample_rows(hier, 25, seed=4)))
    capped = measure_stats(layers, fine, coarse, measures=("clusterability",),
                           cluster={"max_samples": 25, "seed": 3, "factor": 2})
    x = layers[1][order]
    direct = layer_scores(x, hier, 2, rows)["clusterability"]
    np.testing.assert_array_equal(capped.tables["clusterability"][:, 1], direct)
    threaded = measure_stats(layers, fine, coarse, measures=("clusterability",), workers=2,
                             cluster={"max_samples": 25, "seed": 3, "factor": 2})
    np.testing.assert_array_equal(threaded.tables["clusterability"], capped.tables["clusterability"])


def test_settings_of_the_related_measures():
    settings = MeasureSettings(k={"bimodality": 3}, clusterability={"factor": 2})
    assert settings.k["c1"] == 30 and settings.k["bimodality"] == 3 and settings.k["clusterability"] == 1
    assert settings.clusterability == {"factor": 2, "max_samples": 1000, "seed": 0}
    with pytest.raises(ValueError, match="unknown keys in measures.clusterability"):
        MeasureSettings(clusterability={"factors": 2})
    with pytest.raises(ValueError, match="clusterability.factor"):
        MeasureSettings(clusterability={"factor": 0})
    with pytest.raises(ValueError, match="unknown measure"):
        MeasureSettings(k={"c9": 3})
    with pytest.raises(ValueError, match="k_sweep holds"):
        MeasureSettings(k_sweep={"c2": 3})
    layers, fine, coarse = hier_model(9, widths=(8, 8, 8, 8, 8))
    rows = compute_all(layers, fine, coarse, coarse, MeasureSettings(k_sweep={"bimodality": 5}))  # default k
    sweep = rows[(rows.measure == "bimodality") & (rows.scope == "k_sweep")]
    assert sweep["k"].tolist() == [1, 2, 3, 4, 5]
    total = rows[(rows.measure == "bimodality") & (rows.scope == "total")]["value"].iloc[0]
    assert total == pytest.approx(reference_bimodality(layers, coarse, 30), rel=1e-9)
