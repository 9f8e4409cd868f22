"""Class hierarchies (fine class -> superclass): built-in presets, hierarchy files, and
relabelling a dataset by one.

The paper's c1 and c2 (Eqs. 1-2, Section 2.2) compare a subclass C_i with the rest of its
superclass S_s(i): a study trained on superclasses needs a hierarchy in which every fine
class lies in exactly one superclass and every superclass holds at least two fine
classes. A :class:`Hierarchy` is that mapping, ordered: superclass order gives the coarse
labels 0, 1, ...

Where a hierarchy comes from (the ``hierarchy`` option of a dataset, docs/datasets.md):

- a preset name (:data:`PRESETS`): ``cifar100_superclasses`` (CIFAR-100's 20 superclasses
  of 5 classes), ``cifar10_animals_vehicles`` (CIFAR-10: 6 animals, 4 vehicles),
  ``fashion_mnist_three`` (tops, footwear, other);
- a JSON file ``{"superclass": ["fine", ...], ...}``;
- a JSON file holding a BREEDS-style tree ``{"name": ..., "children": [...]}``, whose nodes
  at depth ``superclass_level`` (the root is depth 0) are the superclasses and whose leaves
  are the fine classes (Santurkar et al. 2021 build their BREEDS tasks this way from the
  WordNet tree over ImageNet's classes);
- a CSV file with a header line and two columns ``fine,superclass``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intraclass.data import fashion_mnist
from intraclass.data.format import Dataset, DatasetError

#: CIFAR-100's superclasses in the order of the archive's ``coarse_label_names`` (so that
#: the preset gives the same coarse labels as the pickles), each with its 5 fine classes.
CIFAR100_SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}

#: CIFAR-10's natural two-level split (class names as in the archive's ``label_names``).
CIFAR10_ANIMALS_VEHICLES: dict[str, tuple[str, ...]] = {
    "animals": ("bird", "cat", "deer", "dog", "frog", "horse"),
    "vehicles": ("airplane", "automobile", "ship", "truck"),
}


def _fashion_mnist_three() -> dict[str, tuple[str, ...]]:
    """Fashion-MNIST's three superclasses, from the one definition in fashion_mnist.py."""
    return {
        coarse: tuple(f for f, c in zip(fashion_mnist.FINE_NAMES, fashion_mnist.FINE_TO_COARSE) if c == s)
        for s, coarse in enumerate(fashion_mnist.COARSE_NAMES)
    }


@dataclass(frozen=True)
class Hierarchy:
    """Superclasses in order, each with its fine classes; validated on construction."""

    groups: tuple[tuple[str, tuple[str, ...]], ...]  # ((superclass, (fine, ...)), ...)
    origin: str = "hierarchy"  # the preset name or file, for messages

    def __post_init__(self):
        where = self.origin
        seen: dict[str, str] = {}
        supers = [s for s, _ in self.groups]
        if not supers:
            raise DatasetError(f"{where}: no superclass")
        repeated = sorted({s for s in supers if supers.count(s) > 1})
        if repeated:
            raise DatasetError(f"{where}: superclass(es) {repeated} listed twice")
        for superclass, fines in self.groups:
            if not fines:
                raise DatasetError(f"{where}: superclass {superclass!r} has no fine class")
            for fine in fines:
                if seen.get(fine) == superclass:
                    raise DatasetError(f"{where}: fine class {fine!r} is listed twice in superclass {superclass!r}")
                if fine in seen:
                    raise DatasetError(
                        f"{where}: fine class {fine!r} is in two superclasses, {seen[fine]!r} and "
                        f"{superclass!r}; every fine class must belong to exactly one"
                    )
                seen[fine] = superclass

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Sequence[str]], origin: str) -> Hierarchy:
        groups = []
        for superclass, fines in mapping.items():
            if not isinstance(superclass, str) or isinstance(fines, str) or not isinstance(fines, Sequence) \
                    or not all(isinstance(f, str) for f in fines):
                raise DatasetError(f"{origin}: superclass {superclass!r} must map to a list of fine class "
                                   f"names (strings), not {fines!r}")
            groups.append((superclass, tuple(fines)))
        return cls(tuple(groups), origin)

    @property
    def superclasses(self) -> list[str]:
        return [s for s, _ in self.groups]

    @property
    def fine_classes(self) -> list[str]:
        return [f for _, fines in self.groups for f in fines]

    def superclass_of(self) -> dict[str, int]:
        """Fine class name -> index of its superclass."""
        return {f: s for s, (_, fines) in enumerate(self.groups) for f in fines}

    def singletons(self) -> list[str]:
        """Superclasses with fewer than 2 fine classes (c1/c2 cannot use them)."""
        return [s for s, fines in self.groups if len(fines) < 2]


