"""Study configuration: schema validation with defaults, and the hyperparameter grid.

A *study* is one dataset + label level + architecture + hyperparameter grid + settings
(see ``config/config.yaml``). The grid is the paper's appendix A.1 generalised: a list of
*blocks*, each the Cartesian product of its values, the grid being the union of the
blocks in order. The paper's grid is one block of 4 x 2 x 2 x 4 x 3 = 192 configurations
(144 for VGG, without dropout 0.4).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from intraclass.archspec import factors, is_builder, site_widths  # sizes without torch
from intraclass.names import AXES, AXIS_COLUMNS, HYPERPARAMETERS  # AXES is used here and by the rules

#: Settings that change how a job runs but not what it computes. Rules leave them out of
#: ``params:`` (Snakemake reruns a job whose params change) and scripts read them from the
#: config at run time (:func:`with_run_settings`): moving a study to a GPU or changing a
#: batch size of inference reruns nothing.
RUN_ONLY = {
    "training": ("device", "eval_batch_size", "resume_every"),
    "extract": ("batch_size",),
}


def result_settings(section: str, settings: dict) -> dict:
    """``settings`` of a study section without its run-only keys (for a rule's params)."""
    return {k: v for k, v in settings.items() if k not in RUN_ONLY.get(section, ())}


def with_run_settings(snakemake, section: str, params: dict) -> dict:
    """A script's ``params`` dict completed with the run-only keys of ``section``, read from
    the (validated) config of the job's study."""
    study = snakemake.config["studies"][snakemake.wildcards.study]
    return {**dict(params), **{k: study[section][k] for k in RUN_ONLY[section]}}


def model_stage_args(snakemake, log) -> dict:
    """The keyword arguments a model-level stage's script passes to its package function
    (``run_sharpness``, ``run_blackbox``): the ``model``, ``data`` and ``metrics`` inputs,
    the ``json`` output, ``params.labels``, ``params.training`` completed with the run-only
    training keys (:func:`with_run_settings`), and the script's log."""
    return {"model_path": snakemake.input.model, "data_path": snakemake.input.data,
            "out_path": snakemake.output.json, "labels": snakemake.params.labels,
            "training": with_run_settings(snakemake, "training", snakemake.params.training),
            "log": log, "metrics_path": snakemake.input.metrics}


def sizes_check(snakemake) -> Callable[[Sequence[int], str], None]:
    """:func:`check_sizes` for the model a ``train`` or ``import_model`` job builds: a
    builder's layer widths are known only then. The study's ``measures`` settings are read
    from the config at run time, not passed as params, so that a new k reruns no training."""
    study = snakemake.wildcards.study
    return functools.partial(check_sizes, f"studies.{study}", snakemake.config["studies"][study]["measures"])


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the offending key."""


#: A model id: a directory name of letters, digits and ``. - +`` (the workflow's ``{model}``
#: wildcard; grid ids are made of these, a zoo table's ids are checked against it).
MODEL_ID_PATTERN = r"[A-Za-z0-9.\-+]+"


def _fmt(value: float) -> str:
    """Shortest exact-enough text for a number in a model id (0.1, 4e-05, 1.5, 100)."""
    return f"{value:g}"


@dataclass(frozen=True)
class ModelConfig:
    """The hyperparameters of one trained model (paper appendix A.1-A.2)."""

    lr: float
    weight_decay: float
    batch_size: int
    optimizer: str
    dropout: float
    augment: bool
    width: float
    depth: float
    seed: int

    @property
    def id(self) -> str:
        """Readable, unique id built from the hyperparameters only, e.g.
        ``lr0.1-wd0-bs100-sgd-do0-aug1-w1-d1-s0``: the same configuration always maps
        to the same directory."""
        return (
            f"lr{_fmt(self.lr)}-wd{_fmt(self.weight_decay)}-bs{self.batch_size}"
            f"-{self.optimizer}-do{_fmt(self.dropout)}-aug{int(self.augment)}"
            f"-w{_fmt(self.width)}-d{_fmt(self.depth)}-s{self.seed}"
        )

    def to_dict(self) -> dict:
        """The ``params.model`` dict of the train rule (docs/stages.md)."""
        return {"id": self.id, **asdict(self)}

    def axis_values(self) -> dict:
        """Values on the paper's eight axes (for the granulated Kendall coefficient)."""
        return {axis: getattr(self, name) for axis, name in AXIS_COLUMNS.items()}


# The fields are typed here; their names and order are names.HYPERPARAMETERS (one list).
if tuple(f.name for f in fields(ModelConfig)) != HYPERPARAMETERS:
    raise TypeError(f"ModelConfig's fields {[f.name for f in fields(ModelConfig)]} differ from "
                    f"intraclass.names.HYPERPARAMETERS {list(HYPERPARAMETERS)}")


def expand_grid(blocks: list[dict], seeds: list[int] = (0,), arch: str | None = None) -> list[ModelConfig]:
    """Expand grid blocks into model configurations (paper appendix A.1).

    Each block is the product lr_wd x batch_size x optimizer x dropout_aug x
    width_depth (x seeds); the grid is the union of the blocks, first occurrence first.
    The paper drops dropout 0.4 for VGG ("the network could not reach ~100% training
    accuracy with high dropout rates", footnote 4): that is expressed in the config
    (config/paper.yaml lists no 0.4 for the VGG study), not hard-coded here; ``arch``
    is accepted only to name the study in errors.
    """
    models: dict[str, ModelConfig] = {}
    for _index, block in enumerate(blocks):
        combos = itertools.product(
            block["lr_wd"], block["batch_size"], block["optimizer"],
            block["dropout_aug"], block["width_depth"], seeds,
        )
        for (lr, wd), bs, opt, (dropout, augment), (width, depth), seed in combos:
            model = ModelConfig(
                lr=float(lr), weight_decay=float(wd), batch_size=int(bs), optimizer=opt,
                dropout=float(dropout), augment=bool(augment), width=float(width),
                depth=float(depth), seed=int(seed),
            )
            models.setdefault(model.id, model)
    if not models:
        raise ConfigError(f"grid{' of ' + arch if arch else ''} is empty")
    return list(models.values())


@dataclass(frozen=True)
class Study:
    name: str
    settings: dict  # the validated study section, defaults filled in
    models: tuple  # ModelConfig's (a grid) or intraclass.zoo.ZooModel's (a zoo)
    evolution: tuple[str, ...]  # ids of the models whose training is followed over epochs
    zoo: Any = None  # intraclass.zoo.Zoo for a study of models trained elsewhere, else None

    @property
    def axes(self) -> list[str] | dict[str, str]:
        """The Kendall/CMI axes: the paper's eight (a list of names, :data:`AXES`) for a
        grid; ``{column: column}`` of the zoo table's axis columns for a zoo
        (:func:`intraclass.kendall.axis_columns`)."""
        if self.zoo is None:
            return list(AXES)
        from intraclass.zoo import axis_mapping

        return axis_mapping(self.zoo.axes)

    @property
    def notes(self) -> list[str]:
        """What the study cannot do and why (printed before the first job)."""
        if self.zoo is not None and not self.zoo.has_init:
            return [f"study {self.name}: layer rotation is unavailable (the zoo table "
                    f"{self.zoo.table} has no 'init' column with the models' initial weights): skipped"]
        return []

    @property
    def model_ids(self) -> list[str]:
        return [m.id for m in self.models]

    def model(self, model_id: str) -> ModelConfig:
        for m in self.models:
            if m.id == model_id:
                return m
        raise KeyError(f"study {self.name!r} has no model {model_id!r}")

    def checkpoints(self, model_id: str) -> list[str]:
        """Activation checkpoints of a model: ``final`` then ``epoch{E}`` for evolution models."""
        names = ["final"]
        if model_id in self.evolution:
            names += [f"epoch{e}" for e in self.settings["evolution"]["epochs"]]
        return names

    def checkpoint_epochs(self, model_id: str) -> list[int]:
        return list(self.settings["evolution"]["epochs"]) if model_id in self.evolution else []


def _pick_evolution(models: list[ModelConfig], choice, study: str) -> tuple[str, ...]:
    """``choice`` is a count (models spread evenly over the grid) or a list of ids."""
    ids = [m.id for m in models]
    if isinstance(choice, list):
        unknown = [c for c in choice if c not in ids]
        if unknown:
            raise ConfigError(
                f"studies.{study}.evolution.models: unknown model id(s) {unknown}; "
                f"ids look like {ids[0]!r}"
            )
        return tuple(choice)
    count = min(int(choice), len(ids))
    if count == 0:
        return ()
    # Evenly spaced over the grid order, so the few followed models differ on several axes.
    picks = sorted({round(i * (len(ids) - 1) / max(count - 1, 1)) for i in range(count)})
    return tuple(ids[i] for i in picks)


def validate_config(config: dict, schema_path: str | Path, settings: bool = True) -> dict:
    """Validate ``config`` against the JSON schema and fill in every default.

    Uses Snakemake's ``validate`` (JSON schema draft 2020-12, defaults set at every
    nesting level), then checks what a schema cannot express (:func:`check_study`), so
    that every mistake the config alone reveals stops the run before the first job.
    ``settings``: also check the stage settings whose rules live in the stage modules
    (sharpness, figures, k against the models' sizes); these import torch and matplotlib,
    so the workflow makes them once, in Snakemake's main process, not again in every job.
    Returns a new dict; the input is not modified. Raises :class:`ConfigError` naming
    the key and the value.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    for name, study in (config.get("studies") or {}).items():
        _check_kind(f"studies.{name}", study)
    try:
        validate(config, str(schema_path), set_default=True)
    except WorkflowError as err:
        raise ConfigError(_schema_message(err)) from None
    # The validator inserts the schema's default objects by reference: the same dict may
    # now sit in several studies. A JSON round trip gives each study its own copy.
    config = json.loads(json.dumps(config))
    _check_datasets(config["datasets"])
    for name, study in config["studies"].items():
        where = f"studies.{name}"
        zoo = _zoo_settings(where, study) if "zoo" in study else None
        if study["dataset"] not in config["datasets"]:
            raise ConfigError(
                f"{where}.dataset: {study['dataset']!r} has no entry under 'datasets' "
                f"(configured: {sorted(config['datasets'])})"
            )
        check_study(name, study, settings=settings, zoo=zoo)
    if settings:
        _check_dataset_uses(config["datasets"], config["studies"])
    return config


def _check_dataset_uses(datasets: dict, studies: dict) -> None:
    """Studies trained on superclasses need a hierarchy of >= 2 fine classes per superclass
    (paper Section 2.2): checked on the config (presets, hierarchy files) before any job,
    and again by prepare_dataset on the data. Reads hierarchy files: a settings check."""
    from intraclass.data import DatasetError
    from intraclass.data.prepare import check_dataset_uses

    try:
        check_dataset_uses(datasets, studies)
    except DatasetError as error:
        raise ConfigError(str(error)) from None


def _check_datasets(datasets: dict) -> None:
    """Each dataset's options make sense for its source (the prepare stage's own check)."""
    from intraclass.data import DatasetError
    from intraclass.data.prepare import check_options

    for name, options in datasets.items():
        try:
            check_options(name, options)
        except DatasetError as error:
            raise ConfigError(str(error)) from None


def check_study(name: str, study: dict, settings: bool = True, zoo=None) -> None:
    """What the schema cannot say about one (schema-validated) study; ``settings`` as in
    :func:`validate_config`; ``zoo``: the study's zoo when the caller has loaded it already
    (its table and files are read once per validation). Each failure is a
    :class:`ConfigError` naming key and value."""
    where = f"studies.{name}"
    if "zoo" in study:
        _check_zoo_study(where, study, settings, zoo)
        return
    _check_arch(where, study["arch"])
    _check_evolution(where, study)
    _check_extract(where, study)
    models = expand_grid(study["grid"], study["seeds"], study["arch"]["name"])
    _check_kendall_groups(where, models)
    if settings:
        _check_sizes(where, study, study["arch"], models)
        _check_sharpness(where, study["sharpness"])
        _check_figures(where, study["figures"], {m.id for m in models})


def _check_arch(where: str, arch: dict) -> None:
    """The ``arch`` keys apply to its ``name`` (norm: CNNs; patch, blocks, heads, mlp_ratio:
    ViT), by the models' own rule (:func:`intraclass.archspec.check_options`; no torch). A
    builder's other keys are its options: its module must be found (no import)."""
    from intraclass.archspec import ARCH_KEYS, check_options

    if is_builder(arch["name"]):
        _check_builder(f"{where}.arch.name", arch["name"])
        return
    try:
        check_options(arch["name"], {k: arch[k] for k in ARCH_KEYS if k in arch})
    except ValueError as error:
        raise ConfigError(f"{where}.arch: {error}") from None


