"""The four measures (Eqs. 1-4) and their companions, from one set of statistics.

:func:`measure_stats` reads each layer once and keeps, per class, the values the paper
ranks (section 2): the selectivity of every neuron (Eq. 1), the silhouette of every
layer (Eq. 2), the std ratio of every neuron (Eq. 3) and the pairwise-distance std ratio
of every layer (Eq. 4). Everything else is a cheap reduction of these tables, done by
:class:`MeasureStats`: the measure at any k (top-k mean, then the median over subclasses
for c1, c2 or the mean over classes for c3, c4), the whole k curve (Fig. 4: one sort and
a cumulative mean), layer-wise values (Fig. 5), per-class values and each subclass's
most selective neuron (Figs. 7, 11). :func:`compute_all` returns them all as tidy rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from intraclass.names import ACTIVATION as MEASURES  # noqa: F401 - the built-ins, re-exported
from intraclass.names import INTRACLASS, TIDY_COLUMNS

from . import bimodality, clusterability, registry, stats
from .labels import check_labels, hierarchy, partition

COLUMNS = [c for c in TIDY_COLUMNS if c != "checkpoint"]  # a table of one checkpoint


# The activation measures are read from the registry when used, not when this module is
# imported, so that a plug-in measure registered later (measures.plugins) is computed too.
def _activation() -> tuple[str, ...]:
    return registry.names(stage=registry.ACTIVATION_STAGE)


def _hierarchical() -> tuple[str, ...]:
    return tuple(m.name for m in registry.measures(stage=registry.ACTIVATION_STAGE) if m.hierarchical)


def _neuron_level() -> tuple[str, ...]:
    return tuple(m.name for m in registry.measures(stage=registry.ACTIVATION_STAGE) if m.level == "neuron")


def _sweep() -> tuple[str, ...]:
    return tuple(m.name for m in registry.measures(stage=registry.ACTIVATION_STAGE) if m.sweep)


#: Defaults of the clusterability settings (see :mod:`intraclass.measures.clusterability`):
#: the over-clustering factor, the samples clustered per superclass at most, the seed of
#: that subset.
CLUSTERABILITY = {"factor": 5, "max_samples": 1000, "seed": 0}


def default_k() -> dict[str, int]:
    """Each activation measure's k when the config names none: the registry's default_k
    (section 4.1: c1, c3 top-30 neurons; c2, c4 top-5 layers, the paper's ResNet value)."""
    return {m.name: m.default_k for m in registry.measures(stage=registry.ACTIVATION_STAGE)}


@dataclass(frozen=True)
class MeasureSettings:
    """The ``measures`` block of the config (config/schema.yaml holds the same defaults).

    ``k``: k of each measure's top-k mean (a measure left out takes its registry
    default_k); ``k_sweep``: largest k of the Fig. 4 curves (measures declared with a k
    curve: c1, c3, bimodality); ``layer_k``: neurons per layer of the layer-wise
    neuron-level measures (Fig. 5: 5); ``c4_quantile``: the quantile subtracted in c4
    (0.75: 25% of samples active); ``c4_active``: c4's threshold rule, ``fixed`` (the
    paper: c4_quantile in every layer) or ``narrow`` (the authors' code: a lower quantile in
    layers under 40 live neurons, so that about 10 neurons fire per sample;
    :func:`intraclass.measures.stats.c4_layer_quantile`); ``clusterability``: ``factor``,
    ``max_samples``, ``seed`` of the clusterability and purity measures (defaults
    :data:`CLUSTERABILITY`).
    """

    k: Mapping[str, int] = field(default_factory=default_k)
    k_sweep: Mapping[str, int] = field(default_factory=lambda: {"c1": 60, "c3": 300})
    layer_k: int = 5
    c4_quantile: float = 0.75
    clusterability: Mapping[str, int] = field(default_factory=lambda: dict(CLUSTERABILITY))
    c4_active: str = "fixed"

    def __post_init__(self):
        unknown = set(self.k) - set(_activation())
        if unknown:
            raise ValueError(f"measures.k names unknown measure(s) {sorted(unknown)}; known: {list(_activation())}")
        object.__setattr__(self, "k", {**default_k(), **self.k})
        for name, value in [*self.k.items(), *self.k_sweep.items(), ("layer_k", self.layer_k)]:
            _check_k(value, f"k of {name}")
        unknown = set(self.k_sweep) - set(_sweep())
        if unknown:
            raise ValueError(f"measures.k_sweep holds {sorted(unknown)}; only {list(_sweep())} have k curves")
        if not 0.0 <= float(self.c4_quantile) < 1.0:
            raise ValueError(f"measures.c4_quantile must lie in [0, 1), got {self.c4_quantile}")
        if self.c4_active not in stats.C4_ACTIVE:
            raise ValueError(f"measures.c4_active must be one of {list(stats.C4_ACTIVE)}, got {self.c4_active!r}")
        unknown = set(self.clusterability) - set(CLUSTERABILITY)
        if unknown:
            raise ValueError(f"unknown keys in measures.clusterability: {sorted(unknown)}; "
                             f"known: {list(CLUSTERABILITY)}")
        cluster = {**CLUSTERABILITY, **self.clusterability}
        for key in ("factor", "max_samples"):
            _check_k(cluster[key], f"measures.clusterability.{key}")
        if isinstance(cluster["seed"], bool) or not isinstance(cluster["seed"], (int, np.integer)) \
                or cluster["seed"] < 0:
            raise ValueError(f"measures.clusterability.seed must be an integer >= 0, got {cluster['seed']!r}")
        object.__setattr__(self, "clusterability", cluster)

    @classmethod
    def from_params(cls, params: Mapping) -> MeasureSettings:
        """Settings from the config's ``measures`` dict (missing keys take the defaults;
        ``plugins``, the modules that register measures, is for :func:`registry.load_plugins`)."""
        params = {key: value for key, value in params.items() if key != "plugins"}
        unknown = set(params) - {"k", "k_sweep", "layer_k", "c4_quantile", "c4_active", "clusterability"}
        if unknown:
            raise ValueError(f"unknown keys in measures settings: {sorted(unknown)}")
        return cls(**params)


def _check_k(k, what: str, limit: int | None = None, unit: str = "") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{what} must be a positive integer, got {k!r}")
    if limit is not None and k > limit:
        raise ValueError(f"{what} is {k}, larger than the number of {unit} ({limit})")
    return int(k)


def _top_k_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k largest entries of each row of (rows, width) ``values``."""
    width = values.shape[1]
    return np.partition(values, width - k, axis=1)[:, width - k :].mean(axis=1)


@dataclass(frozen=True)
class MeasureStats:
    """Per-class tables of one model's pre-activations, and every reduction of them.

    ``tables[m]`` is (classes, all neurons) for the neuron-level measures (c1, c3,
    bimodality) and (classes, layers) for the layer-level ones (c2, c4, clusterability,
    purity); its rows are ``subclasses`` (c1, c2: fine labels), ``superclasses``
    (clusterability, purity: coarse labels) or ``classes`` (c3, c4, bimodality: the labels
    trained on). ``layer_sizes`` gives the neurons of each layer, in forward order.
    """

    layer_sizes: tuple[int, ...]
    tables: Mapping[str, np.ndarray]
    subclasses: np.ndarray | None = None
    classes: np.ndarray | None = None
    superclasses: np.ndarray | None = None

    def _table(self, measure: str) -> np.ndarray:
        if measure not in _activation():
            raise ValueError(f"unknown measure {measure!r}; expected one of {_activation()}")
        if measure not in self.tables:
            raise ValueError(f"{measure} was not computed (its labels were not given)")
        return self.tables[measure]

    def row_labels(self, measure: str) -> np.ndarray:
        """Class label of each row of ``tables[measure]``."""
        if measure in clusterability.SCORES:
            return self.superclasses
        return self.subclasses if registry.get(measure).hierarchical else self.classes

    @staticmethod
    def aggregate(measure: str, per_class: np.ndarray) -> np.ndarray:
        """Median over subclasses (Eqs. 1-2) or superclasses (clusterability, purity) or
        mean over classes (Eqs. 3-4, bimodality), axis 0: the registry's ``aggregation``."""
        if registry.get(measure).aggregation == "median":
            return np.median(per_class, axis=0)
        return per_class.mean(axis=0)

    def per_class(self, measure: str, k: int) -> np.ndarray:
        """(classes,): each class's top-k mean, the values Eqs. 1-4 aggregate."""
        table = self._table(measure)
        unit = "neurons" if measure in _neuron_level() else "layers"
        return _top_k_mean(table, _check_k(k, f"k of {measure}", table.shape[1], unit))

    def total(self, measure: str, k: int) -> float:
        """The measure itself (Eqs. 1-4) at this k."""
        return float(self.aggregate(measure, self.per_class(measure, k)))

    def k_curve(self, measure: str, k_max: int) -> np.ndarray:
        """(k_max,): the measure at k = 1..k_max (Fig. 4), one sort and a cumulative mean.

        Past the model's number of neurons the curve is NaN: one study-wide k_sweep
        serves grids of several widths, and the narrower models must not fail their job
        (the Kendall coefficient at such a k leaves NaN models out)."""
        table = self._table(measure)
        k_max = _check_k(k_max, f"k_sweep of {measure}")
        k_have = min(k_max, table.shape[1])
        top = -np.sort(-table, axis=1)[:, :k_have]
        running = np.cumsum(top, axis=1) / np.arange(1, k_have + 1)
        curve = np.full(k_max, np.nan)
        curve[:k_have] = self.aggregate(measure, running)
        return curve

    def layerwise(self, measure: str, layer_k: int = 5) -> np.ndarray:
        """(layers,): the measure within each layer (Fig. 5).

        Neuron-level measures (c1, c3, bimodality): top-``layer_k`` neurons of the layer;
        layer-level ones (c2, c4, clusterability, purity): the layer's own value; then the
        measure's aggregation over classes.
        """
        table = self._table(measure)
        if measure not in _neuron_level():
            return self.aggregate(measure, table)
        values = []
        for layer, (lo, hi) in enumerate(self._layer_bounds()):
            k = _check_k(layer_k, f"layer_k of {measure}", hi - lo, f"neurons in layer {layer}")
            values.append(self.aggregate(measure, _top_k_mean(table[:, lo:hi], k)))
        return np.array(values)

    def top_neurons(self, measure: str = "c1") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each class's top neuron (Figs. 7, 11): (layer index, neuron index in that layer,
        value), each (classes,); for c1 the value is the subclass's selectivity at k=1."""
        if measure not in _neuron_level():
            raise ValueError(f"top neurons exist for neuron-level measures (c1, c3), not {measure}")
        table = self._table(measure)
        best = table.argmax(axis=1)
        starts = np.cumsum((0, *self.layer_sizes))
        layer = np.searchsorted(starts, best, side="right") - 1
        return layer, best - starts[layer], table[np.arange(len(table)), best]

    def _layer_bounds(self) -> list[tuple[int, int]]:
        ends = np.cumsum(self.layer_sizes)
        return list(zip((0, *ends[:-1].tolist()), ends.tolist()))

    def rows(self, settings: MeasureSettings | None = None) -> pd.DataFrame:
        """Tidy rows (columns :data:`COLUMNS`) of every computed measure.

        scope ``total``: the measure at its k; ``layer``: layer-wise values (``layer`` =
        index in forward order; ``k`` = layer_k for the neuron-level measures, empty for
        the layer-level ones); ``subclass``: per-class values at k (``subclass`` = class
        label: the fine label for c1, c2, the coarse label for clusterability and purity,
        the trained-on label for c3, c4, bimodality); ``k_sweep``: the measures of
        ``settings.k_sweep`` at every k up to it; ``top_neuron``: c1's most selective
        neuron of each subclass, its ``layer``, ``neuron`` and selectivity (k = 1: the
        values of Fig. 11).
        """
        settings = settings or MeasureSettings()
        rows = []

        def add(measure, scope, value, k=None, layer=None, subclass=None, neuron=None):
            rows.append((measure, scope, k, layer, subclass, neuron, float(value)))

        neuron_level = _neuron_level()
        for measure in (m for m in _activation() if m in self.tables):
            # a plug-in registered after these settings were made takes its default_k
            k = settings.k.get(measure, registry.get(measure).default_k)
            per_class = self.per_class(measure, k)
            add(measure, "total", self.aggregate(measure, per_class), k=k)
            layer_k = settings.layer_k if measure in neuron_level else None
            for layer, value in enumerate(self.layerwise(measure, settings.layer_k)):
                add(measure, "layer", value, k=layer_k, layer=layer)
            for label, value in zip(self.row_labels(measure), per_class):
                add(measure, "subclass", value, k=k, subclass=int(label))
            if measure in settings.k_sweep:
                for kk, value in enumerate(self.k_curve(measure, settings.k_sweep[measure]), 1):
                    add(measure, "k_sweep", value, k=kk)
        if "c1" in self.tables:
            for label, layer, neuron, value in zip(self.subclasses, *self.top_neurons("c1")):
                add("c1", "top_neuron", value, 1, int(layer), int(label), int(neuron))
        frame = pd.DataFrame(rows, columns=COLUMNS)
        for column in ("k", "layer", "subclass", "neuron"):
            frame[column] = frame[column].astype("Int64")  # integers with empty cells
        return frame


