"""Study configuration: schema validation with defaults, and the hyperparameter grid.

A *study* is one dataset + label level + architecture + hyperparameter grid + settings
(see ``config/config.yaml``). The grid is the paper's appendix A.1 generalised: a list of
*blocks*, each the Cartesian product of its values, the grid being the union of the
blocks in order. The paper's grid is one block of 4 x 2 x 2 x 4 x 3 = 192 configurations
(144 for VGG, without dropout 0.4).
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from intraclass.names import AXES, AXIS_COLUMNS  # noqa: F401 - AXES re-exported for the rules

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


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the offending key."""


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
    models: tuple[ModelConfig, ...]
    evolution: tuple[str, ...]  # ids of the models whose training is followed over epochs

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


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Validate ``config`` against the JSON schema and fill in every default.

    Uses Snakemake's ``validate`` (JSON schema draft 2020-12, defaults set at every
    nesting level), then checks what a schema cannot express: every study's dataset is
    configured, evolution epochs lie within training, k values are coherent. Returns a
    new dict; the input is not modified. Raises :class:`ConfigError` naming the key.
    """
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = copy.deepcopy(config)
    try:
        validate(config, str(schema_path), set_default=True)
    except WorkflowError as err:
        raise ConfigError(_schema_message(err)) from None
    # The validator inserts the schema's default objects by reference: the same dict may
    # now sit in several studies. A JSON round trip gives each study its own copy.
    config = json.loads(json.dumps(config))
    for name, study in config["studies"].items():
        where = f"studies.{name}"
        if study["dataset"] not in config["datasets"]:
            raise ConfigError(
                f"{where}.dataset: {study['dataset']!r} has no entry under 'datasets' "
                f"(configured: {sorted(config['datasets'])})"
            )
        epochs = study["training"]["epochs"]
        late = [e for e in study["evolution"]["epochs"] if e > epochs]
        if late:
            raise ConfigError(f"{where}.evolution.epochs: {late} exceed training.epochs = {epochs}")
    return config


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
        models = expand_grid(settings["grid"], settings["seeds"], settings["arch"]["name"])
        evolution = _pick_evolution(models, settings["evolution"]["models"], name)
        studies[name] = Study(name=name, settings=settings, models=tuple(models), evolution=evolution)
    return studies
