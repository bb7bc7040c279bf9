"""The one file format of Task2Vec embeddings: an ``.npz`` and its JSON sidecar.

What the workflow writes per (dataset, split) and what the CLI, the
benchmarks and the tests read, all through these functions:

- ``<name>.npz``: one array, ``embeddings`` (float32, one row per batch),
  written with ``numpy.savez`` (uncompressed, nothing else in it);
- ``<name>.json`` (:func:`sidecar_path`): the result's ``metadata`` (estimator,
  config, seeds, shapes, per-batch diagnostics), then the caller's ``extra``
  keys (the workflow adds ``set``, ``num_batches``, ``tokens_per_batch`` and
  ``provenance``), then ``parameter_names``, ``parameter_sizes`` and
  ``seconds_per_batch``, which make the pair a complete
  :class:`~datalign.task2vec.embed.Task2VecResult` (:func:`load_result`).
  Indented JSON, keys in that order (:func:`datalign.core.io.write_json`).

Both files are written atomically (a temporary sibling renamed into place).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.core.io import atomic_path, write_json
from datalign.task2vec.embed import Task2VecResult

RESULT_KEYS = ("parameter_names", "parameter_sizes", "seconds_per_batch")


def sidecar_path(npz_path: str | os.PathLike) -> Path:
    """The JSON sidecar of an embedding file: same name, ``.json``."""
    return Path(npz_path).with_suffix(".json")


def save_embeddings(
    result: Task2VecResult,
    npz_path: str | os.PathLike,
    json_path: str | os.PathLike | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write ``result`` as ``npz_path`` (the embeddings) and ``json_path`` (the rest).

    ``json_path`` defaults to :func:`sidecar_path`. ``extra`` keys are written
    after the result's metadata (replacing a metadata key of the same name in
    place); they may not use the names in :data:`RESULT_KEYS`.
    """
    clash = sorted(set(extra or {}) & set(RESULT_KEYS))
    if clash:
        raise ValueError(f"save_embeddings: extra keys {clash} are written from the result itself")
    with atomic_path(npz_path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, embeddings=result.embeddings)
    meta = dict(result.metadata)
    meta.update(extra or {})
    meta.update({
        "parameter_names": list(result.parameter_names),
        "parameter_sizes": [int(s) for s in result.parameter_sizes],
        "seconds_per_batch": [float(s) for s in result.seconds_per_batch],
    })
    write_json(sidecar_path(npz_path) if json_path is None else json_path, meta)


def load_embeddings(npz_path: str | os.PathLike) -> np.ndarray:
    """The ``embeddings`` array (n_batches, P) of an embedding file; :class:`DataError` if it has none."""
    p = Path(npz_path)
    if not p.exists():
        raise DataError(f"embedding file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "embeddings" not in z.files:
                raise DataError(f"{p}: no 'embeddings' array (has {', '.join(z.files)})")
            return z["embeddings"]
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{p}: not an embedding .npz file ({err})") from None


def load_result(npz_path: str | os.PathLike, json_path: str | os.PathLike | None = None) -> Task2VecResult:
    """Read back what :func:`save_embeddings` wrote (``json_path`` defaults to :func:`sidecar_path`).

    The returned ``metadata`` is the sidecar without :data:`RESULT_KEYS`, so it
    includes the ``extra`` keys the writer added.
    """
    embeddings = load_embeddings(npz_path)
    jp = sidecar_path(npz_path) if json_path is None else Path(json_path)
    if not jp.exists():
        raise DataError(f"embedding metadata not found: {jp}")
    try:
        meta = json.loads(jp.read_text())
    except ValueError as err:
        raise DataError(f"{jp}: not JSON ({err})") from None
    missing = [k for k in RESULT_KEYS if k not in meta] if isinstance(meta, dict) else list(RESULT_KEYS)
    if missing:
        raise DataError(f"{jp}: not a Task2Vec embedding sidecar (no {', '.join(missing)})")
    names, sizes, seconds = (meta.pop(k) for k in RESULT_KEYS)
    if sum(sizes) != embeddings.shape[-1]:
        raise DataError(f"{jp}: parameter sizes sum to {sum(sizes)}, the embeddings have {embeddings.shape[-1]} columns")
    return Task2VecResult(
        embeddings=embeddings,
        parameter_names=[str(n) for n in names],
        parameter_sizes=[int(s) for s in sizes],
        seconds_per_batch=[float(s) for s in seconds],
        metadata=meta,
    )
