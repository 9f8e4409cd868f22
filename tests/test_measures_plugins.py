"""Plug-in measures: a module listed in measures.plugins registers an activation measure
with a per-layer hook, and it is computed, collected and ranked without any edit of the
project (registry.load_plugins, Measure.layer_table, compute, collect, kendall)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from intraclass.measures import MeasureSettings, compute_all, measure_stats, registry

SRC = Path(__file__).resolve().parents[1] / "src"

#: The toy measure: per class C_i and neuron, mean over C_i minus the mean over all samples
#: (neuron-level, top-k over neurons, then the mean over classes).
TOY = textwrap.dedent('''
    import numpy as np

    from intraclass.measures.registry import Measure, register


    def class_mean_shift(x, context):
        """(classes, neurons): mean of each class minus the mean of all samples."""
        overall = x.mean(axis=0, dtype=np.float64)
        return np.stack([x[context.classes.rows(g)].mean(axis=0, dtype=np.float64) - overall
                         for g in range(len(context.classes))])


    register(Measure("{name}", "mean shift", "mean shift", "Related work", +1, "activations",
                     "measures", 3, "neuron", layerwise=True, layer_table=class_mean_shift,
                     source="test plug-in"))
''')


def _write_plugin(folder: Path, module: str, name: str) -> None:
    (folder / f"{module}.py").write_text(TOY.replace("{name}", name))


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The toy module on sys.path, loaded; unregistered and forgotten afterwards."""
    _write_plugin(tmp_path, "toy_plugin", "shift")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.load_plugins(["toy_plugin"]) == ["shift"]
    yield "shift"
    registry.unregister("shift")
    sys.modules.pop("toy_plugin", None)


def _data(rng, sizes=(16, 20, 12), n_per_class=7, classes=3):
    labels = np.repeat(np.arange(classes), n_per_class)
    rng.shuffle(labels)
    layers = [rng.normal(size=(len(labels), d)) + labels[:, None] * rng.normal(size=d) for d in sizes]
    return layers, labels


def _reference(layers, labels, k, layer_k):
    """Plain loops on the unsorted samples: per class and neuron the mean shift, the mean of
    the top-k over all neurons per class, the mean over classes; per layer the same with
    the layer's top layer_k."""
    def per_class(columns, kk):
        values = []
        for c in np.unique(labels):
            shift = [columns[labels == c, j].mean() - columns[:, j].mean() for j in range(columns.shape[1])]
            values.append(np.mean(sorted(shift, reverse=True)[:kk]))
        return np.mean(values)

    return per_class(np.concatenate(layers, axis=1), k), [per_class(x, layer_k) for x in layers]


def test_plugin_hook_matches_a_plain_reference(plugin):
    rng = np.random.default_rng(0)
    layers, labels = _data(rng)
    rows = compute_all(layers, labels=labels, settings=MeasureSettings(k={"c4": 1}, layer_k=4))
    mine = rows[rows.measure == plugin]
    total, layerwise = _reference(layers, labels, 3, 4)
    assert mine[mine.scope == "total"].k.tolist() == [3]  # the declared default_k
    np.testing.assert_allclose(mine[mine.scope == "total"].value, [total], rtol=1e-12)
    np.testing.assert_allclose(mine[mine.scope == "layer"].value, layerwise, rtol=1e-12)
    assert len(mine[mine.scope == "subclass"]) == 3  # one per class trained on
    # the built-ins are untouched by the plug-in
    alone = measure_stats(layers, labels=labels, measures=("c3",)).total("c3", 5)
    both = measure_stats(layers, labels=labels, measures=("c3", plugin)).total("c3", 5)
    assert alone == both


def test_plugin_table_shape_is_checked():
    rng = np.random.default_rng(1)
    layers, labels = _data(rng)
    bad = registry.Measure("wrong", "w", "w", "Related work", +1, "activations", "measures", 1, "layer",
                           layer_table=lambda x, context: np.zeros((len(context.classes), x.shape[1])))
    registry.register(bad)
    try:
        with pytest.raises(ValueError, match="'wrong'.*shape .*expected \\(3, 1\\)"):
            measure_stats(layers, labels=labels, measures=("wrong",))
    finally:
        registry.unregister("wrong")


