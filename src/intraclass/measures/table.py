"""Rule ``measures``: activation stores of one model -> one tidy CSV (docs/stages.md).

The only module of :mod:`intraclass.measures` that does I/O. Each store is read one
layer at a time (memory: one layer plus the per-class tables), its statistics computed
once by :func:`intraclass.measures.measure_stats`, and every row of
:meth:`MeasureStats.rows` written with its checkpoint name.

Labels: a model trained on ``coarse`` labels gets c3, c4, bimodality on the superclasses
and the hierarchical measures c1, c2, clusterability, purity (subclasses within
superclasses, section 2.2); one trained on ``fine`` labels gets c3, c4, bimodality on the
fine labels only, as in the paper (the hierarchical ones need a coarser training label).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from intraclass.names import LABEL_LEVELS, TIDY_COLUMNS
from intraclass.runtime import write_atomic

from . import registry
from .compute import MeasureSettings, measure_stats

LABELS = LABEL_LEVELS
CSV_COLUMNS = list(TIDY_COLUMNS)

log = logging.getLogger(__name__)


def store_measures(path: str | os.PathLike, labels: str, settings: MeasureSettings,
                   workers: int = 1) -> pd.DataFrame:
    """Tidy rows of one activation store (columns :data:`~intraclass.measures.COLUMNS`);
    ``workers`` threads compute layers in parallel (see :func:`measure_stats`)."""
    from intraclass.activations import open_store  # zarr is needed only here

    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
    store = open_store(path)
    if labels == "coarse":
        if store.coarse is None:
            raise ValueError(f"store {path} has no coarse labels but the model was trained on "
                             "coarse labels (labels: coarse)")
        fine, coarse, trained = store.fine, store.coarse, store.coarse
        measures = registry.names(stage=registry.ACTIVATION_STAGE)  # plug-ins included
    else:
        fine = coarse = None
        trained = store.fine
        measures = tuple(m.name for m in registry.measures(stage=registry.ACTIVATION_STAGE)
                         if not m.hierarchical)

    def layers():
        for i, name in enumerate(store.layer_names):
            start = time.perf_counter()
            layer = store.layer(name)
            log.info("  layer %d/%d %s (%d neurons) read in %.2f s", i + 1, len(store.layer_names),
                     name, store.neurons[i], time.perf_counter() - start)
            yield layer

    stats = measure_stats(layers(), fine, coarse, trained, measures, settings.c4_quantile, workers,
                          settings.clusterability, c4_active=settings.c4_active, settings=settings)
    return stats.rows(settings)


def measures_table(stores: Sequence, checkpoints: Sequence[str], labels: str,
                   settings: MeasureSettings | Mapping, workers: int = 1) -> pd.DataFrame:
    """Rows of every store, with a leading ``checkpoint`` column (:data:`CSV_COLUMNS`)."""
    if not isinstance(settings, MeasureSettings):
        settings = MeasureSettings.from_params(settings)
    if len(stores) != len(checkpoints):
        raise ValueError(f"{len(stores)} stores but {len(checkpoints)} checkpoint names")
    if len(set(checkpoints)) != len(checkpoints):
        raise ValueError(f"checkpoint names repeat: {list(checkpoints)}")
    frames = []
    for store, checkpoint in zip(stores, checkpoints):
        start = time.perf_counter()
        log.info("measures of %s (%s)", checkpoint, store)
        frame = store_measures(store, labels, settings, workers)
        frame.insert(0, "checkpoint", checkpoint)
        frames.append(frame)
        log.info("%s done: %d rows in %.1f s", checkpoint, len(frame), time.perf_counter() - start)
    return pd.concat(frames, ignore_index=True)


def write_measures_csv(stores: Sequence, checkpoints: Sequence[str], labels: str,
                       settings: MeasureSettings | Mapping, out: str | os.PathLike,
                       workers: int = 1) -> Path:
    """Compute :func:`measures_table` and write it to ``out`` atomically (temp + rename)."""
    table = measures_table(stores, checkpoints, labels, settings, workers)
    return write_atomic(out, lambda tmp: table.to_csv(tmp, index=False, float_format="%.17g"))
