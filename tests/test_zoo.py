"""Model zoos (docs/zoo.md): the zoo config and table, axes from the table's columns, the
import of checkpoints trained elsewhere (clear errors for corrupt and mismatching files),
and, marked slow, a zoo study end to end over checkpoints written here."""

from __future__ import annotations

import copy
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from intraclass import kendall
from intraclass.config import ConfigError, load_studies, validate_config
from intraclass.evaluation import cmi
from intraclass.models import build_model, load_checkpoint
from intraclass.train import TrainOutputs
from intraclass.zoo_import import (
    CheckpointError,
    check_fit,
    example_cnn,
    import_init,
    import_model,
    read_zoo_checkpoint,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
DATASET = REPO / "resources" / "fashion_mnist_small.npz"
VGG = {"arch": "vgg", "arch_options": {"base_width": 2}}


def tiny_vgg(seed: int, width: float = 1.0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("vgg", num_classes=3, in_channels=1, width=width, base_width=2)


def write_zoo(root: Path, rows: list[dict], init: bool = False) -> Path:
    """Checkpoints (bare state_dicts of tiny VGGs, width from the row) and models.csv."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        model = tiny_vgg(i, row.get("width", 1.0))
        torch.save(model.state_dict(), root / "models" / f"{row['model']}.pt")
        if init:
            initial = tiny_vgg(100 + i, row.get("width", 1.0))
            torch.save(initial.state_dict(), root / "models" / f"{row['model']}.init.pt")
            row["init"] = f"{row['model']}.init.pt"
    pd.DataFrame(rows).to_csv(root / "models.csv", index=False)
    return root


def grid_rows() -> list[dict]:
    return [{"model": f"lr{lr}-w{w}", "lr": lr, "width": w}
            for lr, w in itertools.product((0.1, 0.01), (1.0, 1.5))]


def zoo_config(root: Path, **zoo) -> dict:
    return {
        "datasets": {"fashion_mnist_small": {"source": "bundled"}},
        "studies": {"z": {"dataset": "fashion_mnist_small",
                          "zoo": {"models": str(root / "models"), "table": str(root / "models.csv"),
                                  "arch": "vgg", "arch_options": {"base_width": 2}, "labels": "coarse",
                                  **zoo},
                          "measures": {"k": {"c1": 3, "c2": 1, "c3": 3, "c4": 1, "bimodality": 3},
                                       "layer_k": 2}}},
    }


def validated(config: dict) -> dict:
    return validate_config(config, SCHEMA, settings=False)


# ------------------------------------------------------------------- config and table

def test_a_zoo_study_validates_with_labels_axes_and_rotation_from_the_zoo(tmp_path):
    root = write_zoo(tmp_path, [*grid_rows(), {"model": "extra", "lr": 0.1, "width": 1.0, "seed": 1}])
    config = validated(zoo_config(root))
    study = load_studies(config)["z"]
    assert study.model_ids == ["lr0.1-w1.0", "lr0.1-w1.5", "lr0.01-w1.0", "lr0.01-w1.5", "extra"]
    assert config["studies"]["z"]["labels"] == "coarse"
    assert study.axes == {"lr": "lr", "width": "width"}  # seed is no axis by default
    assert study.model("extra").to_dict() == {"id": "extra", "lr": 0.1, "width": 1.0, "seed": 1.0}
    assert study.model("lr0.1-w1.0").to_dict()["seed"] is None  # empty cell
    assert study.model("extra").checkpoint == str(root / "models" / "extra.pt")
    # no init column: no layer rotation, and the study says so
    assert config["studies"]["z"]["rotation"]["enabled"] is False
    assert "layer rotation is unavailable" in study.notes[0]
    assert study.evolution == () and study.zoo.arch == "vgg"


def test_init_column_keeps_rotation_and_the_axes_can_be_chosen(tmp_path):
    root = write_zoo(tmp_path, grid_rows(), init=True)
    config = validated(zoo_config(root, axes=["width"]))
    study = load_studies(config)["z"]
    assert config["studies"]["z"]["rotation"]["enabled"] is True and not study.notes
    assert study.axes == {"width": "width"}
    assert study.model("lr0.1-w1.0").init == str(root / "models" / "lr0.1-w1.0.init.pt")


@pytest.mark.parametrize("mutate, words", [
    (lambda s: s.update(grid=[{}]), "either grid"),
    (lambda s: s.update(labels="fine"), "['labels'] belong to studies with a grid"),
    (lambda s: s.pop("zoo"), "no grid"),
    (lambda s: s["zoo"].update(modles="x"), "'modles' was unexpected"),  # a typo
    (lambda s: s["zoo"].update(arch="my-module"), "at studies.z.zoo.arch"),
    (lambda s: s["zoo"].update(arch="no_such_zoo_module:f"),
     "studies.z.zoo.arch: builder 'no_such_zoo_module:f': cannot find module no_such_zoo_module"),
    (lambda s: s["zoo"].update(axes=["lr", "momentum"]), "['momentum'] are not hyperparameter columns"),
    (lambda s: s["zoo"].update(arch_options={"norm": "batch", "blocks": 2}), "takes no option(s) ['blocks']"),
    (lambda s: s.update(evolution={"models": 1, "epochs": [1]}), "remove the evolution section"),
    (lambda s: s["zoo"].update(models="nowhere"), "studies.z.zoo.models: nowhere is not a directory"),
])
def test_zoo_mistakes_stop_before_any_job(tmp_path, mutate, words):
    config = zoo_config(write_zoo(tmp_path, grid_rows()))
    mutate(config["studies"]["z"])
    with pytest.raises(ConfigError) as error:
        validated(config)
    assert words in str(error.value)


@pytest.mark.parametrize("table, words", [
    (pd.DataFrame({"id": ["a"], "lr": [1]}), "has no 'model' column"),
    (pd.DataFrame({"model": ["a b", "c"], "lr": [1, 2]}), "model id(s) ['a b'] are not valid"),
    (pd.DataFrame({"model": ["a", "a"], "lr": [1, 2]}), "lists model id(s) ['a'] twice"),
    (pd.DataFrame({"model": ["a", "b"], "lr": [1, 2], "c1": [0, 0]}), "column(s) ['c1'] are names"),
    (pd.DataFrame({"model": ["a", "b"], "lr": [1, 2], "status": [0, 0]}), "column(s) ['status'] are names"),
    (pd.DataFrame({"model": ["a", "b"], "lr": [1, 2], "checkpoint": ["a.pt", "gone.pt"]}),
     "do not exist, e.g. ['" ),
    (pd.DataFrame({"model": ["a", "b"], "lr": [1, 1], "wd": [0, 1e-4], "seed": [0, 0]}).iloc[[0]],
     "has no group"),
])
def test_bad_tables_are_named_before_any_job(tmp_path, table, words):
    root = write_zoo(tmp_path, [{"model": "a", "lr": 1}, {"model": "b", "lr": 2}])
    table.to_csv(root / "models.csv", index=False)
    with pytest.raises(ConfigError) as error:
        validated(zoo_config(root))
    assert words in str(error.value)
    assert "studies.z.zoo" in str(error.value)


def test_k_beyond_a_registered_zoo_models_size_stops_before_any_job(tmp_path):
    """The grid's check and wording, on each table row's factors (width 1.0 at base width 2:
    8 layers, 2 + 2 + 4 + 4 + 8 + 8 + 16 + 16 = 60 neurons; width 1.5: 90)."""
    config = zoo_config(write_zoo(tmp_path, grid_rows()))
    config["studies"]["z"]["measures"]["k"]["c1"] = 60
    validate_config(copy.deepcopy(config), SCHEMA)  # at the limit of the smaller models
    config["studies"]["z"]["measures"]["k"]["c1"] = 61
    with pytest.raises(ConfigError, match=r"^studies\.z\.measures\.k\.c1 = 61 exceeds the 60 neurons of model "
                                          r"lr0\.1-w1\.0 \(measured layer widths \[2, 2, 4, 4, 8, 8, 16, 16\]\)$"):
        validate_config(copy.deepcopy(config), SCHEMA)
    config["studies"]["z"]["measures"]["k"].update(c1=3, c4=9)
    with pytest.raises(ConfigError, match=r"studies\.z\.measures\.k\.c4 = 9 exceeds the 8 measured layers"):
        validate_config(copy.deepcopy(config), SCHEMA)
    validate_config(copy.deepcopy(config), SCHEMA, settings=False)  # a job's own parse leaves it to the main process


def test_k_beyond_a_builders_zoo_model_fails_its_import_naming_the_key(tmp_path):
    """A builder's sizes are known once the import job builds the model (intraclass.config.sizes_check)."""
    from types import SimpleNamespace

    from intraclass.config import sizes_check

    arch = "intraclass.zoo_import:example_cnn"
    config = zoo_config(write_zoo(tmp_path / "zoo", grid_rows()), arch=arch, arch_options={"base_width": 4})
    config["studies"]["z"]["measures"]["k"]["c2"] = 3  # example_cnn has 2 layers
    job = SimpleNamespace(wildcards=SimpleNamespace(study="z"), config=validate_config(config, SCHEMA))
    torch.manual_seed(0)
    net = example_cnn(3, 1, {"width": 0.5}, base_width=4)
    with pytest.raises(ConfigError, match=r"^studies\.z\.measures\.k\.c2 = 3 exceeds the 2 measured layers of "
                                          r"model b \(measured layer widths \[2, 4\]\)$"):
        import_tiny(tmp_path, net.state_dict(), {"arch": arch, "arch_options": {"base_width": 4}},
                    {"id": "b", "width": 0.5}, check_sizes=sizes_check(job))
    assert not (tmp_path / "out" / "model.pt").exists()


def test_existing_configs_keep_their_axes():
    config = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), SCHEMA,
                             settings=False)
    study = next(iter(load_studies(config).values()))
    assert study.axes == list(kendall.AXES) and study.zoo is None and study.notes == []


