"""The collect stage on small synthetic inputs written in tmp_path."""

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest

from intraclass import tables

MODELS = [
    dict(id="lr0.1-a", lr=0.1, weight_decay=0.0, batch_size=100, optimizer="sgd", dropout=0.0,
         augment=True, width=1.0, depth=1.0, seed=0),
    dict(id="lr0.01-b", lr=0.01, weight_decay=0.0, batch_size=100, optimizer="sgd", dropout=0.0,
         augment=True, width=1.0, depth=1.0, seed=0),
]
K = {"c1": 30, "c2": 5, "c3": 30, "c4": 1}


def tidy_rows(offset: float, with_c1: bool = True) -> pd.DataFrame:
    rows = []

    def add(checkpoint, measure, scope, k, value, layer=None, subclass=None, neuron=None):
        rows.append(dict(checkpoint=checkpoint, measure=measure, scope=scope, k=k, layer=layer,
                         subclass=subclass, neuron=neuron, value=value))

    for checkpoint, shift in (("final", 0.0), ("epoch1", -0.5)):
        for j, measure in enumerate(("c1", "c2", "c3", "c4")):
            if measure in ("c1", "c2") and not with_c1:
                continue
            add(checkpoint, measure, "total", K[measure], offset + j + shift)
    add("final", "c3", "k_sweep", 1, 9.0)
    add("final", "c3", "k_sweep", 30, offset + 2)  # the sweep passes through the configured k
    add("final", "c1", "layer", 5, 0.3, layer="features.0")
    add("final", "c1", "subclass", 1, 0.7, subclass=3)
    add("final", "c1", "top_neuron", 1, 0.7, layer="features.3", subclass=3, neuron=12)
    return pd.DataFrame(rows)


def write_inputs(tmp_path, with_c1=True, sharpness=True):
    metrics, measures, sharp = [], [], []
    for i, model in enumerate(MODELS):
        path = tmp_path / model["id"]
        path.mkdir()
        (path / "metrics.json").write_text(json.dumps(dict(
            train_acc=1.0, test_acc=0.8 - 0.1 * i, train_loss=1e-4, test_loss=0.9 + i,
            epochs_run=10, early_stopped=False, wall_time_s=3.5, device="cpu")))
        metrics.append(path / "metrics.json")
        tidy_rows(10.0 * i, with_c1).to_csv(path / "measures.csv", index=False)
        measures.append(path / "measures.csv")
        # the layout intraclass.sharpness.run_sharpness writes
        data = {"measures": {"sigma1": {"value": 2.0 + i, "m": 1 / (2.0 + i)}, "alpha1": {"value": None}},
                "seed": 0}
        (path / "sharpness.json").write_text(json.dumps(data))
        sharp.append(path / "sharpness.json")
    return metrics, measures, sharp if sharpness else []


def test_collect_columns_and_values(tmp_path):
    metrics, measures, sharp = write_inputs(tmp_path)
    out_models, out_measures = tmp_path / "t" / "models.csv", tmp_path / "t" / "measures.csv.gz"
    tables.collect(MODELS, metrics, measures, sharp, K, out_models, out_measures)
    models = pd.read_csv(out_models)
    assert list(models.columns) == [
        "model", "lr", "weight_decay", "batch_size", "optimizer", "dropout", "augment", "width",
        "depth", "seed", "train_acc", "test_acc", "train_loss", "test_loss", "gap", "epochs_run",
        "early_stopped", "wall_time_s", "status", "reason", "c1", "c2", "c3", "c4", "sigma1", "alpha1",
        *tables.ENVIRONMENT]
    assert models["status"].tolist() == ["ok", "ok"] and models["reason"].isna().all()
    assert models["device"].tolist() == ["cpu", "cpu"]
    assert models["model"].tolist() == ["lr0.1-a", "lr0.01-b"]
    assert models["gap"].tolist() == pytest.approx([0.2, 0.3])
    # final checkpoint's total rows at the configured k: offset + index of the measure
    assert models[["c1", "c2", "c3", "c4"]].to_numpy().tolist() == [[0, 1, 2, 3], [10, 11, 12, 13]]
    assert models["sigma1"].tolist() == [2.0, 3.0]
    assert models["alpha1"].isna().all()  # a search without a value is NaN, not a crash
    with gzip.open(out_measures, "rt") as handle:
        tidy = pd.read_csv(handle)
    assert list(tidy.columns) == ["model", *tables.TIDY_COLUMNS]
    assert len(tidy) == 2 * len(tidy_rows(0.0))
    assert tidy.groupby("model").size().to_dict() == {"lr0.1-a": 13, "lr0.01-b": 13}


