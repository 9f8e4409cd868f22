"""Per-class statistics of Eqs. 1-4 (intraclass.measures.stats) against plain references:
explicit loops over neurons, scikit-learn's cosine silhouette, explicit distance matrices."""

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples
from sklearn.metrics.pairwise import cosine_distances

from intraclass.measures import reference as ref
from intraclass.measures import stats
from intraclass.measures.labels import hierarchy, partition

RTOL, ATOL = 1e-6, 1e-12


def make_data(seed, n_super=3, n_sub=3, per_sub=(8, 30), widths=(5, 9, 2), dtype=np.float32,
              interleave=False):
    """Random layers over a shuffled hierarchy with unequal class sizes, non-contiguous
    label ids, a dead neuron, and rows that are all-negative in the narrow layer.
    ``interleave``: subclass ids alternate between superclasses (3 -> S0, 10 -> S1, ...)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(*per_sub, size=n_super * n_sub)
    sub = np.repeat(np.arange(n_super * n_sub), sizes)
    fine, coarse = sub * 7 + 3, (sub // n_sub) * 11  # label ids 3, 10, 17, ... and 0, 11, 22
    if interleave:
        coarse = (sub % n_super) * 11
    perm = rng.permutation(len(fine))
    fine, coarse = fine[perm], coarse[perm]
    layers = [(rng.normal(size=(len(fine), d)) * rng.uniform(0.5, 3, d) + rng.normal(size=d)).astype(dtype)
              for d in widths]
    layers[0][:, 2] = -np.abs(layers[0][:, 2]) - 0.01  # a dead neuron
    layers[2][: len(fine) // 4] = -1.0  # zero rows after the ReLU
    return layers, fine, coarse


@pytest.mark.parametrize("seed, interleave", [(0, False), (1, False), (2, True)])
def test_selectivity_matches_neuron_loop(seed, interleave):
    layers, fine, coarse = make_data(seed, interleave=interleave)
    hier = hierarchy(fine, coarse, len(fine))
    fast = np.concatenate([stats.selectivity(x, hier) for x in layers], axis=1)
    np.testing.assert_allclose(fast, ref.reference_selectivity(layers, fine, coarse), rtol=RTOL, atol=ATOL)
    assert np.all(fast[:, 2] == 0.0)  # the dead neuron


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("level", ["fine", "coarse"])
def test_std_ratio_matches_neuron_loop(seed, level):
    layers, fine, coarse = make_data(seed)
    labels = fine if level == "fine" else coarse
    part = partition(labels, len(labels))
    fast = np.concatenate([stats.std_ratio(x, part) for x in layers], axis=1)
    np.testing.assert_allclose(fast, ref.reference_std_ratio(layers, labels), rtol=RTOL, atol=ATOL)
    assert np.all(fast[:, 2] == 0.0)


@pytest.mark.parametrize("interleave", [False, True])
def test_pooled_coarse_moments_equal_direct_moments(interleave):
    layers, fine, coarse = make_data(3, interleave=interleave)
    hier = hierarchy(fine, coarse, len(fine))
    pooled = stats.pool_moments(stats.class_moments(layers[1], hier.fine), hier)
    direct = stats.class_moments(layers[1], hier.coarse)
    np.testing.assert_allclose(pooled.mean, direct.mean, rtol=1e-12)
    np.testing.assert_allclose(pooled.m2, direct.m2, rtol=1e-12)
    np.testing.assert_array_equal(pooled.count, direct.count)


@pytest.mark.parametrize("seed, interleave", [(0, False), (1, False), (2, True)])
def test_silhouette_matches_sklearn(seed, interleave):
    layers, fine, coarse = make_data(seed, interleave=interleave)
    hier = hierarchy(fine, coarse, len(fine))
    fast = np.stack([stats.subclass_silhouette(x, hier) for x in layers], axis=1)
    np.testing.assert_allclose(fast, ref.reference_silhouette(layers, fine, coarse), rtol=RTOL, atol=ATOL)


def test_silhouette_zero_vectors_follow_sklearn():
    """A zero activation vector: distance 1 to every other sample, 0 to itself."""
    x = np.array([[-1, -1], [1, 0], [1, 0.1], [0.9, 0.05], [0, 1], [0.1, 1], [-2, -3], [0.05, 0.9]])
    fine = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    coarse = np.zeros(8, dtype=int)
    hier = hierarchy(fine, coarse, 8)
    expected = silhouette_samples(np.maximum(x, 0), fine, metric="cosine")
    # zero rows: a = 1 (self excluded), b = 1, so 0; with a self-distance of 1 it would be -1/4
    assert expected[0] == 0.0 and expected[6] == 0.0
    np.testing.assert_allclose(
        stats.subclass_silhouette(x, hier),
        [expected[fine == 0].mean(), expected[fine == 1].mean()], rtol=RTOL, atol=ATOL)


def test_c4_representation_matches_neuron_loop():
    layers, _, _ = make_data(4)
    for x in layers:
        before = x.copy()
        fast = stats.c4_representation(x, 0.75)
        np.testing.assert_array_equal(x, before)  # the input is left alone
        np.testing.assert_allclose(fast, ref.reference_c4_representation(x, 0.75), rtol=RTOL, atol=ATOL)
    assert stats.c4_representation(layers[0]).shape[1] == layers[0].shape[1] - 1  # dead dropped
    active = (stats.c4_representation(layers[1], 0.75) > 0).mean(axis=0)
    np.testing.assert_allclose(active, 0.25, atol=1.5 / len(layers[1]))


def _unit_rows(r):
    norms = np.linalg.norm(r, axis=1)
    return r / np.where(norms > 0, norms, 1.0)[:, None], norms > 0


@pytest.mark.parametrize("zeros", [0, 5, 30])
@pytest.mark.parametrize("offset", [0.0, 3.0])
def test_similarity_sums_give_explicit_pairwise_std(zeros, offset):
    """Zero rows, and rows crowded around one direction (offset: mean similarity ~0.9,
    the case where an uncentered float32 Gram matrix would lose digits)."""
    rng = np.random.default_rng(zeros)
    r = np.maximum(rng.normal(size=(60, 7)) + offset, 0)
    r[:zeros] = 0.0
    u, nonzero = _unit_rows(r)
    dist = cosine_distances(r)
    explicit = dist[~np.eye(60, dtype=bool)].std()
    buffer = np.empty((60, 7), dtype=np.float32)
    assert stats.similarity_sums(u, nonzero, buffer).spread() == pytest.approx(explicit, rel=RTOL)
    halves = [stats.similarity_sums(u[:25], nonzero[:25], buffer),
              stats.similarity_sums(u[25:], nonzero[25:], buffer)]
    assert stats.pool_similarity_sums(halves, u).spread() == pytest.approx(explicit, rel=RTOL)
    if zeros < 59:
        sub = dist[zeros:, zeros:][~np.eye(60 - zeros, dtype=bool)].std()
        part = stats.similarity_sums(u[zeros:], nonzero[zeros:], buffer).spread()
        assert part == pytest.approx(sub, rel=RTOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("quantile", [0.75, 0.5])
def test_spread_ratio_matches_explicit_distances(seed, quantile):
    layers, fine, coarse = make_data(seed)
    for labels in (fine, coarse):
        part = partition(labels, len(labels))
        fast = np.stack([stats.spread_ratio(x, part, quantile) for x in layers], axis=1)
        slow = ref.reference_spread_ratio(layers, labels, quantile)
        np.testing.assert_allclose(fast, slow, rtol=RTOL, atol=ATOL)


def test_spread_ratio_of_degenerate_layers_is_zero():
    part = partition(np.repeat([0, 1], 5), 10)
    all_dead = -np.ones((10, 3))
    assert np.all(stats.spread_ratio(all_dead, part) == 0.0)
    np.testing.assert_array_equal(ref.reference_spread_ratio([all_dead], np.repeat([0, 1], 5))[:, 0], 0.0)


def test_float16_input_is_accumulated_in_float64():
    layers, fine, coarse = make_data(5, dtype=np.float16)
    hier = hierarchy(fine, coarse, len(fine))
    as64 = [x.astype(np.float64) for x in layers]
    for x, y in zip(layers, as64):
        np.testing.assert_array_equal(stats.selectivity(x, hier), stats.selectivity(y, hier))
        np.testing.assert_array_equal(stats.subclass_silhouette(x, hier), stats.subclass_silhouette(y, hier))


@pytest.mark.parametrize("sort", [False, True])
def test_sorted_and_unsorted_samples_agree(sort):
    """Class-sorted samples take the slice (view) paths, shuffled ones the index paths."""
    layers, fine, coarse = make_data(6, interleave=True)
    order = np.lexsort((fine, coarse)) if sort else np.arange(len(fine))
    layers, fine, coarse = [x[order] for x in layers], fine[order], coarse[order]
    hier = hierarchy(fine, coarse, len(fine))
    assert hier.fine.contiguous == sort and isinstance(hier.fine.rows(hier.children[0]), slice) == sort
    x = layers[1]
    np.testing.assert_allclose(stats.selectivity(x, hier), ref.reference_selectivity([x], fine, coarse), rtol=RTOL)
    np.testing.assert_allclose(stats.subclass_silhouette(x, hier), ref.reference_silhouette([x], fine, coarse)[:, 0],
                               rtol=RTOL, atol=ATOL)
    part = partition(coarse, len(coarse))
    np.testing.assert_allclose(stats.spread_ratio(x, part), ref.reference_spread_ratio([x], coarse)[:, 0], rtol=RTOL)


@pytest.mark.parametrize("quantile", [0.0, 0.25, 0.5, 0.75, 0.9])
@pytest.mark.parametrize("n", [41, 200])
def test_c4_quantile_is_exact_with_float16_ties(quantile, n):
    """float16 data hold many ties: the active pattern equals np.quantile's exactly."""
    rng = np.random.default_rng(n)
    x = np.round(rng.normal(size=(n, 6)) * 4).astype(np.float16) / 4  # few distinct values
    fast = stats.c4_representation(x, quantile)
    slow = ref.reference_c4_representation(x, quantile)
    np.testing.assert_array_equal(fast > 0, slow > 0)
    np.testing.assert_allclose(fast, slow, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [2, 3, 41, 1000])
