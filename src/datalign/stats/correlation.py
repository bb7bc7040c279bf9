"""Correlation statistics between alignment and loss.

Pearson r with its t-test, Spearman rho, a bootstrap percentile interval for r
over (x, y) pairs, the analytic Fisher-z interval for comparison, and the
ordinary least-squares line with its standard errors and confidence band. The
sums are computed with numpy on centred data; scipy supplies only the t and
normal distribution functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _sps

from datalign.core.errors import ConfigError, DataError

# Bootstrap resamples are processed in chunks so that a large n never
# materialises a (bootstrap x n) index matrix bigger than this many entries.
_MAX_CHUNK_ENTRIES = 4_000_000


def _as_pair(x: ArrayLike, y: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert two paired samples to 1-D float arrays."""
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise DataError(f"{what}: x and y differ in length ({xa.size} vs {ya.size})")
    n = xa.size
    bad = int(np.count_nonzero(~np.isfinite(xa)) + np.count_nonzero(~np.isfinite(ya)))
    if bad:
        raise DataError(f"{what}: {bad} non-finite value(s) among n={n} (x, y) pairs")
    if n < 3:
        raise DataError(f"{what}: needs at least 3 (x, y) pairs, got n={n}")
    # max == min is exact, unlike a variance that may come out as 1e-33 from rounding.
    if xa.max() == xa.min():
        raise DataError(f"{what}: x is constant ({xa[0]:g}) over all n={n} points")
    if ya.max() == ya.min():
        raise DataError(f"{what}: y is constant ({ya[0]:g}) over all n={n} points")
    return xa, ya


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _pearson(xa: np.ndarray, ya: np.ndarray) -> float:
    """r = S_xy / sqrt(S_xx S_yy) on centred data, clipped to [-1, 1] against rounding."""
    dx = xa - xa.mean()
    dy = ya - ya.mean()
    r = float(np.dot(dx, dy) / math.sqrt(np.dot(dx, dx) * np.dot(dy, dy)))
    return min(1.0, max(-1.0, r))


def _t_test_p(r: float, n: int) -> float:
    """Two-sided p of H0: rho = 0, from t = r sqrt((n-2) / (1-r^2)) with n-2 degrees of freedom."""
    one_minus = (1.0 - r) * (1.0 + r)
    if one_minus <= 0.0:
        return 0.0
    t = abs(r) * math.sqrt((n - 2) / one_minus)
    return float(min(1.0, 2.0 * _sps.t.sf(t, n - 2)))


def average_ranks(a: ArrayLike) -> np.ndarray:
    """Ranks 1..n of ``a``, ties sharing the mean of the ranks they span.

    A value that occurs c times and is preceded by k smaller values gets rank
    k + (c + 1) / 2.
    """
    values = np.asarray(a, dtype=float).ravel()
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def _bootstrap_r(
    xa: np.ndarray, ya: np.ndarray, bootstrap: int, seed: int
) -> tuple[np.ndarray, int]:
    """Pearson r on ``bootstrap`` resamples of the (x, y) pairs; returns (valid rs, skipped)."""
    n = xa.size
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CHUNK_ENTRIES // n)
    rs: list[np.ndarray] = []
    skipped = 0
    done = 0
    while done < bootstrap:
        b = min(chunk, bootstrap - done)
        idx = rng.integers(0, n, size=(b, n))
        xs = xa[idx]
        ys = ya[idx]
        # A resample whose x (or y) values are all equal has no correlation;
        # it is skipped and counted rather than imputed.
        degenerate = (xs.max(axis=1) == xs.min(axis=1)) | (ys.max(axis=1) == ys.min(axis=1))
        skipped += int(degenerate.sum())
        xs = xs[~degenerate]
        ys = ys[~degenerate]
        dx = xs - xs.mean(axis=1, keepdims=True)
        dy = ys - ys.mean(axis=1, keepdims=True)
        num = np.einsum("ij,ij->i", dx, dy)
        den = np.sqrt(np.einsum("ij,ij->i", dx, dx) * np.einsum("ij,ij->i", dy, dy))
        rs.append(np.clip(num / den, -1.0, 1.0))
        done += b
    return np.concatenate(rs) if rs else np.empty(0), skipped


