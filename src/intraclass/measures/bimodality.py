"""Bimodality: how two-peaked each neuron's pre-activations are within each class.

The paper (Sec. 4.6) proposes, as future work, "quantifying the bimodal shape of a
neuron's preactivations for each class": a neuron that splits a class into two groups of
samples (e.g. two subclasses) has a bimodal distribution on that class, found without any
subclass label. The statistic is Sarle's bimodality coefficient (SAS manual; Pfister et
al. 2013, "Good things peak in pairs"):

    BC = (G1^2 + 1) / (G2 + 3 (n - 1)^2 / ((n - 2)(n - 3)))

with n the class's samples, G1 the bias-corrected sample skewness and G2 the
bias-corrected sample excess kurtosis (``scipy.stats.skew(bias=False)``,
``scipy.stats.kurtosis(bias=False)``):

    g1 = m3 / m2^1.5,  G1 = g1 sqrt(n (n - 1)) / (n - 2)
    g2 = m4 / m2^2 - 3,  G2 = ((n + 1) g2 + 6) (n - 1) / ((n - 2)(n - 3))

(m_r: the r-th central moment, population normalization). BC lies in (0, 1]; the uniform
distribution gives 5/9, a normal about 1/3, two well-separated equal peaks approach 1;
BC > 5/9 hints at bimodality. The denominator is always positive (G2 >= -2 (n-1)/(n-3)).

The measure has the shape of c3 (Eq. 3): per class C_i (labels trained on) and neuron,
BC of the neuron's pre-activations on C_i (dead neurons and neurons constant on C_i: 0,
no evidence of two modes); the mean of the top-k over all neurons of all layers; the mean
over classes. Every class needs at least 4 samples (the formula divides by n - 3).
"""

from __future__ import annotations

import numpy as np

from .labels import Partition
from .stats import dead_neurons

MIN_SAMPLES = 4


def coefficient(x: np.ndarray) -> np.ndarray:
    """(d,): Sarle's BC of each column of (n, d) ``x`` (float64 accumulation); 0 for a
    constant column. The formula of the module docstring."""
    n = x.shape[0]
    if n < MIN_SAMPLES:
        raise ValueError(f"bimodality needs at least {MIN_SAMPLES} samples per class, got {n}")
    x = np.asarray(x, dtype=np.float64)
    d = x - x.mean(axis=0)
    d2 = d * d
    m2 = d2.mean(axis=0)
    m3 = (d2 * d).mean(axis=0)
    m4 = (d2 * d2).mean(axis=0)
    flat = m2 <= 0.0
    m2 = np.where(flat, 1.0, m2)
    g1 = m3 / m2**1.5
    g2 = m4 / (m2 * m2) - 3.0
    big_g1 = g1 * np.sqrt(n * (n - 1.0)) / (n - 2.0)
    big_g2 = ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    with np.errstate(divide="ignore", invalid="ignore"):  # only constant columns divide by 0
        bc = (big_g1**2 + 1.0) / (big_g2 + 3.0 * (n - 1.0) ** 2 / ((n - 2.0) * (n - 3.0)))
    bc[flat] = 0.0
    return bc


def class_bimodality(x: np.ndarray, part: Partition, dead: np.ndarray | None = None) -> np.ndarray:
    """(classes, d): BC of every neuron on every class of ``part``; dead neurons 0.

    ``x``: (n, d) pre-activations of one layer (float32 or float64). Raises ValueError
    naming a class with fewer than 4 samples.
    """
    small = np.flatnonzero(part.sizes < MIN_SAMPLES)
    if small.size:
        raise ValueError(f"class {part.ids[small[0]]} has {part.sizes[small[0]]} sample(s); "
                         f"bimodality needs at least {MIN_SAMPLES} per class")
    out = np.empty((len(part), x.shape[1]))
    for g, rows in enumerate(part.each):
        out[g] = coefficient(x[rows])
    out[:, dead_neurons(x) if dead is None else dead] = 0.0
    return out
