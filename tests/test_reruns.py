"""Partial reruns and faults of the workflow, on the tiny study with the local executor.

The contract (README, "Rerunning one stage"): changing a downstream parameter (a measure's k,
a figure's style) never reruns training or extraction; Snakemake reruns a job when its own params,
code, input set or software env change. After one full run of tests/configs/tiny.yaml
(in a temporary directory, never the checkout's results/), each test works on its own
copy of that run and asserts on the jobs Snakemake plans (`--dry-run`) or runs:

- a new k of one measure reruns measures and what depends on them, no training,
  extraction or sharpness;
- a new figure setting reruns figures only (a per-figure setting: that figure only);
- one model redone (its files deleted, its training forced) reruns that model's chain
  only, plus the study-wide tables and figures;
- a training job killed (SIGKILL, as a node failure) mid-run resumes from resume.pt on
  rerun and ends exactly where an uninterrupted run ends;
- a job that fails leaves no output that Snakemake takes as complete, and
  `--keep-going` finishes the rest of the grid;
- a dataset prepared again with the same content (its root changed, or its .npz
  deleted) retrains nothing; a dataset whose content changed retrains every model.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
STUDY = "tiny"
UPSTREAM = {"prepare_dataset", "train", "extract", "sharpness"}

# prepare_dataset is a (local) checkpoint: its header reads "localcheckpoint prepare_dataset:".
JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) ([A-Za-z0-9_]+):$")
WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")


# --- running Snakemake --------------------------------------------------------------


def snakemake(workdir: Path, *args: str, config: Path = TINY, timeout: float = 600,
              **popen) -> subprocess.CompletedProcess:
    """`snakemake --cores 1 --configfile CONFIG --directory WORKDIR ARGS` from the repo root."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config),
           "--directory", str(workdir), *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          **popen)


def output_of(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def planned_jobs(workdir: Path, config: Path = TINY, *args: str) -> list[tuple[str, dict]]:
    """The jobs a dry run plans, as (rule, wildcards) in the order Snakemake prints them."""
    result = snakemake(workdir, "--dry-run", *args, config=config)
    text = output_of(result)
    assert result.returncode == 0, text[-4000:]
    jobs: list[tuple[str, dict]] = []
    for line in text.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            jobs.append((header.group(1), {}))
            continue
        wildcards = WILDCARDS.match(line)
        if wildcards and jobs:
            jobs[-1][1].update(w.split("=", 1) for w in wildcards.group(1).split(", "))
    if not jobs:
        assert "Nothing to be done" in text, text[-4000:]
    return jobs


def rule_counts(jobs: list[tuple[str, dict]]) -> Counter:
    """Jobs per rule; the figure rules (one per figure: figure_3 ... figure_11) count
    together as "figure" and individually under their own names."""
    counts = Counter(rule for rule, _ in jobs if rule != "all")
    counts["figure"] = sum(n for rule, n in counts.items() if rule.startswith("figure_"))
    return +counts  # drop zero counts


def write_config(path: Path, edit) -> Path:
    """A copy of the tiny study's config with `edit(study_settings)` applied.

    A config given with --configfile is complete by itself (Snakefile), so the copy is
    the whole study, changed in one place."""
    config = yaml.safe_load(TINY.read_text())
    edit(config["studies"][STUDY])
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train_target(model: str) -> str:
    return f"results/{STUDY}/models/{model}/model.pt"


def study_models(workdir: Path) -> list[str]:
    return sorted(p.name for p in (workdir / "results" / STUDY / "models").iterdir())


# --- one full run, copied per test ----------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("tiny-full")
    result = snakemake(workdir, timeout=1200)
    assert result.returncode == 0, output_of(result)[-6000:]
    assert planned_jobs(workdir) == [], "a finished run still plans jobs"
    return workdir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """This test's own copy of the finished run (results and .snakemake metadata; file
    times preserved, so the copy is as up to date as the original)."""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir, symlinks=True)
    return workdir


# --- partial reruns -------------------------------------------------------------------


#: Rules that only draw what the analysis computed: figures and the report's HTML tables.
DRAWING = ("figure", "table_html_")


def test_new_k_of_one_measure_reruns_measures_and_downstream_only(run_copy, tmp_path):
    config = write_config(tmp_path / "k.yaml",
                          lambda s: s["measures"]["k"].update(c1=s["measures"]["k"]["c1"] - 1))
    jobs = planned_jobs(run_copy, config)
    counts = rule_counts(jobs)
    assert not UPSTREAM & set(counts), f"a new k reruns upstream jobs: {counts}"
    assert counts["measures"] == len(study_models(run_copy)), counts
    assert counts["collect"] == 1 and counts["kendall"] == 1, counts
    assert {r for r in counts if not r.startswith(DRAWING)} == {"measures", "collect", "kendall"}, counts


