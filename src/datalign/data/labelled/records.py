"""The labelled record kind: inputs with integer class labels, class names and ids.

A :class:`LabelledData` holds ``n`` examples of one kind:

- ``image``: ``X`` is a numpy array ``(n, H, W)`` (grey) or ``(n, H, W, C)``,
  either ``uint8`` pixels in 0..255 or ``float32`` values in [0, 1];
- ``text``: ``X`` is a list of ``n`` strings.

``y`` is ``int64 (n,)`` with values in ``0 .. len(class_names) - 1`` and
``ids`` a unicode array ``(n,)`` of unique example ids (where the example came
from: ``"train:123"``, ``"business/001.txt"``). Every constructor call checks
these invariants, so a malformed record never reaches an encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datalign.core.errors import DataError

KINDS = ("image", "text")


@dataclass(frozen=True, eq=False)
class LabelledData:
    """Labelled examples (see the module docstring); ``where`` names them in errors."""

    X: np.ndarray | list[str]
    y: np.ndarray
    class_names: tuple[str, ...]
    ids: np.ndarray
    where: str = "labelled data"

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "y", _as_labels(self.y, self.where))
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=str).reshape(-1))
        if not isinstance(self.X, np.ndarray):
            object.__setattr__(self, "X", list(self.X))
        check_labelled(self)

    @property
    def kind(self) -> str:
        """``"image"`` for an array of images, ``"text"`` for a list of strings."""
        return "image" if isinstance(self.X, np.ndarray) else "text"

    @property
    def n_classes(self) -> int:
        """Number of classes (``len(class_names)``), present or not."""
        return len(self.class_names)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def counts(self) -> np.ndarray:
        """Examples per class, ``int64 (n_classes,)``."""
        return np.bincount(self.y, minlength=self.n_classes).astype(np.int64)

    def subset(self, indices: Sequence[int] | np.ndarray, where: str | None = None) -> LabelledData:
        """The examples at ``indices`` (in that order), same classes."""
        idx = np.asarray(indices, dtype=np.int64)
        X = self.X[idx] if isinstance(self.X, np.ndarray) else [self.X[i] for i in idx]
        return LabelledData(X, self.y[idx], self.class_names, self.ids[idx], where or self.where)


def _as_labels(y: Any, where: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise DataError(f"{where}: labels must be one-dimensional, got shape {arr.shape}")
    # Float labels are accepted only when every value is a whole number (CSV round trips).
    integral = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.mod(arr, 1) == 0))
    )
    if arr.size and not integral:
        raise DataError(f"{where}: labels must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def check_labelled(data: LabelledData) -> None:
    """Check the invariants of the module docstring; DataError naming the first violation."""
    where, n = data.where, len(data.y)
    if data.n_classes < 1:
        raise DataError(f"{where}: no class names")
    if len(set(data.class_names)) != data.n_classes:
        dup = sorted({c for c in data.class_names if data.class_names.count(c) > 1})
        raise DataError(f"{where}: duplicate class name(s) {dup}")
    if len(data.X) != n or len(data.ids) != n:
        raise DataError(f"{where}: {len(data.X)} inputs, {n} labels and {len(data.ids)} ids differ")
    if n:
        bad = np.flatnonzero((data.y < 0) | (data.y >= data.n_classes))
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{where}: row {i} (id {data.ids[i]}) has label {data.y[i]} outside "
                f"0..{data.n_classes - 1} ({data.n_classes} classes)"
            )
    if len(np.unique(data.ids)) != n:
        values, counts = np.unique(data.ids, return_counts=True)
        raise DataError(f"{where}: id {str(values[counts > 1][0])!r} occurs more than once")
    if isinstance(data.X, np.ndarray):
        check_images(data.X, where)
    else:
        for i, text in enumerate(data.X):
            if not isinstance(text, str):
                raise DataError(f"{where}: row {i} (id {data.ids[i]}) is {type(text).__name__}, not text")


def check_images(X: np.ndarray, where: str) -> None:
    """Images must be ``(n, H, W)`` or ``(n, H, W, C)``, uint8 or float32 in [0, 1]."""
    if X.ndim not in (3, 4):
        raise DataError(f"{where}: images must be (n, H, W) or (n, H, W, C), got shape {X.shape}")
    if X.dtype == np.uint8:
        return
    if X.dtype != np.float32:
        raise DataError(f"{where}: images must be uint8 or float32, got {X.dtype}")
    if X.size and not np.all(np.isfinite(X)):
        row = int(np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))[0])
        raise DataError(f"{where}: float images are not finite (row {row})")
    if X.size and (X.min() < 0 or X.max() > 1):
        raise DataError(
            f"{where}: float images must lie in [0, 1], got {float(X.min()):g}..{float(X.max()):g}"
        )


def to_image_array(X: np.ndarray, where: str) -> np.ndarray:
    """Pixels as stored: uint8 kept; integers within 0..255 cast to uint8; floats in [0, 1] as float32.

    Raises DataError for other ranges (naming ``where`` and the range found),
    since guessing a scale would silently change what an encoder sees.
    """
    arr = np.asarray(X)
    if arr.dtype == np.uint8:
        return arr
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = float(arr.min()), float(arr.max())
    if np.issubdtype(arr.dtype, np.integer) or np.all(np.mod(arr, 1) == 0) and hi > 1:
        if lo < 0 or hi > 255:
            raise DataError(f"{where}: integer pixels must lie in 0..255, got {lo:g}..{hi:g}")
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or lo < 0 or hi > 1:
            raise DataError(
                f"{where}: float pixels must be finite and lie in [0, 1] (or be integers 0..255), got {lo:g}..{hi:g}"
            )
        return arr.astype(np.float32)
    raise DataError(f"{where}: pixels must be numbers, got dtype {arr.dtype}")


def unit_pixels(X: np.ndarray) -> np.ndarray:
    """Images as float32 in [0, 1]: uint8 divided by 255, float32 unchanged. Shape kept."""
    if X.dtype == np.uint8:
        return X.astype(np.float32) / np.float32(255.0)
    return X.astype(np.float32, copy=False)
