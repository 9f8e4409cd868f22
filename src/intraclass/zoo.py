"""Model zoos: studies over models trained elsewhere (docs/zoo.md), without torch.

A *zoo study* trains nothing. Its ``zoo`` config names

* ``models``: a directory of checkpoints (one file per model);
* ``table``: a CSV with one row per model: a ``model`` column (the model id, also its
  directory name under ``results/{study}/models``) and the model's hyperparameters;
* ``arch``: how to rebuild each model: a registered architecture (``vgg``, ``resnet``,
  ``vit``; the table's ``width``, ``depth`` and ``dropout`` columns, when present, are its
  factors, :data:`intraclass.archspec.FACTORS`) or ``package.module:function``, a builder
  of the user's (:mod:`intraclass.zoo_import`);
* ``labels``: the label level the models were trained on (``fine`` or ``coarse``);
* ``axes`` (optional): the table columns that are the axes of the granulated Kendall
  coefficient and of the CMI (default: every hyperparameter column except ``seed``).

Table columns with a fixed meaning (:data:`RESERVED`): ``model``; ``checkpoint`` (the
file under ``models``, default ``<model>.pt``); ``init`` (the model's initial weights
under ``models``, for layer rotation; without this column the study has no layer
rotation); ``train_acc``/``test_acc`` (the zoo's own accuracies: compared in the import
log with the accuracies the workflow computes, which are the ones used). Every other
column is a hyperparameter: it is copied into ``models.csv``. Names that ``models.csv``
or the Kendall table already use for something else are refused.

Axes (paper Eq. 5, the granulated Kendall coefficient; Jiang et al. 2020): for a zoo the
axis labels are the column names themselves (:func:`axis_mapping`), and two models fall
in one group of axis ``a`` when they are equal on every *other* axis and on ``seed``
when the table has one (models that differ only in seed are not a variation of ``a``).
A column left out of ``axes`` is an annotation: the coefficient ignores it.

Everything here runs in Snakemake's main process before any job (and again when a job
parses the workflow): a bad table, id, column or missing file is a :class:`ZooError`
naming the study key, the file and the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intraclass.names import EXTRA_KEYS

#: Table columns with a fixed meaning (module doc); every other column is a hyperparameter.
ID_COLUMN = "model"
FILE_COLUMNS = ("checkpoint", "init")
ACCURACY_COLUMNS = ("train_acc", "test_acc")
RESERVED = (ID_COLUMN, *FILE_COLUMNS, *ACCURACY_COLUMNS)


class ZooError(ValueError):
    """A zoo that cannot run; the message names the key, the file and the value."""


@dataclass(frozen=True)
class ZooModel:
    """One model of a zoo: its id, hyperparameters (the table's other columns, plain
    Python values, None for an empty cell) and files (paths as the workflow sees them)."""

    id: str
    hparams: dict = field(hash=False)
    checkpoint: str
    init: str | None = None
    reported: dict = field(default_factory=dict, hash=False)  # the table's train_acc/test_acc

    def to_dict(self) -> dict:
        """The model's ``models.csv`` hyperparameters (collect's ``params.models`` entry)."""
        return {"id": self.id, **self.hparams}


@dataclass(frozen=True)
class Zoo:
    """A zoo study's checked ``zoo`` config and its models (table order)."""

    models_dir: str
    table: str
    arch: str
    arch_options: dict = field(hash=False)
    labels: str
    axes: tuple[str, ...]
    normalization: dict | None = field(hash=False)
    models: tuple[ZooModel, ...]

    @property
    def has_init(self) -> bool:
        """Whether the zoo gives every model's initial weights (layer rotation needs them)."""
        return all(m.init is not None for m in self.models)


def axis_mapping(axes) -> dict[str, str]:
    """``{axis label: models.csv column}`` of a zoo's axes: each column is its own label."""
    return {column: column for column in axes}


def plain(value: Any) -> Any:
    """A table cell as a plain JSON value: numpy scalars unwrapped, NaN (empty) as None."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def read_table(path: str | Path, where: str):
    """The zoo table as a DataFrame, with an error naming the file when it is unusable."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ZooError(f"{where}.table: {path} does not exist (relative paths are relative "
                       f"to the working directory, {Path.cwd()})")
    try:
        frame = pd.read_csv(path)
    except Exception as error:  # parser, encoding and empty-file errors alike
        raise ZooError(f"{where}.table: cannot read {path}: {error}") from None
    if ID_COLUMN not in frame.columns:
        raise ZooError(f"{where}.table: {path} has no '{ID_COLUMN}' column (columns: {list(frame.columns)})")
    if frame.empty:
        raise ZooError(f"{where}.table: {path} lists no model")
    return frame


