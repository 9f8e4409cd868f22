"""The measure registry: one declaration per measure, from which everything else follows.

A :class:`Measure` says what a measure is called (``name``: the ``models.csv`` column and
the tidy ``measure`` value; ``label``/``latex``: how tables and figures print it), which
table group it belongs to (``family``), which way it should predict generalization
(``direction``), what it needs to be computed (``needs``, one of :data:`NEEDS`), where its
values come from (``stage``), its k (``default_k``, counting ``level`` units) and whether
it has per-layer values (``layerwise``, Figure 5 rows) and a k curve (``sweep``, Figure 4).

    from intraclass.measures import registry
    registry.get("c1").direction       # +1
    registry.measures(stage="measures")  # the measures of the activation stage, in order

``intraclass.names`` derives the project's measure vocabulary (``MEASURES``, labels,
directions, families) from this registry; collect, the Kendall/CMI tables and Figures 3-5
iterate over it. Registration order is table row order: the paper's c1-c4 (Eqs. 1-4) and
its four sharpness baselines first, then the measures of the related work.

Adding a measure (docs/measures.md, "Adding your own measure"): one module that declares
it with :func:`register` and computes it, and its tests; a study lists the module under
``measures.plugins`` (:func:`load_plugins` imports it wherever the registry is read). An
activation measure (``stage == "measures"``) gives a per-layer function ``layer_table``
(:class:`LayerContext`), called by the measures rule for every layer; the top-k over
neurons or layers (``level``) and the mean or median over classes (``over_classes``)
follow from its declaration. A model-level one is computed by its own rule (a rule file
``workflow/rules/<stage>.smk``), which writes
``results/{study}/{stage}/{model}.json`` = ``{"measures": {name: {"value": float | null,
"layers": [float, ...] (optional, per-layer values for Figure 5)}}, ...}``, read by
collect without any edit there.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

#: What a measure needs: activations and the subclass/superclass hierarchy (c1, c2),
#: activations and the labels trained on (c3, c4), the model and its data (sharpness,
#: black-box measures), the weights at two epochs (layer rotation).
NEEDS: tuple[str, ...] = ("activations+hierarchy", "activations", "model+data", "weights")
#: What a measure's k counts (its top-k mean): neurons of all layers or layers; None: no k.
LEVELS: tuple[str | None, ...] = ("neuron", "layer", None)
#: The stage of the activation measures: values are the tidy rows of the measures rule.
ACTIVATION_STAGE = "measures"
#: How per-class values become the measure (axis 0 of a per-class table): the median over
#: subclasses (paper Eqs. 1-2) or the mean over classes (Eqs. 3-4).
OVER_CLASSES: tuple[str, ...] = ("median", "mean")


@dataclass(frozen=True)
class LayerContext:
    """What a ``layer_table`` function gets besides the layer (one layer of one model).

    ``index``: the layer's position in forward order; ``classes``: the
    :class:`~intraclass.measures.labels.Partition` of the table's rows (subclasses for a
    measure that ``needs`` the hierarchy, else the labels trained on), the samples of class
    ``g`` being ``x[classes.rows(g)]`` (a slice: x is sorted by class); ``hierarchy``: the
    subclass/superclass :class:`~intraclass.measures.labels.Hierarchy` or None;
    ``dead``: (neurons,) bool, pre-activation < 0 on every sample; ``settings``: the
    ``measures`` settings of the study (a
    :class:`~intraclass.measures.compute.MeasureSettings`).
    """

    index: int
    classes: Any
    hierarchy: Any
    dead: Any
    settings: Any


@dataclass(frozen=True)
class Measure:
    """One measure's declaration (see the module docstring for each field)."""

    name: str
    label: str
    latex: str
    family: str
    direction: int
    needs: str
    stage: str
    default_k: int | None = None
    level: str | None = None
    layerwise: bool = False
    sweep: bool = False
    source: str = ""
    #: Activation measures only: ``layer_table(x, context) -> (classes, neurons)`` array
    #: (``level == "neuron"``) or (classes, 1) (``level == "layer"``) for one layer ``x``,
    #: (samples, neurons) float32/float64 pre-activations sorted by class (LayerContext).
    #: None for the built-ins, whose branches live in intraclass.measures.compute.
    layer_table: Callable | None = None
    #: "median" or "mean" over the rows of the per-class table; None: the median over
    #: subclasses for a measure that needs the hierarchy, else the mean over classes.
    over_classes: str | None = None

    def __post_init__(self):
        where = f"measure {self.name!r}"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"{where}: name must be an identifier (a table column), got {self.name!r}")
        if self.direction not in (1, -1):
            raise ValueError(f"{where}: direction must be +1 or -1, got {self.direction!r}")
        if self.needs not in NEEDS:
            raise ValueError(f"{where}: needs must be one of {NEEDS}, got {self.needs!r}")
        if self.level not in LEVELS:
            raise ValueError(f"{where}: level must be one of {LEVELS}, got {self.level!r}")
        if (self.default_k is None) != (self.level is None):
            raise ValueError(f"{where}: default_k and level go together (a k counts neurons "
                             f"or layers), got default_k={self.default_k!r}, level={self.level!r}")
        if self.default_k is not None and (isinstance(self.default_k, bool)
                                           or not isinstance(self.default_k, int) or self.default_k < 1):
            raise ValueError(f"{where}: default_k must be a positive integer, got {self.default_k!r}")
        if self.sweep and self.level != "neuron":
            raise ValueError(f"{where}: only neuron-level measures have k curves (sweep)")
        if not self.stage or not isinstance(self.stage, str):
            raise ValueError(f"{where}: stage must be a non-empty string")
        self._check_plugin(where)
        if self.needs.startswith("activations") != (self.stage == ACTIVATION_STAGE):
            raise ValueError(f"{where}: activation measures (needs {self.needs!r}) come from stage "
                             f"{ACTIVATION_STAGE!r} and only they do, got stage {self.stage!r}")

    def _check_plugin(self, where: str) -> None:
        if self.over_classes is not None and self.over_classes not in OVER_CLASSES:
            raise ValueError(f"{where}: over_classes must be one of {OVER_CLASSES}, got {self.over_classes!r}")
        if self.layer_table is None:
            return
        if not callable(self.layer_table):
            raise ValueError(f"{where}: layer_table must be a function (x, context) -> per-class table")
        if self.stage != ACTIVATION_STAGE or self.level is None:
            raise ValueError(f"{where}: a layer_table belongs to an activation measure (stage "
                             f"{ACTIVATION_STAGE!r}) with a level (neuron or layer) and a default_k")

    @property
    def hierarchical(self) -> bool:
        """Needs subclass and superclass labels (computed only for models trained on coarse labels)."""
        return self.needs == "activations+hierarchy"

    @property
    def aggregation(self) -> str:
        """"median" or "mean": how the per-class values become the measure (axis 0)."""
        if self.over_classes is not None:
            return self.over_classes
        return "median" if self.hierarchical else "mean"