# ------------------------------------------------------------------------------- axes

def reference_groups(frame: pd.DataFrame, axes: list[str], keys: list[str]) -> dict[str, list[list[int]]]:
    """Groups by the definition: for each axis, the classes of 'equal on every other key'."""
    out = {}
    for axis in axes:
        others = [k for k in keys if k != axis]
        classes: dict[tuple, list[int]] = {}
        for i, row in frame.iterrows():
            classes.setdefault(tuple(row[k] for k in others), []).append(i)
        out[axis] = sorted(sorted(g) for g in classes.values() if len(g) >= 2)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zoo_axis_groups_match_the_definition_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    n = 40
    frame = pd.DataFrame({"momentum": rng.choice([0.0, 0.9], n), "act": rng.choice(["relu", "tanh", "gelu"], n),
                          "lr": rng.choice([0.1, 0.01], n), "seed": rng.integers(0, 2, n),
                          "note": rng.normal(size=n)})  # an annotation: not an axis, ignored
    axes = ["momentum", "act", "lr"]
    groups = kendall.axis_groups(frame, {a: a for a in axes})
    got = {a: sorted(sorted(g.tolist()) for g in members) for a, members in groups.items()}
    assert got == reference_groups(frame, axes, [*axes, "seed"])


def test_zoo_axes_give_the_kendall_and_cmi_columns():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame([{"model": f"m{i}", "depth_factor": d, "act": a, "seed": s}
                          for i, (d, a, s) in enumerate(itertools.product((1, 2, 3), ("relu", "tanh"), (0, 1)))])
    frame["test_acc"] = rng.uniform(0.5, 0.9, len(frame))
    frame["c1"] = frame["test_acc"] + rng.normal(0, 0.05, len(frame))
    axes = {"depth_factor": "depth_factor", "act": "act"}
    table = kendall.kendall_table(frame, axes=axes)
    assert list(table.columns) == ["depth_factor", "act", "total"]
    # psi of act: pairs (relu, tanh) at equal depth and seed, by the plain tau
    pairs = [kendall.tau_a_reference(part["c1"], part["test_acc"])
             for _, part in frame.groupby(["depth_factor", "seed"])]
    assert table.loc["c1", "act"] == pytest.approx(np.mean(pairs))
    # the paper's names are not columns of a zoo: a mapping is taken literally
    codes = cmi.axis_codes(frame, axes)
    assert codes.shape == (len(frame), 2) and codes[:, 1].max() == 1
    with pytest.raises(ValueError, match="unknown Kendall axis"):
        kendall.axis_groups(frame, ["depth_factor"])


