# Shared set-up: the package on the path, the validated config, the studies and their
# grids, and the input/param functions every stage uses. Nothing here runs a job.

import sys
from pathlib import Path

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)

from snakemake.exceptions import IncompleteCheckpointException

from intraclass.measures import registry

# Plug-in measure modules (each study's measures.plugins) register their measures before
# anything reads the registry (intraclass.names reads it once, on import): the model-level
# stages of collect's inputs come from it. An import error stops here, naming the module.
try:
    for _name in config.get("studies") or {}:
        registry.load_plugins(registry.study_plugins(config, _name))
except ValueError as err:
    raise WorkflowError(f"studies.{_name}.{err}")

from intraclass.evaluation.paper import match_paper_table
from intraclass.names import FIGURE_IDS
from intraclass.runtime import export_package_path

# Jobs (local or on SLURM nodes) import the package from this checkout too, so a
# `--sdm conda` environment needs only the third-party packages.
export_package_path(SRC)

from intraclass.config import (
    MODEL_ID_PATTERN,
    ConfigError,
    load_studies,
    result_settings,
    validate_config,
)

# Every check the config allows is made here, before the first job. The stage settings
# (sharpness, figures, k against the models' sizes) import torch and matplotlib: checked
# once in the main process, not again when each job parses this file on a node.
try:
    _validated = validate_config(
        config,
        Path(workflow.basedir) / "config" / "schema.yaml",
        settings=workflow.is_main_process,
    )
except ConfigError as err:
    raise WorkflowError(f"{err}\n(config files: {workflow.overwrite_configfiles or workflow.configfiles})")
config.clear()
config.update(_validated)

STUDIES = load_studies(config)
if workflow.is_main_process:
    from snakemake.logging import logger

    for _note in (note for s in STUDIES.values() for note in s.notes):
        logger.warning(_note)
RESULTS = "results"
ENV = "../../envs/intraclass.yaml"
FIGURES = FIGURE_IDS  # intraclass.names: one rule figure_<id> each


wildcard_constraints:
    study="|".join(STUDIES),
    model=MODEL_ID_PATTERN,
    checkpoint=r"final|epoch\d+",
    dataset=r"[a-z0-9_]+",


def study(wc):
    return STUDIES[wc.study]


def _prepared(wc, output):
    """An output of the study's prepare_dataset checkpoint. While that job is pending,
    Snakemake re-evaluates the caller once the dataset is written; meanwhile the input is
    the checkpoint's target, here as `ancient`, so that a pending preparation of a
    dataset that exists does not mark training and everything after it to rerun before
    the new content is known (Snakemake keeps such marks on the jobs downstream)."""
    try:
        prepared = checkpoints.prepare_dataset.get(dataset=study(wc).settings["dataset"])
    except IncompleteCheckpointException as pending:
        return ancient(pending.targetfile)
    return getattr(prepared.output, output)


def dataset_file(wc):
    """The study's .npz, as an `ancient` input: re-preparing it (a new file time) reruns
    nothing by itself; a change of content reruns training through `dataset_digest`."""
    return ancient(_prepared(wc, "npz"))


def dataset_digest(wc):
    """The digest of the dataset's content (a small file: Snakemake compares its checksum,
    not only its time, so an identical re-prepared dataset reruns no training)."""
    return _prepared(wc, "digest")


def model_dir(study_name, model_id):
    return f"{RESULTS}/{study_name}/models/{model_id}"


def store_path(study_name, model_id, checkpoint):
    return f"{RESULTS}/{study_name}/activations/{model_id}/{checkpoint}.zarr"


def data_params(wc):
    """The part of `training` that defines the training set: extraction and sharpness see
    exactly the samples the model was trained on, and rerun only if those change (not
    when, say, the number of epochs does: that reruns training first). Run-only settings
    (device, batch sizes of inference: intraclass.config.RUN_ONLY) are never params, so
    changing them reruns nothing; scripts read them from the config."""
    t = study(wc).settings["training"]
    return {k: t[k] for k in ("train_per_class", "data_seed")}


def rule_resources(name):
    return config["resources"][name]


def attempt_runtime(name):
    """Runtime (minutes, SLURM's time limit) of a rule's job: its configured runtime times the
    attempt, so that a job killed at its time limit is retried (profile `retries`) with a
    longer one instead of failing again; training resumes from its resume.pt."""
    base = rule_resources(name)["runtime"]
    return lambda wildcards, attempt: base * attempt


def sharpness_enabled(s):
    return bool(s.settings["sharpness"]["measures"])


def sharpness_target(wc):
    """The sharpness settings that decide the searches' target, for the tables' notes
    (intraclass.sharpness_settings.target_description), or None when the study has no sharpness.
    Only these keys (and the measures), so that another sharpness setting does not rerun
    the tables; keys left to their defaults are absent."""
    s = study(wc)
    if not sharpness_enabled(s):
        return None
    sharp = s.settings["sharpness"]
    target = {key: sharp[key] for key in ("measures", "target_mode", "deviation") if key in sharp}
    for kind in ("sigma", "alpha"):
        if "target" in sharp.get(kind, {}):
            target[kind] = {"target": sharp[kind]["target"]}
    return target