_REGISTRY: dict[str, Measure] = {}
#: The measures each plug-in module registered on import (:func:`load_plugins`).
_PLUGINS: dict[str, tuple[str, ...]] = {}


def register(measure: Measure) -> Measure:
    """Add ``measure`` (after every measure registered so far); error on a duplicate name."""
    if not isinstance(measure, Measure):
        raise TypeError(f"register() takes a Measure, got {type(measure).__name__}")
    if measure.name in _REGISTRY:
        raise ValueError(f"measure {measure.name!r} is already registered")
    _REGISTRY[measure.name] = measure
    return measure


def get(name: str) -> Measure:
    """The declaration of ``name``; KeyError naming the known measures."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown measure {name!r}; known: {list(_REGISTRY)}") from None


def measures(stage: str | None = None, family: str | None = None) -> list[Measure]:
    """Registered measures in registration order (= table row order), optionally only
    those of one ``stage`` and/or ``family``."""
    return [m for m in _REGISTRY.values()
            if (stage is None or m.stage == stage) and (family is None or m.family == family)]


def names(stage: str | None = None, family: str | None = None) -> tuple[str, ...]:
    """The names of :func:`measures`."""
    return tuple(m.name for m in measures(stage, family))


def stages(plugins: Iterable[str] | None = None) -> tuple[str, ...]:
    """Every stage that provides a registered measure, in registration order; with
    ``plugins`` (a study's measures.plugins), only the stages of measures that are not
    plug-ins or come from these modules (the stages that study runs)."""
    others = set() if plugins is None else {
        name for module, names_ in _PLUGINS.items() if module not in set(plugins) for name in names_}
    return tuple(dict.fromkeys(m.stage for m in _REGISTRY.values() if m.name not in others))


def load_plugins(modules: Iterable[str]) -> list[str]:
    """Import each module of ``modules`` (``package.module`` names, the study's
    ``measures.plugins``), whose import registers its measures; importing one twice does
    nothing. Returns the names of the measures registered by these imports.

    Call it before importing :mod:`intraclass.names` (whose tuples are read once) or
    anything that imports it: the workflow's scripts and common.smk do so first thing.
    Raises ValueError naming the module when a name is not a string, the module cannot be
    imported, or it raises on import."""
    if isinstance(modules, str):
        raise ValueError(f"measures.plugins must be a list of module names, got the string {modules!r}")
    before = set(_REGISTRY)
    for module in modules:
        if not isinstance(module, str) or not all(p.isidentifier() for p in module.split(".")):
            raise ValueError(f"measures.plugins: {module!r} is not a module name (package.module)")
        if module in sys.modules:
            continue
        registered = set(_REGISTRY)
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            raise ValueError(f"measures.plugins: cannot import {module!r} ({error}); the module must "
                             "be importable: installed, or its folder on PYTHONPATH") from None
        except Exception as error:
            raise ValueError(f"measures.plugins: importing {module!r} failed: "
                             f"{type(error).__name__}: {error}") from error
        _PLUGINS[module] = tuple(name for name in _REGISTRY if name not in registered)
    return [name for name in _REGISTRY if name not in before]


def study_plugins(config: dict, study: str) -> list[str]:
    """The ``measures.plugins`` of study ``study`` in the workflow ``config`` ([] when unset:
    the schema gives no default, so that existing configs keep their rules' params)."""
    return list(((config.get("studies") or {}).get(study) or {}).get("measures", {}).get("plugins") or [])


def script_plugins(snakemake) -> list[str]:
    """The plug-ins of the job's study, for a rule script: ``measures.plugins`` of study
    ``snakemake.wildcards.study`` in ``snakemake.config`` ([] for an object without them,
    such as the stand-ins of the scripts' tests)."""
    study = getattr(getattr(snakemake, "wildcards", None), "study", None)
    return study_plugins(getattr(snakemake, "config", None) or {}, study) if study else []


def unregister(name: str) -> Measure:
    """Remove ``name`` from the registry (tests of plug-in measures clean up with it)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown measure {name!r}; known: {list(_REGISTRY)}")
    for module, names_ in list(_PLUGINS.items()):
        _PLUGINS[module] = tuple(n for n in names_ if n != name)
    return _REGISTRY.pop(name)


# ------------------------------------------------------------------------ built-ins
# The paper's measures (section 2, Eqs. 1-4, and the sharpness baselines of section 3.2),
# then the related work in the order c0, rotation, clusterability, bimodality.

_PAPER = "Intraclass clustering"
_SHARP = "Sharpness"
_RELATED = "Related work"
_JIANG = "Jiang et al. 2020 (Fantastic generalization measures), magnitude-aware; paper Sec. 3.2"

for _measure in (
    Measure("c1", "c1", "$c_1$", _PAPER, +1, "activations+hierarchy", ACTIVATION_STAGE, 30, "neuron",
            layerwise=True, sweep=True, source="paper Eq. 1 (Sec. 2.2.1): neuron-level subclass selectivity"),
    Measure("c2", "c2", "$c_2$", _PAPER, +1, "activations+hierarchy", ACTIVATION_STAGE, 5, "layer",
            layerwise=True, source="paper Eq. 2 (Sec. 2.2.2): layer-level subclass silhouette"),
    Measure("c3", "c3", "$c_3$", _PAPER, +1, "activations", ACTIVATION_STAGE, 30, "neuron",
            layerwise=True, sweep=True, source="paper Eq. 3 (Sec. 2.3.1): neuron-level std ratio"),
    Measure("c4", "c4", "$c_4$", _PAPER, +1, "activations", ACTIVATION_STAGE, 5, "layer",
            layerwise=True, source="paper Eq. 4 (Sec. 2.3.2): layer-level pairwise-distance std ratio"),
    Measure("sigma1", "1/σ'", "$1/\\sigma'$", _SHARP, -1, "model+data", "sharpness",
            source=f"{_JIANG}: 1/sigma', random weight perturbation"),
    Measure("sigma2", "1/σ''", "$1/\\sigma''$", _SHARP, -1, "model+data", "sharpness",
            source=f"{_JIANG}: 1/sigma'', random perturbation of the loss"),
    Measure("alpha1", "1/α'", "$1/\\alpha'$", _SHARP, -1, "model+data", "sharpness",
            source=f"{_JIANG}: 1/alpha', worst-case weight perturbation"),
    Measure("alpha2", "1/α''", "$1/\\alpha''$", _SHARP, -1, "model+data", "sharpness",
            source=f"{_JIANG}: 1/alpha'', worst-case perturbation of the loss"),
    # c0 and rotation: declared for the related-work measures' modules (their own rules
    # write results/{study}/{stage}/{model}.json); adjust these two entries there.
    Measure("c0", "c0", "$c_0$", _RELATED, +1, "model+data", "blackbox",
            source="black-box subclass measure of the authors' published code (blackbox_subclass) and "
                   "Carbonnelle's thesis (arXiv 2203.08174): median over subclasses of the ratio of "
                   "mean max_f(1 - p_S) across / within subclasses; +1 (intraclass clustering)"),
    Measure("rotation", "rotation", "rotation", _RELATED, +1, "weights", "rotation", layerwise=True,
            source="layer rotation, Carbonnelle & De Vleeschouwer 2020 (arXiv 1806.01603): mean over "
                   "layers of 1 - cos(initial kernel, final kernel); +1 (their finding)"),
    Measure("clusterability", "clust. AMI", "clust.\\ AMI", _RELATED, +1, "activations+hierarchy",
            ACTIVATION_STAGE, 1, "layer", layerwise=True,
            source="subclass clusterability (BREEDS clustering study): Ward clusters vs subclasses, AMI"),
    Measure("purity", "clust. purity", "clust.\\ purity", _RELATED, +1, "activations+hierarchy",
            ACTIVATION_STAGE, 1, "layer", layerwise=True,
            source="subclass clusterability (BREEDS clustering study): Ward clusters vs subclasses, purity"),
    Measure("bimodality", "bimodality", "BC", _RELATED, +1, "activations", ACTIVATION_STAGE, 30, "neuron",
            layerwise=True, sweep=True,
            source="paper Sec. 4.6 proposal; Sarle's bimodality coefficient per neuron and class"),
):
    register(_measure)
del _measure
