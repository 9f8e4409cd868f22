"""Failed models are data (intraclass.status): statuses, skipped outputs, valid JSON, and a
workflow run of the tiny study with one diverging model that still ends with every table
and figure of the others."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from intraclass import status as S
from intraclass.activations import IncompleteStoreError, StoreWriter, open_store

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"


# ------------------------------------------------------------------------- valid JSON

def test_non_finite_numbers_become_null_at_any_depth():
    data = {"a": math.nan, "b": [1.5, math.inf, {"c": -math.inf, "d": 2}], "e": "nan", "f": None,
            "g": (0.0, math.nan), "h": True}
    assert S.finite_or_none(data) == {"a": None, "b": [1.5, None, {"c": None, "d": 2}], "e": "nan",
                                      "f": None, "g": [0.0, None], "h": True}
    text = S.json_text(data)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["b"][1] is None
    with pytest.raises(ValueError):  # what the standard library would otherwise write
        json.dumps(data, allow_nan=False)


def test_read_status(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"test_acc": 0.5}))
    assert S.read_status(path) == ("ok", None)  # written before statuses existed
    S.write_json(path, {"status": "diverged", "reason": "loss nan at epoch 2", "train_loss": math.nan})
    assert S.read_status(path) == ("diverged", "loss nan at epoch 2")
    path.write_text(json.dumps({"status": "exploded"}))
    with pytest.raises(ValueError, match="status 'exploded' is not one of"):
        S.read_status(path)
    path.write_text("{")
    with pytest.raises(ValueError, match=f"metrics file {path} is not valid JSON"):
        S.read_status(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        S.read_status(tmp_path / "absent.json")


# ---------------------------------------------------------------- stores of one model

def write_store(path: Path, values: np.ndarray, dtype: str = "float32") -> Path:
    """A two-layer store whose second layer holds ``values`` (samples, 3)."""
    fine = np.arange(len(values)) % 2
    first = np.ones((len(values), 2), dtype=np.float32)
    with StoreWriter(path, [("a", 2), ("b", 3)], len(values), fine=fine, dtype=dtype) as writer:
        writer.append([first, values.astype(np.float32)])
        return writer.close()


def test_skipped_store_is_a_marker_that_open_store_refuses(tmp_path):
    path = tmp_path / "final.zarr"
    S.write_skipped_store(path, "diverged", "training loss nan at epoch 1")
    assert [p.name for p in path.iterdir()] == [S.SKIP_FILE]
    assert S.skipped_store(path) == ("diverged", "training loss nan at epoch 1")
    assert [p.name for p in tmp_path.iterdir()] == ["final.zarr"]  # no temporary left
    with pytest.raises((IncompleteStoreError, FileNotFoundError, ValueError)):
        open_store(path)
    with pytest.raises(ValueError, match="status 'weird'"):
        S.write_skipped_store(tmp_path / "x.zarr", "weird", None)


def test_stores_status(tmp_path):
    rng = np.random.default_rng(0)
    healthy = write_store(tmp_path / "final.zarr", rng.normal(size=(6, 3)))
    assert S.skipped_store(healthy) is None
    assert S.stores_status([healthy], ["final"]) == ("ok", None)

    values = rng.normal(size=(6, 3))
    values[2, 1] = np.inf
    values[4, 0] = np.nan
    broken = write_store(tmp_path / "epoch1.zarr", values)
    status, reason = S.stores_status([healthy, broken], ["final", "epoch1"])
    assert status == "unmeasurable"
    assert reason == "checkpoint epoch1: non-finite pre-activations in 1 layer(s): b (2 values)"

    # finite in float32 but beyond float16: the measures see infinities, so unmeasurable
    big = write_store(tmp_path / "big.zarr", np.full((6, 3), 1e5), dtype="float16")
    assert S.stores_status([big], ["final"])[0] == "unmeasurable"

    skipped = S.write_skipped_store(tmp_path / "skip.zarr", "diverged", "why")
    assert S.stores_status([broken, skipped], ["epoch1", "final"]) == ("diverged", "why")


# ------------------------------------------------- model-level stages of a failed model

def diverged_metrics(path: Path) -> Path:
    S.write_json(path, {"status": "diverged", "reason": "training loss nan at epoch 1",
                        "train_loss": math.nan})
    return path


def test_skip_unless_ok_writes_the_stage_json_only_for_a_failed_model(tmp_path):
    import logging

    calls = []

    def skipped(status, reason):
        calls.append((status, reason))
        return {"status": status, "reason": reason, "measures": {"x": {"value": math.nan}}}

    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"status": "ok"}))
    log = logging.getLogger("test")
    assert S.skip_unless_ok(ok, tmp_path / "out.json", skipped, log, "x") is None
    assert S.skip_unless_ok(None, tmp_path / "out.json", skipped, log, "x") is None
    assert not (tmp_path / "out.json").exists() and not calls
    bad = diverged_metrics(tmp_path / "bad.json")
    result = S.skip_unless_ok(bad, tmp_path / "out.json", skipped, log, "x")
    assert calls == [("diverged", "training loss nan at epoch 1")]
    written = json.loads((tmp_path / "out.json").read_text())  # valid JSON: NaN became null
    assert written == {"status": "diverged", "reason": "training loss nan at epoch 1",
                       "measures": {"x": {"value": None}}}
    assert result["status"] == "diverged"


def test_blackbox_and_rotation_of_a_diverged_model_write_null_values_without_loading_it(tmp_path):
    from intraclass.measures import blackbox as B
    from intraclass.measures import rotation as R
    from intraclass.tables import model_status, stage_layer_rows, stage_values

    metrics = diverged_metrics(tmp_path / "metrics.json")
    absent = tmp_path / "absent.pt"  # never read: loading it would raise FileNotFoundError
    training = {"train_per_class": 6, "data_seed": 0, "device": "cpu", "eval_batch_size": 64}
    out = tmp_path / "blackbox.json"
    B.run_blackbox(absent, tmp_path / "absent.npz", out, {"per_subclass": 3}, "coarse", training,
                   metrics_path=metrics)
    c0 = json.loads(out.read_text())
    assert (c0["status"], c0["reason"]) == ("diverged", "training loss nan at epoch 1")
    assert c0["measures"]["c0"] == {"value": None, "subclasses": []}
    assert c0["settings"]["per_subclass"] == 3
    with pytest.raises(ValueError, match="labels: coarse"):  # a config error still fails
        B.run_blackbox(absent, absent, out, {}, "fine", training, metrics_path=metrics)

    out = tmp_path / "rotation.json"
    R.run_rotation(absent, absent, out, {"epoch1": absent}, metrics_path=metrics)
    rotation = json.loads(out.read_text())
    assert rotation["status"] == "diverged"
    assert rotation["measures"]["rotation"] == {"value": None, "layers": None, "checkpoints": {}}

    # what collect makes of them: NaN values, no layer rows, the model's status
    assert math.isnan(stage_values(c0, "blackbox")["c0"])
    assert math.isnan(stage_values(rotation, "rotation")["rotation"])
    assert stage_layer_rows(rotation, "rotation").empty
    assert model_status({}, None, {"blackbox": c0, "rotation": rotation}) == (
        "diverged", "training loss nan at epoch 1")


def test_rotation_of_an_ok_model_is_measured_and_says_ok(tmp_path):
    import torch

    from intraclass.measures import rotation as R
    from intraclass.models import build_model, save_checkpoint

    spec = {"arch": "vgg", "num_classes": 3, "in_channels": 1, "base_width": 2}
    torch.manual_seed(0)
    init = save_checkpoint(tmp_path / "init.pt", build_model(**spec), spec, {"id": "m"}, "coarse", 0)
    final = save_checkpoint(tmp_path / "model.pt", build_model(**spec), spec, {"id": "m"}, "coarse", 2)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"status": "ok", "test_acc": 0.5}))
    result = R.run_rotation(init, final, tmp_path / "r.json", metrics_path=metrics)
    assert result["status"] == "ok" and result["reason"] is None
    assert 0 < result["measures"]["rotation"]["value"] <= 2


# ------------------------------------------------------------------- the whole workflow

def diverging_config(path: Path) -> tuple[Path, str]:
    """The tiny study plus one model at lr 1e12 (SGD), which diverges in training; the
    evolution model stays a healthy one (the first of the grid)."""
    config = yaml.safe_load(TINY.read_text())
    study = config["studies"]["tiny"]
    block = dict(study["grid"][0], lr_wd=[[1e12, 0]], batch_size=[32], optimizer=["sgd"])
    study["grid"].append(block)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, "lr1e+12-wd0-bs32-sgd-do0-aug0-w1-d1-s0"


@pytest.mark.slow
def test_a_diverging_model_is_excluded_and_the_study_finishes(tmp_path):
    config, bad = diverging_config(tmp_path / "diverging.yaml")
    workdir = tmp_path / "run"
    workdir.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(config),
           "--directory", str(workdir)]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500)
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-6000:]  # every job ran: the study is complete, not partial
    results = workdir / "results" / "tiny"

    metrics = json.loads((results / "models" / bad / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and "epoch 1" in metrics["reason"]
    assert S.skipped_store(results / "activations" / bad / "final.zarr")[0] == "diverged"
    sharp = json.loads((results / "sharpness" / f"{bad}.json").read_text())
    assert sharp["status"] == "diverged" and all(m["value"] is None for m in sharp["measures"].values())
    assert pd.read_csv(results / "measures" / f"{bad}.csv").empty
    c0 = json.loads((results / "blackbox" / f"{bad}.json").read_text())
    assert c0["status"] == "diverged" and c0["measures"]["c0"]["value"] is None
    rotation = json.loads((results / "rotation" / f"{bad}.json").read_text())
    assert rotation["status"] == "diverged" and rotation["measures"]["rotation"]["layers"] is None

    table = pd.read_csv(results / "tables" / "models.csv")
    assert len(table) == 5
    row = table.set_index("model").loc[bad]
    assert row["status"] == "diverged" and row["reason"] == metrics["reason"]
    assert math.isnan(row["c3"]) and math.isnan(row["sigma1"])
    healthy = table[table["model"] != bad]
    assert (healthy["status"] == "ok").all() and healthy["c3"].notna().all()
    assert (table["device"] == "cpu").all() and (table["threads"] == 1).all()

    correct = np.load(results / "tables" / "test_correct.npz")
    assert correct["models"].tolist() == table["model"].tolist()
    assert not correct["correct"][table["model"].tolist().index(bad)].any()
    for i, model in enumerate(correct["models"]):
        if model != bad:
            assert correct["correct"][i].mean() == table.set_index("model").loc[model, "test_acc"]

    for name in ("kendall.csv", "kendall.md"):
        assert (results / "tables" / name).stat().st_size > 0
    # the notes state the sharpness target (the tiny study leaves it at its default)
    for name in ("kendall.md", "cmi.md"):
        assert "Sharpness searches target a training accuracy of 0.9" in (results / "tables" / name).read_text()
    assert table.loc[table["model"] != bad, "sharpness_target"].eq(0.9).all()
    figures = sorted(p.name for p in (results / "figures").glob("*.png"))
    assert figures, "no figure was drawn"
    assert bad in (workdir / "results" / "logs" / "tiny" / "collect.log").read_text()
