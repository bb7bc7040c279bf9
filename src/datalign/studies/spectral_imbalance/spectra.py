"""Per-class covariance spectra of encoder features and their summary metrics.

For each class c of a labelled feature matrix this module estimates the class
covariance Sigma_c, returns its eigenvalues in descending order, and summarises
the spectrum by its trace, top-k eigenvalue share, effective rank, participation
ratio and fitted power-law decay exponent. Across the classes of one encoder the
spread of each metric is the encoder's *spectral imbalance* (Kaushik et al.,
"Balanced Data, Imbalanced Spectra", ICML 2024; the paper's exact statistic was
not available, the definitions used here are given in ``spectral_imbalance``).

Covariance estimator (``estimator`` / ``shrink_when``):

- The sample covariance is the maximum-likelihood one, S = Xc' Xc / n (Xc the
  centred class rows, divisor n as in sklearn's ``empirical_covariance``), so
  that it is the same S the shrinkage estimators start from.
- When a class has no more samples than dimensions (n_c <= d), S has rank at
  most n_c - 1 < d: its trailing eigenvalues are exactly zero and the effective
  rank, participation ratio and power-law fit describe the sample size rather
  than the encoder. The default then shrinks towards a scaled identity,
  Sigma = (1 - s) S + s (tr S / d) I, with the Ledoit-Wolf intensity s
  (Ledoit & Wolf 2004, J. Multivariate Anal. 88:365-411; computed by
  ``sklearn.covariance.ledoit_wolf_shrinkage``) or, with ``estimator="oas"``,
  the Oracle Approximating Shrinkage intensity (Chen et al. 2010, IEEE TSP
  58:5016, eq. 23 as implemented by ``sklearn.covariance.OAS``).
- The decision is taken once per feature matrix from its smallest class
  (``shrink_when="underdetermined"``: shrink every class when min_c n_c <= d),
  so all classes of one encoder share one estimator and stay comparable.
  ``shrink_when="always"`` shrinks regardless (the Ledoit-Wolf intensity tends
  to 0 as n/d grows); ``estimator="none"`` never shrinks.

Eigenvalues are computed without forming the d x d matrix when n < d: the
non-zero eigenvalues of Xc' Xc / n equal those of the n x n Gram matrix
Xc Xc' / n, and shrinkage maps every eigenvalue l to (1 - s) l + s tr(S)/d.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as _sps
from sklearn.covariance import OAS, ledoit_wolf_shrinkage

from datalign.core.errors import ConfigError, DataError

ESTIMATORS = ("ledoit_wolf", "oas", "none")
SHRINK_WHEN = ("underdetermined", "always")
METRICS = ("trace", "top_k_share", "effective_rank", "participation_ratio", "power_law_alpha")

# Eigenvalues of a PSD matrix that come out negative are rounding error; anything
# below this fraction of the largest eigenvalue (times the dimension) is set to 0.
_ROUNDING = 1e-12


def python_scalar(value: Any) -> Any:
    """A numpy scalar (e.g. a class label np.int64) as the Python scalar it holds; others unchanged.

    Keeps class labels hashable-equal across tables and summaries JSON-ready.
    """
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class ClassCovariance:
    """Mean and (possibly shrunk) covariance of one class, kept in factored form.

    Sigma = (1 - shrinkage) * centred' centred / n_samples + shrinkage * target * I,
    with target = tr(S) / d. Storing the centred rows (n x d) instead of the
    d x d matrix keeps memory at the size of the features and makes
    eigenvalues and projections A Sigma A' cost O(n^2 d) / O(n k d).
    """

    label: Any
    mean: np.ndarray  # (d,)
    centred: np.ndarray  # (n, d): class rows minus ``mean``
    shrinkage: float  # intensity s in [0, 1]; 0 = sample covariance
    estimator: str  # which estimator produced ``shrinkage``

    @property
    def n_samples(self) -> int:
        return int(self.centred.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centred.shape[1])

    @property
    def target(self) -> float:
        """tr(S) / d, the scale of the identity the estimate is shrunk towards."""
        return float(np.einsum("ij,ij->", self.centred, self.centred)) / (self.n_samples * self.dim)

    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of Sigma, shape (d,), descending, >= 0 (units: feature units squared)."""
        n, d = self.centred.shape
        # Use whichever of the Gram (n x n) and the scatter (d x d) matrix is smaller;
        # both share their non-zero eigenvalues.
        small = self.centred @ self.centred.T if n < d else self.centred.T @ self.centred
        vals = np.linalg.eigvalsh(small / n)[::-1]
        vals = np.where(vals < _ROUNDING * max(d, n) * max(vals[0], 0.0), 0.0, vals)
        sample = np.zeros(d)
        sample[: vals.size] = vals[:d]
        return (1.0 - self.shrinkage) * sample + self.shrinkage * self.target

    def project(self, weights: ArrayLike) -> np.ndarray:
        """A Sigma A' for A of shape (k, d); returns (k, k).

        Used to get the covariance of linear scores without the d x d matrix.
        Raises DataError if A has the wrong width.
        """
        a = np.atleast_2d(np.asarray(weights, dtype=float))
        if a.shape[1] != self.dim:
            raise DataError(f"ClassCovariance.project: weights have {a.shape[1]} columns, class {self.label!r} has d={self.dim}")
        z = self.centred @ a.T  # (n, k)
        sample = z.T @ z / self.n_samples
        return (1.0 - self.shrinkage) * sample + self.shrinkage * self.target * (a @ a.T)

    def matrix(self) -> np.ndarray:
        """The d x d covariance estimate (for tests and small d; memory d^2 floats)."""
        sigma = (1.0 - self.shrinkage) * (self.centred.T @ self.centred) / self.n_samples
        sigma[np.diag_indices_from(sigma)] += self.shrinkage * self.target
        return sigma


