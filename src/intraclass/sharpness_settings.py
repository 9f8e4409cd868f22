"""Settings of the sharpness stage (docs/measures.md, "Sharpness searches"): the four
measures and their variants, the search defaults, the validation of a study's
``sharpness`` section, and the target each search aims at. No torch here: the config is
checked with these rules before any job (intraclass.config), in the main Snakemake process,
where importing torch would cost seconds on every DAG build. The stage itself:
:mod:`intraclass.sharpness`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from intraclass.names import SHARPNESS

#: The four measures, declared in the measure registry (names.SHARPNESS, in the order
#: that seeds each measure's generator: :func:`measure_seed`).
MEASURES = SHARPNESS
#: Each measure's perturbation kind, and whether it perturbs kernels only in
#: batch-statistics mode (module doc).
VARIANTS: dict[str, tuple[str, bool]] = {
    "sigma1": ("sigma", False),  # 1/sigma'
    "sigma2": ("sigma", True),   # 1/sigma''
    "alpha1": ("alpha", False),  # 1/alpha'
    "alpha2": ("alpha", True),   # 1/alpha''
}
if tuple(VARIANTS) != MEASURES:
    raise TypeError(f"sharpness.VARIANTS {list(VARIANTS)} must cover the registry's sharpness "
                    f"measures {list(MEASURES)} in their order")
#: How a search's target accuracy is set (module doc; :func:`search_target`).
TARGET_MODES = ("absolute", "relative")

#: docs/measures.md, "Sharpness searches". ``eval_batch_size`` and ``bf16`` are ours.
DEFAULTS: dict = {
    "measures": list(MEASURES),
    "seed": 0,
    "eval_batch_size": 1000,  # samples per evaluation forward pass (batch statistics of sigma''/alpha'')
    "bf16": True,             # bf16 autocast on CUDA (ignored on the CPU)
    "target_mode": "absolute",  # absolute: each kind's target; relative: own accuracy - deviation
    "deviation": 0.1,         # relative mode's accuracy drop (Jiang et al. 2020)
    "sigma": {
        "draws": 10,          # noise draws averaged per probe
        "subset": 0.1,        # fraction of the training set per draw
        "offset": 1e-3,       # noise std m * (|w| + offset)
        "m_min": 0.0,
        "m_max": 2.0,
        "max_steps": 20,
        "target": 0.9,        # training accuracy searched for
        "tol": 5e-3,          # stop when |acc - target| <= tol
        "min_width": 1e-5,    # ... or when the interval is narrower
    },
    "alpha": {
        "lr": 1.0,
        "lr_decay": 0.1,
        "lr_decay_epoch": 3,  # epochs >= this one use lr * lr_decay
        "epochs": 5,
        "steps_per_epoch": 50,
        "batch_size": 128,
        "stop_acc": 0.7,      # stop the ascent once the batch accuracy is <= this
        "subset": 0.1,        # fraction of the training set the final accuracy is measured on
        "offset": 1e-3,       # box w0 +- m * (|w0| + offset)
        "m_min": 0.0,
        "m_max": 0.25,
        "max_steps": 20,
        "target": 0.9,
        "tol": 5e-3,
        "min_width": 1e-5,
    },
}

# Validation of every setting: (type, predicate, what the predicate requires).
_POSITIVE_INT = (int, lambda v: v >= 1, "an integer >= 1")
_NONNEG_INT = (int, lambda v: v >= 0, "an integer >= 0")
_FRACTION = (float, lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")
_PROBABILITY = (float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
_NONNEG = (float, lambda v: v >= 0.0, "a number >= 0")
_POSITIVE = (float, lambda v: v > 0.0, "a number > 0")
_SEARCH_RULES = {
    "offset": _NONNEG, "m_min": _NONNEG, "m_max": _POSITIVE, "max_steps": _POSITIVE_INT,
    "target": _PROBABILITY, "tol": _NONNEG, "min_width": _NONNEG,
}
_RULES = {
    "seed": _NONNEG_INT,
    "eval_batch_size": _POSITIVE_INT,
    "bf16": (bool, lambda v: True, "true or false"),
    "target_mode": (str, lambda v: v in TARGET_MODES, "absolute or relative"),
    "deviation": _PROBABILITY,
    "sigma": {"draws": _POSITIVE_INT, "subset": _FRACTION, **_SEARCH_RULES},
    "alpha": {
        "lr": _POSITIVE, "lr_decay": _POSITIVE, "lr_decay_epoch": _NONNEG_INT,
        "epochs": _POSITIVE_INT, "steps_per_epoch": _POSITIVE_INT, "batch_size": _POSITIVE_INT,
        "stop_acc": _PROBABILITY, "subset": _FRACTION, **_SEARCH_RULES,
    },
}



# ----------------------------------------------------------------------------- settings

def resolve_settings(overrides: Mapping | None = None) -> dict:
    """:data:`DEFAULTS` overridden key by key by ``overrides`` (the config's ``sharpness``).

    Raises ``ValueError`` naming the key for an unknown key, a wrong type or a value out
    of range, so that a bad config fails before any work starts.
    """
    settings = copy.deepcopy(DEFAULTS)
    if overrides is None:
        return settings
    if not isinstance(overrides, Mapping):
        raise ValueError(f"sharpness settings must be a mapping, got {type(overrides).__name__}")
    for key, value in overrides.items():
        if key not in DEFAULTS:
            raise ValueError(f"sharpness: unknown key {key!r} (known: {', '.join(DEFAULTS)})")
        if key in ("sigma", "alpha"):
            if not isinstance(value, Mapping):
                raise ValueError(f"sharpness.{key} must be a mapping, got {type(value).__name__}")
            for sub, sub_value in value.items():
                if sub not in DEFAULTS[key]:
                    raise ValueError(f"sharpness.{key}: unknown key {sub!r} "
                                     f"(known: {', '.join(DEFAULTS[key])})")
                settings[key][sub] = _checked(f"sharpness.{key}.{sub}", sub_value, _RULES[key][sub])
        elif key == "measures":
            settings[key] = _checked_measures(value)
        else:
            settings[key] = _checked(f"sharpness.{key}", value, _RULES[key])
    for kind in ("sigma", "alpha"):
        if settings[kind]["m_min"] >= settings[kind]["m_max"]:
            raise ValueError(f"sharpness.{kind}: m_min ({settings[kind]['m_min']}) must be "
                             f"below m_max ({settings[kind]['m_max']})")
    return settings


def _checked(name: str, value, rule):
    kind, ok, requirement = rule
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind) or not ok(value):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return value


def _checked_measures(value) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"sharpness.measures must be a non-empty list of {list(MEASURES)}, "
                         f"got {value!r}")
    unknown = [v for v in value if v not in VARIANTS]
    if unknown:
        raise ValueError(f"sharpness.measures: unknown measure(s) {unknown} (known: {list(MEASURES)})")
    if len(set(value)) != len(value):
        raise ValueError(f"sharpness.measures lists a measure twice: {value!r}")
    return list(value)


# ----------------------------------------------------------------------------- target

def search_target(settings: Mapping, kind: str, train_accuracy: float) -> float:
    """The training accuracy the ``kind`` (sigma | alpha) search aims at: ``settings[kind]
    ["target"]`` (absolute) or ``train_accuracy - settings["deviation"]``, at least 0
    (relative; module doc). ``settings``: resolved (:func:`resolve_settings`)."""
    if settings["target_mode"] == "absolute":
        return float(settings[kind]["target"])
    return max(0.0, float(train_accuracy) - float(settings["deviation"]))


def target_description(settings: Mapping | None) -> str:
    """One sentence for a table's note: which target the study's searches used
    (``settings``: the config's ``sharpness``, resolved here)."""
    settings = resolve_settings(settings)
    if settings["target_mode"] == "relative":
        return (f"Sharpness searches target each model's own training accuracy minus "
                f"{settings['deviation']:g} (relative target, Jiang et al. 2020).")
    targets = {kind: settings[kind]["target"] for kind in ("sigma", "alpha")}
    if targets["sigma"] == targets["alpha"]:
        what = f"a training accuracy of {targets['sigma']:g}"
    else:
        what = f"a training accuracy of {targets['sigma']:g} (sigma) and {targets['alpha']:g} (alpha)"
    return (f"Sharpness searches target {what} for every model (absolute target, the "
            "authors' setting): a model below it ends on the search bound.")
