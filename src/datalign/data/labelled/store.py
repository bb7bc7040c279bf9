"""Prepared labelled splits on disk: ``<split>.npz`` (images) or ``<split>.jsonl`` (texts).

- ``.npz`` (no pickle): ``X`` uint8 or float32 ``(n, H, W[, C])``, ``y`` int64
  ``(n,)``, ``ids`` unicode ``(n,)``, ``class_names`` unicode ``(k,)``.
- ``.jsonl``: one ``{"id", "label", "text"}`` object per line, UTF-8; the class
  names live in the dataset's ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.data.labelled.records import LabelledData

SUFFIX = {"image": ".npz", "text": ".jsonl"}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_labelled_file(path: str | os.PathLike, data: LabelledData) -> dict[str, Any]:
    """Write ``data`` to ``path`` (``.npz`` for images, ``.jsonl`` for texts); return its record.

    The record is ``{"file", "rows", "sha256"}``. The caller places ``path``
    inside a directory written with ``atomic_path(..., is_dir=True)`` or
    passes a temporary path, so a half-written file is never taken as done.
    """
    path = Path(path)
    if path.suffix != SUFFIX[data.kind]:
        raise DataError(f"{path}: {data.kind} data is stored as {SUFFIX[data.kind]}")
    if data.kind == "image":
        with open(path, "wb") as fh:  # a file object: np.savez would append .npz to a name
            np.savez(
                fh, X=data.X, y=data.y, ids=data.ids, class_names=np.asarray(data.class_names, dtype=str)
            )
    else:
        with open(path, "w", encoding="utf-8") as fh:
            for i, text in enumerate(data.X):
                record = {"id": str(data.ids[i]), "label": int(data.y[i]), "text": text}
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return {"file": path.name, "rows": len(data), "sha256": file_sha256(path)}


def read_labelled_file(
    path: str | os.PathLike, class_names: list[str] | None = None
) -> LabelledData:
    """Read a file written by :func:`write_labelled_file` back into :class:`LabelledData`.

    ``class_names`` is required for ``.jsonl`` (it is in the manifest) and
    ignored for ``.npz``. Raises DataError naming the file (and line) when it
    is missing or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: prepared labelled split not found")
    where = str(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = {"X", "y", "ids", "class_names"} - set(npz.files)
                if missing:
                    raise DataError(f"{path}: arrays {sorted(missing)} missing")
                return LabelledData(npz["X"], npz["y"], tuple(npz["class_names"]), npz["ids"], where)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a prepared .npz ({exc})") from None
    if class_names is None:
        raise DataError(f"{path}: a .jsonl split needs the class names of its manifest")
    texts, labels, ids = [], [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                obj = json.loads(line)
                texts.append(obj["text"])
                labels.append(obj["label"])
                ids.append(obj["id"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{lineno}: not a prepared labelled line ({exc})") from None
    return LabelledData(texts, np.asarray(labels, dtype=np.int64), tuple(class_names), np.asarray(ids, dtype=str), where)