def _check_features(features: ArrayLike, labels: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, dtype=float)
    y = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{what}: features must be a non-empty (n, d) array, got shape {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise DataError(f"{what}: labels must be 1-D with {x.shape[0]} entries, got shape {y.shape}")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise DataError(f"{what}: features hold {bad} non-finite value(s)")
    return x, y


def _check_estimator(estimator: str, shrink_when: str) -> None:
    if estimator not in ESTIMATORS:
        raise ConfigError(f"covariance estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if shrink_when not in SHRINK_WHEN:
        raise ConfigError(f"shrink_when must be one of {SHRINK_WHEN}, got {shrink_when!r}")


def _intensity(rows: np.ndarray, estimator: str) -> float:
    if estimator == "ledoit_wolf":
        return float(ledoit_wolf_shrinkage(rows))
    # store_precision=False skips the d x d pseudo-inverse sklearn would otherwise compute.
    return float(OAS(store_precision=False).fit(rows).shrinkage_)


def class_covariances(
    features: ArrayLike,
    labels: ArrayLike,
    estimator: str = "ledoit_wolf",
    shrink_when: str = "underdetermined",
) -> list[ClassCovariance]:
    """Per-class mean and covariance estimate, one ``ClassCovariance`` per class, sorted by label.

    ``features`` (n, d), ``labels`` (n,). The estimator rule is in the module
    docstring: shrink every class (Ledoit-Wolf, or OAS) when the smallest class
    has n_c <= d, or always with ``shrink_when="always"``; ``estimator="none"``
    keeps the sample (maximum-likelihood) covariance. Raises DataError for bad
    shapes, non-finite features or a class with fewer than 2 samples;
    ConfigError for an unknown estimator or rule.
    """
    _check_estimator(estimator, shrink_when)
    x, y = _check_features(features, labels, "class_covariances")
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        raise DataError(f"class_covariances: class {classes[counts.argmin()]!r} has {counts.min()} sample(s), needs >= 2")
    d = x.shape[1]
    shrink = estimator != "none" and (shrink_when == "always" or counts.min() <= d)
    out = []
    for c in classes:
        rows = x[y == c]
        mean = rows.mean(axis=0)
        s = _intensity(rows, estimator) if shrink else 0.0
        out.append(ClassCovariance(label=python_scalar(c), mean=mean,
                                   centred=rows - mean, shrinkage=s,
                                   estimator=estimator if shrink else "none"))
    return out


def _spectrum(eigenvalues: ArrayLike, what: str) -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=float)
    if lam.ndim != 1 or lam.size == 0:
        raise DataError(f"{what}: eigenvalues must be a non-empty 1-D array, got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise DataError(f"{what}: eigenvalues hold non-finite values")
    if lam.min() < 0:
        raise DataError(f"{what}: eigenvalues must be >= 0 (a covariance spectrum), min is {lam.min():g}")
    if lam.sum() <= 0:
        raise DataError(f"{what}: all {lam.size} eigenvalues are zero")
    return lam


def trace(eigenvalues: ArrayLike) -> float:
    """tr(Sigma) = sum_i l_i: total variance (feature units squared). Raises DataError on a bad spectrum."""
    return float(_spectrum(eigenvalues, "trace").sum())


def top_k_share(eigenvalues: ArrayLike, k: int) -> float:
    """(l_1 + ... + l_k) / sum_i l_i for eigenvalues ``(d,)``; a fraction in (0, 1].

    The share of variance in the k leading directions (a PCA explained-variance
    ratio). ConfigError if k < 1 or k > d; DataError on a bad spectrum.
    """
    lam = _spectrum(eigenvalues, "top_k_share")
    if not 1 <= k <= lam.size:
        raise ConfigError(f"top_k_share: k must lie in [1, d={lam.size}], got {k}")
    return float(np.sort(lam)[::-1][:k].sum() / lam.sum())


def effective_rank(eigenvalues: ArrayLike) -> float:
    """exp(H(p)), p_i = l_i / sum_j l_j, H the Shannon entropy in nats (0 log 0 = 0).

    Roy & Vetterli 2007, "The effective rank: a measure of effective
    dimensionality" (EUSIPCO), Definition 1, applied to the singular values of
    the covariance, which are its eigenvalues. Ranges from 1 (one non-zero
    eigenvalue) to d (flat spectrum). DataError on a bad spectrum.
    """
    lam = _spectrum(eigenvalues, "effective_rank")
    # scipy normalises lam to sum 1 and drops zero terms.
    return float(math.exp(_sps.entropy(lam)))


def participation_ratio(eigenvalues: ArrayLike) -> float:
    """(sum_i l_i)^2 / sum_i l_i^2, between 1 and d.

    The participation ratio of a covariance spectrum (e.g. Gao et al. 2017,
    "A theory of multineuronal dimensionality...", bioRxiv 214262, the PR
    definition): the effective rank under the order-2 Renyi entropy, so it
    weights the leading eigenvalues more than ``effective_rank`` does.
    DataError on a bad spectrum.
    """
    lam = _spectrum(eigenvalues, "participation_ratio")
    # Scale by the largest value first so the squares neither overflow nor underflow.
    q = lam / lam.max()
    return float(q.sum() ** 2 / np.dot(q, q))


def power_law_fit(
    eigenvalues: ArrayLike,
    first: int = 1,
    last: int | None = None,
    rel_floor: float = 1e-10,
) -> dict[str, float]:
    """Least-squares fit log l_i = log C - alpha log i over indices first..last (1-based).

    Model l_i ~ C i^(-alpha), the eigenspectrum power law of Stringer et al.
    2019 (Nature 571:361) and of alpha-ReQ (Agrawal et al., NeurIPS 2022),
    fitted by ordinary least squares of log l_i on log i (scipy ``linregress``).
    Eigenvalues are sorted descending; indices in [first, last] whose
    eigenvalue is below ``rel_floor`` * l_1 (numerical zeros) are ignored.
    ``last`` None means d. Returns alpha (larger = faster decay), log_c, r2 of
    the log-log fit, and the number of points used.

    ConfigError for a bad range or floor; DataError if fewer than 3 points
    remain (no line can be checked against 2 points).
    """
    lam = np.sort(_spectrum(eigenvalues, "power_law_fit"))[::-1]
    d = lam.size
    last = d if last is None else last
    if not 1 <= first < last <= d:
        raise ConfigError(f"power_law_fit: need 1 <= first < last <= d={d}, got first={first}, last={last}")
    if not 0.0 <= rel_floor < 1.0:
        raise ConfigError(f"power_law_fit: rel_floor must lie in [0, 1), got {rel_floor}")
    idx = np.arange(first, last + 1)
    vals = lam[first - 1:last]
    keep = vals > rel_floor * lam[0]
    if keep.sum() < 3:
        raise DataError(f"power_law_fit: only {int(keep.sum())} eigenvalue(s) above {rel_floor:g} * l_1 in indices {first}..{last}, need >= 3")
    fit = _sps.linregress(np.log(idx[keep]), np.log(vals[keep]))
    return {"alpha": float(-fit.slope), "log_c": float(fit.intercept),
            "r2": float(fit.rvalue ** 2), "n_points": int(keep.sum())}


def spectral_metrics(
    eigenvalues: ArrayLike,
    k: int = 10,
    alpha_first: int = 1,
    alpha_last: int | None = None,
    rel_floor: float = 1e-10,
) -> dict[str, float]:
    """All metrics of one spectrum: trace, top_k_share, effective_rank, participation_ratio,
    power_law_alpha (and its fit's alpha_r2, alpha_points). See the single-metric functions."""
    lam = _spectrum(eigenvalues, "spectral_metrics")
    fit = power_law_fit(lam, alpha_first, alpha_last, rel_floor)
    return {
        "trace": trace(lam),
        "top_k_share": top_k_share(lam, k),
        "effective_rank": effective_rank(lam),
        "participation_ratio": participation_ratio(lam),
        "power_law_alpha": fit["alpha"],
        "alpha_r2": fit["r2"],
        "alpha_points": fit["n_points"],
    }


@dataclass(frozen=True)
class ClassSpectra:
    """Result of ``class_spectra``: eigenvalues per class and the per-class metric table."""

    eigenvalues: dict[Any, np.ndarray]  # class -> (d,) descending
    table: pd.DataFrame  # one row per class


def class_spectra(
    features: ArrayLike,
    labels: ArrayLike,
    estimator: str = "ledoit_wolf",
    shrink_when: str = "underdetermined",
    k: int = 10,
    alpha_first: int = 1,
    alpha_last: int | None = None,
    rel_floor: float = 1e-10,
) -> ClassSpectra:
    """Per-class covariance eigenvalues and spectral metrics of ``features`` (n, d) with ``labels`` (n,).

    Table columns: class, n_samples, dim, estimator, shrinkage, trace,
    top_k_share, k, effective_rank, participation_ratio, power_law_alpha,
    alpha_r2, alpha_points, alpha_last. The power-law fit runs over indices
    ``alpha_first``..``alpha_last``; ``alpha_last`` None means min(d, n_c - 1),
    the rank of the sample covariance: beyond it a shrunk spectrum is the flat
    shrinkage floor, which says nothing about decay. Errors as in
    ``class_covariances`` and ``power_law_fit``.
    """
    covs = class_covariances(features, labels, estimator, shrink_when)
    spectra: dict[Any, np.ndarray] = {}
    rows = []
    for cov in covs:
        lam = cov.eigenvalues()
        last = min(cov.dim, cov.n_samples - 1) if alpha_last is None else alpha_last
        spectra[cov.label] = lam
        rows.append({"class": cov.label, "n_samples": cov.n_samples, "dim": cov.dim,
                     "estimator": cov.estimator, "shrinkage": cov.shrinkage,
                     **spectral_metrics(lam, k, alpha_first, last, rel_floor),
                     "k": k, "alpha_last": last})
    return ClassSpectra(eigenvalues=spectra, table=pd.DataFrame(rows))


def imbalance_scores(values: ArrayLike) -> dict[str, float]:
    """Spread of one metric over classes, values shape (K,), K >= 2.

    - ``mean``, ``std`` (population, ddof = 0), ``range`` = max - min;
    - ``cv`` = std / mean, the coefficient of variation: scale-free, so
      encoders of different feature scales compare;
    - ``max_min_ratio`` = max / min.
    ``cv`` and ``max_min_ratio`` are NaN when some value is <= 0 (a ratio of
    signed quantities has no meaning as a spread); every metric of this module
    except a degenerate ``power_law_alpha`` is positive. DataError for K < 2 or
    non-finite values.
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size < 2:
        raise DataError(f"imbalance_scores: needs values for >= 2 classes, got {v.size}")
    if not np.all(np.isfinite(v)):
        raise DataError("imbalance_scores: values hold non-finite entries")
    positive = bool(v.min() > 0)
    mean, std = float(v.mean()), float(v.std())
    return {
        "mean": mean,
        "std": std,
        "range": float(v.max() - v.min()),
        "cv": std / mean if positive else math.nan,
        "max_min_ratio": float(v.max() / v.min()) if positive else math.nan,
    }


def spectral_imbalance(table: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Spectral-imbalance scores of one encoder: one row per metric of a ``class_spectra`` table.

    Columns: metric, mean, std, range, cv, max_min_ratio (see
    ``imbalance_scores``), class_max, class_min (the classes holding the
    extremes), n_classes. DataError if a metric column is missing.
    """
    if "class" not in table.columns:
        raise DataError("spectral_imbalance: table has no 'class' column")
    rows = []
    for m in metrics:
        if m not in table.columns:
            raise DataError(f"spectral_imbalance: metric column {m!r} missing; has {list(table.columns)}")
        v = table[m].to_numpy(dtype=float)
        rows.append({"metric": m, **imbalance_scores(v),
                     "class_max": python_scalar(table["class"].iloc[int(np.argmax(v))]),
                     "class_min": python_scalar(table["class"].iloc[int(np.argmin(v))]),
                     "n_classes": int(v.size)})
    return pd.DataFrame(rows)
