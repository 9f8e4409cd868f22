"""Datasets: preparation from their sources and the one file format every stage reads.

- :func:`prepare` (``name, options, out_path``): build a dataset and write its ``.npz``
  (``results/data/{dataset}.npz``; rule ``prepare_dataset``, docs/stages.md).
- :func:`load_dataset` (``path``) -> :class:`Dataset`: read and validate that file.
- :func:`training_indices` (``dataset, per_class, seed``): the stratified training subset
  that training, extraction and sharpness share.

Datasets are named by the user; each names a source (:data:`SOURCES`: ``bundled``,
``cifar10``, ``cifar100``, ``fashion_mnist``, ``fashion_mnist_idx``, ``digits``,
``synthetic``, ``image_folder``, ``npz``) and optionally a hierarchy (a preset of
:mod:`intraclass.data.hierarchy` or a .json/.csv file). docs/datasets.md has the details.
"""

from intraclass.data.format import (
    Dataset,
    DatasetError,
    load_dataset,
    save_dataset,
    stratified_indices,
    training_indices,
)
from intraclass.data.prepare import SOURCES, prepare

__all__ = [
    "SOURCES",
    "Dataset",
    "DatasetError",
    "load_dataset",
    "prepare",
    "save_dataset",
    "stratified_indices",
    "training_indices",
]
