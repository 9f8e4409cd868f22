"""Paired bootstrap over test images for the Kendall table (intraclass.evaluation.bootstrap)."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from threadpoolctl import threadpool_limits

from intraclass import kendall
from intraclass.evaluation import bootstrap
from intraclass.evaluation.bootstrap import BootstrapSettings
from intraclass.evaluation.notes import pair_noise


def small_grid() -> pd.DataFrame:
    """24 models: learning rate x batch size x width x optimizer, the rest fixed."""
    rows = []
    for lr, batch, width, optimizer in itertools.product([0.01, 0.1, 0.32], [100, 300], [1.0, 1.5], ["sgd", "adam"]):
        rows.append(dict(model=f"m{len(rows)}", lr=lr, weight_decay=0.0, batch_size=batch, optimizer=optimizer,
                         dropout=0.0, augment=True, width=width, depth=1.0, seed=0))
    return pd.DataFrame(rows)


def simulate_correct(rng, accuracy: np.ndarray, images: int, rho: float = 0.8) -> np.ndarray:
    """(models, images) bool with P(correct) = accuracy per model; images share a latent
    difficulty (Gaussian copula, correlation rho) so that models agree on easy images."""
    difficulty = rng.normal(size=images)
    own = rng.normal(size=(len(accuracy), images))
    return rho * difficulty + np.sqrt(1 - rho**2) * own < norm.ppf(accuracy)[:, None]


def brute_force(values, groups, correct, settings, generalization="test_acc", train=None):
    """The same draws, one resample at a time through the plain granulated Kendall."""
    rng = np.random.default_rng(settings.seed)
    out = []
    for start in range(0, settings.resamples, bootstrap.CHUNK):
        size = min(bootstrap.CHUNK, settings.resamples - start)
        counts = bootstrap.resample_counts(rng, correct.shape[1], size)
        for b in range(size):
            accuracy = (correct * counts[:, b]).sum(axis=1) / correct.shape[1]
            g = accuracy if generalization == "test_acc" else accuracy - train
            out.append(kendall.granulated_kendall_columns(values, g, groups).to_numpy().T)
    return np.stack(out, axis=-1)


def test_resample_counts_are_draws_with_replacement():
    counts = bootstrap.resample_counts(np.random.default_rng(0), 7, 5)
    assert counts.shape == (7, 5) and (counts.sum(axis=0) == 7).all()
    again = np.random.default_rng(0).integers(0, 7, size=(5, 7))
    for b in range(5):
        assert (counts[:, b] == np.bincount(again[b], minlength=7)).all()


@pytest.mark.parametrize("generalization", ["test_acc", "gap"])
def test_replicates_match_the_plain_kendall_on_every_resample(generalization):
    models = small_grid()
    rng = np.random.default_rng(1)
    values = rng.normal(size=(len(models), 4)).round(1)  # ties
    values[rng.random(values.shape) < 0.15] = np.nan  # missing values
    correct = rng.random((len(models), 40)) < 0.6  # few images: many tied accuracies
    train = rng.uniform(0.9, 1.0, len(models))
    train[3] = np.nan  # a model without training accuracy drops out under "gap"
    groups = kendall.axis_groups(models)
    settings = BootstrapSettings(resamples=2 * bootstrap.CHUNK + 7, seed=3)
    got = bootstrap.replicates(values, groups, correct, settings, generalization, train)
    expected = brute_force(values, groups, correct.astype(float), settings, generalization, train)
    assert got.shape == expected.shape == (len(groups) + 1, 4, settings.resamples)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], atol=1e-12)


def test_seeded_bootstrap_is_reproducible():
    models = small_grid()
    rng = np.random.default_rng(2)
    values, correct = rng.normal(size=(len(models), 3)), rng.random((len(models), 300)) < 0.7
    groups = kendall.axis_groups(models)
    first = bootstrap.replicates(values, groups, correct, BootstrapSettings(120, seed=5))
    second = bootstrap.replicates(values, groups, correct, BootstrapSettings(120, seed=5))
    other = bootstrap.replicates(values, groups, correct, BootstrapSettings(120, seed=6))
    assert np.array_equal(first, second, equal_nan=True)
    assert not np.array_equal(first, other, equal_nan=True)


def test_settings_are_checked():
    assert BootstrapSettings.from_config(None) == BootstrapSettings(1000, 0, 0.95)
    assert BootstrapSettings(1000, 0, 0.9).quantiles == pytest.approx((0.05, 0.95))
    with pytest.raises(KeyError, match="unknown analysis.bootstrap key.*'samples'"):
        BootstrapSettings.from_config({"samples": 10})
    with pytest.raises(ValueError, match="level must lie in"):
        BootstrapSettings(10, 0, 1.5)
    with pytest.raises(ValueError, match="resamples must be an integer"):
        BootstrapSettings(-1)


def test_standard_error_by_hand():
    # sqrt(0.95 * 0.05 / 2000) = 0.004873
    assert bootstrap.standard_error(np.array([0.95]), 2000)[0] == pytest.approx(0.0048734, rel=1e-4)
    # two pairs: |0.90 - 0.91| = 0.01 < 2 SE (SE ~ 0.0066 at n = 2000) is unresolved,
    # |0.90 - 0.95| = 0.05 is resolved
    median, share, pairs = pair_noise(np.array([0.90, 0.91, 0.95]), 2000, {"a": [np.array([0, 1])],
                                                                          "b": [np.array([0, 2])]})
    assert pairs == 2 and share == 0.5
    assert median == pytest.approx(np.sqrt(0.91 * 0.09 / 2000))


def test_coverage_of_the_percentile_interval():
    """200 simulated studies of one design: true accuracies p with hyperparameter effects of
    1-6 points (as in the paper's grids), a measure that tracks p with noise, and a fresh
    CIFAR-sized test set of 10,000 images per study. The population value is the granulated
    Kendall of the measure against p itself. Every cell's 95% interval must contain it in
    at least 90% of the studies. About 20% of the within-group pairs of this design differ
    by less than 2 SE; docs/criteria.md says how coverage degrades with more of them."""
    models = small_grid()
    rng = np.random.default_rng(3)
    effects = (0.06 * models["lr"].map({0.01: 0.0, 0.1: 1.0, 0.32: 0.5}) - 0.04 * (models["batch_size"] == 300)
               + 0.03 * (models["width"] == 1.5) + 0.02 * (models["optimizer"] == "adam"))
    truth = 0.75 + effects.to_numpy() + rng.normal(0, 0.02, len(models))
    measure = truth + rng.normal(0, 0.03, len(models))
    groups = kendall.axis_groups(models)
    population = kendall.granulated_kendall_columns(measure[:, None], truth, groups).to_numpy()[0]
    cells = ~np.isnan(population)
    images = 10_000
    assert 0.15 <= pair_noise(truth, images, groups)[1] <= 0.25  # the design is what the docstring says
    covered, width = np.zeros(cells.sum()), np.zeros(cells.sum())
    with threadpool_limits(1):  # small matrices: BLAS threads only cost here
        for study in range(200):
            correct = simulate_correct(rng, truth, images)
            reps = bootstrap.replicates(measure[:, None], groups, correct, BootstrapSettings(200, seed=study))
            low, high = bootstrap.percentile_interval(reps[cells, 0], 0.95)
            covered += (low <= population[cells] + 1e-12) & (population[cells] <= high + 1e-12)
            width += high - low
    assert (covered / 200 >= 0.90).all(), covered / 200
    assert (width / 200 > 0.05).all()  # intervals are not points: the test can fail


def test_percentile_interval_on_known_replicates():
    reps = np.tile(np.arange(101.0), (2, 1))
    reps[1] = np.nan
    low, high = bootstrap.percentile_interval(reps, 0.95)
    assert low[0] == pytest.approx(2.5) and high[0] == pytest.approx(97.5)
    assert np.isnan(low[1]) and np.isnan(high[1])
