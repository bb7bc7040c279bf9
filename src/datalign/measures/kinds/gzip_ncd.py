"""``gzip``: one minus the normalized compression distance, averaged over document pairs (ZIP-FIT).

Normalized compression distance (Cilibrasi & Vitanyi 2005, "Clustering by
compression", eq. 1; the data-selection use is ZIP-FIT, Obbad et al. 2024,
eq. 1), with C(s) the length in bytes of ``gzip.compress(s)`` and xy the
concatenation of the UTF-8 bytes of x and y::

    NCD(x, y) = (C(xy) - min(C(x), C(y))) / max(C(x), C(y))

    alignment(A, B) = mean over document pairs (a, b) in A x B of  1 - NCD(a, b)

Units: none (a ratio of byte counts). Range: NCD is about 0 for identical
documents and about 1 for unrelated ones; a real compressor's overhead lets it
exceed 1 slightly, so the alignment lies in about [-0.1, 1], higher meaning
more aligned (more of one document is predictable from the other).

Cost: one compression per document (prepare) and one per compared pair. Each
document is cut to its first ``max_chars`` characters (gzip's window is 32 KiB:
what lies further apart is never matched anyway), each set keeps a seeded
sample of ``max_docs`` documents, and at most ``max_pairs`` pairs of the
A x B grid are compressed (a seeded sample without replacement; all of them
when the grid is smaller). The alignment is the mean over the compressed pairs;
with document weights (a bootstrap resample) each pair counts w_a * w_b.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import numpy as np

from datalign.measures.base import Comparison, Measure, Representation, keep_documents, weights
from datalign.measures.registry import register_measure
from datalign.task2vec.options import Options, option


@dataclass(frozen=True)
class GzipOptions(Options):
    """The ``gzip`` measure's keys (``measures.gzip``)."""

    max_docs: int = option(60, "documents kept per set (a seeded sample; 0: all)", minimum=0)
    max_chars: int = option(1500, "characters kept from the start of each document", minimum=1)
    max_pairs: int = option(600, "document pairs compressed per set pair (a seeded sample of the grid)",
                            minimum=1)
    level: int = option(9, "gzip compression level (9, as ZIP-FIT's gzip.compress default)",
                        minimum=1, maximum=9)
    seed: int = option(0, "seed of the document and pair samples", minimum=0)


def compressed_length(data: bytes, level: int = 9) -> int:
    """C(s): bytes of ``gzip.compress(s)`` (header included; mtime fixed at 0 for reproducibility)."""
    return len(gzip.compress(data, compresslevel=level, mtime=0))


@dataclass
class _Docs:
    raw: list[bytes]
    lengths: np.ndarray  # C(x) per document

    def __len__(self) -> int:
        return len(self.raw)


class _PairSample(Comparison):
    def __init__(self, rows: np.ndarray, cols: np.ndarray, score: np.ndarray, n_c: int, n_t: int) -> None:
        self.rows, self.cols, self.score = rows, cols, score
        self.n_candidate, self.n_target = n_c, n_t

    def value(self, w_candidate=None, w_target=None) -> float:
        wc = weights(w_candidate, self.n_candidate)
        wt = weights(w_target, self.n_target)
        w = wc[self.rows] * wt[self.cols]
        total = w.sum()
        return float(np.dot(w, self.score) / total) if total > 0 else float("nan")

    def values(self, w_candidate: np.ndarray, w_target: np.ndarray) -> np.ndarray:
        w = np.asarray(w_candidate, float)[:, self.rows] * np.asarray(w_target, float)[:, self.cols]
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (w @ self.score) / np.where(total > 0, total, 1.0), np.nan)


@register_measure("gzip", options=GzipOptions)
class GzipAlignment(Measure):
    """Mean of 1 - NCD over document pairs, gzip as the compressor (ZIP-FIT); about [-0.1, 1]."""

    def _prepare(self, docs: list[str]) -> tuple[_Docs, int]:
        o = self.options
        kept = keep_documents(docs, o.max_docs, o.seed)
        raw = [d[: o.max_chars].encode("utf-8") for d in kept]
        lengths = np.array([compressed_length(r, o.level) for r in raw], dtype=float)
        return _Docs(raw, lengths), len(raw)

    def _compare(self, candidate: Representation, target: Representation) -> Comparison:
        o = self.options
        a, b = candidate.data, target.data
        n_c, n_t = len(a), len(b)
        grid = n_c * n_t
        if grid <= o.max_pairs:
            flat = np.arange(grid)
        else:
            flat = np.sort(np.random.default_rng(o.seed).choice(grid, size=o.max_pairs, replace=False))
        rows, cols = np.divmod(flat, n_t)
        score = np.empty(flat.size)
        for k, (i, j) in enumerate(zip(rows, cols, strict=True)):
            cx, cy = a.lengths[i], b.lengths[j]
            cxy = compressed_length(a.raw[i] + b.raw[j], o.level)
            score[k] = 1.0 - (cxy - min(cx, cy)) / max(cx, cy)
        return _PairSample(rows, cols, score, n_c, n_t)
