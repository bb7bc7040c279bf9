"""Encoded features with their labels and ids: checks and ``.npz`` storage.

A feature file (written atomically, read without pickle) holds
``features`` float32 ``(n, d)``, ``y`` int64 ``(n,)``, ``ids`` unicode
``(n,)``, ``class_names`` unicode ``(k,)``, ``encoder`` (the encoder's name)
and ``info`` (a JSON string: options, timings, training log).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.core.io import atomic_path

KEYS = ("features", "y", "ids", "class_names", "encoder", "info")


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Features ``(n, d)`` of ``n`` labelled examples, from encoder ``encoder``."""

    features: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    class_names: tuple[str, ...]
    encoder: str
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "y", np.asarray(self.y, dtype=np.int64))
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=str))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "features", check_features(self.features, self.encoder, self.ids))
        if len(self.y) != len(self.features):
            raise DataError(
                f"encoder {self.encoder}: {len(self.features)} feature rows but {len(self.y)} labels"
            )


def check_features(features: Any, encoder: str, ids: np.ndarray | None = None) -> np.ndarray:
    """``features`` as float32 ``(n, d)``, checked finite.

    Raises DataError naming the encoder for a shape other than 2-D, a row
    count other than ``len(ids)``, and NaN or inf values: the first bad row,
    its id and column, and how many rows are bad.
    """
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise DataError(f"encoder {encoder}: features must be (n, d), got shape {arr.shape}")
    if ids is not None and len(ids) != arr.shape[0]:
        raise DataError(f"encoder {encoder}: {arr.shape[0]} feature rows for {len(ids)} ids")
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        row = int(bad_rows[0])
        col = int(np.flatnonzero(~finite[row])[0])
        name = f" (id {ids[row]})" if ids is not None else ""
        raise DataError(
            f"encoder {encoder}: feature row {row}{name} is not finite ({arr[row, col]} in column {col}); "
            f"{bad_rows.size} of {arr.shape[0]} rows are bad"
        )
    return arr


def save_features(path: str | os.PathLike, features: FeatureSet) -> Path:
    """Write a :class:`FeatureSet` to ``path`` (``.npz``) atomically; returns the path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise DataError(f"{path}: feature files end in .npz")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            features=features.features,
            y=features.y,
            ids=features.ids,
            class_names=np.asarray(features.class_names, dtype=str),
            encoder=np.asarray(features.encoder),
            info=np.asarray(json.dumps(features.info, default=_json_default)),
        )
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def load_features(path: str | os.PathLike) -> FeatureSet:
    """Read a feature file written by :func:`save_features` (checks it again on load).

    Raises DataError naming the file when it is missing, is not a feature file,
    or holds non-finite features.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: feature file not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: not a feature file (arrays {missing} missing)")
            arrays = {k: npz[k] for k in KEYS}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from None
    return FeatureSet(
        features=arrays["features"],
        y=arrays["y"],
        ids=arrays["ids"],
        class_names=tuple(arrays["class_names"]),
        encoder=str(arrays["encoder"]),
        info=json.loads(str(arrays["info"])),
    )
