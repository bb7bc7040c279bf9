"""A user's labelled file: ``.npz`` images or ``.jsonl`` texts.

- ``.npz``: arrays ``X`` (images ``(n, H, W)`` or ``(n, H, W, C)``: uint8, or
  integers 0..255, or floats in [0, 1]) and ``y`` (integer labels ``(n,)``);
  optional ``ids`` ``(n,)`` and ``class_names`` ``(k,)``. Read without pickle.
- ``.jsonl``: one object per line with a text field (``text_field``, default
  ``text``) and a label field (``label_field``, default ``label``) holding an
  integer or a class name.

Class names come from the file (``class_names`` array), else the spec's
``class_names`` list, else: the sorted distinct names for string labels,
``"0" .. str(max)`` for integer labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.data.labelled.records import to_image_array
from datalign.data.labelled.source import POOL, Source, memory_part


def _class_names(labels: list[Any], given: list[str] | None, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer labels and class names for labels that are ints or class-name strings."""
    if all(isinstance(v, str) for v in labels):
        names = list(given) if given else sorted(set(labels))
        index = {c: i for i, c in enumerate(names)}
        for row, value in enumerate(labels):
            if value not in index:
                raise DataError(f"{where}: row {row} has label {value!r}, not among class_names {names}")
        return np.array([index[v] for v in labels], dtype=np.int64), names
    for row, value in enumerate(labels):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise DataError(f"{where}: row {row} has label {value!r}; labels must be all integers or all strings")
    y = np.array(labels, dtype=np.int64)
    names = list(given) if given else [str(i) for i in range(int(y.max(initial=-1)) + 1)]
    return y, names


def _load_npz(path: Path, spec: Mapping[str, Any]) -> Source:
    where = f"{path}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:  # object arrays need pickle, which is refused
        raise DataError(f"{where}: cannot read without pickle ({exc})") from None
    except OSError as exc:
        raise DataError(f"{where}: not a readable .npz ({exc})") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(f"{where}: array '{key}' missing (found {sorted(arrays)})")
    X, y = arrays["X"], arrays["y"]
    if len(X) != len(y):
        raise DataError(f"{where}: X has {len(X)} rows but y has {len(y)}")
    X = to_image_array(X, where)
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: y must hold integer labels, got dtype {y.dtype}")
    ids = arrays.get("ids")
    ids = np.asarray(ids, dtype=str) if ids is not None else np.array([f"{path.stem}:{i}" for i in range(len(y))])
    if "class_names" in arrays:
        names = [str(c) for c in arrays["class_names"]]
    else:
        names = list(spec.get("class_names") or [str(i) for i in range(int(y.max(initial=-1)) + 1)])
    return Source({POOL: memory_part(X, y, ids, where)}, names, "image", {"path": str(path)})


def _load_jsonl(path: Path, spec: Mapping[str, Any]) -> Source:
    text_field, label_field = spec.get("text_field", "text"), spec.get("label_field", "label")
    texts: list[str] = []
    labels: list[Any] = []
    ids: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            for key in (text_field, label_field):
                if key not in obj:
                    raise DataError(f"{path}:{lineno}: field '{key}' missing (fields {sorted(obj)})")
            if not isinstance(obj[text_field], str):
                raise DataError(f"{path}:{lineno}: field '{text_field}' is not a string")
            texts.append(obj[text_field])
            labels.append(obj[label_field])
            ids.append(str(obj.get("id", f"{path.stem}:{lineno}")))
    if not texts:
        raise DataError(f"{path}: no rows")
    y, names = _class_names(labels, spec.get("class_names"), str(path))
    return Source({POOL: memory_part(texts, y, np.array(ids), str(path))}, names, "text", {"path": str(path)})


def load_local_labelled(name: str, spec: Mapping[str, Any]) -> Source:
    """A pool from ``spec['path']`` (``.npz`` images or ``.jsonl`` texts, see the module docstring)."""
    path = Path(spec["path"]).expanduser()
    if not path.is_file():
        raise DataError(f"dataset {name}: file {path} not found")
    if path.suffix == ".npz":
        return _load_npz(path, spec)
    if path.suffix == ".jsonl":
        return _load_jsonl(path, spec)
    raise DataError(f"dataset {name}: {path} must end in .npz (images) or .jsonl (texts)")
