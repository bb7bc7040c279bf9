"""Per-class spectra and spectral metrics against numpy, sklearn and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.covariance import OAS, LedoitWolf

from datalign.core.errors import ConfigError, DataError
from datalign.studies.spectral_imbalance.spectra import (
    class_covariances,
    class_spectra,
    effective_rank,
    imbalance_scores,
    participation_ratio,
    power_law_fit,
    spectral_imbalance,
    spectral_metrics,
    top_k_share,
    trace,
)


def _random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _covariance_with(eigenvalues: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    q = _random_rotation(eigenvalues.size, rng)
    return (q * eigenvalues) @ q.T


# --- metrics on spectra with known eigenvalues -------------------------------------------


def test_flat_spectrum_has_full_effective_rank_and_participation_ratio():
    d = 37
    lam = np.linalg.eigvalsh(_covariance_with(np.full(d, 2.5), np.random.default_rng(0)))
    assert effective_rank(lam) == pytest.approx(d, rel=1e-9)
    assert participation_ratio(lam) == pytest.approx(d, rel=1e-9)
    assert top_k_share(lam, 5) == pytest.approx(5 / d, rel=1e-9)
    assert trace(lam) == pytest.approx(2.5 * d, rel=1e-12)


def test_single_spike_has_rank_one():
    lam = np.zeros(20)
    lam[7] = 3.0
    assert effective_rank(lam) == pytest.approx(1.0)
    assert participation_ratio(lam) == pytest.approx(1.0)
    assert top_k_share(lam, 1) == pytest.approx(1.0)


def test_metrics_match_direct_numpy_formulas():
    rng = np.random.default_rng(1)
    lam = np.sort(rng.gamma(0.5, size=50))[::-1]
    p = lam / lam.sum()
    assert effective_rank(lam) == pytest.approx(math.exp(-np.sum(p * np.log(p))), rel=1e-12)
    assert participation_ratio(lam) == pytest.approx(lam.sum() ** 2 / np.sum(lam**2), rel=1e-12)
    # Order of the input does not matter for the top-k share.
    assert top_k_share(rng.permutation(lam), 4) == pytest.approx(lam[:4].sum() / lam.sum())
    # Two equal eigenvalues and the rest zero: effective rank 2, as exp(log 2).
    assert effective_rank([1.0, 1.0, 0.0, 0.0]) == pytest.approx(2.0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.3])
def test_power_law_exponent_recovered_from_exact_power_law(alpha):
    lam = np.arange(1, 201, dtype=float) ** -alpha
    fit = power_law_fit(lam)
    assert fit["alpha"] == pytest.approx(alpha, abs=1e-10)
    assert fit["log_c"] == pytest.approx(0.0, abs=1e-9)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["n_points"] == 200


def test_power_law_fit_ignores_floor_and_index_range():
    lam = np.concatenate([np.arange(1, 101, dtype=float) ** -1.5, np.zeros(50)])
    fit = power_law_fit(lam, rel_floor=1e-10)
    assert fit["alpha"] == pytest.approx(1.5, abs=1e-10)
    assert fit["n_points"] == 100
    # A broken power law: only the fitted range decides the exponent.
    broken = np.concatenate([np.arange(1, 11, dtype=float) ** -0.5,
                             10**-0.5 * (np.arange(11, 101, dtype=float) / 10) ** -2.0])
    assert power_law_fit(broken, first=11, last=100)["alpha"] == pytest.approx(2.0, abs=1e-10)
    assert power_law_fit(broken, first=1, last=10)["alpha"] == pytest.approx(0.5, abs=1e-10)


def test_metric_errors_are_one_line_and_typed():
    with pytest.raises(ConfigError, match="k must lie"):
        top_k_share([3.0, 2.0, 1.0], 4)
    with pytest.raises(DataError, match=">= 0"):
        effective_rank([1.0, -0.5])
    with pytest.raises(DataError, match="all 3 eigenvalues are zero"):
        participation_ratio([0.0, 0.0, 0.0])
    with pytest.raises(DataError, match="need >= 3"):
        power_law_fit([1.0, 0.5, 0.0, 0.0])
    with pytest.raises(ConfigError, match="first < last"):
        power_law_fit(np.ones(5), first=4, last=2)


# --- covariance estimators ---------------------------------------------------------------


def _two_class_data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(size=(n, d)) * np.linspace(3, 0.1, d),
                   rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / math.sqrt(d) + 1.0])
    return x, np.repeat([0, 1], n)


def test_ledoit_wolf_spectrum_matches_sklearn_when_samples_below_dimensions():
    x, y = _two_class_data(n=30, d=60)
    covs = class_covariances(x, y)
    for cov in covs:
        rows = x[y == cov.label]
        ref = LedoitWolf().fit(rows)
        assert cov.estimator == "ledoit_wolf"
        assert cov.shrinkage == pytest.approx(ref.shrinkage_, rel=1e-10)
        np.testing.assert_allclose(cov.matrix(), ref.covariance_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cov.eigenvalues(), np.linalg.eigvalsh(ref.covariance_)[::-1],
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cov.mean, rows.mean(axis=0))


def test_oas_spectrum_matches_sklearn():
    x, y = _two_class_data(n=25, d=40, seed=2)
    for cov in class_covariances(x, y, estimator="oas"):
        ref = OAS().fit(x[y == cov.label])
        assert cov.estimator == "oas"
        np.testing.assert_allclose(cov.eigenvalues(), np.linalg.eigvalsh(ref.covariance_)[::-1],
                                   rtol=1e-9, atol=1e-12)


def test_sample_covariance_used_when_enough_samples_and_matches_numpy():
    x, y = _two_class_data(n=200, d=15, seed=3)
    covs = class_covariances(x, y)  # n_c = 200 > d = 15: no shrinkage under the default rule
    for cov in covs:
        rows = x[y == cov.label]
        assert cov.estimator == "none" and cov.shrinkage == 0.0
        ref = np.cov(rows.T, bias=True)
        np.testing.assert_allclose(cov.matrix(), ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(cov.eigenvalues(), np.linalg.eigvalsh(ref)[::-1], rtol=1e-9)
    forced = class_covariances(x, y, shrink_when="always")
    assert all(c.estimator == "ledoit_wolf" and 0 < c.shrinkage < 1 for c in forced)
    never = class_covariances(x, y, estimator="none", shrink_when="always")
    assert all(c.estimator == "none" and c.shrinkage == 0.0 for c in never)


def test_rank_deficient_sample_covariance_has_zero_tail():
    x, y = _two_class_data(n=10, d=30, seed=4)
    for cov in class_covariances(x, y, estimator="none"):
        lam = cov.eigenvalues()
        ref = np.linalg.eigvalsh(np.cov(x[y == cov.label].T, bias=True))[::-1]
        np.testing.assert_allclose(lam[:9], ref[:9], rtol=1e-9)
        assert np.all(lam[9:] == 0.0)  # rank n - 1 = 9


def test_projection_equals_explicit_quadratic_form():
    x, y = _two_class_data(n=20, d=35, seed=5)
    a = np.random.default_rng(6).normal(size=(4, 35))
    for cov in class_covariances(x, y):
        np.testing.assert_allclose(cov.project(a), a @ cov.matrix() @ a.T, rtol=1e-10)


def test_sample_spectrum_converges_to_true_spectrum():
    # Monte Carlo check of the estimator: n >> d recovers the known eigenvalues.
    rng = np.random.default_rng(7)
    true = np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.25])
    x = rng.multivariate_normal(np.zeros(6), _covariance_with(true, rng), size=40_000)
    cov = class_covariances(x, np.zeros(40_000, int))[0]
    np.testing.assert_allclose(cov.eigenvalues(), true, rtol=0.05)


def test_class_covariances_rejects_bad_input():
    x, y = _two_class_data(n=5, d=4)
    with pytest.raises(ConfigError, match="estimator"):
        class_covariances(x, y, estimator="graphical_lasso")
    with pytest.raises(DataError, match="1 sample"):
        class_covariances(x[:6], np.array([0, 0, 0, 0, 0, 1]))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        class_covariances(bad, y)
    with pytest.raises(DataError, match="labels must be 1-D"):
        class_covariances(x, y[:-1])


# --- per-class table and imbalance scores ------------------------------------------------


def test_class_spectra_table_and_imbalance():
    rng = np.random.default_rng(8)
    d, n = 12, 400
    decays = {0: 0.5, 1: 1.0, 2: 2.0}
    xs, ys = [], []
    for c, a in decays.items():
        lam = np.arange(1, d + 1, dtype=float) ** -a
        xs.append(rng.multivariate_normal(np.full(d, c), np.diag(lam), size=n))
        ys.append(np.full(n, c))
    spec = class_spectra(np.vstack(xs), np.concatenate(ys), k=3)
    t = spec.table
    assert list(t["class"]) == [0, 1, 2]
    assert list(t["estimator"]) == ["none"] * 3  # n = 400 > d = 12
    assert list(t["alpha_last"]) == [d] * 3
    # Faster decay: larger fitted alpha, smaller effective rank, larger top-k share.
    assert np.all(np.diff(t["power_law_alpha"]) > 0)
    assert np.all(np.diff(t["effective_rank"]) < 0)
    assert np.all(np.diff(t["top_k_share"]) > 0)
    for c in decays:
        assert t.loc[t["class"] == c, "trace"].item() == pytest.approx(spec.eigenvalues[c].sum())
        assert spectral_metrics(spec.eigenvalues[c], k=3)["effective_rank"] == pytest.approx(
            t.loc[t["class"] == c, "effective_rank"].item())

    imb = spectral_imbalance(t).set_index("metric")
    v = t["effective_rank"].to_numpy()
    assert imb.at["effective_rank", "cv"] == pytest.approx(v.std() / v.mean())
    assert imb.at["effective_rank", "max_min_ratio"] == pytest.approx(v.max() / v.min())
    assert imb.at["effective_rank", "class_max"] == 0
    assert imb.at["power_law_alpha", "class_max"] == 2


def test_alpha_range_defaults_to_sample_rank_under_shrinkage():
    x, y = _two_class_data(n=20, d=50, seed=9)
    t = class_spectra(x, y).table
    assert list(t["alpha_last"]) == [19, 19]
    assert list(t["estimator"]) == ["ledoit_wolf"] * 2


def test_imbalance_scores_definitions_and_nonpositive_values():
    s = imbalance_scores([1.0, 2.0, 4.0])
    assert s["cv"] == pytest.approx(np.std([1, 2, 4]) / (7 / 3))
    assert s["max_min_ratio"] == 4.0 and s["range"] == 3.0
    signed = imbalance_scores([-1.0, 2.0])
    assert math.isnan(signed["cv"]) and math.isnan(signed["max_min_ratio"])
    assert signed["std"] == pytest.approx(1.5)
    with pytest.raises(DataError, match=">= 2 classes"):
        imbalance_scores([1.0])
    with pytest.raises(DataError, match="missing"):
        spectral_imbalance(pd.DataFrame({"class": [0, 1], "trace": [1.0, 2.0]}))
