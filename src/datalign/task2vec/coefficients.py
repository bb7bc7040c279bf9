"""Diversity, cross-diversity and alignment of datasets from their Task2Vec embeddings.

With ``d`` a distance between embeddings (``datalign.task2vec.distance``) and
each dataset represented by the embeddings of its batches (PAPERS.md part 1):

- ``diversity(D) = mean_{i<j} d(e_i, e_j)`` over pairs of distinct batches of D;
- ``cross_diversity(D1, D2) = mean_{i, j} d(e_i, f_j)`` over all (batch of D1, batch of D2);
- ``alignment(D1, D2) = 1 - cross_diversity(D1, D2)``.

Each comes with the standard deviation of the pairwise distances it averages
(what the authors reported as a "95% CI") and, separately, a real bootstrap
percentile confidence interval obtained by resampling *batches* with
replacement (pairs of a batch with a copy of itself are never formed for
diversity, so resampling does not inject zero distances).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from datalign.core.errors import DataError
from datalign.task2vec.distance import pairwise_distances

_CHUNK = 64  # bootstrap resamples evaluated at once (bounds memory to CHUNK * n^2 numbers)


@dataclass(frozen=True)
class Coefficient:
    """A coefficient with its spread and bootstrap confidence interval.

    ``std`` is the (population, ddof=0) standard deviation of the pairwise
    distances behind ``value``; ``ci_low``/``ci_high`` the bootstrap percentile
    interval at ``confidence`` from ``n_boot`` resamples (NaN when
    ``n_boot == 0``); ``n_pairs`` the number of pairs averaged.
    """

    value: float
    std: float
    ci_low: float
    ci_high: float
    n_pairs: int
    n_boot: int
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)


def _check(E: np.ndarray, what: str, min_rows: int) -> np.ndarray:
    E = np.asarray(E)
    if E.ndim != 2 or E.shape[0] < min_rows:
        raise DataError(f"{what}: need a (batches, P) array with >= {min_rows} batches, got shape {E.shape}")
    return E


def _interval(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise DataError(f"confidence must be in (0, 1), got {confidence}")
    if stats.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(stats, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def diversity_from_distances(
    D: np.ndarray, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Coefficient:
    """Diversity from a symmetric (n, n) distance matrix of one dataset's batches.

    ``value = mean_{i<j} D[i, j]``. Bootstrap: draw n batch indices with
    replacement, average ``D`` over the pairs of draws that are different
    batches; resamples with a single distinct batch (no pair) are dropped and
    not counted in ``n_boot``.
    """
    n = D.shape[0]
    if n < 2:
        raise DataError(f"diversity needs >= 2 batches, got {n}")
    iu = np.triu_indices(n, k=1)
    pairs = D[iu]
    rng = np.random.default_rng(seed)
    stats: list[np.ndarray] = []
    for start in range(0, bootstrap, _CHUNK):
        idx = rng.integers(0, n, size=(min(_CHUNK, bootstrap - start), n))
        sub = D[idx[:, :, None], idx[:, None, :]]
        valid = idx[:, :, None] != idx[:, None, :]
        count = valid.sum(axis=(1, 2))
        total = np.where(valid, sub, 0.0).sum(axis=(1, 2))
        stats.append(total[count > 0] / count[count > 0])
    boot = np.concatenate(stats) if stats else np.empty(0)
    low, high = _interval(boot, confidence)
    return Coefficient(float(pairs.mean()), float(pairs.std()), low, high, int(pairs.size), int(boot.size), confidence)


def cross_diversity_from_distances(
    D: np.ndarray, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Coefficient:
    """Cross-diversity from an (n1, n2) distance matrix between two datasets' batches.

    ``value = mean_{i,j} D[i, j]``. Bootstrap: rows and columns (the batches of
    each dataset) are resampled with replacement, independently.
    """
    n1, n2 = D.shape
    if n1 < 1 or n2 < 1:
        raise DataError(f"cross-diversity needs >= 1 batch per dataset, got {n1} and {n2}")
    rng = np.random.default_rng(seed)
    stats: list[np.ndarray] = []
    for start in range(0, bootstrap, _CHUNK):
        m = min(_CHUNK, bootstrap - start)
        rows = rng.integers(0, n1, size=(m, n1))
        cols = rng.integers(0, n2, size=(m, n2))
        stats.append(D[rows[:, :, None], cols[:, None, :]].mean(axis=(1, 2)))
    boot = np.concatenate(stats) if stats else np.empty(0)
    low, high = _interval(boot, confidence)
    return Coefficient(float(D.mean()), float(D.std()), low, high, int(D.size), int(boot.size), confidence)


def diversity(
    E: np.ndarray, kind: str = "normalized_cosine", bootstrap: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> Coefficient:
    """Task2Vec diversity of a dataset: mean distance over pairs of distinct batches.

    ``E`` is (batches, P); see :func:`diversity_from_distances` for the interval.
    """
    E = _check(E, "diversity", 2)
    return diversity_from_distances(pairwise_distances(E, E, kind), bootstrap, confidence, seed)


def cross_diversity(
    E1: np.ndarray, E2: np.ndarray, kind: str = "normalized_cosine", bootstrap: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> Coefficient:
    """Cross-diversity of two datasets: mean distance over all (batch of D1, batch of D2) pairs."""
    E1 = _check(E1, "cross-diversity (first dataset)", 1)
    E2 = _check(E2, "cross-diversity (second dataset)", 1)
    return cross_diversity_from_distances(pairwise_distances(E1, E2, kind), bootstrap, confidence, seed)


def one_minus(c: Coefficient) -> Coefficient:
    """``1 - c``: the value and interval mirrored, the spread unchanged."""
    return Coefficient(1.0 - c.value, c.std, 1.0 - c.ci_high, 1.0 - c.ci_low, c.n_pairs, c.n_boot, c.confidence)


def alignment(
    E1: np.ndarray, E2: np.ndarray, kind: str = "normalized_cosine", bootstrap: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> Coefficient:
    """Alignment of two datasets: ``1 - cross_diversity(E1, E2)``."""
    return one_minus(cross_diversity(E1, E2, kind, bootstrap, confidence, seed))


def alignment_matrix(
    embeddings: dict[str, np.ndarray],
    rows: list[str],
    cols: list[str],
    kind: str = "normalized_cosine",
    bootstrap: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Alignment of every ``rows`` dataset with every ``cols`` dataset, in long format.

    Columns: row, col, alignment, std, ci_low, ci_high, n_pairs, n_boot, self.
    A dataset against itself (same name) is ``1 - diversity``: pairing each of
    its batches with itself would add zero distances and inflate the value.
    ``bootstrap`` resamples per cell give its interval (default 0: no
    resampling, ``ci_low``/``ci_high`` NaN; the workflow passes its
    ``alignment.bootstrap``, e.g. 1000); the values do not depend on it. Each
    cell's bootstrap has its own seed derived from ``seed`` and the cell. For
    the values as a rows x cols table use :func:`alignment_square` (or
    :func:`to_square` on this table).
    """
    missing = [name for name in dict.fromkeys(list(rows) + list(cols)) if name not in embeddings]
    if missing:
        raise DataError(f"alignment matrix: no embeddings for {', '.join(missing)}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise DataError(f"alignment matrix: bootstrap must be a number of resamples >= 0, got {bootstrap!r}")
    records = []
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            cell_seed = int(np.random.SeedSequence([seed, i, j]).generate_state(1)[0])
            if r == c:
                coef = one_minus(diversity(embeddings[r], kind, bootstrap, confidence, cell_seed))
            else:
                coef = alignment(embeddings[r], embeddings[c], kind, bootstrap, confidence, cell_seed)
            records.append({
                "row": r, "col": c, "alignment": coef.value, "std": coef.std,
                "ci_low": coef.ci_low, "ci_high": coef.ci_high,
                "n_pairs": coef.n_pairs, "n_boot": coef.n_boot, "self": r == c,
            })
    return pd.DataFrame.from_records(
        records,
        columns=["row", "col", "alignment", "std", "ci_low", "ci_high", "n_pairs", "n_boot", "self"],
    )


def to_square(
    table: pd.DataFrame, rows: list[str] | None = None, cols: list[str] | None = None,
    values: str = "alignment",
) -> pd.DataFrame:
    """The long table of :func:`alignment_matrix` as a rows x cols table of ``values``.

    Index ``row`` (in the order of ``rows``, default: first appearance), columns
    ``col`` (likewise); ``values`` may be any numeric column (``ci_low``, ...).
    """
    rows = list(dict.fromkeys(table["row"])) if rows is None else list(rows)
    cols = list(dict.fromkeys(table["col"])) if cols is None else list(cols)
    return table.pivot(index="row", columns="col", values=values).loc[rows, cols]


def alignment_square(
    embeddings: dict[str, np.ndarray],
    rows: list[str] | None = None,
    cols: list[str] | None = None,
    kind: str = "normalized_cosine",
) -> pd.DataFrame:
    """Alignment values as a rows x cols table (index ``row``, columns ``col``), no bootstrap.

    ``rows`` and ``cols`` default to every dataset of ``embeddings`` (in its
    order). The values are exactly those of :func:`alignment_matrix` (the
    diagonal is ``1 - diversity``); for their intervals use that function
    with ``bootstrap > 0``.
    """
    names = list(embeddings)
    rows = names if rows is None else list(rows)
    cols = names if cols is None else list(cols)
    return to_square(alignment_matrix(embeddings, rows, cols, kind=kind, bootstrap=0), rows, cols)
