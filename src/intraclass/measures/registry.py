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

Adding a measure (docs/measures.md, "Adding your own measure"): declare it below (or call
:func:`register` from a module imported before the workflow runs), write the module that
computes it and its tests. An activation measure (``stage == "measures"``) is computed by
the measures rule; a model-level one by its own rule, which writes
``results/{study}/{stage}/{model}.json`` = ``{"measures": {name: {"value": float | null,
"layers": [float, ...] (optional, per-layer values for Figure 5)}}, ...}``, read by
collect without any edit there.
"""

from __future__ import annotations

from dataclasses import dataclass

#: What a measure needs: activations and the subclass/superclass hierarchy (c1, c2),
#: activations and the labels trained on (c3, c4), the model and its data (sharpness,
#: black-box measures), the weights at two epochs (layer rotation).
NEEDS: tuple[str, ...] = ("activations+hierarchy", "activations", "model+data", "weights")
#: What a measure's k counts (its top-k mean): neurons of all layers or layers; None: no k.
LEVELS: tuple[str | None, ...] = ("neuron", "layer", None)
#: The stage of the activation measures: values are the tidy rows of the measures rule.
ACTIVATION_STAGE = "measures"


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
        if self.needs.startswith("activations") != (self.stage == ACTIVATION_STAGE):
            raise ValueError(f"{where}: activation measures (needs {self.needs!r}) come from stage "
                             f"{ACTIVATION_STAGE!r} and only they do, got stage {self.stage!r}")

    @property
    def hierarchical(self) -> bool:
        """Needs subclass and superclass labels (computed only for models trained on coarse labels)."""
        return self.needs == "activations+hierarchy"


_REGISTRY: dict[str, Measure] = {}


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


def stages() -> tuple[str, ...]:
    """Every stage that provides a registered measure, in registration order."""
    return tuple(dict.fromkeys(m.stage for m in _REGISTRY.values()))


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