def test_new_clusterability_factor_reruns_measures_and_downstream_only(run_copy, tmp_path):
    """A setting of one related-work measure is a measures param like a k."""
    config = write_config(tmp_path / "factor.yaml",
                          lambda s: s["measures"].setdefault("clusterability", {}).update(factor=2))
    counts = rule_counts(planned_jobs(run_copy, config))
    assert not UPSTREAM & set(counts), f"a new clusterability factor reruns upstream jobs: {counts}"
    assert counts["measures"] == len(study_models(run_copy)), counts
    assert {r for r in counts if not r.startswith(DRAWING)} == {"measures", "collect", "kendall"}, counts


def test_new_blackbox_setting_reruns_blackbox_and_analysis_only(run_copy, tmp_path):
    """c0's settings are params of the blackbox rule only: nothing upstream, no other
    measure's jobs, and rotation (no setting touched) stays done."""
    config = write_config(tmp_path / "c0.yaml",
                          lambda s: s.setdefault("blackbox", {}).update(per_subclass=3))
    counts = rule_counts(planned_jobs(run_copy, config))
    assert counts["blackbox"] == len(study_models(run_copy)) and counts["collect"] == 1, counts
    assert not (UPSTREAM | {"measures", "rotation"}) & set(counts), counts


def test_new_figure_style_reruns_figures_only(run_copy, tmp_path):
    config = write_config(tmp_path / "style.yaml",
                          lambda s: s.setdefault("figures", {}).update(style={"dpi": 72}))
    counts = rule_counts(planned_jobs(run_copy, config))
    assert {r for r in counts if not r.startswith("figure_")} == {"figure"}, counts
    drawn = sorted((run_copy / "results" / STUDY / "figures").glob("fig*.png"))
    assert counts["figure"] == len(drawn) > 0, (counts, drawn)


def test_new_setting_of_one_figure_reruns_that_figure_only(run_copy, tmp_path):
    config = write_config(tmp_path / "fig5.yaml",
                          lambda s: s.setdefault("figures", {}).update(fig5={"measures": ["c1", "c3"]}))
    jobs = planned_jobs(run_copy, config)
    assert [rule for rule, _ in jobs if rule != "all"] == ["figure_5"], jobs


def test_run_only_settings_rerun_nothing(run_copy, tmp_path):
    """Device and inference batch sizes change how jobs run, not what they compute
    (intraclass.config.RUN_ONLY): a finished study stays finished."""
    def edit(s):
        s["training"].update(device="cpu", eval_batch_size=123, resume_every=3)
        s["extract"]["batch_size"] = 17
    jobs = planned_jobs(run_copy, write_config(tmp_path / "run.yaml", edit))
    assert jobs == [], jobs


def test_a_result_setting_of_training_reruns_training(run_copy, tmp_path):
    """The control of the test above: a setting that changes the models does rerun them."""
    def edit(s):
        s["training"]["lr_gamma"] = 0.5
    counts = rule_counts(planned_jobs(run_copy, write_config(tmp_path / "gamma.yaml", edit)))
    assert counts["train"] == len(study_models(run_copy)), counts


def remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_one_models_outputs_redone_rerun_that_models_chain_only(run_copy):
    # Snakemake regenerates a missing file only when a job that needs it must run: with
    # the study's tables up to date, deleting one model's files makes a plain `snakemake`
    # rerun nothing. Redoing one model is `--forcerun` of its training output, which
    # reruns that job and everything downstream of it, here after deleting its files.
    results = run_copy / "results" / STUDY
    victim = study_models(run_copy)[-1]
    for path in (results / "models" / victim, results / "activations" / victim,
                 results / "measures" / f"{victim}.csv", results / "sharpness" / f"{victim}.json"):
        remove(path)
    jobs = planned_jobs(run_copy, TINY, "--forcerun", train_target(victim))
    counts = rule_counts(jobs)
    per_model = [(rule, wc["model"]) for rule, wc in jobs if "model" in wc]
    assert {model for _, model in per_model} == {victim}, per_model
    assert counts["train"] == 1 and counts["measures"] == 1 and counts["sharpness"] == 1, counts
    assert counts["extract"] >= 1 and "prepare_dataset" not in counts, counts
    assert counts["collect"] == 1 and counts["kendall"] == 1, counts


# --- the dataset: its content, not its file time, decides ------------------------------

DATA = Path("results") / "data" / "fashion_mnist_small"


def executed_jobs(result: subprocess.CompletedProcess) -> Counter:
    """Jobs a real run executed, per rule (from the job headers Snakemake prints)."""
    return rule_counts([(m.group(1), {}) for m in map(JOB_HEADER.match, output_of(result).splitlines()) if m])