def _check_builder(key: str, name: str) -> None:
    """A builder's module exists and defines its function (:func:`intraclass.archspec.check_builder`:
    found without importing it, so without torch)."""
    from intraclass.archspec import check_builder

    try:
        check_builder(name)
    except ValueError as error:
        raise ConfigError(f"{key}: {error}") from None


def _check_evolution(where: str, study: dict) -> None:
    epochs = study["evolution"]["epochs"]
    late = [e for e in epochs if e > study["training"]["epochs"]]
    if late:
        raise ConfigError(f"{where}.evolution.epochs: {late} exceed training.epochs = "
                          f"{study['training']['epochs']}")
    repeated = sorted({e for e in epochs if epochs.count(e) > 1})
    if repeated:  # two checkpoints would share the name epoch{E}
        raise ConfigError(f"{where}.evolution.epochs: {epochs} lists epoch(s) {repeated} twice")
    if isinstance(study["evolution"]["models"], list):
        ids = study["evolution"]["models"]
        twice = sorted({m for m in ids if ids.count(m) > 1})
        if twice:
            raise ConfigError(f"{where}.evolution.models lists {twice} twice")


def _check_extract(where: str, study: dict) -> None:
    """The extraction subset is drawn from the training subset, per fine class."""
    per_class = study["extract"]["per_class"]
    train_per_class = study["training"]["train_per_class"]
    if study["extract"]["split"] == "train" and None not in (per_class, train_per_class) \
            and per_class > train_per_class:
        raise ConfigError(f"{where}.extract.per_class = {per_class} exceeds training.train_per_class "
                          f"= {train_per_class}: extraction draws from the samples the model was trained on")