def test_collect_without_c1_c2_and_without_sharpness(tmp_path):
    metrics, measures, sharp = write_inputs(tmp_path, with_c1=False, sharpness=False)
    table = tables.collect(MODELS, metrics, measures, sharp, K, tmp_path / "m.csv", tmp_path / "x.csv.gz")
    assert [c for c in ("c1", "c2", "c3", "c4", "sigma1") if c in table.columns] == ["c3", "c4"]


def test_collect_rejects_a_measure_not_at_the_configured_k(tmp_path):
    metrics, measures, sharp = write_inputs(tmp_path)
    with pytest.raises(ValueError, match=r"c3 has no total value at the configured k=7 \(has k=\[30"):
        tables.collect(MODELS, metrics, measures, sharp, {**K, "c3": 7}, tmp_path / "m.csv", tmp_path / "x.csv.gz")
    assert not (tmp_path / "m.csv").exists()


def test_collect_bad_inputs_are_named(tmp_path):
    metrics, measures, sharp = write_inputs(tmp_path)
    out = (tmp_path / "m.csv", tmp_path / "x.csv.gz")
    with pytest.raises(ValueError, match="1 metrics files for 2 models"):
        tables.collect(MODELS, metrics[:1], measures, sharp, K, *out)
    metrics[1].write_text("{broken")
    with pytest.raises(ValueError, match=f"metrics file {metrics[1]} is not valid JSON"):
        tables.collect(MODELS, metrics, measures, sharp, K, *out)
    metrics[1].unlink()
    with pytest.raises(FileNotFoundError, match="metrics file .* does not exist"):
        tables.collect(MODELS, metrics, measures, sharp, K, *out)
    pd.DataFrame({"measure": ["c1"], "value": [1.0]}).to_csv(measures[0], index=False)
    with pytest.raises(ValueError, match="lacks column"):
        tables.read_measures(measures[0])


