"""Label checks and class partitions shared by the four measures.

A :class:`Partition` groups the samples of a layer array by class (the sets C_i of
section 2.1); a :class:`Hierarchy` adds the superclass S_s(i) of every subclass C_i
(section 2.2). Both are built once per call and reused for every layer.

Every class must hold at least 2 samples: with one sample a class has no spread, its
pairwise-distance std (Eq. 4) is undefined and its silhouette (Eq. 2) is 0 by convention
only, so such a class is rejected with a :class:`ValueError` naming it rather than given
a made-up value. Every superclass must hold at least 2 subclasses (Eqs. 1-2 compare a
subclass with the rest of its superclass).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Partition:
    """Samples grouped by class.

    ``ids[g]`` is the label of group g (increasing order), ``members[g]`` the sorted
    sample indices of that class and ``sizes[g]`` their count.
    """

    ids: np.ndarray  # (G,) int64
    members: tuple[np.ndarray, ...]  # G arrays of int64 sample indices
    sizes: np.ndarray  # (G,) int64
    n_samples: int
    contiguous: bool = False  # every class is one run of consecutive samples

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, groups) -> slice | np.ndarray:
        """Sample rows of group ``groups`` (an int), or of several groups (an array, in
        that order): a slice -- a view, no copy -- when each class is a run of consecutive
        samples and the runs of ``groups`` follow each other; else an index array."""
        groups = np.atleast_1d(groups)
        if self.contiguous:
            first, size = self.offsets[groups], self.sizes[groups]
            if np.all(first[1:] == first[:-1] + size[:-1]):
                return slice(int(first[0]), int(first[-1] + size[-1]))
        return np.concatenate([self.members[g] for g in groups])

    @cached_property
    def each(self) -> tuple[slice | np.ndarray, ...]:
        """``rows(g)`` of every class g, computed once."""
        return tuple(self.rows(g) for g in range(len(self)))

    @cached_property
    def offsets(self) -> np.ndarray:
        """(G,) first sample of each class."""
        return np.array([m[0] for m in self.members])


@dataclass(frozen=True)
class Hierarchy:
    """Subclasses (``fine``) nested in superclasses (``coarse``).

    ``parent[g]`` is the index into ``coarse`` of the superclass of subclass g;
    ``children[s]`` the indices into ``fine`` of the subclasses of superclass s.
    """

    fine: Partition
    coarse: Partition
    parent: np.ndarray  # (G_fine,) int64
    children: tuple[np.ndarray, ...]  # G_coarse arrays of int64


def check_labels(labels, n_samples: int, name: str) -> np.ndarray:
    """Return ``labels`` as a 1-D int64 array of length ``n_samples``, or raise ValueError."""
    if labels is None:
        raise ValueError(f"{name} labels are required here but None was given")
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} labels must be a 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} labels must be integers, got dtype {arr.dtype}")
    if len(arr) != n_samples:
        raise ValueError(
            f"{name} labels have {len(arr)} entries but the pre-activations have "
            f"{n_samples} samples"
        )
    return arr.astype(np.int64, copy=False)


def partition(labels, n_samples: int, name: str = "class") -> Partition:
    """Group sample indices by label; every class needs at least 2 samples."""
    arr = check_labels(labels, n_samples, name)
    ids, inverse, sizes = np.unique(arr, return_inverse=True, return_counts=True)
    if len(ids) == 0:
        raise ValueError(f"{name} labels are empty: there is no sample to measure")
    small = ids[sizes < 2]
    if len(small):
        raise ValueError(
            f"{name} {small[0]} has {sizes[sizes < 2][0]} sample(s); every class needs at "
            f"least 2 samples for its standard deviations ({len(small)} such class(es): "
            f"{small[:10].tolist()})"
        )
    order = np.argsort(inverse, kind="stable")  # sample indices, class by class, sorted
    members = tuple(np.split(order, np.cumsum(sizes)[:-1]))
    contiguous = bool(np.count_nonzero(np.diff(inverse)) == len(ids) - 1)  # one run per class
    return Partition(ids=ids, members=members, sizes=sizes, n_samples=n_samples, contiguous=contiguous)


def hierarchy(fine, coarse, n_samples: int) -> Hierarchy:
    """Nest the subclasses in their superclasses, checking that the labels do nest."""
    fine_part = partition(fine, n_samples, "fine class")
    coarse_part = partition(coarse, n_samples, "coarse class")
    coarse_arr = np.asarray(coarse, dtype=np.int64)
    parent = np.empty(len(fine_part), dtype=np.int64)
    for g, idx in enumerate(fine_part.members):
        supers = np.unique(coarse_arr[idx])
        if len(supers) != 1:
            raise ValueError(
                f"the labels do not nest: fine class {fine_part.ids[g]} has samples in "
                f"superclasses {supers.tolist()} (each fine class must lie in one superclass)"
            )
        parent[g] = np.searchsorted(coarse_part.ids, supers[0])
    children = tuple(np.flatnonzero(parent == s) for s in range(len(coarse_part)))
    for s, kids in enumerate(children):
        if len(kids) < 2:
            raise ValueError(
                f"superclass {coarse_part.ids[s]} holds {len(kids)} subclass(es); c1 and c2 "
                "compare each subclass with the rest of its superclass, so every superclass "
                "needs at least 2 subclasses"
            )
    return Hierarchy(fine=fine_part, coarse=coarse_part, parent=parent, children=children)