def test_neuron_quantiles_equal_np_quantile_bit_for_bit(dtype, n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 5)).astype(dtype)
    x[:, 1] = np.round(x[:, 1])  # ties
    x[:, 2] = 7.0  # a constant neuron
    for q in (0.0, 0.1, 0.5, 0.75, 0.999):
        expected = np.quantile(x.astype(np.float64), q, axis=0)
        np.testing.assert_array_equal(stats.neuron_quantiles(x, q), expected)


def test_c4_standardization_from_class_moments_equals_its_own():
    """The measures pass c1's class moments to c4: same transform as c4 computes alone."""
    layers, fine, _coarse = make_data(7)
    part = partition(fine, len(fine))
    for x in layers:
        live_x, live = stats.live_neurons(x)  # layer 0 has a dead neuron: moments hold it
        own = stats.C4Transform.fit(live_x, 0.75)
        shared = stats.C4Transform.fit(live_x, 0.75, moments=stats.class_moments(x, part), live=live)
        np.testing.assert_allclose(shared.scale, own.scale, rtol=1e-12)
        np.testing.assert_array_equal(shared.threshold, own.threshold)


@pytest.mark.parametrize("offset", [0.0, 2.0, 6.0])
def test_spread_ratio_keeps_1e6_at_scale_with_crowded_classes(offset):
    """Larger classes (the float32 scatter products accumulate over 600 rows, 96 neurons)
    and classes crowded around one direction (offset: mean within-class cosine similarity
    up to ~0.97), against the explicit n x n distances; the workspace path as well."""
    rng = np.random.default_rng(int(offset))
    labels = np.repeat(np.arange(3), 600)
    centers = rng.normal(size=(3, 96)) * offset
    x = (rng.normal(size=(1800, 96)) + centers[labels]).astype(np.float32)
    part = partition(labels, len(labels))
    slow = ref.reference_spread_ratio([x], labels)[:, 0]
    np.testing.assert_allclose(stats.spread_ratio(x, part), slow, rtol=RTOL)
    workspace = np.full(x.size + 7, np.nan)
    np.testing.assert_allclose(stats.spread_ratio(x, part, out=workspace), slow, rtol=RTOL)
