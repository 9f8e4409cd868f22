"""Paper vs this run (intraclass.evaluation.paper): the shipped paper tables, study matching,
and the comparison table on a synthetic models table shaped like the paper's CIFAR-10 VGG
study (144 models, Table 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from intraclass import kendall
from intraclass.config import expand_grid
from intraclass.evaluation import paper as P
from intraclass.evaluation.tables import write_evaluation
from intraclass.names import AXES, TIDY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_tables_are_the_papers_three_studies():
    tables = P.read_paper_tables()
    assert sorted(tables) == [1, 2, 3]
    assert [(t.dataset, t.arch, t.labels, t.models) for t in tables.values()] == [
        ("cifar100", "resnet", "coarse", 192), ("cifar100", "resnet", "fine", 192), ("cifar10", "vgg", "fine", 144)]
    assert list(tables[1].values.index) == ["c1", "c2", "c3", "c4", "sigma1", "sigma2", "alpha1", "alpha2"]
    assert list(tables[3].values.index) == ["c3", "c4", "sigma1", "sigma2", "alpha1", "alpha2"]
    for table in tables.values():
        assert list(table.values.columns) == [*AXES, "total"] and table.values.notna().all().all()
        # each total is the mean of its 8 axes, up to the 2-decimal rounding of 9 numbers
        np.testing.assert_allclose(table.values[list(AXES)].mean(axis=1), table.values["total"], atol=0.01)
    # spot checks against the paper's text (Table 1's c1 row, Table 3's 1/alpha' row)
    assert tables[1].values.loc["c1"].tolist() == [0.88, 0.31, 0.38, 0.67, 0.96, 1.0, 0.81, 0.69, 0.71]
    assert tables[3].values.loc["alpha1"].tolist() == [0.94, 0.89, 0.61, 0.53, 0.67, 0.77, 0.15, 0.06, 0.58]


@pytest.mark.parametrize("facts, number", [
    (("cifar10", "vgg", "fine"), 3), (("cifar100", "resnet", "coarse"), 1), (("cifar100", "resnet", "fine"), 2),
    (("cifar10", "resnet", "fine"), None), (("fashion_mnist", "vgg", "coarse"), None)])
def test_a_study_matches_by_dataset_arch_and_labels(facts, number):
    found = P.match_paper_table(*facts)
    assert (found.number if found else None) == number


def test_bad_paper_tables_name_the_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("# source\ntable,dataset,arch,labels,models,measure,axis,value\n1,a,vgg,fine,2,c9,total,0.5\n")
    with pytest.raises(ValueError, match=r"t.csv: unknown measure.*c9"):
        P.read_paper_tables(path)
    path.write_text("table,dataset,arch,labels,models,measure,axis,value\n1,a,vgg,fine,2,c3,total,1.5\n")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        P.read_paper_tables(path)


def vgg_cifar10_models(seed: int = 0, images: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    """The paper's VGG/CIFAR-10 grid (config/paper.yaml) with synthetic results: test
    accuracy rises with c3; c4 is noise; sigma1 (a complexity measure) falls with accuracy.
    Returns models.csv's frame and the (models, images) test correctness."""
    study = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["studies"]["vgg_cifar10"]
    models = pd.DataFrame([m.to_dict() for m in expand_grid(study["grid"], [0], "vgg")])
    models = models.rename(columns={"id": "model"})
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=len(models))
    accuracy = 0.6 + 0.05 * quality
    correct = rng.random((len(models), images)) < accuracy[:, None]
    models["test_acc"] = correct.mean(axis=1)
    models["train_acc"] = 1.0
    models["status"] = "ok"
    models["c3"] = quality + 0.3 * rng.normal(size=len(models))
    models["c4"] = rng.normal(size=len(models))
    models["sigma1"] = -quality + 0.5 * rng.normal(size=len(models))
    return models, correct


def test_paper_vs_run_on_a_synthetic_vgg_cifar10_study(tmp_path):
    models, correct = vgg_cifar10_models()
    assert len(models) == 144
    models.to_csv(tmp_path / "models.csv", index=False)
    pd.DataFrame(columns=list(TIDY_COLUMNS)).to_csv(tmp_path / "measures.csv", index=False)
    np.savez(tmp_path / "correct.npz", models=models["model"].to_numpy(str), correct=correct)
    names = ("csv", "md", "tex", "k_curve", "cmi_csv", "cmi_md", "cmi_tex")
    out = {name: tmp_path / f"kendall_{name}" for name in names}
    run, _ = write_evaluation(tmp_path / "models.csv", tmp_path / "measures.csv", tmp_path / "correct.npz", out,
                              k={"c3": 30, "c4": 1}, bootstrap_settings={"resamples": 40, "seed": 0})
    files = {"csv": tmp_path / "paper_vs_run.csv", "md": tmp_path / "paper_vs_run.md"}
    table = P.write_paper_vs_run(out["csv"], tmp_path / "models.csv", files, study="vgg", dataset="cifar10",
                                 arch="vgg", labels="fine", k={"c3": 30, "c4": 1},
                                 sharpness_note="Sharpness searches target X.")
    paper = P.read_paper_tables()[3]
    # same rows as the paper's Table 3, each as a paper row then this run's row; same columns
    assert table["measure"].tolist() == [m for m in paper.values.index for _ in range(2)]
    assert table["source"].tolist() == [P.PAPER, P.RUN] * len(paper.values)
    columns = [*AXES, "total"]
    written = pd.read_csv(files["csv"])
    assert written.columns.tolist()[:11] == ["measure", "source", *columns]
    papers = written[written.source == P.PAPER].set_index("measure")
    np.testing.assert_allclose(papers[columns].to_numpy(), paper.values.to_numpy())
    assert papers[[f"total{kendall.LOW}"]].isna().all().all()  # the paper has no intervals
    ours = written[written.source == P.RUN].set_index("measure")
    for measure in ("c3", "c4", "sigma1"):
        for column in columns:  # values and intervals are kendall.csv's
            for name in (column, f"{column}{kendall.LOW}", f"{column}{kendall.HIGH}"):
                assert ours.at[measure, name] == pytest.approx(run.at[measure, name], abs=1e-5)
        assert ours.loc[measure, [f"{c}{kendall.LOW}" for c in columns]].notna().all()
    assert ours.at["c3", "total"] > 0.3 and ours.at["sigma1", "total"] > 0.3  # oriented like the paper
    assert ours.loc[["sigma2", "alpha1", "alpha2"], columns].isna().all().all()  # not computed here
    text = files["md"].read_text()
    c3_run = ours.loc["c3"]
    assert "| 0.92 | 0.83 | 0.67 |" in text  # the paper's c3 row
    assert f"{c3_run['total']:.2f} [{c3_run['total_lo']:.2f}, {c3_run['total_hi']:.2f}]" in text
    assert "Table 3 (vgg, cifar10 classes, 144 models)" in text and "144 usable models" in text
    assert "Sharpness searches target X." in text and "Not computed in this run: 1/σ''" in text


def test_a_study_without_a_paper_table_is_refused(tmp_path):
    with pytest.raises(ValueError, match="matches none of the paper's tables"):
        P.write_paper_vs_run(tmp_path / "k.csv", tmp_path / "m.csv", {}, study="default",
                             dataset="fashion_mnist_small", arch="vgg", labels="coarse")
