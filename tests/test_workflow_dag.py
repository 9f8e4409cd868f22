"""The workflow's DAG: the paper's 528 trainings, every stage present, bad configs stop early."""

from pathlib import Path

import pytest
import yaml
from workflow_runs import dry_run

ROOT = Path(__file__).resolve().parents[1]
def test_paper_config_lists_528_trainings_and_every_stage(tmp_path):
    code, counts, out = dry_run("--configfile", str(ROOT / "config" / "paper.yaml"), "-d", str(tmp_path))
    assert code == 0, out
    assert counts["train"] == 192 + 192 + 144
    assert counts["sharpness"] == 528
    assert counts["measures"] == 528
    # final weights of every model + 9 checkpoints of the 4 evolution models (one study)
    assert counts["extract"] == 528 + 4 * 9
    assert counts["prepare_dataset"] == 2
    assert counts["collect"] == counts["kendall"] == 3
    # figures 6, 7, 11 only where they apply (evolution models; superclass training)
    assert counts["figure_3"] == counts["figure_4"] == counts["figure_8"] == 3
    assert counts["figure_6"] == counts["figure_7"] == counts["figure_11"] == 1
    # 528, not 528 + 28: the default study is not merged into a config given on the command line


def test_default_config_dry_run(tmp_path):
    # an empty working directory, not the checkout: `make run` may have filled its results/
    code, counts, out = dry_run("--configfile", str(ROOT / "config" / "config.yaml"), "-d", str(tmp_path))
    assert code == 0, out
    assert counts["train"] == 28
    assert counts["extract"] == 28 + 2 * 3


def write_config(tmp_path, mutate):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    mutate(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["studies"]["default"]["training"].update(epoch=3),
         "invalid configuration at studies.default.training: "
         "Additional properties are not allowed ('epoch' was unexpected)"),
        (lambda c: c["studies"]["default"]["arch"].update(name="alexnet"),
         "invalid configuration at studies.default.arch.name: 'alexnet' does not match '^(vgg|resnet|vit|"),
        (lambda c: c["studies"]["default"].update(dataset="cifar10"),
         "studies.default.dataset: 'cifar10' has no entry under 'datasets'"),
        # mistakes that used to fail only after training (issue 17): now in the dry run
        (lambda c: c["studies"]["default"]["evolution"].update(epochs=[1, 1]),
         "studies.default.evolution.epochs: [1, 1] lists epoch(s) [1] twice"),
        (lambda c: c["studies"]["default"]["measures"].update(layer_k=9),
         "studies.default.measures.layer_k = 9 exceeds the 8 neurons of the narrowest layer"),
        (lambda c: c["studies"]["default"]["extract"].update(per_class=200),
         "studies.default.extract.per_class = 200 exceeds training.train_per_class = 150"),
        (lambda c: c["studies"]["default"]["sharpness"]["sigma"].update(draw=3),
         "studies.default.sharpness.sigma: unknown key 'draw'"),
        (lambda c: c["studies"]["default"]["figures"]["fig5"].update(kk=3),
         "studies.default.figures.fig5: unknown key(s) ['kk']"),
        (lambda c: c["studies"]["default"].update(grid=[{
            "lr_wd": [[0.1, 0]], "batch_size": [32], "optimizer": ["sgd"],
            "dropout_aug": [[0, False]], "width_depth": [[1, 1]]}]),
         "studies.default.grid: no two of its 1 model(s) differ on exactly one axis"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, mutate, expected):
    bad = write_config(tmp_path, mutate)
    code, counts, out = dry_run("--configfile", str(bad), "-d", str(tmp_path))
    assert code != 0
    assert expected in out
    assert "train" not in counts and not (tmp_path / "results").exists()
