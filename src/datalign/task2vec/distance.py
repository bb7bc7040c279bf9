"""Distances between Task2Vec embeddings.

Both are cosine distances ``1 - <u, v> / (|u| |v|)``; the Task2Vec
"normalized cosine" first divides each embedding element-wise by the sum of
the two, ``u = a / (a + b + eps)``, ``v = b / (a + b + eps)`` with
``eps = 1e-8``, so every coordinate counts on the same scale whatever its
Fisher magnitude. ``eps`` is absolute, as in the authors' code: coordinates
much smaller than 1e-8 in both embeddings are effectively not rescaled.

**Naming trap.** The names do not match the authors' code (``task_similarity.py``
of the Task2Vec reference implementation, which the alignment paper reuses):

- datalign's ``normalized_cosine`` (the default, what the paper reports) is the
  authors' ``task_similarity.cosine``: the cosine distance of the two Fisher
  vectors after the joint rescaling ``a / (a + b + eps)``, ``b / (a + b + eps)``
  (their ``get_scaled_hessian``);
- the authors' own ``task_similarity.normalized_cosine`` is a *different*
  distance, the cosine distance between the two *variances* ``scale / F`` (the
  element-wise inverse Fisher, each divided by its embedding's ``scale``
  vector), with no joint rescaling. datalign does not implement it;
- datalign's ``cosine`` is the plain cosine distance of the raw Fisher vectors
  (no rescaling at all), which the authors' file has under neither name.

Code ported from the authors' ``distance='cosine'`` should therefore use
``kind="normalized_cosine"`` here.
"""

from __future__ import annotations

import numpy as np

from datalign.core.errors import DataError
from datalign.task2vec.config import DISTANCE_KINDS

EPS = 1e-8


def _as_matrix(x: np.ndarray, what: str, nonnegative: bool) -> np.ndarray:
    m = np.asarray(x, dtype=np.float64)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2:
        raise DataError(f"{what}: embeddings must be a vector or a (n, P) matrix, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise DataError(f"{what}: embeddings contain NaN or inf")
    if nonnegative and np.any(m < 0):
        raise DataError(f"{what}: the normalized cosine needs non-negative (Fisher) embeddings, min {m.min():g}")
    return m


def _cosine_from_parts(dot: np.ndarray, n1: np.ndarray, n2: np.ndarray, what: str) -> np.ndarray:
    if np.any(n1 == 0) or np.any(n2 == 0):
        raise DataError(f"{what}: an embedding is all zeros, its cosine distance is undefined")
    return np.clip(1.0 - dot / (n1 * n2), 0.0, 2.0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Plain cosine distance ``1 - <a, b> / (|a| |b|)`` of the raw embeddings (no rescaling).

    Not the authors' ``task_similarity.cosine``: that one is
    :func:`normalized_cosine` (see the module docstring).
    """
    return float(pairwise_distances(a, b, "cosine")[0, 0])


def normalized_cosine(a: np.ndarray, b: np.ndarray, eps: float = EPS) -> float:
    """Task2Vec distance: cosine distance between ``a/(a+b+eps)`` and ``b/(a+b+eps)``.

    This is the authors' ``task_similarity.cosine`` (the paper's distance), not
    their ``task_similarity.normalized_cosine``, which is the cosine distance
    of the inverse Fisher (variances) and is not implemented here (see the
    module docstring).
    """
    return float(pairwise_distances(a, b, "normalized_cosine", eps=eps)[0, 0])


def pairwise_distances(
    A: np.ndarray, B: np.ndarray, kind: str = "normalized_cosine", eps: float = EPS,
    chunk_elements: int = 1 << 22,
) -> np.ndarray:
    """Matrix ``D[i, j] = d(A[i], B[j])`` (float64) for ``kind`` in ``DISTANCE_KINDS``.

    ``A`` is (n, P), ``B`` is (m, P) (a single vector counts as one row). The
    normalized cosine depends on each pair jointly, so it is computed row by
    row over chunks of ``B`` holding at most ``chunk_elements`` numbers.
    """
    if kind not in DISTANCE_KINDS:
        raise DataError(f"unknown distance '{kind}' (known: {', '.join(DISTANCE_KINDS)})")
    nonneg = kind == "normalized_cosine"
    A = _as_matrix(A, "distance", nonneg)
    B = _as_matrix(B, "distance", nonneg)
    if A.shape[1] != B.shape[1]:
        raise DataError(f"distance: embeddings of different lengths {A.shape[1]} and {B.shape[1]}")
    if kind == "cosine":
        na = np.linalg.norm(A, axis=1)
        nb = np.linalg.norm(B, axis=1)
        return _cosine_from_parts(A @ B.T, na[:, None], nb[None, :], "cosine distance")
    out = np.empty((A.shape[0], B.shape[0]))
    step = max(1, chunk_elements // max(1, A.shape[1]))
    for i, a in enumerate(A):
        for s in range(0, B.shape[0], step):
            b = B[s : s + step]
            denom = a[None, :] + b + eps
            u = a[None, :] / denom
            v = b / denom
            out[i, s : s + step] = _cosine_from_parts(
                np.einsum("ij,ij->i", u, v), np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1),
                "normalized cosine distance",
            )
    return out
