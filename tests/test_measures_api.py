"""c1-c4 and their companions (k curves, layer-wise, per-class, top neurons, tidy rows)
against the plain references, on random and structured data, and their input errors."""

import itertools

import numpy as np
import pandas as pd
import pytest

from intraclass.measures import COLUMNS, MeasureSettings, c1, c2, c3, c4, compute_all, measure_stats
from intraclass.measures import reference as ref

RTOL, ATOL = 1e-6, 1e-12


def random_model(seed, n_super=3, n_sub=4, per_sub=20, widths=(6, 10, 4, 8)):
    rng = np.random.default_rng(seed)
    sub = np.repeat(np.arange(n_super * n_sub), per_sub)
    fine, coarse = sub + 100, sub // n_sub
    perm = rng.permutation(len(sub))
    layers = [rng.normal(size=(len(sub), d)).astype(np.float32) - 0.3 for d in widths]
    layers[1][:, 0] = -np.abs(layers[1][:, 0]) - 0.5  # dead neuron
    layers[2][:12] = -1.0  # zero rows after the ReLU
    return [x[perm] for x in layers], fine[perm], coarse[perm]


def hierarchy_model(seed, separable, n_super=3, n_sub=3, per_sub=40, noise_width=6):
    """Subclass j of every superclass raises its own neuron of layer 1 by 4 (separable)
    or nothing does (not separable); layer 0 is pure noise in both cases."""
    rng = np.random.default_rng(seed)
    sub = np.repeat(np.arange(n_super * n_sub), per_sub)
    fine, coarse = sub, sub // n_sub
    noise = rng.normal(size=(len(sub), noise_width))
    signal = rng.normal(size=(len(sub), n_sub)) * 0.5
    if separable:
        signal[np.arange(len(sub)), sub % n_sub] += 4.0
    return [noise, signal], fine, coarse


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [1, 3, 17])
def test_measures_match_references(seed, k):
    layers, fine, coarse = random_model(seed)
    assert c1(layers, fine, coarse, k) == pytest.approx(ref.reference_c1(layers, fine, coarse, k), rel=RTOL, abs=ATOL)
    assert c3(layers, coarse, k) == pytest.approx(ref.reference_c3(layers, coarse, k), rel=RTOL, abs=ATOL)
    assert c3(layers, fine, k) == pytest.approx(ref.reference_c3(layers, fine, k), rel=RTOL, abs=ATOL)
    kl = min(k, len(layers))
    assert c2(layers, fine, coarse, kl) == pytest.approx(ref.reference_c2(layers, fine, coarse, kl), rel=RTOL, abs=ATOL)
    assert c4(layers, coarse, kl) == pytest.approx(ref.reference_c4(layers, coarse, kl), rel=RTOL, abs=ATOL)
    assert c4(layers, fine, kl, quantile=0.5) == pytest.approx(
        ref.reference_c4(layers, fine, kl, quantile=0.5), rel=RTOL, abs=ATOL)


def test_separable_subclasses_score_high_and_inseparable_near_null():
    high = hierarchy_model(0, separable=True)
    low = hierarchy_model(0, separable=False)
    # c1: a neuron that separates by 4 / (0.5 + ~1.9) ~ 1.4 or more; noise: top-1 ~ 0.2
    assert c1(*high, k=1) > 1.2
    assert abs(c1(*low, k=1)) < 0.4
    # c2: the separable layer's cosine silhouette is high; noise is near 0
    assert c2(*high, k=1) > 0.4
    assert abs(c2(*low, k=1)) < 0.1
    for data in (high, low):  # and both agree with the references
        assert c1(*data, k=2) == pytest.approx(ref.reference_c1(*data, k=2), rel=RTOL)
        assert c2(*data, k=2) == pytest.approx(ref.reference_c2(*data, k=2), rel=RTOL, abs=ATOL)