def check_ids(ids: list[str], pattern: str, path: Path, where: str) -> None:
    """Ids are unique and fit the workflow's ``{model}`` wildcard (``pattern``)."""
    bad = [i for i in ids if not re.fullmatch(pattern, i)]
    if bad:
        raise ZooError(f"{where}.table: {path}: model id(s) {bad[:5]} are not valid: an id is a "
                       f"directory name of letters, digits and . - + (regular expression {pattern})")
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ZooError(f"{where}.table: {path} lists model id(s) {twice[:5]} twice")


def hyperparameter_columns(columns, forbidden, path: Path, where: str) -> list[str]:
    """The table's hyperparameter columns (every column not in :data:`RESERVED`); a column
    whose name ``models.csv`` or the Kendall table uses otherwise (``forbidden``) is refused."""
    hparams = [str(c) for c in columns if c not in RESERVED]
    clash = [c for c in hparams if c in forbidden]
    if clash:
        raise ZooError(f"{where}.table: {path}: column(s) {clash} are names the tables use for "
                       "something else (metrics, measures, statuses); rename them")
    return hparams


def pick_axes(given, hparams: list[str], path: Path, where: str) -> tuple[str, ...]:
    """The configured axes (default: every hyperparameter column except ``seed``)."""
    if given is None:
        axes = [c for c in hparams if c not in EXTRA_KEYS]
        if not axes:
            raise ZooError(f"{where}.table: {path} has no hyperparameter column: the granulated "
                           "Kendall coefficient and the CMI need at least one axis")
        return tuple(axes)
    unknown = [a for a in given if a not in hparams]
    if unknown:
        raise ZooError(f"{where}.axes: {unknown} are not hyperparameter columns of {path} "
                       f"(its hyperparameter columns: {hparams})")
    shadowed = [a for a in given if a.endswith(("_lo", "_hi")) and a[:-3] in given]
    if shadowed:  # the tables write an axis' interval as <axis>_lo, <axis>_hi
        raise ZooError(f"{where}.axes: {shadowed} would clash with the interval columns of "
                       "another axis; rename them")
    return tuple(given)


def model_files(row: Mapping, models_dir: Path, has_init: bool, where: str) -> tuple[str, str | None]:
    """(checkpoint, init or None) of one table row, as paths under ``models_dir``."""
    name = plain(row.get("checkpoint"))
    checkpoint = models_dir / (str(name) if name is not None else f"{row[ID_COLUMN]}.pt")
    init = None
    if has_init:
        given = plain(row.get("init"))
        if given is None:
            raise ZooError(f"{where}.table: model {row[ID_COLUMN]!r} has no 'init' file; give "
                           "every model its initial weights or drop the column (no layer rotation)")
        init = str(models_dir / str(given))
    return str(checkpoint), init


def check_files(models: list[ZooModel], where: str) -> None:
    """Every checkpoint (and init) file exists: a missing one is named before any job."""
    missing = [p for m in models for p in (m.checkpoint, m.init) if p is not None and not Path(p).is_file()]
    if missing:
        raise ZooError(f"{where}.models: {len(missing)} file(s) of the table do not exist, e.g. "
                       f"{missing[:3]} (the table's 'checkpoint' column, default <model>.pt, and "
                       "'init' name files under zoo.models)")


def load_zoo(config: Mapping, where: str, id_pattern: str, forbidden=()) -> Zoo:
    """The checked zoo of one (schema-validated) ``zoo`` config (module doc); ``where`` is
    the study's config key (``studies.<name>.zoo``), ``id_pattern`` the ``{model}``
    wildcard's regular expression, ``forbidden`` the column names the tables reserve."""
    path = Path(config["table"])
    frame = read_table(path, where)
    frame[ID_COLUMN] = frame[ID_COLUMN].astype(str)
    ids = frame[ID_COLUMN].tolist()
    check_ids(ids, id_pattern, path, where)
    hparams = hyperparameter_columns(frame.columns, forbidden, path, where)
    axes = pick_axes(config.get("axes"), hparams, path, where)
    models_dir = Path(config["models"])
    if not models_dir.is_dir():
        raise ZooError(f"{where}.models: {models_dir} is not a directory (relative paths are "
                       f"relative to the working directory, {Path.cwd()})")
    has_init = "init" in frame.columns
    models = []
    for row in frame.to_dict("records"):
        checkpoint, init = model_files(row, models_dir, has_init, where)
        values = {c: plain(row[c]) for c in hparams}
        reported = {c: float(row[c]) for c in ACCURACY_COLUMNS if plain(row.get(c)) is not None}
        models.append(ZooModel(id=row[ID_COLUMN], hparams=values, checkpoint=checkpoint, init=init,
                               reported=reported))
    check_files(models, where)
    return Zoo(models_dir=str(models_dir), table=str(path), arch=config["arch"],
               arch_options=dict(config.get("arch_options") or {}), labels=config["labels"],
               axes=axes, normalization=config.get("normalization"), models=tuple(models))

