"""c4's threshold rules (measures.c4_active): the paper's fixed quantile and the authors'
code's narrow-layer rule (about 10 neurons active per sample), against the explicit
reference of intraclass.measures.reference."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from intraclass.measures import MeasureSettings, compute_all, stats
from intraclass.measures import reference as ref
from intraclass.measures.compute import c4
from intraclass.measures.labels import partition

RTOL = 1e-6
SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def _layer(rng, n, width, dead=0, structured=False, labels=None):
    """(n, width) pre-activations; ``dead`` neurons negative everywhere; ``structured``
    adds a class-dependent offset so that classes differ in spread."""
    x = rng.normal(size=(n, width))
    if structured:
        x += 2.0 * np.eye(width)[labels % width] * (1 + labels[:, None] % 3)
    x[:, :dead] = -np.abs(x[:, :dead]) - 0.1
    return x.astype(np.float32)


@pytest.mark.parametrize("width, expected", [(64, 0.75), (40, 0.75), (39, 1 - 10 / 39), (16, 0.375),
                                             (10, 0.0), (4, 0.0), (1, 0.0)])
def test_narrow_quantile_rule(width, expected):
    assert stats.c4_layer_quantile(width, 0.75, "narrow") == pytest.approx(expected, abs=1e-15)
    assert stats.c4_layer_quantile(width, 0.75, "fixed") == 0.75


def test_narrow_rule_respects_a_lower_configured_quantile_and_rejects_unknown_rules():
    # at 0.5, a layer is "narrow" below 20 neurons; above, the configured quantile holds
    assert stats.c4_layer_quantile(30, 0.5, "narrow") == 0.5
    assert stats.c4_layer_quantile(16, 0.5, "narrow") == pytest.approx(0.375)
    with pytest.raises(ValueError, match="c4_active"):
        stats.c4_layer_quantile(16, 0.75, "percentile")
    with pytest.raises(ValueError, match="c4_active"):
        MeasureSettings(c4_active="wide")
    with pytest.raises(ValueError, match="c4_active"):
        c4([np.ones((4, 3))], np.array([0, 0, 1, 1]), active="wide")


@pytest.mark.parametrize("width", [8, 16, 24, 40, 64])
def test_about_ten_neurons_fire_per_sample(width):
    x = np.random.default_rng(width).normal(size=(600, width))
    fired = (stats.c4_representation(x, 0.75, active="narrow") > 0).sum(axis=1).mean()
    # every neuron is active on a share 1 - q of the samples (q = 0: all but its minimum)
    assert fired == pytest.approx(min(width, max(10.0, width / 4)), abs=0.1)
    fixed = (stats.c4_representation(x, 0.75) > 0).sum(axis=1).mean()
    assert fixed == pytest.approx(width / 4, abs=0.1)


@pytest.mark.parametrize("structured", [False, True])
def test_narrow_spread_ratio_matches_reference(structured):
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(4), 30)
    rng.shuffle(labels)
    # widths below, at and above 40; dead neurons count out of the width (12 live of 14)
    layers = [_layer(rng, 120, w, dead, structured, labels) for w, dead in [(6, 0), (14, 2), (40, 0), (48, 3)]]
    order = np.argsort(labels, kind="stable")
    part = partition(labels[order], len(labels), "class")
    for active in ("fixed", "narrow"):
        fast = np.stack([stats.spread_ratio(x[order], part, 0.75, active=active) for x in layers], axis=1)
        slow = ref.reference_spread_ratio(layers, labels, 0.75, active)
        np.testing.assert_allclose(fast, slow, rtol=RTOL)
        for x in layers:
            np.testing.assert_allclose(stats.c4_representation(x, 0.75, active=active),
                                       ref.reference_c4_representation(x, 0.75, active), rtol=RTOL, atol=1e-12)
    # the rule changes the narrow layers only
    fixed = ref.reference_spread_ratio(layers, labels, 0.75)
    narrow = ref.reference_spread_ratio(layers, labels, 0.75, "narrow")
    assert not np.allclose(fixed[:, :2], narrow[:, :2])
    np.testing.assert_array_equal(fixed[:, 2:], narrow[:, 2:])
    assert c4(layers, labels, 2, active="narrow") == pytest.approx(ref.reference_c4(layers, labels, 2, active="narrow"),
                                                                   rel=RTOL)


def test_settings_carry_the_rule_into_the_tidy_rows():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(3), 20)
    layers = [_layer(rng, 60, 12), _layer(rng, 60, 50)]
    settings = {a: MeasureSettings.from_params({"c4_active": a, "k": {"c4": 1}}) for a in ("fixed", "narrow")}
    rows = {a: compute_all(layers, labels=labels, settings=s) for a, s in settings.items()}
    c4_layer = {a: r[(r.measure == "c4") & (r.scope == "layer")].value.to_numpy() for a, r in rows.items()}
    expected = ref.reference_spread_ratio(layers, labels, 0.75, "narrow").mean(axis=0)
    np.testing.assert_allclose(c4_layer["narrow"], expected, rtol=RTOL)
    assert c4_layer["narrow"][1] == c4_layer["fixed"][1] and c4_layer["narrow"][0] != c4_layer["fixed"][0]
    c3 = {a: r[r.measure == "c3"].value.to_numpy() for a, r in rows.items()}
    np.testing.assert_array_equal(c3["fixed"], c3["narrow"])  # other measures untouched


def test_schema_default_is_the_papers_fixed_rule():
    measures = yaml.safe_load(SCHEMA.read_text())["$defs"]["study"]["properties"]["measures"]["properties"]
    assert measures["c4_active"]["default"] == MeasureSettings().c4_active == "fixed"
    assert measures["c4_active"]["enum"] == list(stats.C4_ACTIVE)