def _check_kendall_groups(where: str, models: list, axes=AXES, key: str = "grid") -> None:
    """The granulated Kendall coefficient (paper Eq. 5) averages over groups of models
    that differ on one axis only; a grid (or zoo: ``axes`` its axis mapping, ``key``
    ``zoo.axes``) without any such group gives an empty table."""
    import pandas as pd

    from intraclass.kendall import axis_groups

    groups = axis_groups(pd.DataFrame([m.to_dict() for m in models]), axes)
    if not any(groups.values()):
        raise ConfigError(
            f"{where}.{key}: no two of its {len(models)} model(s) differ on exactly one axis, so "
            f"the granulated Kendall coefficient has no group: give at least two values to one of "
            f"the axes ({', '.join(axes)}) while keeping the others fixed"
        )


def _check_sizes(where: str, study: dict, arch: dict, models: list, key: str = "arch") -> None:
    """:func:`check_sizes` for every model of a registered architecture (``arch``: a grid's
    ``arch``, or a zoo's ``{name: zoo.arch, **zoo.arch_options}`` and ``key``
    ``zoo.arch_options``), with the layer widths computed from the config
    (:func:`intraclass.archspec.site_widths`, no model built). A builder's widths are known
    only when a job builds its model: train and import_model check them then (:func:`sizes_check`)."""
    if is_builder(arch["name"]):
        return
    for model in models:
        size = factors(model.to_dict())  # a zoo row may lack width or depth: x1
        try:
            widths = site_widths(arch, size["width"], size["depth"])
        except ValueError as error:  # e.g. a ViT width that heads do not divide
            raise ConfigError(f"{where}.{key}: {error} (model {model.id})") from None
        check_sizes(where, study["measures"], widths, model.id)