def test_variance_measures_grow_when_subclasses_spread_a_class():
    """c3, c4 (section 2.3): classes whose subclasses sit apart in a layer score higher
    than classes collapsed to one point per class (same class means, same noise)."""
    rng = np.random.default_rng(1)
    n_super, n_sub, per_sub = 3, 3, 30
    sub = np.repeat(np.arange(n_super * n_sub), per_sub)
    coarse = sub // n_sub
    noise = 0.3 * rng.normal(size=(len(sub), n_super * n_sub))
    spread = 3.0 * np.eye(n_super * n_sub)[sub] + noise  # one neuron per subclass
    collapsed = 3.0 * np.repeat(np.eye(n_super)[coarse], n_sub, axis=1) + noise  # per class
    assert c3([spread], coarse, k=1) > 1.2 and c3([collapsed], coarse, k=1) < 0.4
    assert c4([spread], coarse, k=1) > 1.3 and c4([collapsed], coarse, k=1) < 1.0
    for layers in ([spread], [collapsed]):
        assert c4(layers, coarse, 1) == pytest.approx(ref.reference_c4(layers, coarse, 1), rel=RTOL)

def test_curves_layerwise_per_class_and_top_neurons_agree_with_references():
    layers, fine, coarse = random_model(3)
    st = measure_stats(layers, fine, coarse, coarse)
    sel = ref.reference_selectivity(layers, fine, coarse)
    std = ref.reference_std_ratio(layers, coarse)
    # k curves: every k from 1 to 20 equals the measure at that k
    for measure, slow in (("c1", lambda k: ref.reference_c1(layers, fine, coarse, k)),
                          ("c3", lambda k: ref.reference_c3(layers, coarse, k))):
        curve = st.k_curve(measure, 20)
        assert curve.shape == (20,)
        np.testing.assert_allclose(curve, [slow(k) for k in range(1, 21)], rtol=RTOL)
        np.testing.assert_allclose(curve[[0, 6, 19]], [st.total(measure, k) for k in (1, 7, 20)], rtol=1e-12)
    # layer-wise: top-3 neurons within each layer for c1/c3; the layer's value for c2/c4
    bounds = np.cumsum([0] + [x.shape[1] for x in layers])
    for measure, table, agg in (("c1", sel, np.median), ("c3", std, np.mean)):
        expected = [agg(np.sort(table[:, lo:hi], axis=1)[:, -3:].mean(axis=1)) for lo, hi in itertools.pairwise(bounds)]
        np.testing.assert_allclose(st.layerwise(measure, 3), expected, rtol=RTOL)
    expected_c2 = np.median(ref.reference_silhouette(layers, fine, coarse), axis=0)
    np.testing.assert_allclose(st.layerwise("c2"), expected_c2, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(st.layerwise("c4"), ref.reference_spread_ratio(layers, coarse).mean(axis=0), rtol=RTOL)
    # per class and top neurons
    np.testing.assert_allclose(st.per_class("c1", 1), sel.max(axis=1), rtol=RTOL)
    layer, neuron, value = st.top_neurons("c1")
    np.testing.assert_array_equal(bounds[layer] + neuron, sel.argmax(axis=1))
    np.testing.assert_allclose(value, sel.max(axis=1), rtol=RTOL)
    np.testing.assert_array_equal(st.subclasses, np.unique(fine))
    np.testing.assert_array_equal(st.classes, np.unique(coarse))


def test_generator_input_and_float16_layers():
    layers, fine, coarse = random_model(4)
    from_list = measure_stats(layers, fine, coarse, fine)
    from_gen = measure_stats((x for x in layers), fine, coarse, fine)
    for m in ("c1", "c2", "c3", "c4"):
        np.testing.assert_array_equal(from_list.tables[m], from_gen.tables[m])
    half = [x.astype(np.float16) for x in layers]
    assert c3(half, fine, 5) == pytest.approx(ref.reference_c3([x.astype(np.float64) for x in half], fine, 5), rel=RTOL)


def test_compute_all_rows():
    layers, fine, coarse = random_model(5)
    settings = MeasureSettings(k={"c1": 4, "c2": 2, "c3": 6, "c4": 1, "clusterability": 1, "purity": 2,
                                  "bimodality": 5}, k_sweep={"c1": 7, "c3": 9}, layer_k=2)
    rows = compute_all(layers, fine, coarse, coarse, settings)
    assert list(rows.columns) == COLUMNS
    n_sub, n_cls, n_layers = len(np.unique(fine)), len(np.unique(coarse)), len(layers)
    counts = rows.groupby(["measure", "scope"]).size().to_dict()
    assert counts == {
        ("c1", "total"): 1, ("c1", "layer"): n_layers, ("c1", "subclass"): n_sub, ("c1", "k_sweep"): 7,
        ("c1", "top_neuron"): n_sub,
        ("c2", "total"): 1, ("c2", "layer"): n_layers, ("c2", "subclass"): n_sub,
        ("c3", "total"): 1, ("c3", "layer"): n_layers, ("c3", "subclass"): n_cls, ("c3", "k_sweep"): 9,
        ("c4", "total"): 1, ("c4", "layer"): n_layers, ("c4", "subclass"): n_cls,
        # the related work's measures: per superclass (clusterability, purity), per class (bimodality)
        ("clusterability", "total"): 1, ("clusterability", "layer"): n_layers,
        ("clusterability", "subclass"): n_cls,
        ("purity", "total"): 1, ("purity", "layer"): n_layers, ("purity", "subclass"): n_cls,
        ("bimodality", "total"): 1, ("bimodality", "layer"): n_layers, ("bimodality", "subclass"): n_cls,
    }
    total = rows[rows.scope == "total"].set_index("measure")
    assert total.loc["c1", "value"] == pytest.approx(ref.reference_c1(layers, fine, coarse, 4), rel=RTOL)
    assert total.loc["c4", "value"] == pytest.approx(ref.reference_c4(layers, coarse, 1), rel=RTOL)
    assert total["k"].tolist() == [4, 2, 6, 1, 1, 2, 5]
    assert rows[(rows.scope == "layer") & rows.measure.isin(["c2", "c4", "clusterability", "purity"])]["k"].isna().all()
    assert (rows[(rows.scope == "layer") & rows.measure.isin(["c1", "c3", "bimodality"])]["k"] == 2).all()
    top = rows[rows.scope == "top_neuron"]
    assert top[["layer", "subclass", "neuron"]].notna().all().all() and (top["k"] == 1).all()
    sub = rows[(rows.scope == "subclass") & (rows.measure == "c3")]
    assert sorted(sub["subclass"]) == sorted(np.unique(coarse).tolist())
    # fine labels only: c3, c4, bimodality
    only = compute_all(layers, labels=fine, settings=settings)
    assert set(only["measure"]) == {"c3", "c4", "bimodality"}


@pytest.mark.parametrize("case, message", [
    ("not_nested", "do not nest"),
    ("tiny_class", "at least 2 samples"),
    ("one_subclass", "at least 2 subclasses"),
    ("length", "samples"),
    ("float_labels", "integers"),
    ("layer_rows", "same samples"),
    ("nan", "non-finite"),
    ("one_d_layer", r"\(samples, neurons\)"),
    ("no_layers", "no layer"),
])
def test_input_errors(case, message):
    layers, fine, coarse = random_model(6)
    fine, coarse = fine.copy(), coarse.copy()
    if case == "not_nested":
        coarse[np.flatnonzero(fine == fine[0])[0]] = (coarse[0] + 1) % 3
    elif case == "tiny_class":
        fine[0] = 999
    elif case == "one_subclass":
        fine[coarse == 0] = 100
    elif case == "length":
        fine = fine[:-1]
    elif case == "float_labels":
        fine = fine.astype(float)
    elif case == "layer_rows":
        layers[2] = layers[2][:-1]
    elif case == "nan":
        layers[1][3, 2] = np.nan
    elif case == "one_d_layer":
        layers[0] = layers[0][:, 0]
    elif case == "no_layers":
        layers = []
    with pytest.raises(ValueError, match=message):
        c1(layers, fine, coarse, 1)


def test_k_errors():
    layers, fine, coarse = random_model(7)
    n_neurons = sum(x.shape[1] for x in layers)
    with pytest.raises(ValueError, match=f"larger than the number of neurons \\({n_neurons}\\)"):
        c1(layers, fine, coarse, n_neurons + 1)
    with pytest.raises(ValueError, match="larger than the number of layers"):
        c2(layers, fine, coarse, len(layers) + 1)
    with pytest.raises(ValueError, match="larger than the number of layers"):
        c4(layers, coarse, len(layers) + 1)
    with pytest.raises(ValueError, match="positive integer"):
        c3(layers, coarse, 0)
    st = measure_stats(layers, labels=coarse, measures=("c3",))
    with pytest.raises(ValueError, match="neurons in layer 2"):
        st.layerwise("c3", 5)  # layer 2 has 4 neurons
    # A k curve longer than the model has neurons ends in NaN instead of failing the job;
    # up to the neuron count it is the exact curve, and k = n_neurons is the plain mean.
    longer = st.k_curve("c3", n_neurons + 3)
    assert np.isnan(longer[n_neurons:]).all() and len(longer) == n_neurons + 3
    np.testing.assert_array_equal(longer[:n_neurons], st.k_curve("c3", n_neurons))
    assert longer[n_neurons - 1] == pytest.approx(st.total("c3", n_neurons), rel=1e-12)
    with pytest.raises(ValueError, match="k_sweep of c3"):
        st.k_curve("c3", 0)
    with pytest.raises(ValueError, match="c1 was not computed"):
        st.total("c1", 1)
    with pytest.raises(ValueError, match="c4_quantile"):
        MeasureSettings(c4_quantile=1.0)
    with pytest.raises(ValueError, match="unknown keys"):
        MeasureSettings.from_params({"k": {"c1": 1, "c2": 1, "c3": 1, "c4": 1}, "kk": 3})
    with pytest.raises(ValueError, match="need both fine and coarse"):
        c2(layers, fine, None, 1)


def test_rows_are_a_frame_with_nullable_integers():
    layers, fine, coarse = random_model(8)
    rows = compute_all(layers, fine, coarse, coarse,
                       MeasureSettings(k={"c1": 2, "c2": 1, "c3": 2, "c4": 1, "bimodality": 2}, k_sweep={},
                                       layer_k=1))
    assert isinstance(rows, pd.DataFrame)
    for column in ("k", "layer", "subclass", "neuron"):
        assert str(rows[column].dtype) == "Int64"
    assert not (rows.scope == "k_sweep").any()


def test_tables_with_labels_unrelated_to_the_hierarchy():
    """c3, c4 on labels that cut across the superclasses (index paths, not slices)."""
    layers, fine, coarse = random_model(9)
    other = np.random.default_rng(0).integers(0, 4, len(fine))
    st = measure_stats(layers, fine, coarse, other)
    np.testing.assert_allclose(st.tables["c1"], ref.reference_selectivity(layers, fine, coarse), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(st.tables["c2"], ref.reference_silhouette(layers, fine, coarse), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(st.tables["c3"], ref.reference_std_ratio(layers, other), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(st.tables["c4"], ref.reference_spread_ratio(layers, other), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("workers", [2, 3])
def test_layers_on_threads_give_the_same_tables(workers):
    """measure_stats(workers=N) computes layers in parallel: bit for bit the sequential
    tables, every layer of a generator read once, in order."""
    layers, fine, coarse = random_model(8, widths=(6, 10, 4, 8, 5, 7, 3))
    alone = measure_stats(layers, fine, coarse, coarse)
    read = []

    def stream():
        for i, x in enumerate(layers):
            read.append(i)
            yield x

    threaded = measure_stats(stream(), fine, coarse, coarse, workers=workers)
    assert threaded.layer_sizes == alone.layer_sizes
    for m in alone.tables:
        np.testing.assert_array_equal(threaded.tables[m], alone.tables[m])
    assert read == list(range(len(layers)))


def test_layer_errors_on_threads_name_the_first_bad_layer():
    layers, fine, coarse = random_model(9, widths=(6, 10, 4, 8, 5))
    layers[3][0, 0] = np.inf
    layers[4][1, 1] = np.nan
    with pytest.raises(ValueError, match="layer 3 holds non-finite"):
        measure_stats(layers, fine, coarse, coarse, workers=2)
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        measure_stats(layers, fine, coarse, coarse, workers=0)
    # a failed layer stops the reading: a store is not read to its end for nothing
    layers, fine, coarse = random_model(9, widths=(6,) * 12)
    layers[0][0, 0] = np.nan
    read = []

    def stream():
        for x in layers:
            read.append(x)
            yield x

    with pytest.raises(ValueError, match="layer 0 holds non-finite"):
        measure_stats(stream(), fine, coarse, coarse, workers=2)
    assert len(read) < len(layers)