def test_write_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "models.csv"
    target.write_text("old")

    def broken(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        tables.write_atomic(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["models.csv"]


def test_measure_values_ignores_other_checkpoints_and_scopes():
    values = tables.measure_values(tidy_rows(0.0), K)
    assert values == {"c1": 0.0, "c2": 1.0, "c3": 2.0, "c4": 3.0}
    assert math.isnan(tables.sharpness_values({"measures": {"sigma2": {"value": None}}})["sigma2"])


# ------------------------------------------------------------ statuses, flags, correctness

def test_a_failed_model_keeps_its_row_with_status_reason_and_nan_measures(tmp_path):
    """The first non-ok status of the chain (training, measures, sharpness) and its reason;
    every measure of that row NaN (also values a later stage did compute)."""
    metrics, measures, sharp = write_inputs(tmp_path)
    status_files = []
    for i, path in enumerate(measures):
        status = path.with_suffix(".status.json")
        status.write_text(json.dumps({"status": "unmeasurable" if i else "ok",
                                      "reason": "checkpoint final: non-finite" if i else None}))
        status_files.append(status)
    out = (tmp_path / "m.csv", tmp_path / "x.csv.gz")
    table = tables.collect(MODELS, metrics, measures, sharp, K, *out, measures_status=status_files)
    assert table["status"].tolist() == ["ok", "unmeasurable"]
    assert table["reason"].tolist()[1] == "checkpoint final: non-finite"
    assert table.loc[0, "c3"] == 2.0 and table.loc[1, ["c1", "c2", "c3", "c4", "sigma1"]].isna().all()

    # training's status comes first; its reason is kept as written
    data = json.loads(metrics[1].read_text())
    metrics[1].write_text(json.dumps({**data, "status": "diverged", "reason": "training loss nan at epoch 2",
                                      "test_acc": None}))
    table = tables.collect(MODELS, metrics, measures, sharp, K, *out, measures_status=status_files)
    assert table.loc[1, "status"] == "diverged" and table.loc[1, "reason"] == "training loss nan at epoch 2"
    assert math.isnan(table.loc[1, "test_acc"]) and math.isnan(table.loc[1, "gap"])
    written = pd.read_csv(out[0])
    assert written["status"].tolist() == ["ok", "diverged"]

    # a sharpness JSON with a status counts too; an unknown status is an error naming the file
    data = json.loads(sharp[0].read_text())
    sharp[0].write_text(json.dumps({**data, "status": "diverged", "reason": "from sharpness"}))
    table = tables.collect(MODELS, metrics, measures, sharp, K, *out)
    assert table.loc[0, "status"] == "diverged" and table.loc[0, "reason"] == "from sharpness"
    sharp[0].write_text(json.dumps({**data, "status": "odd"}))
    with pytest.raises(ValueError, match="sharpness of model lr0.1-a: status 'odd'"):
        tables.collect(MODELS, metrics, measures, sharp, K, *out)


def test_sharpness_bound_flags_become_columns(tmp_path):
    metrics, measures, sharp = write_inputs(tmp_path)
    for i, path in enumerate(sharp):
        data = json.loads(path.read_text())
        data["measures"]["sigma1"].update(at_bound=bool(i), bound="upper" if i else None)
        path.write_text(json.dumps(data))
    table = tables.collect(MODELS, metrics, measures, sharp, K, tmp_path / "m.csv", tmp_path / "x.csv.gz")
    assert table["sigma1_at_bound"].tolist() == [False, True]
    assert "alpha1_at_bound" not in table.columns  # JSONs without the flag: no claim
    assert "sigma2_at_bound" not in table.columns  # not computed
    assert list(table.columns).index("sigma1_at_bound") > list(table.columns).index("alpha1")
    assert pd.read_csv(tmp_path / "m.csv")["sigma1_at_bound"].tolist() == [False, True]


def test_correctness_matrix_follows_models_csv_and_blanks_failed_models(tmp_path):
    metrics, measures, sharp = write_inputs(tmp_path)
    rng = np.random.default_rng(0)
    truth = rng.random((2, 7)) < 0.6
    files = []
    for i, model in enumerate(MODELS):
        files.append(tmp_path / model["id"] / "test_correct.npy")
        np.save(files[-1], truth[i])
    out = tmp_path / "t" / "test_correct.npz"
    table = tables.collect(MODELS, metrics, measures, sharp, K, tmp_path / "m.csv", tmp_path / "x.csv.gz",
                           test_correct=files, out_correct=out)
    stored = np.load(out, allow_pickle=False)
    assert stored["models"].tolist() == table["model"].tolist() == [m["id"] for m in MODELS]
    assert stored["correct"].dtype == bool and np.array_equal(stored["correct"], truth)

    data = json.loads(metrics[0].read_text())
    metrics[0].write_text(json.dumps({**data, "status": "diverged", "reason": "x"}))
    tables.collect(MODELS, metrics, measures, sharp, K, tmp_path / "m.csv", tmp_path / "x.csv.gz",
                   test_correct=files, out_correct=out)
    stored = np.load(out)
    assert not stored["correct"][0].any() and np.array_equal(stored["correct"][1], truth[1])

    np.save(files[1], truth[1][:5])  # another test set: refused, naming the file
    with pytest.raises(ValueError, match=f"test_correct file {files[1]} .* expected bool \\(7,\\)"):
        tables.collect(MODELS, metrics, measures, sharp, K, tmp_path / "m.csv", tmp_path / "x.csv.gz",
                       test_correct=files, out_correct=out)
    with pytest.raises(ValueError, match="1 test_correct files for 2 models"):
        tables.collect(MODELS, metrics, measures, sharp, K, tmp_path / "m.csv", tmp_path / "x.csv.gz",
                       test_correct=files[:1], out_correct=out)


def test_sharpness_target_column_from_the_per_measure_targets(tmp_path):
    metrics, measures, sharp = write_inputs(tmp_path)
    targets = [{"sigma1": 0.9, "alpha1": 0.9}, {"sigma1": 0.75, "alpha1": 0.75}]  # absolute, relative
    for path, target in zip(sharp, targets):
        data = json.loads(path.read_text())
        for name, value in target.items():
            data["measures"][name]["target"] = value
        path.write_text(json.dumps(data))
    out = (tmp_path / "m.csv", tmp_path / "x.csv.gz")
    table = tables.collect(MODELS, metrics, measures, sharp, K, *out)
    assert table["sharpness_target"].tolist() == [0.9, 0.75]
    assert list(table.columns).index("sharpness_target") == list(table.columns).index("device") - 1
    assert pd.read_csv(out[0])["sharpness_target"].tolist() == [0.9, 0.75]

    # sigma and alpha aimed apart: no single target; a failed model: NaN like its measures
    data = json.loads(sharp[0].read_text())
    data["measures"]["alpha1"]["target"] = 0.8
    sharp[0].write_text(json.dumps(data))
    data = json.loads(sharp[1].read_text())
    sharp[1].write_text(json.dumps({**data, "status": "diverged", "reason": "why"}))
    table = tables.collect(MODELS, metrics, measures, sharp, K, *out)
    assert table["sharpness_target"].isna().all()

    # JSONs without targets (written before them) or no sharpness: no column
    (tmp_path / "plain").mkdir()
    _, _, plain = write_inputs(tmp_path / "plain")
    table = tables.collect(MODELS, metrics, measures, plain, K, *out)
    assert "sharpness_target" not in table.columns
    assert tables.sharpness_target(None) == {} and tables.sharpness_target({"measures": {}}) == {}
