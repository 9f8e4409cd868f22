"""The intraclass clustering measures c1-c4 (section 2, Eqs. 1-4), exact and fast, and the
related work's activation measures, all declared in :mod:`intraclass.measures.registry`.

Pure functions over arrays, no I/O: ``preacts`` is a list of (samples, neurons)
pre-activation arrays, one per BN->ReLU site in forward order; labels are int arrays.

    c1(preacts, fine, coarse, k=30)   # neuron-level subclass selectivity (Eq. 1)
    c2(preacts, fine, coarse, k=5)    # layer-level subclass silhouette   (Eq. 2)
    c3(preacts, labels, k=30)         # neuron-level std ratio            (Eq. 3)
    c4(preacts, labels, k=1)          # layer-level pairwise-distance std ratio (Eq. 4)

Companions share one pass of statistics: :func:`measure_stats` returns a
:class:`MeasureStats` (measures at any k, k curves, layer-wise and per-class values, top
neurons) and :func:`compute_all` the tidy rows the workflow writes. The slow references
they are tested against live in :mod:`intraclass.measures.reference`; the store-to-CSV
step of the workflow in :mod:`intraclass.measures.table`.

The names below are imported on first use, so that ``intraclass.measures.registry`` (and
``intraclass.names``, derived from it) load without numpy or pandas.
"""

import importlib

_LAZY = {"COLUMNS", "MEASURES", "MeasureSettings", "MeasureStats", "c1", "c2", "c3", "c4",
         "compute_all", "measure_stats"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(".compute", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