def root_config(tmp_path: Path) -> Path:
    """The tiny study with its dataset's `root` set to the directory it already came from."""
    config = tmp_path / "root.yaml"
    settings = yaml.safe_load(TINY.read_text())
    settings["datasets"]["fashion_mnist_small"]["root"] = str(REPO / "resources")
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return config


def test_new_dataset_root_with_the_same_content_reruns_its_preparation_only(run_copy, tmp_path):
    config = root_config(tmp_path)
    run = snakemake(run_copy, config=config)
    assert run.returncode == 0, output_of(run)[-4000:]
    assert executed_jobs(run) == Counter(prepare_dataset=1), output_of(run)[-4000:]
    assert planned_jobs(run_copy, config) == []


def test_deleted_dataset_prepared_again_retrains_nothing(run_copy, tmp_path):
    """A failed prepare job deletes the .npz: preparing it again (here with a new root too)
    reruns no training, extraction or other model-level job. (The jobs after them, measures
    and the analysis, do rerun once: Snakemake decided them before the new dataset existed
    and keeps that decision.)"""
    (run_copy / DATA.with_suffix(".npz")).unlink()
    config = root_config(tmp_path)
    run = snakemake(run_copy, config=config)
    assert run.returncode == 0, output_of(run)[-4000:]
    executed = executed_jobs(run)
    assert executed["prepare_dataset"] == 1, executed
    assert not {"train", "extract", "sharpness", "blackbox"} & set(executed), executed
    assert (run_copy / DATA.with_suffix(".npz")).is_file()
    assert planned_jobs(run_copy, config) == []


def test_changed_dataset_content_retrains_every_model(run_copy):
    """The control: a dataset whose content differs (one pixel) reruns every training."""
    from intraclass.data.format import Dataset, content_digest, load_dataset, save_dataset, write_digest

    old = load_dataset(run_copy / DATA.with_suffix(".npz"))
    x_train = old.x_train.copy()
    x_train[0, 0, 0, 0] ^= 1
    arrays = {**old.to_arrays(), "x_train": x_train}
    new = Dataset(**{k: list(v) if k.endswith("names") else v for k, v in arrays.items()})
    assert content_digest(new) != content_digest(old)
    save_dataset(new, run_copy / DATA.with_suffix(".npz"))
    write_digest(run_copy / DATA.with_suffix(".sha256"), content_digest(new))
    counts = rule_counts(planned_jobs(run_copy))
    assert counts["train"] == len(study_models(run_copy)), counts


# --- faults -------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc), parents before children."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def kill_tree(root: int) -> None:
    """SIGKILL `root` and everything under it at once, as a node failure would: no
    process gets to clean up (Snakemake leaves its incomplete markers behind)."""
    for pid in process_tree(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def long_training(study: dict) -> None:
    """Two models (the config check wants a Kendall group: they differ in the optimizer
    alone), enough epochs (of a larger training subset) to be killed mid-run; the tests
    train the first, the evolution model."""
    block = study["grid"][0]
    block["batch_size"] = block["batch_size"][:1]
    block["optimizer"] = block["optimizer"][:2]
    assert len(block["optimizer"]) == 2
    study["training"].update(epochs=12, lr_milestones=[6], train_per_class=60, resume_every=1)
    study["evolution"] = {"models": 1, "epochs": [1, 4]}


def only_model(config: Path) -> str:
    """The id of the model the tests train (the study's evolution model), as the workflow
    names it."""
    from intraclass.config import load_studies, validate_config

    settings = validate_config(yaml.safe_load(config.read_text()), REPO / "config" / "schema.yaml")
    (model,) = load_studies(settings)[STUDY].evolution
    return model


def test_killed_training_resumes_from_its_checkpoint(tmp_path):
    config = write_config(tmp_path / "long.yaml", long_training)
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    killed.mkdir()
    clean.mkdir()
    model = only_model(config)
    model_dir = killed / "results" / STUDY / "models" / model
    log = killed / "results" / "logs" / STUDY / "train" / f"{model}.log"

    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", str(config),
           "--directory", str(killed), train_target(model)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        # Kill once epoch 3 is logged: epochs 1-3 are in resume.pt, 9 remain to be done.
        while not (log.exists() and re.search(r"epoch 3/12", log.read_text())):
            assert proc.poll() is None, "snakemake ended before the training could be killed"
            assert time.monotonic() < deadline, "training never reached epoch 3"
            time.sleep(0.05)
        kill_tree(proc.pid)
    finally:
        kill_tree(proc.pid)
        proc.wait(timeout=60)

    assert not (model_dir / "model.pt").exists(), "the kill came after training ended"
    assert (model_dir / "resume.pt").exists(), "no resume state survived the kill"

    # The killed job's partial outputs are not taken as complete: Snakemake plans it again
    # (its outputs are marked incomplete; --rerun-incomplete as in profiles/slurm).
    replanned = planned_jobs(killed, config, "--rerun-incomplete", train_target(model))
    assert [rule for rule, _ in replanned] == ["train"], replanned

    # Snakemake died with its lock held: the user's one extra step after such a crash.
    unlock = snakemake(killed, "--unlock", config=config)
    assert unlock.returncode == 0, output_of(unlock)[-4000:]
    rerun = snakemake(killed, "--rerun-incomplete", train_target(model), config=config)
    assert rerun.returncode == 0, output_of(rerun)[-4000:]
    resumed = re.search(r"resuming from .*resume\.pt after epoch (\d+)", log.read_text())
    assert resumed and int(resumed.group(1)) >= 3, log.read_text()[-3000:]
    assert not (model_dir / "resume.pt").exists(), "resume.pt outlived a finished training"

    # The resumed training ends exactly where an uninterrupted one does (CPU: bitwise).
    uninterrupted = snakemake(clean, train_target(model), config=config)
    assert uninterrupted.returncode == 0, output_of(uninterrupted)[-4000:]
    clean_dir = clean / "results" / STUDY / "models" / model
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (model_dir, clean_dir)]
    assert metrics[0]["resumed_from_epoch"] >= 3 and metrics[1]["resumed_from_epoch"] is None
    for key in ("train_acc", "train_loss", "test_acc", "test_loss", "epochs_run"):
        assert metrics[0][key] == metrics[1][key], (key, metrics)
    weights = [torch.load(d / "model.pt", weights_only=True)["state_dict"] for d in (model_dir, clean_dir)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), f"{name} differs after resuming"
    assert sorted(p.name for p in (model_dir / "ckpt").iterdir()) == \
        sorted(p.name for p in (clean_dir / "ckpt").iterdir())


