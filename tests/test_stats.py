"""Correlation statistics checked against scipy.stats and hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from datalign.core.errors import ConfigError, DataError
from datalign.stats.correlation import (
    average_ranks,
    correlation_stats,
    fisher_z_interval,
    regression_band,
)

TOL = {"rel": 1e-10, "abs": 1e-12}


def _random_pair(seed: int, n: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.4, 0.8, size=n)
    y = 7.0 - strength * 8.0 * x + rng.normal(scale=0.5, size=n)
    return x, y


@pytest.mark.parametrize(("seed", "n", "strength"), [(0, 24, 1.0), (1, 7, 0.3), (2, 200, 0.0), (3, 4, 1.0)])
def test_matches_scipy_on_random_data(seed: int, n: int, strength: float) -> None:
    x, y = _random_pair(seed, n, strength)
    s = correlation_stats(x, y, bootstrap=200, seed=seed)
    pr = sps.pearsonr(x, y)
    sr = sps.spearmanr(x, y)
    lr = sps.linregress(x, y)
    assert s["n"] == n
    assert s["pearson_r"] == pytest.approx(pr.statistic, **TOL)
    assert s["pearson_p"] == pytest.approx(pr.pvalue, **TOL)
    assert s["r2"] == pytest.approx(lr.rvalue**2, **TOL)
    assert s["spearman_rho"] == pytest.approx(sr.statistic, **TOL)
    assert s["spearman_p"] == pytest.approx(sr.pvalue, **TOL)
    assert s["slope"] == pytest.approx(lr.slope, **TOL)
    assert s["intercept"] == pytest.approx(lr.intercept, **TOL)
    assert s["slope_stderr"] == pytest.approx(lr.stderr, **TOL)
    assert s["intercept_stderr"] == pytest.approx(lr.intercept_stderr, **TOL)
    resid = y - (lr.intercept + lr.slope * x)
    assert s["residual_std"] == pytest.approx(math.sqrt(resid @ resid / (n - 2)), **TOL)


def test_hand_computed_values() -> None:
    # x mean 3, y mean 4: S_xx = 10, S_yy = 6, S_xy = 6, so b = 0.6, a = 2.2,
    # r = 6 / sqrt(60) = sqrt(0.6); residuals -0.8, 0.6, 1, -0.6, -0.2 give SSE = 2.4.
    x = [1, 2, 3, 4, 5]
    y = [2, 4, 5, 4, 5]
    s = correlation_stats(x, y, bootstrap=0)
    assert s["pearson_r"] == pytest.approx(math.sqrt(0.6), **TOL)
    assert s["r2"] == pytest.approx(0.6, **TOL)
    assert s["slope"] == pytest.approx(0.6, **TOL)
    assert s["intercept"] == pytest.approx(2.2, **TOL)
    assert s["residual_std"] == pytest.approx(math.sqrt(0.8), **TOL)
    assert s["slope_stderr"] == pytest.approx(math.sqrt(0.8 / 10), **TOL)
    assert s["intercept_stderr"] == pytest.approx(math.sqrt(0.8 * (1 / 5 + 9 / 10)), **TOL)
    # t = r sqrt(3 / (1 - r^2)) = sqrt(0.6 * 3 / 0.4) = sqrt(4.5), so p = 2 P(T_3 > sqrt(4.5)).
    assert s["pearson_p"] == pytest.approx(2 * sps.t.sf(math.sqrt(4.5), 3), **TOL)
    # Ranks of y with ties: 1, 2.5, 4.5, 2.5, 4.5; centred rank sums S_xy = 7, S_xx = 10,
    # S_yy = 9, so rho = 7 / sqrt(90).
    assert s["spearman_rho"] == pytest.approx(7 / math.sqrt(90), **TOL)
    assert s["r_ci_low"] is None and s["r_ci_high"] is None
    assert s["bootstrap_used"] == 0


def test_average_ranks_with_ties() -> None:
    a = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0]
    np.testing.assert_array_equal(average_ranks(a), sps.rankdata(a, method="average"))
    np.testing.assert_array_equal(average_ranks([2, 2, 2]), [2.0, 2.0, 2.0])


def test_spearman_with_ties_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, size=40).astype(float)
    y = x + rng.integers(0, 3, size=40)
    s = correlation_stats(x, y, bootstrap=0)
    sr = sps.spearmanr(x, y)
    assert s["spearman_rho"] == pytest.approx(sr.statistic, **TOL)
    assert s["spearman_p"] == pytest.approx(sr.pvalue, **TOL)


def test_perfect_negative_correlation() -> None:
    x = np.linspace(0.4, 0.7, 10)
    y = 9.0 - 8.0 * x
    s = correlation_stats(x, y, bootstrap=100)
    assert s["pearson_r"] == pytest.approx(-1.0, abs=1e-12)
    assert s["pearson_p"] == pytest.approx(0.0, abs=1e-12)
    assert s["spearman_rho"] == -1.0 and s["spearman_p"] == 0.0
    assert s["r_ci_low"] == pytest.approx(-1.0, abs=1e-12)
    assert s["r_ci_high"] == pytest.approx(-1.0, abs=1e-12)
    assert s["residual_std"] == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_ci_contains_r_and_is_reproducible() -> None:
    x, y = _random_pair(11, 30, 1.0)
    a = correlation_stats(x, y, bootstrap=2000, seed=7)
    b = correlation_stats(x, y, bootstrap=2000, seed=7)
    c = correlation_stats(x, y, bootstrap=2000, seed=8)
    assert a["pearson_r"] < -0.7
    assert a["r_ci_low"] < a["pearson_r"] < a["r_ci_high"] <= 1.0
    assert a["r_ci_low"] >= -1.0
    assert (a["r_ci_low"], a["r_ci_high"]) == (b["r_ci_low"], b["r_ci_high"])
    assert (a["r_ci_low"], a["r_ci_high"]) != (c["r_ci_low"], c["r_ci_high"])
    assert a["bootstrap_used"] + a["bootstrap_skipped"] == 2000


def test_bootstrap_ci_agrees_with_scipy_bootstrap() -> None:
    # Different random streams, so only Monte-Carlo agreement is expected.
    x, y = _random_pair(21, 40, 0.6)
    s = correlation_stats(x, y, bootstrap=4000, seed=3)

    def r_stat(xs: np.ndarray, ys: np.ndarray, axis: int) -> np.ndarray:
        dx = xs - xs.mean(axis=axis, keepdims=True)
        dy = ys - ys.mean(axis=axis, keepdims=True)
        return (dx * dy).sum(axis) / np.sqrt((dx * dx).sum(axis) * (dy * dy).sum(axis))

    ref = sps.bootstrap(
        (x, y), r_stat, paired=True, vectorized=True, n_resamples=4000,
        confidence_level=0.95, method="percentile", rng=np.random.default_rng(99),
    ).confidence_interval
    assert s["r_ci_low"] == pytest.approx(ref.low, abs=0.03)
    assert s["r_ci_high"] == pytest.approx(ref.high, abs=0.03)


def test_degenerate_resamples_are_skipped_and_counted() -> None:
    # With n = 3 a resample of one point repeated three times (prob 1/9) has no r.
    x = [0.1, 0.5, 0.9]
    y = [3.0, 2.0, 2.5]
    s = correlation_stats(x, y, bootstrap=900, seed=0)
    assert 50 < s["bootstrap_skipped"] < 150
    assert s["bootstrap_used"] + s["bootstrap_skipped"] == 900
    assert -1.0 <= s["r_ci_low"] <= s["r_ci_high"] <= 1.0
    assert s["fisher_z_ci_low"] is None and s["fisher_z_ci_high"] is None


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_fisher_z_ci_matches_formula(confidence: float) -> None:
    x, y = _random_pair(4, 24, 0.8)
    s = correlation_stats(x, y, bootstrap=0, confidence=confidence)
    r, n = s["pearson_r"], 24
    half = sps.norm.ppf((1 + confidence) / 2) / math.sqrt(n - 3)
    assert s["fisher_z_ci_low"] == pytest.approx(math.tanh(math.atanh(r) - half), **TOL)
    assert s["fisher_z_ci_high"] == pytest.approx(math.tanh(math.atanh(r) + half), **TOL)
    ref = sps.pearsonr(x, y).confidence_interval(confidence_level=confidence)
    assert s["fisher_z_ci_low"] == pytest.approx(ref.low, **TOL)
    assert s["fisher_z_ci_high"] == pytest.approx(ref.high, **TOL)
    assert fisher_z_interval(0.5, 3) is None
    assert fisher_z_interval(1.0, 10) == (1.0, 1.0)


def test_regression_band_contains_fit_and_widens() -> None:
    x, y = _random_pair(8, 20, 1.0)
    lr = sps.linregress(x, y)
    grid = np.linspace(0.2, 1.0, 81)
    fit, low, high = regression_band(x, y, grid, 0.95)
    np.testing.assert_allclose(fit, lr.intercept + lr.slope * grid, rtol=1e-12)
    assert np.all(low < fit) and np.all(fit < high)
    width = high - low
    dist = np.abs(grid - x.mean())
    order = np.argsort(dist)
    assert np.all(np.diff(width[order]) >= -1e-12)
    assert width[0] > 2 * width[np.argmin(dist)]


def test_regression_band_matches_matrix_ols() -> None:
    # Independent route: Var(a + b g) = [1 g] s^2 (X'X)^-1 [1 g]'.
    x, y = _random_pair(9, 15, 0.5)
    grid = np.array([0.0, 0.5, 0.6, 1.3])
    X = np.column_stack([np.ones_like(x), x])
    beta, sse, *_ = np.linalg.lstsq(X, y, rcond=None)
    s2 = sse[0] / (len(x) - 2)
    G = np.column_stack([np.ones_like(grid), grid])
    se = np.sqrt(np.einsum("ij,jk,ik->i", G, s2 * np.linalg.inv(X.T @ X), G))
    t = sps.t.ppf(0.995, len(x) - 2)
    fit, low, high = regression_band(x, y, grid, 0.99)
    np.testing.assert_allclose(fit, G @ beta, rtol=1e-10)
    np.testing.assert_allclose(low, G @ beta - t * se, rtol=1e-10)
    np.testing.assert_allclose(high, G @ beta + t * se, rtol=1e-10)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([0.1, 0.2], [1.0, 2.0], "n=2"),
        ([], [], "n=0"),
        ([0.5, 0.5, 0.5, 0.5], [1.0, 2.0, 3.0, 4.0], "x is constant"),
        ([0.1, 0.2, 0.3, 0.4], [2.0, 2.0, 2.0, 2.0], "y is constant"),
        ([0.1, 0.2, 0.3], [1.0, 2.0], "differ in length"),
        ([0.1, np.nan, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0], "non-finite"),
    ],
)
def test_bad_input_raises_data_error(x: list, y: list, message: str) -> None:
    with pytest.raises(DataError, match=message):
        correlation_stats(x, y)
    with pytest.raises(DataError, match=message):
        regression_band(x, y, [0.5], 0.95)


def test_constant_error_names_n() -> None:
    with pytest.raises(DataError, match=r"x is constant .* n=4"):
        correlation_stats([0.5] * 4, [1, 2, 3, 4])


def test_bad_settings_raise_config_error() -> None:
    x, y = _random_pair(0, 10, 1.0)
    with pytest.raises(ConfigError, match="confidence"):
        correlation_stats(x, y, confidence=1.0)
    with pytest.raises(ConfigError, match="bootstrap"):
        correlation_stats(x, y, bootstrap=-1)


def test_values_are_plain_python_numbers() -> None:
    x, y = _random_pair(0, 10, 1.0)
    s = correlation_stats(x, y, bootstrap=50)
    for key, value in s.items():
        assert value is None or type(value) in (int, float), key