def check_sizes(where: str, measures: Mapping, widths: Sequence[int], model_id: str) -> None:
    """k of each measure (a top-k mean over neurons or layers, paper Eqs. 1-4) and layer_k
    (top-k neurons within each layer, Figure 5) fit a model whose measured layers have
    ``widths`` neurons; else a :class:`ConfigError` naming ``<where>.measures.k.<measure>``
    (or ``layer_k``), the model and its widths. The k_sweep maxima may exceed a model (its
    curve then ends in NaN, by design)."""
    from intraclass.measures import registry

    widths = [int(w) for w in widths]
    units = {"neuron": (sum(widths), "neurons"), "layer": (len(widths), "measured layers")}
    shown = f"of model {model_id} (measured layer widths {widths})"
    for measure, k in measures["k"].items():
        level = registry.get(measure).level
        if level is None:
            continue
        limit, unit = units[level]
        if k > limit:
            raise ConfigError(f"{where}.measures.k.{measure} = {k} exceeds the {limit} {unit} {shown}")
    if measures["layer_k"] > min(widths):
        raise ConfigError(f"{where}.measures.layer_k = {measures['layer_k']} exceeds the "
                          f"{min(widths)} neurons of the narrowest layer {shown}")


def _check_sharpness(where: str, sharpness: dict) -> None:
    """Keys and values of the sharpness settings, by the sharpness stage's own rules."""
    if not sharpness["measures"]:
        return
    from intraclass.sharpness_settings import resolve_settings

    try:
        resolve_settings(sharpness)
    except ValueError as error:
        raise ConfigError(f"{where}.{error}" if str(error).startswith("sharpness") else
                          f"{where}.sharpness: {error}") from None


