"""A selection written as one ``.npz`` artifact (atomically) and read back."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.core.io import atomic_path
from datalign.studies.efficient_alignment.selection.registry import SelectionResult

_PER_ROW_PREFIX = "per_row__"


def _jsonable(obj: Any) -> Any:
    """numpy scalars and arrays in ``info`` as plain JSON numbers and lists."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"selection info holds a {type(obj).__name__}, which is not JSON-serialisable")


def save_selection(
    path: str | os.PathLike, result: SelectionResult, row_ids: Sequence[Any] | None = None
) -> Path:
    """Write ``result`` to an ``.npz``: indices (k,), scores (n,), per-row arrays, info, row ids.

    ``row_ids`` (n,) names the candidate rows (ints or strings); the file then
    also holds ``selected_ids`` (k,), the kept rows' ids in preference order.
    ``info`` is stored as a JSON string, nothing is pickled. A ``row_ids`` of
    the wrong length is a :class:`DataError`. Returns ``path``.
    """
    n = result.scores.shape[0]
    arrays: dict[str, np.ndarray] = {
        "indices": np.asarray(result.indices, dtype=np.int64),
        "scores": np.asarray(result.scores, dtype=np.float64),
        "method": np.array(result.method),
        "info": np.array(json.dumps(result.info, default=_jsonable)),
    }
    for name, values in result.per_row.items():
        arrays[_PER_ROW_PREFIX + name] = np.asarray(values)
    if row_ids is not None:
        ids = np.asarray(row_ids)
        if ids.shape != (n,) or ids.dtype.kind not in "iuU":
            raise DataError(f"selection {path}: row_ids must be {n} ints or strings, got shape "
                            f"{ids.shape} and dtype {ids.dtype}")
        arrays["row_ids"] = ids
        arrays["selected_ids"] = ids[arrays["indices"]]
    target = Path(path)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        # A file object, not a name: np.savez would append ".npz" to the temporary name.
        np.savez(fh, **arrays)
    return target


def load_selection(path: str | os.PathLike) -> tuple[SelectionResult, np.ndarray | None]:
    """Read a file of :func:`save_selection`: (the result, its row ids or None).

    A missing file or one without indices/scores is a :class:`DataError` naming it.
    """
    if not Path(path).is_file():
        raise DataError(f"selection {path}: no such file")
    with np.load(path, allow_pickle=False) as npz:
        missing = [key for key in ("indices", "scores", "method", "info") if key not in npz.files]
        if missing:
            raise DataError(f"selection {path}: missing array(s) {missing}")
        per_row = {key[len(_PER_ROW_PREFIX):]: npz[key] for key in npz.files
                   if key.startswith(_PER_ROW_PREFIX)}
        result = SelectionResult(str(npz["method"]), npz["indices"], npz["scores"], per_row,
                                 json.loads(str(npz["info"])))
        row_ids = npz["row_ids"] if "row_ids" in npz.files else None
    return result, row_ids
