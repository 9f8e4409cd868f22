"""``prepare(name, options, out_path)``: build one dataset from its source, write its .npz.

``options`` is the config's ``datasets.<name>`` dict (config/schema.yaml): ``source``,
``root`` (null = the source's default), ``download``, and source-specific keys. A key
that the chosen source does not use is an error, so a typo never goes unnoticed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from intraclass.data import cifar, fashion_mnist, toy
from intraclass.data.format import Dataset, DatasetError, content_digest, save_dataset, write_digest

log = logging.getLogger(__name__)

COMMON_KEYS = ("source", "root", "download")  # every source accepts them (schema defaults)


@dataclass(frozen=True)
class Source:
    """How to build a dataset from one source; ``keys``: its options besides COMMON_KEYS."""

    build: Callable[[dict], Dataset]
    keys: tuple[str, ...] = ()
    downloads: bool = False  # whether download: true means anything
    needs_root: bool = False


def _cifar10(o: dict) -> Dataset:
    return cifar.read_cifar(o["root"], cifar.cifar10_spec(), o["download"])


def _cifar100(o: dict) -> Dataset:
    return cifar.read_cifar(o["root"], cifar.cifar100_spec(), o["download"])


def _pick(o: dict, keys: tuple[str, ...]) -> dict:
    """The options among ``keys`` that the config sets (the builder's defaults for the rest)."""
    return {k: o[k] for k in keys if k in o}


DIGITS_KEYS = ("test_per_class", "seed")
SYNTHETIC_KEYS = ("seed", "n_super", "n_sub", "per_class", "test_per_class", "size", "channels")

SOURCES: dict[str, dict[str, Source]] = {
    "cifar10": {"torchvision": Source(_cifar10, downloads=True, needs_root=True)},
    "cifar100": {"torchvision": Source(_cifar100, downloads=True, needs_root=True)},
    "fashion_mnist": {
        "torchvision": Source(lambda o: fashion_mnist.read_torchvision(o["root"], o["download"]),
                              downloads=True, needs_root=True),
        "local": Source(lambda o: fashion_mnist.read_local(o["root"])),  # root None: Debian's dir
    },
    "fashion_mnist_small": {
        "bundled": Source(lambda o: fashion_mnist.read_bundled(o["root"])),  # root None: resources/
    },
    "digits": {"sklearn": Source(lambda o: toy.load_digits_dataset(**_pick(o, DIGITS_KEYS)), keys=DIGITS_KEYS)},
    "synthetic": {
        "synthetic": Source(lambda o: toy.make_synthetic(**_pick(o, SYNTHETIC_KEYS)), keys=SYNTHETIC_KEYS),
    },
}


def check_options(name: str, options: Mapping[str, Any] | None) -> tuple[Source, dict]:
    """The source of ``name`` named by ``options`` and the options with defaults filled in.

    Config validation calls it too (:func:`intraclass.config.validate_config`), so a bad
    option stops the workflow before its first job, not in prepare_dataset."""
    where = f"datasets.{name}"
    if name not in SOURCES:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(SOURCES)}")
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise DatasetError(f"{where} must be a mapping of options, not {type(options).__name__}")
    options = dict(options)
    sources = SOURCES[name]
    options.setdefault("source", next(iter(sources)) if len(sources) == 1 else None)
    source_name = options["source"]
    if source_name not in sources:
        raise DatasetError(f"{where}.source must be one of {', '.join(sources)}, not {source_name!r}")
    source = sources[source_name]
    unknown = sorted(set(options) - set(COMMON_KEYS) - set(source.keys))
    if unknown:
        raise DatasetError(
            f"{where}: option(s) {unknown} mean nothing for source {source_name}; "
            f"it accepts {', '.join(COMMON_KEYS + source.keys)}"
        )
    options.setdefault("root", None)
    options.setdefault("download", False)
    if not isinstance(options["download"], bool):
        raise DatasetError(f"{where}.download must be true or false, not {options['download']!r}")
    if options["download"] and not source.downloads:
        raise DatasetError(f"{where}.download: true means nothing for source {source_name} (nothing to download)")
    root = options["root"]
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise DatasetError(f"{where}.root must be a path, not {root!r}")
    if source.needs_root and root is None:
        raise DatasetError(
            f"{where}.root is required for source {source_name}: the directory holding (or to "
            f"receive) the downloaded files"
        )
    return source, options


def prepare(name: str, options: Mapping[str, Any] | None, out_path: str | os.PathLike,
            digest_path: str | os.PathLike | None = None) -> Dataset:
    """Build dataset ``name`` from ``options`` (config ``datasets.<name>``) and write ``out_path``,
    and its :func:`~intraclass.data.format.content_digest` to ``digest_path`` (if given).

    Files are written atomically (temporary sibling, then rename); bad options or a
    missing or corrupt source raise :class:`DatasetError` before anything is written.
    Returns the dataset written.
    """
    source, options = check_options(name, options)
    log.info("preparing %s from source %s", name, options.get("source"))
    try:
        dataset = source.build(options)
    except ValueError as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"datasets.{name}: {e}") from e
    save_dataset(dataset, out_path)
    log.info("wrote %s: %s", out_path, dataset.summary())
    if digest_path is not None:
        digest = content_digest(dataset)
        write_digest(digest_path, digest)
        log.info("wrote %s: %s", digest_path, digest)
    return dataset
