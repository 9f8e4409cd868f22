"""The vocabulary every stage shares: a model's hyperparameters and the paper's axes, the
label levels, the measure names and their labels, the columns of the tidy measures table
and the figure ids. One definition each, so that training, measures, tables, the Kendall
coefficient, the figures and the workflow's rules agree.

The measure names, labels, directions and families are derived from the measure registry
(:mod:`intraclass.measures.registry`), where each measure is declared once.
"""

import re as _re

from intraclass.measures import registry as _registry

#: A grid model's hyperparameters (paper appendix A.1-A.2), in the order of
#: ``intraclass.config.ModelConfig``'s fields, of train's ``params.model`` keys and of the
#: hyperparameter columns of ``models.csv``.
HYPERPARAMETERS: tuple[str, ...] = (
    "lr", "weight_decay", "batch_size", "optimizer", "dropout", "augment", "width", "depth", "seed")
#: The label levels a model is trained on and a dataset provides: fine (classes) and
#: coarse (superclasses, paper Section 2.2).
LABEL_LEVELS: tuple[str, ...] = ("fine", "coarse")
#: Figure ids: the paper's Figures 3-8 and 11, and ``rotation`` (layer rotation curves,
#: ours). Module ``intraclass.figures.fig<id>`` (``rotation``: ``.rotation``), rule
#: ``figure_<id>``, config key ``figures.fig<id>``.
FIGURE_IDS: tuple[str, ...] = ("3", "4", "5", "6", "7", "8", "11", "rotation")

#: The paper's 8 axes, in the column order of its Tables 1-3, mapped to the hyperparameter
#: names of a model (train's ``params.model``, the columns of ``models.csv``).
AXIS_COLUMNS: dict[str, str] = {
    "learning_rate": "lr",
    "batch_size": "batch_size",
    "weight_decay": "weight_decay",
    "optimizer": "optimizer",
    "dropout": "dropout",
    "augmentation": "augment",
    "width": "width",
    "depth": "depth",
}
AXES: tuple[str, ...] = tuple(AXIS_COLUMNS)
#: Hyperparameters that are not axes but still define "equal on every other axis" (seed).
EXTRA_KEYS: tuple[str, ...] = tuple(k for k in HYPERPARAMETERS if k not in AXIS_COLUMNS.values())
#: Column headers of the paper's tables.
AXIS_LABELS: dict[str, str] = {
    "learning_rate": "learning rate",
    "batch_size": "batch size",
    "weight_decay": "weight decay",
    "optimizer": "optim.",
    "dropout": "dropout rate",
    "augmentation": "data augm.",
    "width": "width",
    "depth": "depth",
    "total": "total score",
}

# Measure vocabulary: derived from the measure registry (intraclass.measures.registry),
# where each measure is declared once; registration order is table row order.
#: Every registered measure: the paper's c1-c4 (section 2, Eqs. 1-4), its sharpness
#: baselines (1/sigma', 1/sigma'', 1/alpha', 1/alpha'') and the related work's measures.
MEASURES: tuple[str, ...] = _registry.names()
#: The intraclass-clustering measures (section 2, Eqs. 1-4) and the sharpness baselines.
INTRACLASS: tuple[str, ...] = _registry.names(family="Intraclass clustering")
SHARPNESS: tuple[str, ...] = _registry.names(family="Sharpness")
#: Measures computed by the measures rule from the activation stores.
ACTIVATION: tuple[str, ...] = _registry.names(stage=_registry.ACTIVATION_STAGE)
#: Activation measures that need fine and coarse labels (c1, c2: section 2.2).
HIERARCHICAL: tuple[str, ...] = tuple(m.name for m in _registry.measures() if m.hierarchical)
#: Top-k over the neurons of all layers (c1, c3); the others' k counts layers (c2, c4) or is absent.
NEURON_LEVEL: tuple[str, ...] = tuple(m.name for m in _registry.measures() if m.level == "neuron")
#: Measures with a k curve (Figure 4).
SWEEP: tuple[str, ...] = tuple(m.name for m in _registry.measures() if m.sweep)
#: Measures with per-layer values (Figure 5).
LAYERWISE: tuple[str, ...] = tuple(m.name for m in _registry.measures() if m.layerwise)
#: Expected direction of each measure (paper Tables 1-3): +1 when a higher value should go
#: with better generalization (intraclass clustering), -1 when a higher value should go with
#: worse generalization (the sharpness measures are complexity measures, Jiang et al. 2020).
#: Every criterion (Kendall, CMI, k curves, Figure 3) ranks ``direction * value``, so that a
#: positive coefficient always means "predicts generalization in the expected direction".
DIRECTION: dict[str, int] = {m.name: m.direction for m in _registry.measures()}
#: Table group of each measure ("Intraclass clustering", "Sharpness", "Related work").
FAMILY: dict[str, str] = {m.name: m.family for m in _registry.measures()}
MEASURE_LABELS: dict[str, str] = {m.name: m.label for m in _registry.measures()}
MEASURE_LATEX: dict[str, str] = {m.name: m.latex for m in _registry.measures()}
#: Labels for matplotlib (figures): the LaTeX label when it is a single math-mode
#: expression ``$...$``, which matplotlib's mathtext draws as in the paper, else the
#: unicode label (text-mode LaTeX such as ``clust.\ AMI`` would show its backslash).
MEASURE_MATHTEXT: dict[str, str] = {
    m.name: m.latex if _re.fullmatch(r"\$[^$]+\$", m.latex) else m.label for m in _registry.measures()}

#: Columns of the tidy measures table (docs/stages.md, rule measures).
#: Suffix of the models.csv column that flags a sharpness value whose search ended on a
#: bound of its interval (``alpha1_at_bound``): written by collect, read by notes and Fig. 3.
AT_BOUND_SUFFIX = "_at_bound"
TIDY_COLUMNS: tuple[str, ...] = ("checkpoint", "measure", "scope", "k", "layer", "subclass", "neuron", "value")
