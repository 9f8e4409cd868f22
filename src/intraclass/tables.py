"""The ``collect`` stage: one table per study, one row per model (docs/stages.md).

``models.csv`` columns, in order:

- ``model`` (the model id) and the hyperparameters of train's ``params.model``
  (``lr, weight_decay, batch_size, optimizer, dropout, augment, width, depth, seed``);
- ``train_acc, test_acc, train_loss, test_loss, gap`` (``gap = train_acc - test_acc``) and
  ``epochs_run, early_stopped, wall_time_s`` from ``metrics.json``;
- every registered measure (:mod:`intraclass.measures.registry`, in registration order)
  that was computed: the activation measures (``c1..c4``, ``clusterability``, ``purity``,
  ``bimodality``) at their configured k (``scope == total``, ``checkpoint == final``; the
  hierarchical ones need superclasses), and the measures of each model-level stage
  (``sharpness``: ``sigma1, sigma2, alpha1, alpha2``, the measure 1/m; ``blackbox``: c0;
  ``rotation``, ...), each the ``value`` of ``results/{study}/{stage}/{model}.json`` =
  ``{"measures": {name: {"value": float | null, "layers": [float, ...]}}}`` (null: NaN).

- ``status, reason`` (:mod:`intraclass.status`): ``ok``, or the first non-ok status of
  the model's chain, in the order training (``metrics.json``), measures
  (``measures/{model}.status.json``), sharpness and the other model-level stages (their
  JSONs' ``status``), with its reason. A model whose status is not ``ok`` keeps its row,
  with every measure NaN, so the tables and figures can list it as excluded;
- ``<measure>_at_bound`` (bool) for each sharpness measure computed: its bisection ended
  unconverged on an end of the search interval (:mod:`intraclass.sharpness`);
- ``sharpness_target`` when sharpness was computed: the training accuracy the model's
  searches aimed at (the JSON's per-measure ``target``: 0.9 in the absolute mode, the
  model's own training accuracy minus the deviation in the relative one); NaN for a model
  whose status is not ok, or when its measures aimed at different targets (absolute mode
  with ``sigma.target`` != ``alpha.target``: the table notes give both);
- ``device, threads, deterministic, torch_version, numpy_version, python_version``: what
  the model was trained with, from ``metrics.json`` (empty for metrics written before).

``measures.csv.gz``: every tidy row of every model's measures CSV with a leading ``model``
column, plus the ``layers`` lists of the model-level stages' JSONs as ``scope == layer``
rows (``checkpoint final``, ``layer`` = index), for the figures and the k curves.

``test_correct.npz`` (:func:`correct_matrix`): ``models`` (str ids, the order of
``models.csv``) and ``correct`` (bool, (models, test images)): row i is model i's
``test_correct.npy`` (per-example correctness of the float32 test evaluation, whose
mean is ``test_acc``), all False for a model whose status is not ``ok``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from intraclass.measures import registry
from intraclass.names import (
    AT_BOUND_SUFFIX,
    HYPERPARAMETERS,
    MEASURES,  # noqa: F401 - re-exported (intraclass.config)
    SHARPNESS,
    TIDY_COLUMNS,
)
from intraclass.runtime import write_atomic
from intraclass.status import OK, checked_status, read_json

log = logging.getLogger(__name__)

HPARAMS = HYPERPARAMETERS  # the leading columns after ``model``
METRICS = ("train_acc", "test_acc", "train_loss", "test_loss")
METRICS_EXTRA = ("epochs_run", "early_stopped", "wall_time_s")
REQUIRED_METRICS = ("train_acc", "test_acc")
STATUS_COLUMNS = ("status", "reason")
AT_BOUND = tuple(f"{name}{AT_BOUND_SUFFIX}" for name in SHARPNESS)
SHARPNESS_TARGET = "sharpness_target"
ENVIRONMENT = ("device", "threads", "deterministic", "torch_version", "numpy_version", "python_version")


# ----------------------------------------------------------------------------- I/O


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV (gzip by extension), with an error naming the file when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table {path} does not exist")
    try:
        return pd.read_csv(path, low_memory=False)
    except Exception as error:
        raise ValueError(f"cannot read table {path}: {error}") from error


def write_csv(frame: pd.DataFrame, path: str | os.PathLike, **kwargs) -> Path:
    """Atomic ``DataFrame.to_csv``; gzip when ``path`` ends in ``.gz`` (the temporary name
    does not, so the compression is given explicitly)."""
    compression = "gzip" if str(path).endswith(".gz") else None
    kwargs.setdefault("index", False)
    # mtime=0: the same table gives the same bytes, so reruns compare equal
    options = {"method": "gzip", "mtime": 0} if compression else None
    return write_atomic(path, lambda tmp: frame.to_csv(tmp, compression=options, **kwargs))


# ------------------------------------------------------------------------ per model


def measure_values(tidy: pd.DataFrame, k: Mapping[str, int] | None, source: str = "") -> dict[str, float]:
    """Each measure's value at its configured k (``scope total``, ``checkpoint final``).

    A measure without total rows is simply absent (not computed for this study). A measure
    with total rows but none at the configured k is an error (a stale measures file).
    """
    k = dict(k or {})
    rows = tidy[(tidy["scope"] == "total") & (tidy["checkpoint"].astype(str) == "final")]
    values = {}
    for measure in registry.names(stage=registry.ACTIVATION_STAGE):  # plug-ins included
        candidates = rows[rows["measure"] == measure]
        if candidates.empty:
            continue
        if measure in k and candidates["k"].notna().any():
            at_k = candidates[candidates["k"] == k[measure]]
            if at_k.empty:
                available = sorted(candidates["k"].dropna().unique().tolist())
                raise ValueError(f"measures {source}: {measure} has no total value at the "
                                 f"configured k={k[measure]} (has k={available}); rerun the "
                                 "measures stage")
            candidates = at_k
        if len(candidates) > 1:
            raise ValueError(f"measures {source}: {len(candidates)} total rows for {measure} "
                             f"at the final checkpoint; expected one")
        values[measure] = float(candidates["value"].iloc[0])
    return values


def stage_values(data: Mapping | None, stage: str, source: str = "") -> dict[str, float]:
    """The registered measures of ``stage`` in one model-level JSON: ``{name: value}`` (a
    NaN when the JSON has the measure but no value, e.g. a failed search)."""
    values = {}
    # each model-level stage writes {"measures": {name: {"value": v, ...}}, "settings": ...}
    measures = data.get("measures", {}) if data else {}
    for name in registry.names(stage=stage):
        if name not in measures:
            continue
        entry = measures[name]
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{stage} {source}: {name}.value is {value!r}, not a number")
        values[name] = math.nan if value is None else float(value)
    return values


def sharpness_values(data: Mapping | None, source: str = "") -> dict[str, float]:
    """The sharpness measures of one JSON: ``{name: value}`` with value = 1/m."""
    return stage_values(data, "sharpness", source)


def stage_layer_rows(data: Mapping | None, stage: str, source: str = "") -> pd.DataFrame:
    """Tidy ``scope == layer`` rows of the per-layer values a model-level JSON gives for its
    layer-wise measures: ``"layers": [v0, v1, ...]`` (checkpoint ``final``) and, optionally,
    ``"checkpoints": {"epoch<E>": {"layers": [...]}, ...}`` (the evolution checkpoints;
    a ``final`` entry there is the top-level list again and is not repeated)."""
    rows = []
    measures = data.get("measures", {}) if data else {}
    for measure in registry.measures(stage=stage):
        entry = measures.get(measure.name)
        if not measure.layerwise or not isinstance(entry, Mapping) or entry.get("layers") is None:
            continue
        curves = {"final": entry["layers"], **{c: v.get("layers") for c, v in entry.get("checkpoints", {}).items()
                                               if c != "final" and isinstance(v, Mapping)}}
        for checkpoint, layers in curves.items():
            if not isinstance(layers, list):
                raise ValueError(f"{stage} {source}: {measure.name}.layers of {checkpoint} is {layers!r}, "
                                 "not a list")
            for layer, value in enumerate(layers):
                rows.append((checkpoint, measure.name, "layer", None, layer, None, None,
                             math.nan if value is None else float(value)))
    frame = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
    for column in ("k", "layer", "subclass", "neuron"):
        frame[column] = frame[column].astype("Int64")
    return frame


def model_row(
    model: Mapping,
    metrics: Mapping,
    tidy: pd.DataFrame | None,
    sharpness: Mapping | None,
    k: Mapping[str, int] | None,
    stages: Mapping[str, Mapping | None] | None = None,
    measures_status: Mapping | None = None,
) -> dict:
    """The ``models.csv`` row of one model; ``stages``: the JSON of each other model-level
    stage (``{stage: data}``, e.g. ``blackbox``, ``rotation``); ``measures_status``: the
    measures stage's ``{"status", "reason"}``."""
    if "id" not in model:
        raise KeyError(f"model entry {dict(model)} has no 'id'")
    model_id = model["id"]
    missing = [m for m in REQUIRED_METRICS if m not in metrics]
    if missing:
        raise KeyError(f"metrics of model {model_id} lack {missing}")
    row: dict = {"model": model_id}
    row.update({key: value for key, value in model.items() if key != "id"})
    for key in METRICS:
        row[key] = float(metrics[key]) if metrics.get(key) is not None else math.nan
    row["gap"] = row["train_acc"] - row["test_acc"]
    for key in METRICS_EXTRA:
        row[key] = metrics.get(key)
    if tidy is not None:
        row.update(measure_values(tidy, k, source=f"of model {model_id}"))
    row.update(sharpness_values(sharpness, source=f"of model {model_id}"))
    for stage, data in (stages or {}).items():
        row.update(stage_values(data, stage, source=f"of model {model_id}"))
    row.update(at_bound_flags(sharpness))
    row.update(sharpness_target(sharpness))
    row["status"], row["reason"] = model_status(metrics, measures_status,
                                                {"sharpness": sharpness, **(stages or {})}, model_id)
    if row["status"] != OK:  # excluded: no value of it may enter a criterion
        row.update({name: math.nan for name in registry.names() if name in row})
        row.update({flag: False for flag in AT_BOUND if flag in row})
        if SHARPNESS_TARGET in row:
            row[SHARPNESS_TARGET] = math.nan
    row.update({key: metrics.get(key) for key in ENVIRONMENT})
    return row