def test_declaration_and_loading_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="layer_table belongs to an activation measure"):
        registry.Measure("x", "x", "x", "Related work", +1, "weights", "rotation", layer_table=print)
    with pytest.raises(ValueError, match="over_classes must be one of"):
        registry.Measure("x", "x", "x", "Related work", +1, "activations", "measures", 1, "layer",
                         over_classes="max")
    with pytest.raises(ValueError, match="cannot import 'no_such_plugin_module'"):
        registry.load_plugins(["no_such_plugin_module"])
    with pytest.raises(ValueError, match="'not a module' is not a module name"):
        registry.load_plugins(["not a module"])
    with pytest.raises(ValueError, match="list of module names"):
        registry.load_plugins("toy")
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="importing 'broken_plugin' failed: RuntimeError: boom"):
        registry.load_plugins(["broken_plugin"])


def test_stages_of_a_study_leave_out_other_studies_plugins(tmp_path, monkeypatch):
    (tmp_path / "stage_plugin.py").write_text(textwrap.dedent('''
        from intraclass.measures.registry import Measure, register
        register(Measure("toystage", "t", "t", "Related work", -1, "model+data", "toystage"))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry.load_plugins(["stage_plugin"])
        assert "toystage" in registry.stages()
        assert "toystage" in registry.stages(["stage_plugin"])
        assert "toystage" not in registry.stages([])
        assert {"sharpness", "blackbox", "rotation"} <= set(registry.stages([]))
    finally:
        registry.unregister("toystage")
        sys.modules.pop("stage_plugin", None)
    config = {"studies": {"a": {"measures": {"plugins": ["m"]}}, "b": {"measures": {}}}}
    assert registry.study_plugins(config, "a") == ["m"] and registry.study_plugins(config, "b") == []


END_TO_END = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import numpy as np
    from intraclass.measures import registry

    # what every script does first: the study's plug-ins, before the rest of the package
    registry.load_plugins(["e2e_plugin"])
    from intraclass.kendall import kendall_table
    from intraclass.measures import MeasureSettings, compute_all
    from intraclass.tables import collect

    out = Path(sys.argv[1])
    rng = np.random.default_rng(0)
    models, metrics, measures = [], [], []
    for i, lr in enumerate([0.1, 0.01, 0.001, 0.0001]):
        model = {"id": f"m{i}", "lr": lr, "weight_decay": 0.0, "batch_size": 32, "optimizer": "sgd",
                 "dropout": 0.0, "augment": False, "width": 4, "depth": 1, "seed": 0}
        labels = np.repeat(np.arange(3), 6)
        # neuron j carries class j % 3, (i + 1) times more strongly in model i
        own = labels[:, None] == np.arange(5) % 3
        layers = [0.1 * rng.normal(size=(18, 5)) + (i + 1) * own for _ in range(2)]
        settings = MeasureSettings(k={"c3": 5, "c4": 1, "bimodality": 5}, layer_k=2)
        tidy = compute_all(layers, labels=labels, settings=settings)
        tidy.insert(0, "checkpoint", "final")
        measures.append(out / f"{model['id']}.csv")
        tidy.to_csv(measures[-1], index=False)
        metrics.append(out / f"{model['id']}.json")
        metrics[-1].write_text(json.dumps({"train_acc": 1.0, "test_acc": 0.5 + i / 10}))
        models.append(model)
    table = collect(models, metrics, measures, [], {}, out / "models.csv", out / "tidy.csv.gz")
    kendall = kendall_table(table)
    print(json.dumps({"columns": list(table.columns), "values": table["shift2"].tolist(),
                      "kendall": kendall.loc["shift2", "learning_rate"]}))
''')


def test_plugin_from_total_to_kendall_row_without_project_edits(tmp_path):
    """The scripts' order in a fresh interpreter: load the plug-in, compute, collect, rank."""
    _write_plugin(tmp_path, "e2e_plugin", "shift2")
    env = {"PYTHONPATH": f"{tmp_path}:{SRC}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", END_TO_END, str(tmp_path)], capture_output=True,
                          text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    columns = result["columns"]
    assert columns.index("c3") < columns.index("shift2")  # after the built-ins, registry order
    # the class mean shift grows with i, as does test accuracy (the models differ in lr
    # only): the plug-in (+1) ranks them as their generalization, a coefficient of +1
    assert result["values"] == sorted(result["values"])
    assert result["kendall"] == pytest.approx(1.0)


def test_script_plugins_reads_the_jobs_study():
    from types import SimpleNamespace

    config = {"studies": {"a": {"measures": {"plugins": ["m"]}}}}
    job = SimpleNamespace(config=config, wildcards=SimpleNamespace(study="a"))
    assert registry.script_plugins(job) == ["m"]
    assert registry.script_plugins(SimpleNamespace(config=config, wildcards=SimpleNamespace(study="b"))) == []
    assert registry.script_plugins(SimpleNamespace()) == []