# ------------------------------------------------------------------------- checkpoints

def test_corrupt_and_foreign_files_are_errors_naming_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match=f"zoo checkpoint {corrupt} is corrupt"):
        read_zoo_checkpoint(corrupt)
    module = tmp_path / "module.pt"
    torch.save(tiny_vgg(0), module)  # a whole pickled module: refused by weights_only=True
    with pytest.raises(CheckpointError, match=f"{module} is corrupt or not a checkpoint"):
        read_zoo_checkpoint(module)
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(CheckpointError, match="holds a list that is not a state_dict"):
        read_zoo_checkpoint(listed)


def test_wrapped_and_data_parallel_checkpoints_are_read(tmp_path):
    state = tiny_vgg(0).state_dict()
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "dp.pt")
    read = read_zoo_checkpoint(tmp_path / "dp.pt")
    assert list(read["state_dict"]) == list(state) and read["normalization"] is None
    norm = {"mean": [0.5], "std": [0.25]}
    torch.save({"state_dict": state, "normalization": norm, "epoch": 7}, tmp_path / "w.pt")
    read = read_zoo_checkpoint(tmp_path / "w.pt")
    assert read["normalization"] == norm and read["epoch"] == 7


def test_a_mismatching_checkpoint_names_the_file_and_the_keys(tmp_path):
    state = tiny_vgg(0, width=1.5).state_dict()  # wider convs than the model
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    with pytest.raises(CheckpointError) as error:
        check_fit(tiny_vgg(0), state, tmp_path / "m.pt", "vgg")
    text = str(error.value)
    assert f"zoo checkpoint {tmp_path / 'm.pt'} does not match the architecture vgg" in text
    assert "missing keys ['fc.bias']" in text and "unexpected keys ['extra.weight']" in text
    assert "stages.0.0.conv.weight (file (3, 1, 3, 3), model (2, 1, 3, 3))" in text