def _check_layer(x, index: int, n_samples: int | None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"layer {index}: pre-activations must be (samples, neurons), got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise ValueError(f"layer {index}: pre-activations must be numbers, got dtype {x.dtype}")
    if x.shape[1] == 0:
        raise ValueError(f"layer {index} has no neurons")
    if n_samples is not None and x.shape[0] != n_samples:
        raise ValueError(
            f"layer {index} has {x.shape[0]} samples but layer 0 has {n_samples}: the "
            "layers must hold the same samples"
        )
    return x


def _sorted_layer(x: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Rows of ``x`` in class order (each class a slice), float32 or float64: float16 is
    widened to float32 and integers to float64, both exactly."""
    x = np.take(x, order, axis=0)
    if x.dtype in (np.float32, np.float64):
        return x
    return x.astype(np.float32 if x.dtype == np.float16 else np.float64)


def _layer_tables(x: np.ndarray, index: int, measures, hier, labels_part, c4_quantile,
                  workspace: np.ndarray | None = None, cluster: Mapping | None = None,
                  c4_active: str = "fixed", settings: MeasureSettings | None = None) -> dict:
    """Per-class values of one layer, ``x`` sorted by class (float32 or float64; every
    statistic accumulates in float64, class by class): (classes, neurons) for the
    neuron-level measures and (classes, 1) for the layer-level ones. ``workspace``:
    float64 memory c4 may use (see spread_ratio); ``cluster``: ``factor`` and ``rows``
    (the samples of each superclass) of clusterability and purity; ``c4_active``: c4's
    threshold rule (:func:`intraclass.measures.stats.c4_layer_quantile`); ``settings``: what
    a plug-in's ``layer_table`` gets in its context (registry.LayerContext)."""
    top, bottom = x.max(axis=0), x.min(axis=0)  # (d,); NaN propagates through both
    if not (np.isfinite(top).all() and np.isfinite(bottom).all()):
        raise ValueError(f"layer {index} holds non-finite pre-activations (a diverged model?)")
    dead = top < 0  # dead: pre-activation < 0 on every sample (docs/measures.md)
    tables = {}
    moments = None  # class moments of x: c1's, shared with c3 and with c4's standardization
    shares = hier is not None and (labels_part is hier.fine or labels_part is hier.coarse)
    if "c1" in measures or ("c3" in measures and shares):
        moments = stats.class_moments(x, hier.fine)
    if "c1" in measures:
        tables["c1"] = stats.selectivity(x, hier, moments, dead)
    if "c2" in measures:
        tables["c2"] = stats.subclass_silhouette(x, hier)[:, None]
    if "c3" in measures:
        if shares and labels_part is hier.coarse:  # superclasses: pooled exactly from the subclasses
            moments = stats.pool_moments(moments, hier)
        elif not shares:
            moments = stats.class_moments(x, labels_part)
        tables["c3"] = stats.std_ratio(x, labels_part, moments, dead)
    if "c4" in measures:
        tables["c4"] = stats.spread_ratio(x, labels_part, c4_quantile, dead, moments, workspace,
                                          active=c4_active)[:, None]
    if "bimodality" in measures:
        tables["bimodality"] = bimodality.class_bimodality(x, labels_part, dead)
    if any(m in measures for m in clusterability.SCORES):
        scores = clusterability.layer_scores(x, hier, cluster["factor"], cluster["rows"])
        tables.update({m: scores[m][:, None] for m in clusterability.SCORES if m in measures})
    for measure in measures:  # plug-ins: the registry's per-layer hook
        declared = registry.get(measure)
        if declared.layer_table is not None:
            rows = hier.fine if declared.hierarchical else labels_part
            context = registry.LayerContext(index, rows, hier, dead, settings or MeasureSettings())
            tables[measure] = _plugin_table(declared, x, context)
    return tables


def _plugin_table(measure: registry.Measure, x: np.ndarray, context: registry.LayerContext) -> np.ndarray:
    """``measure.layer_table(x, context)`` as float64, checked: (classes, neurons) for a
    neuron-level measure, (classes, 1) for a layer-level one, every value finite."""
    table = np.asarray(measure.layer_table(x, context), dtype=np.float64)
    width = x.shape[1] if measure.level == "neuron" else 1
    expected = (len(context.classes), width)
    if table.shape != expected:
        raise ValueError(f"measure {measure.name!r}: layer_table returned shape {table.shape} for layer "
                         f"{context.index}, expected {expected} (classes, {measure.level} values)")
    if not np.isfinite(table).all():
        raise ValueError(f"measure {measure.name!r}: layer_table returned non-finite values for layer "
                         f"{context.index}")
    return table


class _LayerWork:
    """Statistics of one layer at a time, on the calling thread or a pool of threads.

    numpy releases the GIL in its array operations, BLAS and partitions, so layers run in
    parallel on ``workers`` threads (BLAS itself should then use one thread each). At
    most ``workers`` layers wait or run at once: the caller's iterator is read only as
    fast as layers finish, so memory stays at about ``workers + 1`` layers. Each thread
    keeps one float64 workspace for c4, grown to its largest layer and reused.
    """

    def __init__(self, measures, hier, labels_part, order, c4_quantile, workers: int, cluster=None,
                 c4_active: str = "fixed", settings: MeasureSettings | None = None):
        self.args = (measures, hier, labels_part, c4_quantile)
        self.cluster = cluster
        self.c4_active = c4_active
        self.settings = settings
        self.order = order
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="measures") if workers > 1 else None
        self.workers = workers
        self.futures: list = []

    def _run(self, x: np.ndarray, index: int) -> dict:
        measures, hier, labels_part, c4_quantile = self.args
        x = _sorted_layer(x, self.order)  # (n, d) sorted by class: each class is a slice
        workspace = getattr(self.local, "workspace", np.empty(0))
        if "c4" in measures and workspace.size < x.size:
            workspace = self.local.workspace = np.empty(x.size)
        return _layer_tables(x, index, measures, hier, labels_part, c4_quantile, workspace, self.cluster,
                             self.c4_active, self.settings)

    def submit(self, x: np.ndarray, index: int) -> None:
        if self.pool is None:
            self.futures.append(self._run(x, index))
            return
        self.futures.append(self.pool.submit(self._run, x, index))
        unfinished = [f for f in self.futures if not f.done()]
        if len(unfinished) >= self.workers:  # bound the layers held in memory
            wait(unfinished, return_when=FIRST_COMPLETED)
        for future in self.futures:  # stop reading at a failed layer, the first in order
            if not future.done():
                break
            if future.exception() is not None:
                raise future.exception()

    def results(self) -> list[dict]:
        """Each layer's tables, in layer order; the first failure in layer order is raised."""
        if self.pool is None:
            return self.futures
        return [f.result() for f in self.futures]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def measure_stats(
    preacts: Iterable[np.ndarray],
    fine=None,
    coarse=None,
    labels=None,
    measures: Iterable[str] = INTRACLASS,
    c4_quantile: float = 0.75,
    workers: int = 1,
    cluster: Mapping | None = None,
    c4_active: str = "fixed",
    settings: MeasureSettings | None = None,
) -> MeasureStats:
    """Per-class tables of ``measures`` in one pass over the layers.

    ``preacts``: (samples, neurons) pre-activations per layer, in forward order; any
    iterable, consumed once, so a generator reading one layer at a time from a store
    keeps a single layer in memory (``workers + 1`` with ``workers`` threads, which
    compute layers in parallel; results do not depend on ``workers``). ``fine``/
    ``coarse``: subclass and superclass labels (c1, c2); ``labels``: the labels trained
    on (c3, c4, bimodality). ``measures``: names of the registry's activation measures,
    plug-ins included (their ``layer_table`` gets ``settings``; default the
    paper's c1-c4); ``cluster``: ``factor``, ``max_samples``, ``seed`` of clusterability
    and purity (default :data:`CLUSTERABILITY`); ``c4_active``: c4's threshold rule, fixed
    or narrow (:func:`intraclass.measures.stats.c4_layer_quantile`). Raises ValueError for labels that do not
    nest, classes with fewer than 2 samples (4 for bimodality), superclasses with fewer
    than 2 subclasses, mismatched lengths, non-finite values.
    """
    measures = _checked_request(measures, workers, c4_active)
    hier = labels_part = None
    n_samples = None
    sizes: list[int] = []
    work = None
    try:
        for index, layer in enumerate(preacts):
            x = _check_layer(layer, index, n_samples)
            if n_samples is None:  # labels are checked against the first layer
                n_samples = x.shape[0]
                hier, labels_part, order = _partitions(measures, fine, coarse, labels, n_samples)
                work = _LayerWork(measures, hier, labels_part, order, c4_quantile, int(workers),
                                  _cluster_plan(measures, hier, cluster), c4_active, settings)
            sizes.append(x.shape[1])
            work.submit(x, index)
        if n_samples is None:
            raise ValueError("preacts holds no layer")
        layers = work.results()
    finally:
        if work is not None:
            work.close()
    return MeasureStats(
        layer_sizes=tuple(sizes),
        tables={m: np.concatenate([t[m] for t in layers], axis=1) for m in measures},
        subclasses=None if hier is None else hier.fine.ids,
        classes=None if labels_part is None else labels_part.ids,
        superclasses=None if hier is None else hier.coarse.ids,
    )


def _checked_request(measures: Iterable[str], workers, c4_active: str) -> tuple[str, ...]:
    """The requested measures as a tuple, after checking them, ``workers`` and ``c4_active``
    (:func:`measure_stats`' arguments besides the data)."""
    measures = tuple(measures)
    for m in measures:
        if m not in _activation():
            raise ValueError(f"unknown measure {m!r}; expected some of {_activation()}")
    if not measures:
        raise ValueError("no measure requested")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if c4_active not in stats.C4_ACTIVE:
        raise ValueError(f"c4_active must be one of {list(stats.C4_ACTIVE)}, got {c4_active!r}")
    return measures


def _cluster_plan(measures, hier, cluster: Mapping | None) -> dict | None:
    """The over-clustering factor and the samples of each superclass clustered (one
    subset for every layer), when clusterability or purity is requested."""
    if not any(m in measures for m in clusterability.SCORES):
        return None
    cluster = {**CLUSTERABILITY, **(cluster or {})}
    rows = clusterability.sample_rows(hier, int(cluster["max_samples"]), int(cluster["seed"]))
    return {"factor": int(cluster["factor"]), "rows": rows}


def _partitions(measures, fine, coarse, labels, n_samples) -> tuple:
    """The subclass hierarchy (c1, c2, clusterability, purity), the trained-on partition
    (c3, c4, bimodality) and the sample
    order that sorts them by class (superclass, then subclass), so that each class is a
    contiguous block. ``labels`` equal to the fine or coarse labels share their partition;
    labels unrelated to the hierarchy still work, through index arrays instead of slices.
    """
    hier = labels_part = None
    hierarchical = _hierarchical()
    if any(m in hierarchical for m in measures):
        if fine is None or coarse is None:
            needs = [m for m in measures if m in hierarchical]
            raise ValueError(f"{', '.join(needs)} need both fine and coarse labels")
        fine = check_labels(fine, n_samples, "fine class")
        coarse = check_labels(coarse, n_samples, "coarse class")
        order = np.lexsort((fine, coarse))
        hier = hierarchy(fine[order], coarse[order], n_samples)
    if any(m not in hierarchical for m in measures):
        arr = check_labels(labels, n_samples, "class")
        if hier is None:
            order = np.argsort(arr, kind="stable")
            labels_part = partition(arr[order], n_samples, "class")
        elif np.array_equal(arr, fine):
            labels_part = hier.fine
        elif np.array_equal(arr, coarse):
            labels_part = hier.coarse
        else:
            labels_part = partition(arr[order], n_samples, "class")
    return hier, labels_part, order


def c1(preacts, fine, coarse, k: int = 30) -> float:
    """Neuron-level subclass selectivity, Eq. 1 (section 2.2.1).

    For subclass C_i of superclass S: per neuron (mu_Ci - mu_{S\\Ci}) / (sigma_Ci +
    sigma_{S\\Ci} + 1e-7) on pre-activations (population stds, dead neurons 0); the
    mean of the top-k over all neurons of all layers; the median over subclasses.
    """
    return measure_stats(preacts, fine, coarse, measures=("c1",)).total("c1", k)


def c2(preacts, fine, coarse, k: int = 5) -> float:
    """Layer-level subclass silhouette, Eq. 2 (section 2.2.2).

    Per layer, on post-ReLU activations, the cosine silhouette (scikit-learn semantics)
    of the subclasses within each superclass, averaged over each subclass's samples;
    the mean of the top-k layers per subclass; the median over subclasses.
    """
    return measure_stats(preacts, fine, coarse, measures=("c2",)).total("c2", k)


def c3(preacts, labels, k: int = 30) -> float:
    """Neuron-level std ratio, Eq. 3 (section 2.3.1).

    Per class C_i (labels trained on) and neuron: sigma_Ci / (sigma_D + 1e-7) on
    pre-activations (population stds, dead neurons 0); the mean of the top-k over all
    neurons; the mean over classes.
    """
    return measure_stats(preacts, labels=labels, measures=("c3",)).total("c3", k)


def c4(preacts, labels, k: int = 1, quantile: float = 0.75, active: str = "fixed") -> float:
    """Layer-level pairwise-distance std ratio, Eq. 4 (section 2.3.2).

    Per layer: dead neurons dropped, each neuron standardized, shifted by its
    ``quantile`` and ReLU'd (25% active; ``active="narrow"`` lowers the quantile in layers
    under 40 live neurons so that about 10 fire per sample:
    :func:`intraclass.measures.stats.c4_layer_quantile`); Sigma_{l,E} = std of the cosine
    distances over pairs i != j of E; per class Sigma_{l,Ci} / Sigma_{l,D}; the mean of
    the top-k layers; the mean over classes.
    """
    stats_ = measure_stats(preacts, labels=labels, measures=("c4",), c4_quantile=quantile,
                           c4_active=active)
    return stats_.total("c4", k)


def compute_all(
    preacts, fine=None, coarse=None, labels=None, settings: MeasureSettings | None = None
) -> pd.DataFrame:
    """Every measure, layer-wise value, per-class value, k curve and top neuron as tidy
    rows (see :meth:`MeasureStats.rows`). The hierarchical measures (c1, c2,
    clusterability, purity) are computed when ``fine`` and ``coarse`` are given, the
    others (c3, c4, bimodality) when ``labels`` is given."""
    settings = settings or MeasureSettings()
    every, hierarchical = _activation(), _hierarchical()
    measures = [m for m in every if (m in hierarchical and fine is not None and coarse is not None)
                or (m not in hierarchical and labels is not None)]
    if not measures:
        raise ValueError(f"give fine and coarse labels ({', '.join(hierarchical)}) and/or labels "
                         f"({', '.join(m for m in every if m not in hierarchical)})")
    stats_ = measure_stats(preacts, fine, coarse, labels, measures, settings.c4_quantile,
                           cluster=settings.clusterability, c4_active=settings.c4_active, settings=settings)
    return stats_.rows(settings)