def study_figures(s):
    """Figures that apply to a study: 6 and 7 follow models over training (evolution),
    7 and 11 show subclass selectivity (models trained on superclasses)."""
    figs = []
    for fig in FIGURES:
        if fig in ("6", "7") and not s.evolution:
            continue
        if fig in ("7", "11") and s.settings["labels"] != "coarse":
            continue
        if fig == "rotation" and not s.settings["rotation"]["enabled"]:
            continue
        figs.append(fig)
    return figs


def final_targets():
    targets = []
    for name, s in STUDIES.items():
        targets += expand(f"{RESULTS}/{name}/tables/kendall.{{ext}}", ext=("csv", "md", "tex"))
        targets += expand(f"{RESULTS}/{name}/figures/fig{{fig}}.{{ext}}", fig=study_figures(s), ext=("pdf", "png"))
        # the tables as HTML for the report (workflow/rules/report.smk)
        targets += expand(f"{RESULTS}/{name}/tables/{{table}}.html", table=REPORT_TABLES)
    return targets


# ---- paper vs this run (workflow/rules/paper.smk)


def paper_table(s):
    """The paper table a study matches (dataset, arch, labels), or None (always for a
    zoo: its axes are its own table's columns, not the paper's)."""
    if s.zoo is not None:
        return None
    return match_paper_table(s.settings["dataset"], s.settings["arch"]["name"], s.settings["labels"])


def paper_targets():
    """tables/paper_vs_run.{csv,md,html} of every study that matches a paper table."""
    targets = []
    for name, s in STUDIES.items():
        if paper_table(s) is not None:
            targets += expand(f"{RESULTS}/{name}/tables/paper_vs_run.{{ext}}", ext=("csv", "md", "html"))
    return targets


# ---- inputs of single stages (kept here: snakemake --lint wants rules and functions apart)


def bundled_source(wc):
    """The shipped file of a bundled dataset, so that a change to it reruns its preparation.
    Relative to the repository, not the working directory (`-d` may point elsewhere)."""
    options = config["datasets"].get(wc.dataset, {})
    if options.get("source") != "bundled":
        return []
    return [str(Path(workflow.basedir) / "resources" / f"{wc.dataset}.npz")]


def weights_file(wc):
    directory = model_dir(wc.study, wc.model)
    return f"{directory}/model.pt" if wc.checkpoint == "final" else f"{directory}/ckpt"


def per_model(template):
    return lambda wc: [template.format(study=wc.study, model=m) for m in study(wc).model_ids]


def stage_enabled(s, stage):
    """Whether study ``s`` runs model-level stage ``stage``: the rule file's own
    `<stage>_enabled(s)` where it defines one, else the study's `<stage>.enabled` setting,
    else true (a declared stage without settings always runs)."""
    decide = globals().get(f"{stage}_enabled")
    if decide is not None:
        return bool(decide(s))
    return bool((s.settings.get(stage) or {}).get("enabled", True))


def stage_inputs(wc):
    """`{stage: [results/{study}/{stage}/{model}.json of every model]}` for each enabled
    model-level stage of the measure registry (not the activation stage, whose tables
    collect reads as `measures`); used with unpack() by collect, whose script passes
    them to intraclass.tables.collect by stage name."""
    s = study(wc)
    return {
        stage: per_model(f"{RESULTS}/{{study}}/{stage}/{{model}}.json")(wc)
        for stage in registry.stages(registry.study_plugins(config, wc.study))
        if stage != registry.ACTIVATION_STAGE and stage_enabled(s, stage)
    }


def blackbox_enabled(s):
    """c0 reads the softmax of a superclass: only models trained on superclasses have one."""
    return bool(s.settings["blackbox"]["enabled"]) and s.settings["labels"] == "coarse"


def fig7_model(s):
    chosen = s.settings["figures"]["fig7"].get("model")
    return chosen if chosen else (s.evolution[0] if s.evolution else None)


def fig7_checkpoints(s):
    """The checkpoints of Figure 7's model ([] when the study follows no model)."""
    model = fig7_model(s)
    return s.checkpoints(model) if model else []


def figure_stores(fig):
    """Figure 7 reads the activations of one evolution model across its checkpoints."""

    def stores(wc):
        if fig != "7":
            return []
        s = study(wc)
        return [store_path(wc.study, fig7_model(s), c) for c in fig7_checkpoints(s)]

    return stores


# ---- model zoos (workflow/rules/zoo.smk; docs/zoo.md)


def zoo_studies_pattern():
    """The study wildcard of the import rules: the zoo studies only (a pattern that
    matches nothing when there are none), so a grid study's models are always trained."""
    names = [name for name, s in STUDIES.items() if s.zoo is not None]
    return "|".join(names) if names else "(?!)"


def zoo_model(wc):
    return study(wc).model(wc.model)


def zoo_params(wc):
    """What import_model needs of the zoo (not its paths: the checkpoint is an input)."""
    zoo = study(wc).zoo
    return {
        "arch": zoo.arch,
        "arch_options": zoo.arch_options,
        "labels": zoo.labels,
        "normalization": zoo.normalization,
        "reported": zoo_model(wc).reported,
    }