def import_tiny(tmp_path: Path, state: dict, zoo: dict, model: dict | None = None,
                check_sizes=None) -> tuple[dict, TrainOutputs]:
    path = tmp_path / "in.pt"
    torch.save(state, path)
    out = tmp_path / "out"
    outputs = TrainOutputs(model=out / "model.pt", metrics=out / "metrics.json", history=out / "history.csv",
                           ckpt=out / "ckpt")
    metrics = import_model(DATASET, path, outputs, model or {"id": "m", "width": 1.0},
                           {"labels": "coarse", "normalization": None, **zoo},
                           {"train_per_class": 5, "data_seed": 0, "device": "cpu", "eval_batch_size": 700},
                           check_sizes=check_sizes)
    return metrics, outputs


def test_import_writes_the_train_rule_outputs_with_float32_accuracies(tmp_path):
    from intraclass.augment import channel_stats
    from intraclass.train import load_train_data

    net = tiny_vgg(3)
    metrics, outputs = import_tiny(tmp_path, net.state_dict(), VGG)
    assert metrics["status"] == "ok" and metrics["normalization_source"] == "training set"
    # reference: the plain float32 forward pass over the test split
    data = load_train_data(DATASET, "coarse", {"train_per_class": 5, "data_seed": 0})
    mean, std = channel_stats(data.x_train)
    x = (torch.from_numpy(data.x_test).permute(0, 3, 1, 2).float() / 255 - float(mean[0])) / float(std[0])
    with torch.no_grad():
        expected = (net.eval()(x).argmax(1).numpy() == data.y_test)
    correct = np.load(outputs.test_correct)
    assert correct.dtype == bool and (correct == expected).mean() > 0.999
    assert metrics["test_acc"] == correct.mean() and metrics["n_train"] == 50
    # model.pt is this project's checkpoint: every later stage loads it
    model, checkpoint = load_checkpoint(outputs.model)
    assert checkpoint["labels"] == "coarse" and checkpoint["hparams"]["id"] == "m"
    assert checkpoint["normalization"]["mean"] == pytest.approx(mean.tolist())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in model.state_dict().items())
    assert outputs.history.read_text() == "epoch,lr,train_loss,train_acc,seconds\n"
    assert outputs.ckpt.is_dir() and not any(outputs.ckpt.iterdir())
    saved = json.loads(outputs.metrics.read_text())
    assert saved["arch_spec"]["arch"] == "vgg" and saved["imported_from"].endswith("in.pt")


def test_normalization_comes_from_the_checkpoint_then_the_config(tmp_path):
    state = tiny_vgg(0).state_dict()
    stored = {"mean": [0.1], "std": [0.2]}
    metrics, outputs = import_tiny(tmp_path, {"state_dict": state, "normalization": stored},
                                   {**VGG, "normalization": {"mean": [0.0], "std": [1.0]}})
    assert metrics["normalization_source"] == "checkpoint"
    assert torch.load(outputs.model, weights_only=True)["normalization"] == stored
    metrics, outputs = import_tiny(tmp_path, state, {**VGG, "normalization": {"mean": [0.0], "std": [1.0]}})
    assert metrics["normalization_source"] == "zoo config"
    with pytest.raises(CheckpointError, match="must give 1 channel"):
        import_tiny(tmp_path, state, {**VGG, "normalization": {"mean": [0, 0, 0], "std": [1, 1, 1]}})