def at_bound_flags(sharpness: Mapping | None) -> dict[str, bool]:
    """``{<measure>_at_bound: bool}`` of the sharpness measures of one JSON that carry the
    flag (JSONs written before it existed carry none: no claim is made for them)."""
    measures = sharpness.get("measures", {}) if sharpness else {}
    return {f"{name}{AT_BOUND_SUFFIX}": bool(entry["at_bound"]) for name, entry in measures.items()
            if name in SHARPNESS and isinstance(entry, Mapping) and "at_bound" in entry}


def sharpness_target(sharpness: Mapping | None) -> dict[str, float]:
    """``{sharpness_target: accuracy}`` from the per-measure ``target`` of one sharpness JSON
    (NaN when they differ or are null); empty for a JSON without targets (none computed,
    or written before targets existed)."""
    measures = sharpness.get("measures", {}) if sharpness else {}
    targets = {entry.get("target") for name, entry in measures.items()
               if name in SHARPNESS and isinstance(entry, Mapping) and "target" in entry}
    if not targets:
        return {}
    single = targets.pop() if len(targets) == 1 else None
    return {SHARPNESS_TARGET: math.nan if single is None else float(single)}


def model_status(metrics: Mapping, measures_status: Mapping | None, jsons: Mapping[str, Mapping | None],
                 model_id: str = "") -> tuple[str, str | None]:
    """The first non-ok (status, reason) of a model's chain: training, measures, then the
    model-level stages in ``jsons`` order; ``("ok", None)`` when every one is ok. A file
    without ``status`` (written before statuses existed) counts as ok."""
    sources = {"metrics": metrics, "measures": measures_status, **jsons}
    for source, data in sources.items():
        if not data:
            continue
        status = checked_status(data.get("status", OK), f"{source} of model {model_id}")
        if status != OK:
            return status, data.get("reason")
    return OK, None