PRESETS: dict[str, Hierarchy] = {
    "cifar100_superclasses": Hierarchy.from_mapping(CIFAR100_SUPERCLASSES, "preset cifar100_superclasses"),
    "cifar10_animals_vehicles": Hierarchy.from_mapping(CIFAR10_ANIMALS_VEHICLES,
                                                       "preset cifar10_animals_vehicles"),
    "fashion_mnist_three": Hierarchy.from_mapping(_fashion_mnist_three(), "preset fashion_mnist_three"),
}
FILE_SUFFIXES = (".json", ".csv")


def _unique_keys(pairs: list[tuple]) -> dict:
    """json object hook: a key given twice is an error, not silently the last one."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise DatasetError(f"key(s) {twice} appear twice in one JSON object")
    return dict(pairs)


def _tree_groups(node: Mapping, level: int, origin: str) -> list[tuple[str, tuple[str, ...]]]:
    """(superclass, leaves) for the nodes at depth ``level`` of a BREEDS-style tree."""

    def name(n) -> str:
        if not isinstance(n, Mapping) or not isinstance(n.get("name"), str):
            raise DatasetError(f"{origin}: every tree node must be an object with a string 'name', got {n!r}")
        unknown = sorted(set(n) - {"name", "children"})
        if unknown:
            raise DatasetError(f"{origin}: node {n['name']!r} has unknown key(s) {unknown}")
        return n["name"]

    def leaves(n) -> list[str]:
        children = n.get("children") or []
        return [name(n)] if not children else [x for c in children for x in leaves(c)]

    frontier = [node]
    for depth in range(level):
        nxt = []
        for n in frontier:
            children = n.get("children") or []
            if not children:
                raise DatasetError(f"{origin}: leaf {name(n)!r} sits at depth {depth}, above "
                                   f"superclass_level {level}; every leaf must be at least that deep")
            nxt += children
        frontier = nxt
    return [(name(n), tuple(leaves(n))) for n in frontier]


def read_hierarchy_file(path: str | Path, superclass_level: int = 1) -> Hierarchy:
    """A :class:`Hierarchy` from a JSON (mapping or BREEDS-style tree) or CSV file."""
    path = Path(path)
    origin = f"hierarchy file {path}"
    if path.suffix not in FILE_SUFFIXES:
        raise DatasetError(f"{origin}: expected a .json or .csv file, or one of the presets {sorted(PRESETS)}")
    if not path.is_file():
        raise DatasetError(f"{origin} does not exist (relative paths are relative to the directory "
                           f"Snakemake runs in); presets: {sorted(PRESETS)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{origin} cannot be read ({e})") from e
    if path.suffix == ".csv":
        return _csv_hierarchy(text, origin)
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, DatasetError) as e:
        raise DatasetError(f"{origin} is not valid JSON ({e})") from None
    if not isinstance(doc, Mapping):
        raise DatasetError(f"{origin}: expected a JSON object, got {type(doc).__name__}")
    if isinstance(doc.get("name"), str) and "children" in doc:
        return Hierarchy(tuple(_tree_groups(doc, superclass_level, origin)), origin)
    return Hierarchy.from_mapping(doc, origin)


def _csv_hierarchy(text: str, origin: str) -> Hierarchy:
    """Rows ``fine,superclass`` after a header naming those two columns."""
    rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
    if not rows or [c.strip() for c in rows[0]] != ["fine", "superclass"]:
        raise DatasetError(f"{origin}: the first line must be the header 'fine,superclass'")
    groups: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for line, row in enumerate(rows[1:], 2):
        if len(row) != 2 or not all(c.strip() for c in row):
            raise DatasetError(f"{origin}, row {line}: expected 'fine,superclass', got {row}")
        fine, superclass = (c.strip() for c in row)
        if fine in where:
            raise DatasetError(f"{origin}: fine class {fine!r} is in two superclasses, {where[fine]!r} and "
                               f"{superclass!r} (row {line}); every fine class must belong to exactly one")
        where[fine] = superclass
        groups.setdefault(superclass, []).append(fine)
    return Hierarchy.from_mapping(groups, origin)


def resolve_hierarchy(spec: str, superclass_level: int = 1) -> Hierarchy:
    """The preset named ``spec`` or the hierarchy in the file ``spec``."""
    if spec in PRESETS:
        return PRESETS[spec]
    return read_hierarchy_file(spec, superclass_level)


def match_classes(hierarchy: Hierarchy, classes: Sequence[str], drop_unlisted: bool, what: str) -> list[str]:
    """The ``classes`` (a dataset's fine classes, in order) the hierarchy keeps.

    Every fine class of the hierarchy must be among ``classes``; a class the hierarchy
    does not list is an error, or left out when ``drop_unlisted`` (BREEDS-style subsets
    of a larger class set)."""
    missing = [f for f in hierarchy.fine_classes if f not in set(classes)]
    if missing:
        raise DatasetError(f"{hierarchy.origin} lists fine class(es) {missing[:10]} that {what} does not "
                           f"have ({len(missing)} in all); its classes: {list(classes)[:20]}")
    listed = set(hierarchy.fine_classes)
    unlisted = [c for c in classes if c not in listed]
    if unlisted and not drop_unlisted:
        raise DatasetError(f"{what} has class(es) {unlisted[:10]} ({len(unlisted)} in all) that "
                           f"{hierarchy.origin} does not list: add them, or set unlisted: drop to leave "
                           f"them out")
    return [c for c in classes if c in listed]


def apply_hierarchy(dataset: Dataset, hierarchy: Hierarchy, drop_unlisted: bool = False,
                    what: str = "the dataset") -> Dataset:
    """``dataset`` with coarse labels from ``hierarchy`` (matched by fine class name).

    Fine classes keep their order; with ``drop_unlisted`` the classes the hierarchy does
    not list (and their images) are left out and the fine labels renumbered 0.. in order.
    """
    keep = match_classes(hierarchy, dataset.fine_names, drop_unlisted, what)
    old_index = np.array([dataset.fine_names.index(c) for c in keep], dtype=np.int64)
    new_label = np.full(dataset.num_fine, -1, dtype=np.int64)  # old fine label -> new (-1: dropped)
    new_label[old_index] = np.arange(len(keep))
    sup = hierarchy.superclass_of()
    coarse_of = np.array([sup[c] for c in keep], dtype=np.int64)  # new fine label -> superclass
    arrays = {}
    for split in ("train", "test"):
        y = new_label[getattr(dataset, f"y_{split}")]
        kept = np.flatnonzero(y >= 0)
        arrays[split] = (getattr(dataset, f"x_{split}")[kept], y[kept], coarse_of[y[kept]])
    return Dataset(
        x_train=arrays["train"][0], y_train=arrays["train"][1], coarse_train=arrays["train"][2],
        x_test=arrays["test"][0], y_test=arrays["test"][1], coarse_test=arrays["test"][2],
        fine_names=keep, coarse_names=hierarchy.superclasses,
    )


def dataset_singletons(dataset: Dataset) -> list[str]:
    """Superclasses of ``dataset`` holding fewer than 2 fine classes."""
    counts = np.bincount(dataset.fine_to_coarse, minlength=dataset.num_coarse)
    return [dataset.coarse_names[s] for s in np.flatnonzero(counts < 2)]
