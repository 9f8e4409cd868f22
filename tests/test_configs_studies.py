"""The shipped study configs beyond the default one: config/gpu.yaml (the single-GPU paper
study) and config/evidence.yaml (the CPU evidence study) validate, keep every axis's
groups, match what their comments state, and dry-run with the job counts they state."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_runs import dry_run

from intraclass.config import load_studies, validate_config
from intraclass.evaluation.paper import match_paper_table
from intraclass.kendall import axis_groups
from intraclass.names import AXES

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def studies(name: str) -> dict:
    config = validate_config(yaml.safe_load((ROOT / "config" / name).read_text()), SCHEMA)
    return load_studies(config)


def groups_per_axis(study) -> dict[str, list[int]]:
    """Axis -> sizes of its groups (models equal on every other axis and the seed)."""
    frame = pd.DataFrame([m.to_dict() for m in study.models])
    return {axis: sorted(len(g) for g in members) for axis, members in axis_groups(frame).items()}


def dry_run_counts(config: str, workdir: Path) -> dict[str, int]:
    code, counts, out = dry_run("--configfile", str(ROOT / "config" / config), "-d", str(workdir))
    assert code == 0, out
    return counts


def axis_values(study) -> dict[str, set]:
    frame = pd.DataFrame([m.to_dict() for m in study.models])
    return {c: set(frame[c]) for c in ("lr", "weight_decay", "batch_size", "optimizer", "dropout", "augment",
                                       "width", "depth")}


def test_gpu_study_is_a_sub_grid_of_the_papers_with_every_axis_grouped():
    ours, paper = studies("gpu.yaml"), studies("paper.yaml")
    assert {n: len(s.models) for n, s in ours.items()} == {"vgg_cifar10": 32, "resnet_cifar100_coarse": 36}
    for name, study in ours.items():
        s = study.settings
        assert match_paper_table(s["dataset"], s["arch"]["name"], s["labels"]).number == \
            {"vgg_cifar10": 3, "resnet_cifar100_coarse": 1}[name]
        # every model is one of the paper's configurations, every axis keeps all its values
        assert {m.id for m in study.models} <= {m.id for m in paper[name].models}
        assert axis_values(study) == axis_values(paper[name])
        groups = groups_per_axis(study)
        assert all(len(groups[a]) >= 4 for a in AXES), groups
        assert s["training"]["epochs"] < paper[name].settings["training"]["epochs"]
        assert s["training"]["train_per_class"] is None and s["training"]["device"] == "cuda"


def test_evidence_study_shape_and_budget_arithmetic():
    ours = studies("evidence.yaml")
    assert {s.settings["labels"] for s in ours.values()} == {"fine", "coarse"}
    config = yaml.safe_load((ROOT / "config" / "evidence.yaml").read_text())
    assert config["datasets"]["fashion_mnist"] == {"source": "local", "root": "/usr/share/datasets/fashion-mnist"}
    image_steps = 0
    for study in ours.values():
        s = study.settings
        assert s["dataset"] == "fashion_mnist" and len(study.models) == 36
        groups = groups_per_axis(study)
        assert all(len(groups[a]) >= 4 for a in AXES), groups
        assert groups["learning_rate"] == [3] * 4 and groups["dropout"] == [3] * 4
        image_steps += len(study.models) * s["training"]["train_per_class"] * 10 * s["training"]["epochs"]
    assert image_steps == 72 * 4000 * 20  # "5.8 M image-steps" in the config's budget


@pytest.mark.parametrize("config, expected", [
    ("gpu.yaml", {"prepare_dataset": 2, "train": 68, "extract": 68 + 2 * 7, "sharpness": 68, "blackbox": 36,
                  "rotation": 68, "measures": 68, "collect": 2, "kendall": 2, "paper_vs_run": 2, "total": 416}),
    ("evidence.yaml", {"prepare_dataset": 1, "train": 72, "extract": 72 + 2 * 4, "sharpness": 72, "blackbox": 36,
                       "rotation": 72, "measures": 72, "collect": 2, "kendall": 2, "total": 427}),
])
def test_study_configs_dry_run_with_the_stated_job_counts(config, expected, tmp_path):
    counts = dry_run_counts(config, tmp_path)
    assert {k: counts.get(k, 0) for k in expected} == expected
    # the paper comparison runs for the GPU study's two studies, never for Fashion-MNIST
    assert counts.get("paper_vs_run", 0) == (2 if config == "gpu.yaml" else 0)
    # the counts the config's comments state
    text = (ROOT / "config" / config).read_text()
    assert f"{expected['total']} jobs" in text


def test_example_architectures_config_is_a_vit_a_group_norm_vgg_and_a_builder(tmp_path):
    """README "Your own architecture": the example's three studies validate, build the
    architectures they name, and dry-run (the bundled data, no download)."""
    loaded = studies("example_architectures.yaml")
    assert loaded["vit_small"].settings["arch"]["name"] == "vit"
    assert loaded["vgg_groupnorm"].settings["arch"]["norm"] == "group"
    assert loaded["builder_cnn"].settings["arch"] == {"name": "intraclass.zoo_import:example_cnn",
                                                      "base_width": 8, "layers": 3}
    counts = dry_run_counts("example_architectures.yaml", tmp_path)
    assert counts["train"] == 12 and counts["measures"] == 12 and counts["kendall"] == 3, counts


def load_script(relative: str):
    """A script of the repository (not a package module) imported by its path."""
    import importlib.util

    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def leaves(tree: dict, prefix: tuple = ()) -> dict[tuple, object]:
    """{path of keys: value} of the non-dict values of a nested dict."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(leaves(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def test_default_study_designs_validate_and_change_only_their_keys():
    """benchmarks/default_designs.py: each design is the default study with its overrides,
    a complete config that validates, with every axis still grouped."""
    designs = load_script("benchmarks/default_designs.py")
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    (base,) = default["studies"].values()
    assert len(designs.DESIGNS) >= 3
    for name, (_, overrides) in designs.DESIGNS.items():
        config = designs.design_config(name)
        (study_name, study), = config["studies"].items()
        assert study_name == f"design_{name}"
        flat_study, flat_base, flat_overrides = leaves(study), leaves(base), leaves(overrides)
        assert set(flat_study) == set(flat_base) | set(flat_overrides), name
        for path, value in flat_study.items():
            assert value == flat_overrides.get(path, flat_base.get(path)), (name, path)
        (loaded,) = load_studies(validate_config(config, SCHEMA)).values()
        assert all(groups_per_axis(loaded).values()), name
    # the default study is the design the comparison kept, key for key
    assert designs.design_config(designs.DEFAULT)["studies"][f"design_{designs.DEFAULT}"] == base
    assert designs.merged({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4}) == {"a": {"b": 1, "c": 3}, "d": 4}