def models_table(rows: Sequence[dict]) -> pd.DataFrame:
    """Rows -> frame with the columns in the documented order (absent measures left out)."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        raise ValueError("no models to collect")
    if frame["model"].duplicated().any():
        duplicated = frame.loc[frame["model"].duplicated(), "model"].tolist()
        raise ValueError(f"model id(s) listed twice: {duplicated}")
    head = ["model", *[c for c in HPARAMS if c in frame.columns]]
    known = (*METRICS, "gap", *METRICS_EXTRA, *STATUS_COLUMNS, *registry.names(), *AT_BOUND,
             SHARPNESS_TARGET, *ENVIRONMENT)
    extra_hparams = [c for c in frame.columns if c not in head and c not in known]
    tail = [c for c in known if c in frame.columns]
    return frame[head + extra_hparams + tail]


def tidy_table(model_ids: Sequence[str], tidies: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """All tidy measure rows with a leading ``model`` column."""
    parts = []
    for model_id, tidy in zip(model_ids, tidies):
        part = tidy.copy()
        part.insert(0, "model", model_id)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["model", *TIDY_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def read_measures(path: str | os.PathLike) -> pd.DataFrame:
    """One model's tidy measures CSV, checked for the contract's columns."""
    tidy = read_table(path)
    missing = [c for c in TIDY_COLUMNS if c not in tidy.columns]
    if missing:
        raise ValueError(f"measures file {path} lacks column(s) {missing}")
    return tidy


# ---------------------------------------------------------------------- file level


def collect(
    models: Sequence[Mapping],
    metrics: Sequence[str | os.PathLike],
    measures: Sequence[str | os.PathLike],
    sharpness: Sequence[str | os.PathLike],
    k: Mapping[str, int] | None,
    out_models: str | os.PathLike,
    out_measures: str | os.PathLike,
    stages: Mapping[str, Sequence[str | os.PathLike]] | None = None,
    measures_status: Sequence[str | os.PathLike] = (),
    test_correct: Sequence[str | os.PathLike] = (),
    out_correct: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """The ``collect`` stage. ``metrics``, ``measures``, ``sharpness``, each list of
    ``stages`` (``{stage: JSON paths}`` of the other model-level stages of the registry,
    e.g. ``blackbox``, ``rotation``), ``measures_status`` (the measures stage's status
    JSONs) and ``test_correct`` (train's ``test_correct.npy``) are paths aligned with
    ``models``; all but ``metrics`` may be empty (stage disabled, or files written before
    statuses existed). ``out_correct``: where :func:`correct_matrix` goes (needs
    ``test_correct``)."""
    n = len(models)
    jsons = {"sharpness": sharpness, **(stages or {})}
    unknown = set(jsons) - set(registry.stages())
    if unknown:
        raise ValueError(f"collect got files of stage(s) {sorted(unknown)} that no registered measure "
                         f"comes from; known stages: {list(registry.stages())}")
    aligned = (("metrics", metrics), ("measures", measures), ("measures status", measures_status),
               ("test_correct", test_correct), *jsons.items())
    for name, paths in aligned:
        if (name == "metrics" or len(paths)) and len(paths) != n:
            raise ValueError(f"collect got {len(paths)} {name} files for {n} models; "
                             "the lists must be aligned with params.models")
    tidies = [read_measures(p) for p in measures] if len(measures) else [None] * n
    rows, layer_rows = [], []
    for i, model in enumerate(models):
        data = {stage: read_json(paths[i], stage) for stage, paths in jsons.items() if len(paths)}
        others = {stage: d for stage, d in data.items() if stage != "sharpness"}
        status = read_json(measures_status[i], "measures status") if len(measures_status) else None
        rows.append(model_row(model, read_json(metrics[i], "metrics"), tidies[i], data.get("sharpness"), k,
                              others, status))
        layer_rows.append([stage_layer_rows(d, stage, f"of model {model['id']}") for stage, d in data.items()])
    table = models_table(rows)
    log.info("collected %d models; measures: %s", len(table), [c for c in registry.names() if c in table.columns])
    for _, row in table[table["status"] != OK].iterrows():
        log.warning("model %s excluded: %s (%s)", row["model"], row["status"], row["reason"])
    parts = [pd.concat([t for t in (tidy, *layers) if t is not None and len(t)] or [tidy_table([], [])
                                                                                   .drop(columns="model")])
             for tidy, layers in zip(tidies, layer_rows)]
    tidy = tidy_table([m["id"] for m in models], parts)
    if out_correct is not None:
        if not len(test_correct):
            raise ValueError("collect: out_correct needs the models' test_correct files")
        matrix = correct_matrix(table["model"].tolist(), test_correct, table["status"].tolist())
        write_atomic(out_correct, lambda tmp: _savez(tmp, matrix))
    write_csv(table, out_models)
    write_csv(tidy, out_measures)
    return table


def correct_matrix(model_ids: Sequence[str], paths: Sequence[str | os.PathLike],
                   statuses: Sequence[str]) -> dict[str, np.ndarray]:
    """``{"models": str (M,), "correct": bool (M, n_test)}`` from each model's
    ``test_correct.npy`` (aligned with ``model_ids``); all False where the status is not
    ok. Every file must be a 1-D bool array of the same length (the same test set)."""
    rows = []
    for model_id, path, status in zip(model_ids, paths, statuses):
        try:
            row = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"test_correct file {path} of model {model_id} is unreadable: {error}") from None
        if row.dtype != bool or row.ndim != 1 or (rows and len(row) != len(rows[0])):
            raise ValueError(f"test_correct file {path} of model {model_id} holds {row.dtype} "
                             f"{row.shape}; expected bool ({len(rows[0]) if rows else 'n_test'},)")
        rows.append(row if status == OK else np.zeros_like(row))
    return {"models": np.asarray(list(model_ids), dtype=str),
            "correct": np.stack(rows) if rows else np.zeros((0, 0), dtype=bool)}


def _savez(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a handle: np.savez would append .npz to the name
        np.savez(handle, **arrays)