def test_non_finite_weights_mark_the_model_diverged(tmp_path):
    state = tiny_vgg(0).state_dict()
    state["fc.weight"][0, 0] = float("nan")
    metrics, outputs = import_tiny(tmp_path, state, VGG)
    assert metrics["status"] == "diverged" and "fc.weight" in metrics["reason"]
    assert not np.load(outputs.test_correct).any()


def test_a_builder_model_round_trips_and_its_init_is_imported(tmp_path):
    arch = "intraclass.zoo_import:example_cnn"
    torch.manual_seed(0)
    net = example_cnn(3, 1, {"width": 0.5}, base_width=4)
    _metrics, outputs = import_tiny(tmp_path, net.state_dict(), {"arch": arch, "arch_options": {"base_width": 4}},
                                   {"id": "b", "width": 0.5})
    model, checkpoint = load_checkpoint(outputs.model)  # rebuilt through the builder
    assert checkpoint["arch_spec"] == {"arch": arch, "num_classes": 3, "in_channels": 1,
                                       "hparams": {"width": 0.5}, "options": {"base_width": 4}}
    assert [s.width for s in model.measured_sites()] == [2, 4]
    torch.manual_seed(1)
    torch.save(example_cnn(3, 1, {"width": 0.5}, base_width=4).state_dict(), tmp_path / "init.pt")
    import_init(tmp_path / "init.pt", outputs.model, tmp_path / "out" / "init.pt")
    init = torch.load(tmp_path / "out" / "init.pt", weights_only=True)
    assert init["epoch"] == 0 and init["arch_spec"] == checkpoint["arch_spec"]
    wrong = tmp_path / "wrong_init.pt"
    torch.save(example_cnn(3, 1, {"width": 1.0}, base_width=4).state_dict(), wrong)
    with pytest.raises(CheckpointError, match=f"zoo checkpoint {wrong} does not match"):
        import_init(wrong, outputs.model, tmp_path / "out" / "init2.pt")


def test_builders_must_be_importable_modules_with_measured_sites(tmp_path, monkeypatch):
    with pytest.raises(ImportError, match="cannot import no_such_zoo_module from the Python path"):
        build_model("no_such_zoo_module:f", num_classes=2, in_channels=1)
    with pytest.raises(ImportError, match="has no function nothing"):
        build_model("intraclass.zoo_import:nothing", num_classes=2, in_channels=1)
    with pytest.raises(TypeError, match="does not declare its measured sites"):
        build_model("torch.nn:Identity", num_classes=2, in_channels=1)
    (tmp_path / "siteless.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Linear):\n    def measured_sites(self):\n        return []\n\n\n"
        "def build(num_classes, in_channels, hparams):\n    return Net(in_channels, num_classes)\n")
    monkeypatch.chdir(tmp_path)  # a builder file in the working directory
    with pytest.raises(TypeError, match=r"builder 'siteless:build': Net\.measured_sites\(\) lists no layer"):
        build_model("siteless:build", num_classes=2, in_channels=1)


# ------------------------------------------------------------- the README's example

def test_the_example_zoo_config_validates_and_imports_instead_of_training(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "tools"))
    from make_example_zoo import make_zoo

    monkeypatch.chdir(tmp_path)  # the config's paths are relative to the working directory
    make_zoo(Path("results/zoos/example"), per_class=2, epochs=1)
    config = yaml.safe_load((REPO / "config" / "example_zoo.yaml").read_text())
    study = load_studies(validate_config(config, SCHEMA, settings=False))["example_zoo"]
    assert len(study.model_ids) == 8 and study.axes == {"lr": "lr", "width": "width"}
    assert study.zoo.has_init and study.zoo.arch == "intraclass.zoo_import:example_cnn"
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--cores", "1", "-s",
                          str(REPO / "Snakefile"), "--configfile", str(REPO / "config" / "example_zoo.yaml")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", out, re.M)}
    assert counts["import_model"] == counts["import_init"] == counts["rotation"] == 8
    assert "train" not in counts and "paper_vs_run" not in counts and "figure_6" not in counts


