"""The vocabulary every stage shares: the paper's hyperparameter axes, the measure names
and their labels, and the columns of the tidy measures table. One definition each, so
that training, measures, tables, the Kendall coefficient and the figures agree.
"""

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
#: Hyperparameters that are not axes but still define "equal on every other axis".
EXTRA_KEYS: tuple[str, ...] = ("seed",)
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

#: The intraclass-clustering measures (section 2, Eqs. 1-4) and the sharpness baselines
#: (1/sigma', 1/sigma'', 1/alpha', 1/alpha''), in the row order of the paper's tables.
INTRACLASS: tuple[str, ...] = ("c1", "c2", "c3", "c4")
SHARPNESS: tuple[str, ...] = ("sigma1", "sigma2", "alpha1", "alpha2")
MEASURES: tuple[str, ...] = INTRACLASS + SHARPNESS
#: c1, c2 need fine and coarse labels (section 2.2).
HIERARCHICAL: tuple[str, ...] = ("c1", "c2")
#: c1, c3: top-k over the neurons of all layers (their k is swept in Figure 4); c2, c4: over layers.
NEURON_LEVEL: tuple[str, ...] = ("c1", "c3")
#: Expected direction of each measure (paper Tables 1-3): +1 when a higher value should go
#: with better generalization (intraclass clustering), -1 when a higher value should go with
#: worse generalization (the sharpness measures are complexity measures, Jiang et al. 2020).
#: Every criterion (Kendall, CMI, k curves, Figure 3) ranks ``direction * value``, so that a
#: positive coefficient always means "predicts generalization in the expected direction".
DIRECTION: dict[str, int] = {**dict.fromkeys(INTRACLASS, 1), **dict.fromkeys(SHARPNESS, -1)}
MEASURE_LABELS: dict[str, str] = {
    "c1": "c1", "c2": "c2", "c3": "c3", "c4": "c4",
    "sigma1": "1/σ'", "sigma2": "1/σ''", "alpha1": "1/α'", "alpha2": "1/α''",
}
MEASURE_LATEX: dict[str, str] = {
    "c1": "$c_1$", "c2": "$c_2$", "c3": "$c_3$", "c4": "$c_4$",
    "sigma1": "$1/\\sigma'$", "sigma2": "$1/\\sigma''$",
    "alpha1": "$1/\\alpha'$", "alpha2": "$1/\\alpha''$",
}

#: Columns of the tidy measures table (docs/stages.md, rule measures).
TIDY_COLUMNS: tuple[str, ...] = ("checkpoint", "measure", "scope", "k", "layer", "subclass", "neuron", "value")