def fisher_z_interval(r: float, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Analytic interval for a correlation: tanh(atanh(r) -/+ z_{(1+c)/2} / sqrt(n - 3)).

    Returns None for n < 4, where the standard error 1/sqrt(n-3) is undefined;
    |r| = 1 gives the degenerate interval (r, r).
    """
    _check_confidence(confidence)
    if n < 4:
        return None
    if abs(r) >= 1.0:
        return (r, r)
    z = math.atanh(r)
    half = float(_sps.norm.ppf(0.5 + confidence / 2.0)) / math.sqrt(n - 3)
    return (math.tanh(z - half), math.tanh(z + half))


def _least_squares(xa: np.ndarray, ya: np.ndarray) -> dict[str, float]:
    """OLS y = a + b x with the usual standard errors (see ``correlation_stats``)."""
    n = xa.size
    xbar = float(xa.mean())
    ybar = float(ya.mean())
    dx = xa - xbar
    sxx = float(np.dot(dx, dx))
    slope = float(np.dot(dx, ya - ybar)) / sxx
    intercept = ybar - slope * xbar
    resid = ya - (intercept + slope * xa)
    s = math.sqrt(float(np.dot(resid, resid)) / (n - 2))
    return {
        "slope": slope,
        "intercept": intercept,
        "slope_stderr": s / math.sqrt(sxx),
        "intercept_stderr": s * math.sqrt(1.0 / n + xbar * xbar / sxx),
        "residual_std": s,
        "x_mean": xbar,
        "sxx": sxx,
    }


def correlation_stats(
    x: ArrayLike,
    y: ArrayLike,
    bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Correlation and least-squares statistics of paired samples (x, y).

    With centred sums S_xx, S_yy, S_xy over n points:

    - ``pearson_r`` r = S_xy / sqrt(S_xx S_yy); ``pearson_p`` the two-sided p of
      t = r sqrt((n-2)/(1-r^2)) under Student t with n-2 degrees of freedom;
      ``r2`` = r^2.
    - ``spearman_rho``: Pearson r of the average ranks (ties share the mean
      rank); ``spearman_p`` the same t-test applied to rho.
    - ``r_ci_low`` / ``r_ci_high``: percentile bootstrap interval for r at
      ``confidence``, resampling the n (x, y) pairs with replacement
      ``bootstrap`` times (numpy generator seeded by ``seed``). Resamples in
      which x or y is constant have no r; they are skipped and their number is
      reported as ``bootstrap_skipped`` (``bootstrap_used`` = the rest). None
      when ``bootstrap`` is 0 or every resample was degenerate.
    - ``fisher_z_ci_low`` / ``fisher_z_ci_high``: tanh(atanh(r) -/+ z / sqrt(n-3)),
      z the normal quantile at (1 + confidence) / 2; None when n = 3.
    - ``slope`` b = S_xy / S_xx, ``intercept`` a = mean(y) - b mean(x),
      ``residual_std`` s = sqrt(sum of squared residuals / (n-2)),
      ``slope_stderr`` = s / sqrt(S_xx),
      ``intercept_stderr`` = s sqrt(1/n + mean(x)^2 / S_xx).

    Raises DataError for n < 3, unequal lengths, non-finite values, or a
    constant x or y; ConfigError for a negative ``bootstrap`` or a confidence
    outside (0, 1). Every value is a plain Python number (JSON-ready).
    """
    _check_confidence(confidence)
    if bootstrap < 0:
        raise ConfigError(f"bootstrap must be >= 0 resamples, got {bootstrap}")
    xa, ya = _as_pair(x, y, "correlation_stats")
    n = int(xa.size)

    r = _pearson(xa, ya)
    rho = _pearson(average_ranks(xa), average_ranks(ya))

    ci_low: float | None = None
    ci_high: float | None = None
    used = 0
    skipped = 0
    if bootstrap > 0:
        rs, skipped = _bootstrap_r(xa, ya, bootstrap, seed)
        used = int(rs.size)
        if used:
            alpha = 1.0 - confidence
            lo, hi = np.quantile(rs, [alpha / 2.0, 1.0 - alpha / 2.0])
            ci_low, ci_high = float(lo), float(hi)

    fz = fisher_z_interval(r, n, confidence)
    fit = _least_squares(xa, ya)
    return {
        "n": n,
        "pearson_r": r,
        "pearson_p": _t_test_p(r, n),
        "r2": r * r,
        "spearman_rho": rho,
        "spearman_p": _t_test_p(rho, n),
        "confidence": float(confidence),
        "r_ci_low": ci_low,
        "r_ci_high": ci_high,
        "bootstrap": int(bootstrap),
        "bootstrap_used": used,
        "bootstrap_skipped": skipped,
        "seed": int(seed),
        "fisher_z_ci_low": None if fz is None else fz[0],
        "fisher_z_ci_high": None if fz is None else fz[1],
        "slope": fit["slope"],
        "intercept": fit["intercept"],
        "slope_stderr": fit["slope_stderr"],
        "intercept_stderr": fit["intercept_stderr"],
        "residual_std": fit["residual_std"],
    }


def regression_band(
    x: ArrayLike, y: ArrayLike, grid: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line on ``grid`` and its t-based confidence band of the mean response.

    fit(g) = a + b g and fit -/+ t_{(1+c)/2, n-2} * s * sqrt(1/n + (g - mean(x))^2 / S_xx),
    with a, b, s and S_xx as in ``correlation_stats``. The band is narrowest at
    g = mean(x) and widens away from it. Returns (fit, low, high), each shaped
    like ``grid``.
    """
    _check_confidence(confidence)
    xa, ya = _as_pair(x, y, "regression_band")
    g = np.asarray(grid, dtype=float)
    fit = _least_squares(xa, ya)
    line = fit["intercept"] + fit["slope"] * g
    t = float(_sps.t.ppf(0.5 + confidence / 2.0, xa.size - 2))
    se = fit["residual_std"] * np.sqrt(1.0 / xa.size + (g - fit["x_mean"]) ** 2 / fit["sxx"])
    return line, line - t * se, line + t * se
