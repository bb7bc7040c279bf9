"""Labelled image sets through ``datasets.load_dataset`` (the Hugging Face hub, or local files).

Known hub ids and their columns (shared/HUB.md, "Spectral imbalance"):

==================== =========== ============================ ==============
id                   image       label                        note
==================== =========== ============================ ==============
uoft-cs/cifar10      ``img``     ``label``                    10 classes
uoft-cs/cifar100     ``img``     ``fine_label`` / coarse      100 / 20
ylecun/mnist         ``image``   ``label``
ILSVRC/imagenet-1k   ``image``   ``label``                    gated; test
                                                              labels are -1
==================== =========== ============================ ==============

Other ids default to ``image`` / ``label``; ``image_column`` and
``label_column`` override. Class names come from the label column's
``ClassLabel`` feature when it has one, else ``"0" .. str(max)``.

Only the label column is read to balance classes; images are decoded for
the kept rows alone. ``image_mode`` converts every image with PIL (``L``,
``RGB``); ``image_size`` centre-crops each image to the target aspect ratio
and resizes it (bicubic), which ImageNet's mixed sizes need. A repository that
needs a loading script is read from the hub's parquet export instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from datalign.core.errors import DataError
from datalign.data.labelled.source import POOL, Source, SourcePart

log = logging.getLogger(__name__)

KNOWN_COLUMNS: dict[str, tuple[str, str]] = {
    "uoft-cs/cifar10": ("img", "label"),
    "uoft-cs/cifar100": ("img", "fine_label"),
    "ylecun/mnist": ("image", "label"),
    "ILSVRC/imagenet-1k": ("image", "label"),
}
# Hub splits that hold no labels (every label is -1).
UNLABELLED_SPLITS: dict[str, tuple[str, ...]] = {"ILSVRC/imagenet-1k": ("test",)}
LOAD_KEYS = ("name", "revision", "data_files", "data_dir", "cache_dir")
SCRIPT_ERROR_MARKERS = ("dataset scripts are no longer supported", "loading script", "trust_remote_code")


def default_columns(path: str) -> tuple[str, str]:
    """The (image, label) columns of a hub id: the table above, else ``("image", "label")``."""
    return KNOWN_COLUMNS.get(path, ("image", "label"))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def load_hub_split(name: str, spec: Mapping[str, Any], hub_split: str) -> Any:
    """``datasets.load_dataset(path, split=hub_split, ...)``; on a loading-script error, the parquet export.

    Returns a ``datasets.Dataset``. Raises DataError naming the dataset, the
    repository and the split when both attempts fail.
    """
    import datasets

    kwargs = {k: spec[k] for k in LOAD_KEYS if spec.get(k) is not None}
    try:
        return datasets.load_dataset(spec["path"], split=hub_split, **kwargs)
    except Exception as exc:  # datasets raises many types; each becomes one line here
        if not any(m in str(exc).lower() for m in SCRIPT_ERROR_MARKERS):
            raise DataError(
                f"dataset {name}: load_dataset({spec['path']!r}, split={hub_split!r}) failed: "
                f"{type(exc).__name__}: {_first_line(exc)}"
            ) from None
    url = (
        f"hf://datasets/{spec['path']}@refs%2Fconvert%2Fparquet/"
        f"{spec.get('name') or 'default'}/{hub_split}/*.parquet"
    )
    log.warning("dataset %s: %s needs a loading script; reading the parquet export %s", name, spec["path"], url)
    extra = {"cache_dir": spec["cache_dir"]} if spec.get("cache_dir") else {}
    try:
        return datasets.load_dataset("parquet", data_files={hub_split: url}, split=hub_split, **extra)
    except Exception as exc:
        raise DataError(
            f"dataset {name}: parquet export of {spec['path']} split {hub_split!r} failed: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        ) from None


def _fit_size(img: Any, size: tuple[int, int]) -> Any:
    """Centre-crop a PIL image to the aspect ratio of ``size`` (h, w), then resize it to ``size``."""
    from PIL import Image

    h, w = size
    width, height = img.size
    # Crop the larger relative side so the resize does not distort shapes.
    if width * h > height * w:
        new_w = max(1, round(height * w / h))
        left = (width - new_w) // 2
        img = img.crop((left, 0, left + new_w, height))
    elif width * h < height * w:
        new_h = max(1, round(width * h / w))
        top = (height - new_h) // 2
        img = img.crop((0, top, width, top + new_h))
    return img.resize((w, h), Image.Resampling.BICUBIC)


def _image_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def decode_images(
    rows: Any, image_column: str, where: str, mode: str | None, size: tuple[int, int] | None
) -> np.ndarray:
    """Stack the images of ``rows`` (a ``datasets.Dataset``) into uint8 ``(n, H, W[, C])``.

    Raises DataError naming ``where`` and the row for an image that is not a
    picture, not 8-bit, or of another shape than row 0 (mixed shapes need
    ``image_size``; mixed channel counts need ``image_mode``).
    """
    out: np.ndarray | None = None
    for i, row in enumerate(tqdm(rows, total=len(rows), desc=f"decode {where}", unit="img", leave=False)):
        img = row[image_column]
        if img is None:
            raise DataError(f"{where}: row {i} has no image in column '{image_column}'")
        if hasattr(img, "convert"):
            if mode is not None and img.mode != mode:
                img = img.convert(mode)
            if size is not None:
                img = _fit_size(img, size)
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            raise DataError(
                f"{where}: row {i} holds {arr.dtype} pixels (PIL mode {getattr(img, 'mode', '?')}); set image_mode: L or RGB"
            )
        if out is None:
            out = np.empty((len(rows), *arr.shape), dtype=np.uint8)
        elif arr.shape != out.shape[1:]:
            raise DataError(
                f"{where}: row {i} has image shape {arr.shape}, row 0 has {out.shape[1:]} "
                "(set image_size, and image_mode for mixed channels)"
            )
        out[i] = arr
    if out is None:
        return np.empty((0, 1, 1), dtype=np.uint8)
    return out


def _part(name: str, spec: Mapping[str, Any], hub_split: str, columns: tuple[str, str]) -> tuple[SourcePart, Any, dict]:
    image_column, label_column = columns
    where = f"dataset {name}: split {hub_split!r} of {spec['path']}"
    if hub_split.split("[")[0] in UNLABELLED_SPLITS.get(spec["path"], ()):
        raise DataError(f"{where} is unlabelled (every label is -1); use the train or validation split")
    ds = load_hub_split(name, spec, hub_split)
    found = list(ds.column_names)
    log.info("%s has columns %s", where, found)
    for role, column in (("image", image_column), ("label", label_column)):
        if column not in found:
            raise DataError(f"{where}: no {role} column '{column}' (columns {found}); set {role}_column")
    labels = np.asarray(ds.select_columns([label_column]).with_format("numpy")[label_column])
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise DataError(f"{where}: label column '{label_column}' is not integer labels (dtype {labels.dtype})")
    negative = int(np.sum(labels < 0))
    if negative:
        raise DataError(f"{where}: {negative} of {len(labels)} rows have a negative label (unlabelled rows)")
    mode, size = spec.get("image_mode"), _image_size(spec.get("image_size"))

    def take(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = ds.select_columns([image_column]).select(idx)
        return decode_images(rows, image_column, where, mode, size), np.array([f"{hub_split}:{i}" for i in idx])

    info = {"hub_split": hub_split, "rows": len(labels), "columns": found}
    return SourcePart(labels.astype(np.int64), take, where), ds.features.get(label_column), info


def load_hf_images(name: str, spec: Mapping[str, Any]) -> Source:
    """A labelled image source from ``load_dataset``: ``split`` (a pool) or ``splits`` (train/test).

    Raises DataError (one line, naming the dataset, repository and split) for a
    load failure, a missing column, non-integer or negative labels; decoding
    errors surface when rows are taken (see :func:`decode_images`).
    """
    default_image, default_label = default_columns(spec["path"])
    columns = (spec.get("image_column") or default_image, spec.get("label_column") or default_label)
    wanted = {POOL: spec["split"]} if spec.get("split") is not None else dict(spec["splits"])
    parts: dict[str, SourcePart] = {}
    loaded: dict[str, Any] = {}
    feature = None
    for part_name, hub_split in wanted.items():
        parts[part_name], feature, loaded[part_name] = _part(name, spec, str(hub_split), columns)
    names = list(getattr(feature, "names", None) or [])
    if not names:
        top = max(int(p.labels.max(initial=-1)) for p in parts.values())
        names = [str(i) for i in range(top + 1)]
    details = {"path": spec["path"], "image_column": columns[0], "label_column": columns[1], "loaded": loaded}
    return Source(parts, names, "image", details)