# ---------------------------------------------------------------- end to end (slow)

def e2e_config(path: Path, zoo_root: Path) -> Path:
    config = yaml.safe_load((REPO / "config" / "example_zoo.yaml").read_text())
    study = config["studies"].pop("example_zoo")
    study["zoo"].update(models=str(zoo_root / "models"), table=str(zoo_root / "models.csv"))
    study["analysis"] = {"bootstrap": {"resamples": 50}}
    config["studies"]["zoo"] = study
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.slow
def test_a_zoo_study_end_to_end_with_a_corrupt_and_a_mismatching_checkpoint(tmp_path):
    sys.path.insert(0, str(REPO / "tools"))
    from make_example_zoo import make_zoo

    root = tmp_path / "zoo"
    good = make_zoo(root, lrs=(0.02, 0.1), widths=(0.5, 1.0), seeds=(0,), per_class=100, epochs=1)
    (root / "models" / "corrupt.pt").write_bytes(b"PK\x03\x04 truncated download")
    torch.manual_seed(0)
    torch.save(tiny_vgg(0).state_dict(), root / "models" / "mismatch.pt")  # another architecture
    bad = pd.DataFrame([{**good.iloc[0].to_dict(), "model": m, "checkpoint": f"{m}.pt"}
                        for m in ("corrupt", "mismatch")])
    pd.concat([good, bad]).to_csv(root / "models.csv", index=False)
    config = e2e_config(tmp_path / "zoo.yaml", root)
    workdir = tmp_path / "run"
    workdir.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", str(config), "--directory",
           str(workdir)]
    run = subprocess.run([*cmd, "--keep-going"], cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert run.returncode != 0  # the two bad imports fail, clearly, and the rest went on
    logs = workdir / "results" / "logs" / "zoo" / "import_model"
    corrupt_log = (logs / "corrupt.log").read_text()
    assert f"zoo checkpoint {root / 'models' / 'corrupt.pt'} is corrupt" in corrupt_log
    mismatch_log = (logs / "mismatch.log").read_text()
    assert f"{root / 'models' / 'mismatch.pt'} does not match the architecture" in mismatch_log
    assert "unexpected keys ['stages.0.0.conv.weight'" in mismatch_log
    assert "missing keys ['blocks.0.0.weight'" in mismatch_log
    results = workdir / "results" / "zoo"
    assert all((results / "measures" / f"{m}.csv").is_file() for m in good["model"])

    good.to_csv(root / "models.csv", index=False)  # the owner drops the bad rows; nothing reruns but the tables
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert "import_model" not in run.stdout + run.stderr.split("Job stats")[-1].split("Select jobs")[0]
    table = pd.read_csv(results / "tables" / "models.csv")
    assert table["model"].tolist() == good["model"].tolist() and (table["status"] == "ok").all()
    assert {"lr", "width", "seed"} <= set(table.columns) and "init" not in table.columns
    correct = np.load(results / "tables" / "test_correct.npz")
    assert correct["correct"].shape == (4, 2000)
    np.testing.assert_allclose(correct["correct"].mean(axis=1), table["test_acc"])
    # the zoo's own accuracies (its pixels in [0, 1], declared as zoo.normalization) agree
    np.testing.assert_allclose(table["test_acc"], good["test_acc"], atol=1e-3)
    kendall_csv = pd.read_csv(results / "tables" / "kendall.csv", index_col=0)
    assert [c for c in kendall_csv.columns if not c.endswith(("_lo", "_hi"))] == ["lr", "width", "total"]
    assert kendall_csv[["lr", "width"]].notna().any().all() and kendall_csv["total_lo"].notna().any()
    cmi_csv = pd.read_csv(results / "tables" / "cmi.csv", index_col=0)
    assert {"lr", "width", "K"} <= set(cmi_csv.columns)
    assert "lr" in (results / "tables" / "kendall.md").read_text().splitlines()[0]
    rotation = json.loads((results / "rotation" / f"{good['model'][0]}.json").read_text())
    assert rotation["status"] == "ok"
    figures = {p.name for p in (results / "figures").glob("*.png")}
    assert {"fig3.png", "fig4.png", "fig5.png", "figrotation.png", "fig11.png"} <= figures
    assert not (results / "tables" / "paper_vs_run.csv").exists()
