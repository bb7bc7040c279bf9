"""Gaussian-mixture class errors: closed form vs Monte Carlo vs direct sampling, and the theory's claim."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from datalign.core.errors import ConfigError, DataError
from datalign.studies.spectral_imbalance.gaussian import (
    gaussian_class_errors,
    monte_carlo_error,
    predict_probe_errors,
    two_class_errors,
)
from datalign.studies.spectral_imbalance.probes import linear_probe
from datalign.studies.spectral_imbalance.spectra import class_covariances


def _spd(d: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.2 * np.eye(d))


def _two_class_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    d = 6
    means = np.stack([np.zeros(d), np.full(d, 0.6)])
    covs = [_spd(d, 1.0, rng), _spd(d, 2.5, rng)]
    w = rng.normal(size=d)
    b = -0.5 * w @ means.sum(axis=0) + 0.1
    return w, b, means, covs


def test_two_class_closed_form_matches_monte_carlo_and_direct_sampling():
    w, b, means, covs = _two_class_problem()
    closed = two_class_errors(w, b, means, covs)
    # Independent check of the formula itself: scipy's normal CDF on the projected moments.
    for c, sign in ((0, -1), (1, 1)):
        expect = norm.cdf(-sign * (w @ means[c] + b) / math.sqrt(w @ covs[c] @ w))
        assert closed[c] == pytest.approx(expect, rel=1e-12)
    mc = gaussian_class_errors(w, b, [0, 1], means, covs, method="monte_carlo", n_samples=400_000, seed=1)
    for c in range(2):
        row = mc.iloc[c]
        assert abs(row["predicted_error"] - closed[c]) < 4 * row["mc_se"]
    # Direct sampling in feature space (numpy multivariate normal) with the same rule.
    rng = np.random.default_rng(2)
    for c in range(2):
        x = rng.multivariate_normal(means[c], covs[c], size=200_000)
        pred = (x @ w + b > 0).astype(int)
        p = np.mean(pred != c)
        assert abs(p - closed[c]) < 4 * math.sqrt(closed[c] * (1 - closed[c]) / 200_000)
    auto = gaussian_class_errors(w, b, [0, 1], means, covs)
    assert list(auto["method"]) == ["closed_form"] * 2
    np.testing.assert_allclose(auto["predicted_error"], closed)
    assert auto["mc_se"].isna().all()


def test_softmax_two_row_classifier_reduces_to_difference():
    w, b, means, covs = _two_class_problem(seed=3)
    w2 = np.stack([0.3 * w, 1.3 * w])  # rows differ by w
    b2 = np.array([1.0, 1.0 + b])
    np.testing.assert_allclose(two_class_errors(w2, b2, means, covs), two_class_errors(w, b, means, covs))


def _k_class_problem(seed: int = 4, k: int = 4, d: int = 5):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=1.5, size=(k, d))
    covs = [_spd(d, 0.5 + c, rng) for c in range(k)]
    w = rng.normal(size=(k, d))
    b = rng.normal(scale=0.3, size=k)
    return w, b, means, covs


def test_k_class_monte_carlo_matches_multivariate_normal_cdf():
    w, b, means, covs = _k_class_problem()
    k = w.shape[0]
    mc = gaussian_class_errors(w, b, list("abcd"), means, covs, n_samples=300_000, seed=5)
    assert list(mc["class"]) == list("abcd")
    for c in range(k):
        # Correct iff s_j - s_c < 0 for every j != c: an orthant probability of a
        # (k-1)-dimensional Gaussian, evaluated by scipy (Genz's algorithm).
        others = [j for j in range(k) if j != c]
        dmat = np.zeros((k - 1, k))
        dmat[np.arange(k - 1), others] = 1.0
        dmat[:, c] = -1.0
        m = dmat @ (w @ means[c] + b)
        v = dmat @ w @ covs[c] @ w.T @ dmat.T
        correct = multivariate_normal.cdf(np.zeros(k - 1), mean=m, cov=v, abseps=1e-6, releps=1e-6,
                                          rng=np.random.default_rng(0))
        row = mc.iloc[c]
        assert abs(row["predicted_error"] - (1 - correct)) < 4 * row["mc_se"] + 2e-4


def test_monte_carlo_is_seeded_and_independent_of_chunking():
    w, b, means, covs = _k_class_problem(seed=6)
    one = gaussian_class_errors(w, b, [0, 1, 2, 3], means, covs, n_samples=50_000, seed=9)
    chunked = gaussian_class_errors(w, b, [0, 1, 2, 3], means, covs, n_samples=50_000, seed=9, chunk_size=777)
    np.testing.assert_array_equal(one["predicted_error"], chunked["predicted_error"])
    other = gaussian_class_errors(w, b, [0, 1, 2, 3], means, covs, n_samples=50_000, seed=10)
    assert not np.array_equal(one["predicted_error"], other["predicted_error"])


def test_factored_covariance_gives_same_prediction_as_explicit_matrix():
    rng = np.random.default_rng(7)
    x = np.vstack([rng.normal(size=(15, 25)) + c for c in range(3)])
    y = np.repeat([0, 1, 2], 15)
    covs = class_covariances(x, y)
    w, b = rng.normal(size=(3, 25)), rng.normal(size=3)
    means = np.stack([c.mean for c in covs])
    a = gaussian_class_errors(w, b, [0, 1, 2], means, covs, n_samples=20_000, seed=1)
    e = gaussian_class_errors(w, b, [0, 1, 2], means, [c.matrix() for c in covs], n_samples=20_000, seed=1)
    np.testing.assert_allclose(a["predicted_error"], e["predicted_error"], atol=1e-12)
    np.testing.assert_allclose(a["score_margin"], e["score_margin"], rtol=1e-9)


def test_singular_score_covariance_of_softmax_weights_is_handled():
    # Multinomial weights summing to zero over classes make W Sigma W' singular.
    w, b, means, covs = _k_class_problem(seed=8, k=3)
    w = w - w.mean(axis=0)
    res = gaussian_class_errors(w, b, [0, 1, 2], means, covs, n_samples=100_000, seed=0)
    rng = np.random.default_rng(1)
    for c in range(3):
        x = rng.multivariate_normal(means[c], covs[c], size=100_000)
        direct = np.mean(np.argmax(x @ w.T + b, axis=1) != c)
        assert abs(res["predicted_error"].iloc[c] - direct) < 5 * math.sqrt(direct * (1 - direct) / 50_000) + 1e-3


def test_monte_carlo_error_binary_column_and_standard_error():
    rng = np.random.default_rng(0)
    p, se = monte_carlo_error(np.array([1.0]), np.array([[1.0]]), target=1, n_samples=200_000, rng=rng)
    assert abs(p - norm.cdf(-1.0)) < 4 * se
    assert se == pytest.approx(math.sqrt(p * (1 - p) / 200_000))


def test_gaussian_errors_reject_bad_input():
    w, b, means, covs = _k_class_problem(k=3)
    with pytest.raises(ConfigError, match="closed form covers 2 classes"):
        gaussian_class_errors(w, b, [0, 1, 2], means, covs, method="closed_form")
    with pytest.raises(ConfigError, match="method"):
        gaussian_class_errors(w, b, [0, 1, 2], means, covs, method="exact")
    with pytest.raises(DataError, match="covariance of class"):
        gaussian_class_errors(w, b, [0, 1, 2], means, [np.eye(2)] * 3)
    with pytest.raises(DataError, match="rows for 3 classes"):
        gaussian_class_errors(w[:2], b[:2], [0, 1, 2], means, covs)
    with pytest.raises(DataError, match="zero score variance"):
        two_class_errors(np.ones(5), 0.0, np.zeros((2, 5)), [np.zeros((5, 5))] * 2)


def _mixture_with_one_wide_class(seed: int, n: int = 250, d: int = 20, k: int = 4, wide: int = 2):
    """K isotropic classes with means on a simplex; class ``wide`` has a 4x larger spectrum."""
    rng = np.random.default_rng(seed)
    means = 2.2 * np.eye(k, d)
    xs, ys = [], []
    for c in range(k):
        scale = 2.0 if c == wide else 1.0  # standard deviation: 4x the variance
        lam = scale**2 * np.arange(1, d + 1, dtype=float) ** -0.3
        xs.append(means[c] + rng.normal(size=(n, d)) * np.sqrt(lam))
        ys.append(np.full(n, c))
    return np.vstack(xs), np.concatenate(ys)


def test_wider_class_spectrum_gets_larger_predicted_and_measured_error():
    x, y = _mixture_with_one_wide_class(seed=11)
    probe = linear_probe(x, y, n_repeats=3, test_size=0.3, seed=0)
    pred = predict_probe_errors(x, y, probe, n_samples=50_000, seed=0)
    measured = probe.per_class.set_index("class")["error_mean"]
    predicted = pred.set_index("class")["predicted_error"]
    assert measured.idxmax() == 2
    assert predicted.idxmax() == 2
    # The wide class is much worse, not marginally.
    others = [c for c in range(4) if c != 2]
    assert predicted[2] > 1.4 * predicted[others].max()
    assert measured[2] > 1.4 * measured[others].max()
    # Prediction from test moments tells the same story.
    test_pred = predict_probe_errors(x, y, probe, moments_from="test", n_samples=20_000)
    assert test_pred.set_index("class")["predicted_error"].idxmax() == 2


def test_two_class_probe_prediction_uses_closed_form_and_tracks_measured_error():
    rng = np.random.default_rng(12)
    d, n = 10, 1500
    x = np.vstack([rng.normal(size=(n, d)), 1.0 + 2.0 * rng.normal(size=(n, d))])
    y = np.repeat([0, 1], n)
    probe = linear_probe(x, y, n_repeats=2, test_size=0.4, seed=1)
    assert probe.fits[0].coef.shape == (1, d)
    pred = predict_probe_errors(x, y, probe, moments_from="test")
    assert set(pred["method"]) == {"closed_form"}
    assert pred["mc_se"].isna().all()
    measured = probe.per_class["error_mean"].to_numpy()
    # Gaussian data: the theory on test moments is the test error up to sampling noise.
    np.testing.assert_allclose(pred["predicted_error"].to_numpy(), measured, atol=0.03)
    assert pred["predicted_error"].iloc[1] > pred["predicted_error"].iloc[0]


def test_predict_probe_errors_rejects_mismatched_features():
    x, y = _mixture_with_one_wide_class(seed=13, n=30, d=5)
    probe = linear_probe(x, y, n_repeats=1, seed=0)
    with pytest.raises(DataError, match="do not match the probe"):
        predict_probe_errors(x[:, :4], y, probe)
    with pytest.raises(ConfigError, match="moments_from"):
        predict_probe_errors(x, y, probe, moments_from="all")
