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
    assert registry.names() == names.MEASURES
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


def test_collect_reads_model_level_stages_by_registry(tmp_path):
    """A registered model-level stage's JSON becomes a models.csv column and Figure 5 rows."""
    import json

    import pandas as pd

    from intraclass.tables import collect

    models = [{"id": "a", "lr": 0.1}, {"id": "b", "lr": 0.01}]
    paths = {}
    for stage, content in [("metrics", lambda i: {"train_acc": 1.0, "test_acc": 0.5 + i / 10}),
                           ("rotation", lambda i: {"measures": {"rotation": {"value": 0.2 * i, "layers": [0.1, i]}}}),
                           ("blackbox", lambda i: {"measures": {"c0": {"value": None if i else 2.0}}})]:
        paths[stage] = []
        for i, model in enumerate(models):
            path = tmp_path / stage / f"{model['id']}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(content(i)))
            paths[stage].append(path)
    table = collect(models, paths["metrics"], [], [], None, tmp_path / "models.csv", tmp_path / "m.csv.gz",
                    stages={"rotation": paths["rotation"], "blackbox": paths["blackbox"]})
    columns = list(table.columns)
    assert columns.index("test_acc") < columns.index("c0") == columns.index("rotation") - 1  # registry order
    assert table["rotation"].tolist() == [0.0, 0.2] and table["c0"].iloc[0] == 2.0 and pd.isna(table["c0"].iloc[1])
    tidy = pd.read_csv(tmp_path / "m.csv.gz")
    layer = tidy[(tidy.measure == "rotation") & (tidy.scope == "layer")]
    assert layer[["model", "layer", "value"]].values.tolist() == [["a", 0, 0.1], ["a", 1, 0.0],
                                                                   ["b", 0, 0.1], ["b", 1, 1.0]]
    with pytest.raises(ValueError, match="no registered measure"):
        collect(models, paths["metrics"], [], [], None, tmp_path / "x.csv", tmp_path / "y.csv",
                stages={"mystery": paths["rotation"]})