def test_publish_evidence_runs_the_study_then_each_variant_without_retraining(tmp_path, monkeypatch):
    """tools/publish_evidence.py: the study, its files copied, then each variant asked for
    its tables alone (targets before --configfile, code trigger off) under a config with
    the variant's settings in every study, its tables copied to docs/evidence/<study>/<variant>/."""
    publish = load_script("tools/publish_evidence.py")
    studies_ = list(yaml.safe_load(publish.CONFIG.read_text())["studies"])
    for study in studies_:
        for folder, names in (("tables", publish.TABLES), ("figures", publish.FIGURES)):
            (tmp_path / "results" / study / folder).mkdir(parents=True, exist_ok=True)
            for name in names:
                (tmp_path / "results" / study / folder / name).write_text(f"{study}/{name}")
    calls = []
    monkeypatch.setattr(publish, "ROOT", tmp_path)
    monkeypatch.setattr(publish, "DOCS", tmp_path / "docs" / "evidence")
    monkeypatch.setattr(publish.subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    publish.main(["--cores", "2"])
    assert len(calls) == 1 + len(publish.VARIANTS)
    for cmd in calls:
        assert "code" not in cmd[cmd.index("--rerun-triggers"):] and cmd[-2] == "--configfile"
    assert calls[0][-1] == str(publish.CONFIG) and not [c for c in calls[0] if c.endswith("kendall.md")]
    expected = {"fitting": ("analysis", "min_train_acc", 0.99), "relative": ("sharpness", "target_mode", "relative")}
    for cmd, (variant, (key, name, value)) in zip(calls[1:], expected.items()):
        assert [c for c in cmd if c.endswith("kendall.md")] == [f"results/{s}/tables/kendall.md" for s in studies_]
        written = yaml.safe_load(Path(cmd[-1]).read_text())
        assert {s[key][name] for s in written["studies"].values()} == {value}, variant
        for study in studies_:
            assert (tmp_path / "docs/evidence" / study / variant / "kendall.md").exists()
    for study in studies_:
        assert (tmp_path / "docs/evidence" / study / "fig3.png").read_text() == f"{study}/fig3.png"