def _check_figures(where: str, figures: dict, model_ids: set[str]) -> None:
    """Keys of ``figures.style`` and ``figures.figN`` against the defaults their modules
    declare (``STYLE_DEFAULTS``, each module's ``SETTINGS``), and the model ids they name."""
    from intraclass.figures import FIGURES, STYLE_DEFAULTS

    for key, given in figures.items():
        known = STYLE_DEFAULTS if key == "style" else FIGURES[key.removeprefix("fig")].SETTINGS
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ConfigError(f"{where}.figures.{key}: unknown key(s) {unknown}; known: {sorted(known)}")
        named = given.get("models") or []
        named = [*([given["model"]] if given.get("model") else []), *named]
        absent = [m for m in named if m not in model_ids]
        if absent:
            raise ConfigError(f"{where}.figures.{key}: model(s) {absent} are not in the grid; "
                              f"ids look like {min(model_ids)!r}")


def _schema_message(err: Exception) -> str:
    """One line naming the key path, from Snakemake's WorkflowError wrapping jsonschema's error."""
    # Snakemake raises its WorkflowError while handling jsonschema's ValidationError.
    cause = err.__context__ if hasattr(err.__context__, "absolute_path") else None
    if cause is None:
        return f"invalid configuration: {err}"
    path = ".".join(str(p) for p in cause.absolute_path) or "(top level)"
    return f"invalid configuration at {path}: {cause.message}"


def load_studies(config: dict) -> dict[str, Study]:
    """Build the studies of a *validated* config (see :func:`validate_config`)."""
    studies = {}
    for name, settings in config["studies"].items():
        if "zoo" in settings:
            zoo = _load_zoo(f"studies.{name}", settings)
            studies[name] = Study(name=name, settings=settings, models=zoo.models, evolution=(), zoo=zoo)
            continue
        models = expand_grid(settings["grid"], settings["seeds"], settings["arch"]["name"])
        evolution = _pick_evolution(models, settings["evolution"]["models"], name)
        studies[name] = Study(name=name, settings=settings, models=tuple(models), evolution=evolution)
    return studies


# ------------------------------------------------------------------------------ zoos