def test_failed_job_leaves_nothing_complete_and_keep_going_finishes_the_grid(run_copy):
    results = run_copy / "results" / STUDY
    models = study_models(run_copy)
    # One model outside the evolution set (its only store is final.zarr) gets corrupted
    # weights, newer than its store and sharpness: both jobs rerun and fail. Its
    # measures and the other models' measures and sharpness are to be redone too: the
    # latter do not depend on the failing jobs.
    broken = next(m for m in models if not list((results / "activations" / m).glob("epoch*")))
    healthy = [m for m in models if m != broken]
    (results / "models" / broken / "model.pt").write_bytes(b"not a checkpoint")
    remove(results / "measures" / f"{broken}.csv")
    for model in healthy:
        remove(results / "measures" / f"{model}.csv")
        remove(results / "sharpness" / f"{model}.json")
    tables_before = (results / "tables" / "models.csv").stat().st_mtime

    run = snakemake(run_copy, "--keep-going", timeout=900)
    text = output_of(run)
    assert run.returncode != 0, "a job on a corrupted checkpoint did not fail"
    failed = set(re.findall(r"Error in rule ([a-z_]+):", text))
    # every job that reads the weights fails: extraction, sharpness, c0 and layer rotation
    assert failed == {"extract", "sharpness", "blackbox", "rotation"}, text[-4000:]

    # The rest of the grid finished...
    for model in healthy:
        assert (results / "measures" / f"{model}.csv").stat().st_size > 0, model
        assert (results / "sharpness" / f"{model}.json").stat().st_size > 0, model
    # ...the failed jobs left no output behind that could pass for a result (their old
    # outputs are gone, the partial store was never renamed into place)...
    assert not (results / "activations" / broken / "final.zarr").exists()
    assert not list((results / "activations" / broken).glob(".final.zarr*")), "partial store left behind"
    assert not (results / "sharpness" / f"{broken}.json").exists()
    assert not (results / "measures" / f"{broken}.csv").exists()
    assert not (results / "blackbox" / f"{broken}.json").exists()
    assert not (results / "rotation" / f"{broken}.json").exists()
    # ...nothing downstream of them ran...
    assert (results / "tables" / "models.csv").stat().st_mtime == tables_before
    # ...and the next run plans the failed jobs again.
    again = rule_counts(planned_jobs(run_copy))
    assert again["extract"] == again["sharpness"] == again["measures"] == 1, again
    assert again["blackbox"] == again["rotation"] == 1, again
    assert {r for r in again if not r.startswith(DRAWING)} <= \
        {"extract", "sharpness", "measures", "blackbox", "rotation", "collect", "kendall"}, again
