"""The measure registry: declarations are checked, names.py follows them, and the
config's defaults agree with the registry's (issue 19: one set of defaults)."""

from pathlib import Path

import pytest
import yaml

from intraclass import names
from intraclass.measures import MeasureSettings, registry
from intraclass.measures.compute import CLUSTERABILITY

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def test_builtin_order_and_vocabulary():
    assert registry.names()[:8] == ("c1", "c2", "c3", "c4", "sigma1", "sigma2", "alpha1", "alpha2")
    assert names.MEASURES == registry.names()
    assert names.INTRACLASS == ("c1", "c2", "c3", "c4")
    assert names.SHARPNESS == ("sigma1", "sigma2", "alpha1", "alpha2")
    assert names.ACTIVATION == ("c1", "c2", "c3", "c4", "clusterability", "purity", "bimodality")
    assert names.HIERARCHICAL == ("c1", "c2", "clusterability", "purity")
    assert {names.DIRECTION[m] for m in names.SHARPNESS} == {-1}
    assert {names.DIRECTION[m] for m in names.INTRACLASS} == {1}
    assert set(names.MEASURE_LABELS) == set(names.MEASURE_LATEX) == set(names.MEASURES)
    related = registry.names(family="Related work")
    assert related.index("c0") < related.index("rotation") < related.index("clusterability") \
        < related.index("bimodality")
    assert registry.get("c4").level == "layer" and registry.get("c1").sweep
    assert "sharpness" in registry.stages() and registry.stages()[0] == "measures"


def test_declarations_are_checked():
    good = {"name": "mine", "label": "m", "latex": "$m$", "family": "Mine", "direction": 1,
            "needs": "activations", "stage": "measures", "default_k": 3, "level": "neuron"}
    registry.Measure(**good)
    for change, message in [({"direction": 0}, "direction"), ({"needs": "gpu"}, "needs"),
                            ({"level": None}, "go together"), ({"default_k": 0}, "positive"),
                            ({"name": "my measure"}, "identifier"), ({"stage": "blackbox"}, "stage"),
                            ({"level": "layer", "sweep": True}, "k curves")]:
        with pytest.raises(ValueError, match=message):
            registry.Measure(**{**good, **change})
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("c1"))
    with pytest.raises(KeyError, match="known: \\['c1'"):
        registry.get("c9")


def test_schema_defaults_are_the_registry_defaults():
    measures = yaml.safe_load(SCHEMA.read_text())["$defs"]["study"]["properties"]["measures"]["properties"]
    defaults = MeasureSettings()
    k = {name: spec["default"] for name, spec in measures["k"]["properties"].items()}
    assert k == {m.name: m.default_k for m in registry.measures(stage="measures")} == dict(defaults.k)
    sweep = {name: spec.get("default") for name, spec in measures["k_sweep"]["properties"].items()}
    assert set(sweep) == set(names.SWEEP)
    assert {n: v for n, v in sweep.items() if v is not None} == dict(defaults.k_sweep)
    assert measures["layer_k"]["default"] == defaults.layer_k
    assert measures["c4_quantile"]["default"] == defaults.c4_quantile
    cluster = {n: spec["default"] for n, spec in measures["clusterability"]["properties"].items()}
    assert cluster == CLUSTERABILITY == dict(defaults.clusterability)
