"""Leave-one-out r, Cook's distance and the two-cluster split against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from datalign.core.errors import DataError
from datalign.stats.robustness import leave_one_out, strength_words, two_cluster_split


def _cooks_by_refitting(x, y):
    """Cook's D from its definition: the change of all fitted values when point i is dropped."""
    n, p = len(x), 2
    X = np.column_stack([np.ones(n), x])
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    fitted = X @ beta
    s2 = ((y - fitted) ** 2).sum() / (n - p)
    out = []
    for i in range(n):
        keep = np.arange(n) != i
        b_i = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
        out.append(((fitted - X @ b_i) ** 2).sum() / (p * s2))
    return np.array(out)


def test_leave_one_out_matches_scipy_and_refitting():
    rng = np.random.default_rng(3)
    x = rng.normal(size=9)
    y = -2 * x + rng.normal(scale=0.5, size=9)
    y[4] += 5  # an outlier
    out = leave_one_out(x, y)
    assert out["r"] == pytest.approx(stats.pearsonr(x, y)[0])
    for i, r_i in enumerate(out["r_without"]):
        keep = np.arange(9) != i
        assert r_i == pytest.approx(stats.pearsonr(x[keep], y[keep])[0])
    assert out["most_influential"] == 4
    np.testing.assert_allclose(out["cooks_distance"], _cooks_by_refitting(x, y), rtol=1e-9)
    assert out["max_cooks_distance"] == pytest.approx(max(_cooks_by_refitting(x, y)))


def test_leave_one_out_with_three_points_has_no_defined_values():
    out = leave_one_out([0.0, 1.0, 2.0], [1.0, 0.0, -1.5])
    assert out["r_without"] == [None, None, None] and out["r_loo_min"] is None


def test_two_clusters_are_found_and_even_spread_is_not():
    x = np.array([0.10, 0.11, 0.12, 0.13, 0.80, 0.81, 0.82])
    y = np.array([3.0, 3.1, 2.9, 3.05, 2.0, 2.1, 1.95])
    out = two_cluster_split(x, y)
    assert out["clustered"] and out["low"] == [0, 1, 2, 3] and out["high"] == [4, 5, 6]
    assert out["between_share"] > 0.99
    assert out["r_low"] == pytest.approx(stats.pearsonr(x[:4], y[:4])[0])
    even = np.linspace(0, 1, 200)
    spread = two_cluster_split(even, -even)
    assert spread["between_share"] == pytest.approx(0.75, abs=0.01)  # closed form for an even spread
    assert not spread["clustered"]


def test_exact_split_against_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    out = two_cluster_split(x, rng.normal(size=12))
    order = np.argsort(x)
    best = min(
        (((x[order[:k]] - x[order[:k]].mean()) ** 2).sum() + ((x[order[k:]] - x[order[k:]].mean()) ** 2).sum(), k)
        for k in range(1, 12)
    )
    assert sorted(out["low"]) == sorted(order[: best[1]].tolist())


def test_bad_input_is_one_line_error():
    with pytest.raises(DataError, match="at least 3 points"):
        leave_one_out([1, 2], [1, 2])
    with pytest.raises(DataError, match="constant"):
        leave_one_out([1, 1, 1], [1, 2, 3])
    with pytest.raises(DataError, match="finite"):
        two_cluster_split([1, np.nan, 2], [1, 2, 3])


def test_strength_words():
    assert [strength_words(v) for v in (0.05, -0.2, 0.45, -0.9, None)] == [
        "negligible", "weak", "moderate", "strong", "undefined"]
