"""Model status: a model that diverges or cannot be measured is data, not a failed job.

Every model's chain (train -> extract -> measures, train -> sharpness) ends with a
*status* and a *reason*:

* ``ok``: trained with finite losses and weights, and measured.
* ``diverged`` (set by training, :mod:`intraclass.train`): an epoch's running training
  loss or a weight/buffer became non-finite (training stops at that epoch), or the final
  evaluation's training or test loss is non-finite. ``reason`` names the epoch and value.
* ``unmeasurable`` (set by the measures stage): a healthy model whose cached
  pre-activations hold non-finite values (float16 overflow, or inf/NaN activations of
  huge weights), so that c1-c4 are undefined. ``reason`` names the checkpoint and layers.

Downstream jobs of a model whose status is not ``ok`` do not fail: they write a
documented *skipped* output quickly (below) and the ``collect`` stage keeps the model's
row in ``models.csv`` with its status and reason and NaN measures, and leaves it out of
every table and figure. Real errors (bugs, unreadable or corrupt files) still fail their
job.

Skipped outputs:

* extract: the store directory ``{checkpoint}.zarr`` holds only :data:`SKIP_FILE`
  (JSON ``{"status", "reason"}``), no Zarr group (:func:`write_skipped_store`);
* measures: the tidy CSV with its header only, and the status JSON names the status;
* sharpness, blackbox (c0) and rotation: the stage's JSON with ``status``, ``reason``
  and every measure's value ``null`` (rotation: ``layers`` null, no ``checkpoints``),
  written by :func:`skip_unless_ok` without loading the model.

JSON written by the stages is always valid JSON: :func:`json_text` writes non-finite
floats (NaN, +-inf, which ``json.dumps`` would write as the invalid ``NaN``) as ``null``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from intraclass.runtime import write_atomic

OK = "ok"
DIVERGED = "diverged"
UNMEASURABLE = "unmeasurable"
STATUSES = (OK, DIVERGED, UNMEASURABLE)
SKIP_FILE = "skipped.json"


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth of dicts/lists, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def json_text(data: Any) -> str:
    """Indented JSON of ``data`` with non-finite floats as ``null`` (always valid JSON)."""
    return json.dumps(finite_or_none(data), indent=2, allow_nan=False, default=str) + "\n"


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """:func:`json_text` of ``data`` written atomically to ``path``."""
    text = json_text(data)
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def read_status(metrics_path: str | os.PathLike) -> tuple[str, str | None]:
    """(status, reason) of a model from its ``metrics.json``.

    A metrics file without ``status`` (written before statuses existed) is ``ok``.
    Raises ``FileNotFoundError``/``ValueError`` naming the file when it is missing or
    unreadable: a corrupt file is an error, never a skipped model.
    """
    metrics = read_json(metrics_path, "metrics")
    return checked_status(metrics.get("status", OK), str(metrics_path)), metrics.get("reason")


def read_json(path: str | os.PathLike, what: str) -> dict:
    """The JSON object in ``path``; ``FileNotFoundError``/``ValueError`` naming ``what``
    file it is (e.g. "metrics file ...") when it is missing, not JSON or not an object."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{what} file {path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{what} file {path} holds a {type(data).__name__}, not a JSON object")
    return data


def skip_unless_ok(metrics_path: str | os.PathLike | None, out_path: str | os.PathLike,
                   skipped: Callable[[str, str | None], dict], log: logging.Logger,
                   stage: str) -> dict | None:
    """The first step of a model-level stage (sharpness, blackbox, rotation): when the
    model's ``metrics.json`` says its status is not ok, write ``skipped(status, reason)``
    (the stage's JSON with null values) to ``out_path``, log why and return it; None for
    an ok model (or no ``metrics_path``), which the stage then measures."""
    if metrics_path is None:
        return None
    status, reason = read_status(metrics_path)
    if status == OK:
        return None
    log.warning("model of %s has status %s (%s): %s skipped", metrics_path, status, reason, stage)
    result = skipped(status, reason)
    write_json(out_path, result)
    return result


def checked_status(status: Any, source: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"{source}: status {status!r} is not one of {STATUSES}")
    return status


def write_skipped_store(path: str | os.PathLike, status: str, reason: str | None) -> Path:
    """The extract stage's output for a model whose status is not ok: a directory holding
    only :data:`SKIP_FILE` (no Zarr group, so :func:`intraclass.activations.open_store`
    refuses it). Written under a temporary name and renamed, like a real store."""
    from intraclass.runtime import atomic_target, replace_dir

    path = Path(path)
    tmp = atomic_target(path)
    tmp.mkdir(parents=True)
    write_json(tmp / SKIP_FILE, {"status": checked_status(status, str(path)), "reason": reason})
    return replace_dir(tmp, path)


def skipped_store(path: str | os.PathLike) -> tuple[str, str | None] | None:
    """(status, reason) of a store written by :func:`write_skipped_store`, else None."""
    marker = Path(path) / SKIP_FILE
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text())
    return checked_status(data.get("status"), str(marker)), data.get("reason")


def stores_status(stores, checkpoints) -> tuple[str, str | None]:
    """Status of one model's activation stores for the measures stage, with its reason.

    The first skipped store's status (a diverged model), else ``unmeasurable`` when a store
    holds non-finite pre-activations (its ``nonfinite`` attribute, counted per layer
    after the cast to the store's dtype: c1-c4 are undefined there), else ``ok``.
    ``stores`` and ``checkpoints`` (their names) are aligned.
    """
    from intraclass.activations import open_store  # zarr only where stores are read

    stores, checkpoints = list(stores), list(checkpoints)
    for store in stores:
        skipped = skipped_store(store)
        if skipped is not None:
            return skipped
    for store, checkpoint in zip(stores, checkpoints):
        counts = open_store(store).attrs.get("nonfinite", {})
        bad = [f"{layer} ({count} values)" for layer, count in counts.items() if count]
        if bad:
            return UNMEASURABLE, (f"checkpoint {checkpoint}: non-finite pre-activations in "
                                  f"{len(bad)} layer(s): {', '.join(bad[:3])}"
                                  f"{' ...' if len(bad) > 3 else ''}")
    return OK, None