#: Keys of a study that trains its models (a grid); a zoo study has ``zoo`` instead.
GRID_KEYS = ("grid", "labels", "arch", "seeds")


def _check_kind(where: str, study) -> None:
    """Exactly one of ``grid`` (a study that trains) and ``zoo`` (models trained
    elsewhere, docs/zoo.md); a zoo study names its labels and architecture in ``zoo``."""
    if not isinstance(study, dict):
        return  # the schema names the wrong type
    if "grid" in study and "zoo" in study:
        raise ConfigError(f"{where}: give either grid (a study that trains its models) or zoo "
                          "(models trained elsewhere), not both")
    if "zoo" in study:
        grid_keys = [k for k in GRID_KEYS if k in study]
        if grid_keys:
            raise ConfigError(f"{where}: {grid_keys} belong to studies with a grid; a zoo study "
                              "gives labels and arch in zoo, its models in the zoo table")
    elif "grid" not in study:
        raise ConfigError(f"{where}: no grid (a study that trains its models) and no zoo "
                          "(models trained elsewhere): give one of them")


def _forbidden_columns() -> set[str]:
    """Column names models.csv and the Kendall table use for something else."""
    from intraclass import tables

    return {*tables.METRICS, "gap", *tables.METRICS_EXTRA, *tables.STATUS_COLUMNS,
            *tables.AT_BOUND, *tables.ENVIRONMENT, *tables.MEASURES, "total"}


def _load_zoo(where: str, study: dict):
    from intraclass.zoo import ZooError, load_zoo

    try:
        return load_zoo(study["zoo"], f"{where}.zoo", MODEL_ID_PATTERN, _forbidden_columns())
    except ZooError as error:
        raise ConfigError(str(error)) from None


def _zoo_settings(where: str, study: dict):
    """Settings a zoo study implies, filled in so that every stage reads them as for a
    grid: ``labels`` from ``zoo.labels``; ``rotation.enabled`` false when the zoo gives
    no initial weights (:attr:`Study.notes` says so). Returns the loaded zoo."""
    study["labels"] = study["zoo"]["labels"]
    zoo = _load_zoo(where, study)
    if not zoo.has_init:
        study["rotation"]["enabled"] = False
    return zoo


def _check_zoo_study(where: str, study: dict, settings: bool, zoo=None) -> None:
    """A zoo study: its table and files (:func:`intraclass.zoo.load_zoo`), no evolution
    (a zoo has final weights only), a registered architecture's options (a builder: its
    module), at least one Kendall group over the zoo's axes, and the settings' sizes."""
    from intraclass.zoo import axis_mapping

    zoo = zoo if zoo is not None else _load_zoo(where, study)
    evolution = study["evolution"]
    if evolution["models"] not in (0, []) or evolution["epochs"]:
        raise ConfigError(f"{where}.evolution: a zoo has each model's final weights only, so no "
                          f"model can be followed over training; remove the evolution section")
    if is_builder(zoo.arch):
        _check_builder(f"{where}.zoo.arch", zoo.arch)
    else:
        from intraclass.archspec import OPTIONS, arch_spec

        unknown = sorted(set(zoo.arch_options) - {"base_width", *OPTIONS.get(zoo.arch, {})})
        if unknown:
            raise ConfigError(f"{where}.zoo.arch_options: arch {zoo.arch!r} takes no option(s) {unknown} "
                              f"(its options: {sorted({'base_width', *OPTIONS.get(zoo.arch, {})})})")
        try:
            arch_spec({"name": zoo.arch, **zoo.arch_options}, num_classes=2, in_channels=1,
                      width=1.0, depth=1.0, dropout=0.0)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{where}.zoo.arch_options: {error}") from None
    _check_extract(where, study)
    _check_kendall_groups(where, list(zoo.models), axis_mapping(zoo.axes), key="zoo.axes")
    if settings:
        _check_sizes(where, study, {**zoo.arch_options, "name": zoo.arch}, list(zoo.models), "zoo.arch_options")
        _check_sharpness(where, study["sharpness"])
        _check_figures(where, study["figures"], {m.id for m in zoo.models})
