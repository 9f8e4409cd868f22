"""``prepare(name, options, out_path)``: build one dataset from its source, write its .npz.

The dataset's name is the user's (a key of the config's ``datasets``; lower-case letters,
digits and ``_``: it becomes the ``{dataset}`` of ``results/data/{dataset}.npz``); its
``source`` says how to build it. ``options`` is the config's ``datasets.<name>`` dict
(config/schema.yaml, docs/datasets.md): ``source``, ``root`` (null = the source's default
where it has one), ``download``, ``hierarchy`` with ``superclass_level`` and ``unlisted``
(every source), and source-specific keys (:data:`SOURCES`). A key that the chosen source
does not use is an error, so a typo never goes unnoticed.

The source names of the first release stay valid under the built-in dataset names
(:data:`LEGACY_SOURCES`, e.g. ``cifar10: {source: torchvision}``), so existing configs
keep working unchanged and give the same datasets, byte for byte.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from intraclass.data import cifar, fashion_mnist, toy
from intraclass.data.format import Dataset, DatasetError, content_digest, load_dataset, save_dataset, write_digest
from intraclass.data.hierarchy import PRESETS, Hierarchy, apply_hierarchy, dataset_singletons, resolve_hierarchy
from intraclass.data.image_folder import read_image_folder

log = logging.getLogger(__name__)

COMMON_KEYS = ("source", "root", "download")  # every source accepts them (schema defaults)
HIERARCHY_KEYS = ("hierarchy", "superclass_level", "unlisted")  # every source accepts them
UNLISTED = ("error", "drop")  # what to do with a fine class the hierarchy does not list


@dataclass(frozen=True)
class Source:
    """How to build a dataset from one source; ``keys``: its options besides COMMON_KEYS
    and HIERARCHY_KEYS. ``hierarchy``: whether the source's own data carries superclasses
    (True), never does (False), or depends on the file (None)."""

    build: Callable[[dict], Dataset]
    summary: str
    keys: tuple[str, ...] = ()
    downloads: bool = False  # whether download: true means anything
    needs_root: bool = False
    uses_root: bool = True
    hierarchy: bool | None = True
    required: tuple[str, ...] = ()  # keys without a default


def _pick(o: dict, keys: tuple[str, ...]) -> dict:
    """The options among ``keys`` that the config sets (the builder's defaults for the rest)."""
    return {k: o[k] for k in keys if k in o}


DIGITS_KEYS = ("test_per_class", "seed")
SYNTHETIC_KEYS = ("seed", "n_super", "n_sub", "per_class", "test_per_class", "size", "channels")
IMAGE_FOLDER_KEYS = ("test_fraction", "seed", "channels")


def _image_folder(o: dict) -> Dataset:
    hierarchy = _hierarchy(o)
    return read_image_folder(o["root"], hierarchy, o.get("unlisted") == "drop", **_pick(o, IMAGE_FOLDER_KEYS))


def _npz(o: dict) -> Dataset:
    return load_dataset(o["path"], fix=f"fix the file {o['path']} (format: docs/stages.md, prepare_dataset)")


#: Every source by name: the one definition of what ``datasets.<name>.source`` may say.
SOURCES: dict[str, Source] = {
    "bundled": Source(lambda o: fashion_mnist.read_bundled(o["root"]),  # root None: resources/
                      "the Fashion-MNIST subset shipped in resources/ (no download)"),
    "cifar10": Source(lambda o: cifar.read_cifar(o["root"], cifar.cifar10_spec(), o["download"]),
                      "CIFAR-10 in torchvision's layout under root (no superclasses: set a hierarchy)",
                      downloads=True, needs_root=True, hierarchy=False),
    "cifar100": Source(lambda o: cifar.read_cifar(o["root"], cifar.cifar100_spec(), o["download"]),
                       "CIFAR-100 with its 20 superclasses, torchvision's layout under root",
                       downloads=True, needs_root=True),
    "fashion_mnist": Source(lambda o: fashion_mnist.read_torchvision(o["root"], o["download"]),
                            "Fashion-MNIST in torchvision's layout under root", downloads=True, needs_root=True),
    "fashion_mnist_idx": Source(lambda o: fashion_mnist.read_local(o["root"]),  # root None: Debian's dir
                                "Fashion-MNIST from a directory of the four idx files"),
    "digits": Source(lambda o: toy.load_digits_dataset(**_pick(o, DIGITS_KEYS)),
                     "scikit-learn's 8x8 digits in 3 superclasses", keys=DIGITS_KEYS, uses_root=False),
    "synthetic": Source(lambda o: toy.make_synthetic(**_pick(o, SYNTHETIC_KEYS)),
                        "seeded images with a known hierarchy", keys=SYNTHETIC_KEYS, uses_root=False),
    "image_folder": Source(_image_folder, "a folder of images, one subfolder per fine class",
                           keys=IMAGE_FOLDER_KEYS, needs_root=True, hierarchy=False),
    "npz": Source(_npz, "an .npz file in the project's dataset format", keys=("path",), uses_root=False,
                  hierarchy=None, required=("path",)),
}

#: (built-in dataset name, source name of the first release) -> source: configs written
#: before dataset names were free keep working.
LEGACY_SOURCES: dict[tuple[str, str], str] = {
    ("cifar10", "torchvision"): "cifar10",
    ("cifar100", "torchvision"): "cifar100",
    ("fashion_mnist", "torchvision"): "fashion_mnist",
    ("fashion_mnist", "local"): "fashion_mnist_idx",
    ("digits", "sklearn"): "digits",
}


def resolve_source(name: str, source: Any) -> str:
    """The source (a key of :data:`SOURCES`) that ``datasets.<name>.source`` names."""
    where = f"datasets.{name}.source"
    if (name, source) in LEGACY_SOURCES:
        return LEGACY_SOURCES[(name, source)]
    legacy = {old: [new for (n, o), new in LEGACY_SOURCES.items() if o == old] for _, old in LEGACY_SOURCES}
    if source in legacy:
        raise DatasetError(f"{where}: {source!r} is the first release's source name, kept only under the "
                           f"dataset names {sorted({n for n, o in LEGACY_SOURCES if o == source})}; for a "
                           f"dataset named {name!r} write source: {' or '.join(legacy[source])}")
    if source not in SOURCES:
        raise DatasetError(f"{where} must be one of {', '.join(SOURCES)}, not {source!r}")
    return source


def _hierarchy(options: Mapping) -> Hierarchy | None:
    if options.get("hierarchy") is None:
        return None
    return resolve_hierarchy(options["hierarchy"], options.get("superclass_level", 1))


def _check_hierarchy_options(where: str, options: dict) -> None:
    """``hierarchy`` names a preset or a readable file; its companions only go with it."""
    spec = options.get("hierarchy")
    if spec is None:
        extra = [k for k in HIERARCHY_KEYS[1:] if options.get(k) is not None]
        if extra:
            raise DatasetError(f"{where}: {extra} mean(s) nothing without a hierarchy")
        return
    if not isinstance(spec, str):
        raise DatasetError(f"{where}.hierarchy must be a preset name or a file path, not {spec!r}")
    level = options.get("superclass_level", 1)
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise DatasetError(f"{where}.superclass_level must be an integer >= 1, not {level!r}")
    if options.get("unlisted", "error") not in UNLISTED:
        raise DatasetError(f"{where}.unlisted must be one of {UNLISTED}, not {options['unlisted']!r}")
    try:
        resolve_hierarchy(spec, level)
    except DatasetError as e:
        raise DatasetError(f"{where}.hierarchy: {e}") from None


def _check_source_values(where: str, source_name: str, source: Source, options: dict) -> None:
    """download, root and the required keys fit the source."""
    if not isinstance(options["download"], bool):
        raise DatasetError(f"{where}.download must be true or false, not {options['download']!r}")
    if options["download"] and not source.downloads:
        raise DatasetError(f"{where}.download: true means nothing for source {source_name} (nothing to download)")
    root = options["root"]
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise DatasetError(f"{where}.root must be a path, not {root!r}")
    if root is not None and not source.uses_root:
        raise DatasetError(f"{where}.root means nothing for source {source_name}")
    if source.needs_root and root is None:
        raise DatasetError(
            f"{where}.root is required for source {source_name}: the directory holding (or to "
            f"receive) its files"
        )
    missing = [k for k in source.required if options.get(k) is None]
    if missing:
        raise DatasetError(f"{where}: source {source_name} needs {missing}")
    fraction = options.get("test_fraction")
    if fraction is not None and (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
                                 or not 0 < fraction < 1):
        raise DatasetError(f"{where}.test_fraction must be a number between 0 and 1, not {fraction!r}")


def check_options(name: str, options: Mapping[str, Any] | None) -> tuple[Source, dict]:
    """The source of ``name`` named by ``options`` and the options with defaults filled in
    (``source`` replaced by its key in :data:`SOURCES`).

    Config validation calls it too (:func:`intraclass.config.validate_config`), so a bad
    option, an unknown source or preset, or a hierarchy file that is missing or not a
    hierarchy stops the workflow before its first job, not in prepare_dataset."""
    where = f"datasets.{name}"
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise DatasetError(f"{where} must be a mapping of options, not {type(options).__name__}")
    options = dict(options)
    if options.get("source") is None:
        raise DatasetError(f"{where}.source is required: one of {', '.join(SOURCES)}")
    source_name = options["source"] = resolve_source(name, options["source"])
    source = SOURCES[source_name]
    accepted = COMMON_KEYS + HIERARCHY_KEYS + source.keys
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DatasetError(
            f"{where}: option(s) {unknown} mean nothing for source {source_name}; it accepts {', '.join(accepted)}"
        )
    options.setdefault("root", None)
    options.setdefault("download", False)
    _check_source_values(where, source_name, source, options)
    _check_hierarchy_options(where, options)
    return source, options


def superclass_problems(name: str, options: Mapping[str, Any]) -> str | None:
    """Why a study trained on superclasses (``labels: coarse``, whose c1, c2, c0 and
    clusterability compare subclasses inside their superclass) cannot use dataset ``name``,
    as far as its config tells; None when nothing is wrong or only the data can tell."""
    source, options = check_options(name, options)
    hierarchy = _hierarchy(options)
    if hierarchy is None:
        if source.hierarchy is False:
            return (f"dataset {name} (source {options['source']}) has no superclasses: give it a hierarchy "
                    f"(a preset such as cifar10_animals_vehicles, or a .json/.csv file)")
        return None
    single = hierarchy.singletons()
    if single:
        return (f"dataset {name}: superclass(es) {single} of {hierarchy.origin} hold a single fine class, "
                f"but c1, c2, c0 and clusterability compare each subclass with the rest of its superclass")
    return None


def check_dataset_uses(datasets: Mapping[str, Any], studies: Mapping[str, Any]) -> None:
    """Every study trained on superclasses uses a dataset whose configured hierarchy gives
    each superclass at least two fine classes (checked again on the data by :func:`prepare`)."""
    for study, settings in studies.items():
        if settings.get("labels") != "coarse" or settings.get("dataset") not in datasets:
            continue
        problem = superclass_problems(settings["dataset"], datasets[settings["dataset"]])
        if problem:
            raise DatasetError(f"studies.{study} (labels: coarse): {problem}")


def _check_superclasses(name: str, dataset: Dataset, coarse_studies) -> None:
    """The data of a dataset that studies train on superclasses (``coarse_studies``)."""
    if not coarse_studies:
        return
    who = f"studies {', '.join(coarse_studies)} (labels: coarse)"
    if not dataset.has_hierarchy:
        raise DatasetError(f"{who} need superclasses, but dataset {name} has none: give it a hierarchy")
    single = dataset_singletons(dataset)
    if single:
        raise DatasetError(f"{who}: superclass(es) {single} of dataset {name} hold a single fine class; c1, c2, "
                           f"c0 and clusterability compare each subclass with the rest of its superclass")


def build(name: str, options: Mapping[str, Any] | None) -> Dataset:
    """The dataset ``name`` built from ``options``, with its hierarchy applied (nothing written)."""
    source, options = check_options(name, options)
    log.info("building %s from source %s", name, options["source"])
    try:
        dataset = source.build(options)
        hierarchy = _hierarchy(options)
        if hierarchy is not None and options["source"] != "image_folder":  # the folder applies its own
            dataset = apply_hierarchy(dataset, hierarchy, options.get("unlisted") == "drop",
                                      f"source {options['source']}")
    except ValueError as e:
        raise DatasetError(f"datasets.{name}: {e}") from e
    return dataset


def prepare(name: str, options: Mapping[str, Any] | None, out_path: str | os.PathLike,
            digest_path: str | os.PathLike | None = None, coarse_studies=()) -> Dataset:
    """Build dataset ``name`` from ``options`` (config ``datasets.<name>``) and write ``out_path``,
    and its :func:`~intraclass.data.format.content_digest` to ``digest_path`` (if given).

    ``coarse_studies``: names of the studies that train on its superclasses; the dataset
    must then have superclasses of at least two fine classes each.
    Files are written atomically (temporary sibling, then rename); bad options or a
    missing or corrupt source raise :class:`DatasetError` before anything is written.
    Returns the dataset written.
    """
    dataset = build(name, options)
    _check_superclasses(name, dataset, list(coarse_studies))
    save_dataset(dataset, out_path)
    log.info("wrote %s: %s", out_path, dataset.summary())
    if digest_path is not None:
        digest = content_digest(dataset)
        write_digest(digest_path, digest)
        log.info("wrote %s: %s", digest_path, digest)
    return dataset


def source_files(name: str, options: Mapping[str, Any]) -> list[str]:
    """The files a dataset is built from whose change should rerun its preparation (the
    rule's inputs): the bundled file, an npz source's file, a hierarchy file. Image folders
    and downloaded archives are not listed (thousands of files; re-prepare by hand, the
    content digest then decides what reruns)."""
    _, options = check_options(name, options)
    found = []
    if options["source"] == "bundled":
        root = options["root"] if options["root"] is not None else fashion_mnist.BUNDLED_DIR
        found.append(os.path.join(root, fashion_mnist.BUNDLED_NAME))
    if options["source"] == "npz":
        found.append(str(options["path"]))
    if options.get("hierarchy") is not None and options["hierarchy"] not in PRESETS:
        found.append(str(options["hierarchy"]))
    return found

