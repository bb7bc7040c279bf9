"""Linear probes over repeated stratified splits, checked against sklearn and scipy directly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from datalign.core.errors import ConfigError, DataError
from datalign.studies.spectral_imbalance.probes import linear_probe, t_interval


def _blobs(seed: int = 0, k: int = 3, n: int = 60, d: int = 8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.2, size=(k, d))
    # Unequal feature scales make the standardisation matter.
    scales = np.geomspace(0.1, 10.0, d)
    x = np.vstack([(centres[c] + rng.normal(size=(n, d))) * scales for c in range(k)])
    return x, np.repeat(np.arange(k), n)


@pytest.fixture(scope="module")
def probe_and_data():
    x, y = _blobs()
    return linear_probe(x, y, n_repeats=4, test_size=0.25, C=0.5, seed=3), x, y


def test_fits_equal_a_fresh_sklearn_pipeline_on_the_same_splits(probe_and_data):
    res, x, y = probe_and_data
    splits = list(StratifiedShuffleSplit(n_splits=4, test_size=0.25, random_state=3).split(x, y))
    assert len(res.fits) == 4
    for fit, (train, test) in zip(res.fits, splits, strict=True):
        np.testing.assert_array_equal(fit.train_index, train)
        np.testing.assert_array_equal(fit.test_index, test)
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(x[train], y[train])
        np.testing.assert_allclose(fit.decision(x[test]), ref.decision_function(x[test]), rtol=1e-8, atol=1e-8)
        np.testing.assert_array_equal(fit.predict(x[test]), ref.predict(x[test]))
        # Raw-space weights reproduce the standardised scores.
        w, b = fit.raw_weights()
        z = (x[test] - fit.scaler_mean) / fit.scaler_scale
        np.testing.assert_allclose(x[test] @ w.T + b, z @ fit.coef.T + fit.intercept, rtol=1e-9, atol=1e-9)
        assert fit.converged


def test_per_class_error_is_one_minus_recall_with_t_interval(probe_and_data):
    res, x, y = probe_and_data
    recalls = np.array([recall_score(y[f.test_index], f.predict(x[f.test_index]), average=None)
                        for f in res.fits])  # (repeats, classes)
    errors = 1.0 - recalls
    pc = res.per_class.set_index("class")
    np.testing.assert_allclose(pc["error_mean"], errors.mean(axis=0))
    np.testing.assert_allclose(pc["accuracy_mean"], recalls.mean(axis=0))
    np.testing.assert_allclose(pc["error_std"], errors.std(axis=0, ddof=1))
    for c in range(3):
        e = errors[:, c]
        if e.std() == 0:
            continue
        lo, hi = stats.t.interval(0.95, len(e) - 1, loc=e.mean(), scale=stats.sem(e))
        assert pc.at[c, "error_ci_low"] == pytest.approx(max(lo, 0.0))  # a proportion: clipped to [0, 1]
        assert pc.at[c, "error_ci_high"] == pytest.approx(min(hi, 1.0))
    # Stratified: each class has the same number of test points in every repeat.
    assert set(res.per_repeat["n_test"]) == {15}
    assert list(pc["n_test"]) == [15, 15, 15]


def test_summary_gap_worst_class_and_overall(probe_and_data):
    res, x, y = probe_and_data
    s = res.summary
    acc = res.per_class.set_index("class")["accuracy_mean"]
    assert s["class_gap"] == pytest.approx(acc.max() - acc.min())
    assert s["worst_class_accuracy"] == pytest.approx(acc.min())
    assert s["worst_class"] == acc.idxmin() and s["best_class"] == acc.idxmax()
    overall = [np.mean(f.predict(x[f.test_index]) == y[f.test_index]) for f in res.fits]
    assert s["overall_accuracy"] == pytest.approx(np.mean(overall))
    per_repeat_gaps = res.per_repeat.groupby("repeat")["accuracy"].agg(lambda a: a.max() - a.min())
    assert s["class_gap_repeat_mean"] == pytest.approx(per_repeat_gaps.mean())
    assert s["class_gap_repeat_mean"] >= s["class_gap"] - 1e-12  # max/min of noisy values biases upward
    assert s["n_not_converged"] == 0
    json.dumps(s)  # JSON-ready: plain Python scalars


def test_t_interval_single_repeat_has_no_spread():
    mean, sd, lo, hi = t_interval([0.3], 0.95)
    assert mean == 0.3 and math.isnan(sd) and math.isnan(lo) and math.isnan(hi)


def test_probe_is_reproducible_and_seed_dependent():
    x, y = _blobs(seed=1)
    a = linear_probe(x, y, n_repeats=2, seed=5)
    b = linear_probe(x, y, n_repeats=2, seed=5)
    c = linear_probe(x, y, n_repeats=2, seed=6)
    np.testing.assert_array_equal(a.fits[1].coef, b.fits[1].coef)
    assert not np.array_equal(a.fits[0].test_index, c.fits[0].test_index)


def test_string_labels_and_binary_probe():
    x, y = _blobs(seed=2, k=2)
    names = np.array(["cat", "dog"])[y]
    res = linear_probe(x, names, n_repeats=2, seed=0)
    assert list(res.per_class["class"]) == ["cat", "dog"]
    fit = res.fits[0]
    assert fit.coef.shape == (1, x.shape[1])
    ref = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[fit.train_index], names[fit.train_index])
    np.testing.assert_array_equal(fit.predict(x[fit.test_index]), ref.predict(x[fit.test_index]))


def test_non_convergence_is_recorded_not_hidden():
    x, y = _blobs(seed=4)
    res = linear_probe(x, y, n_repeats=2, max_iter=1, seed=0)
    assert res.summary["n_not_converged"] == 2
    assert not any(f.converged for f in res.fits)


def test_probe_rejects_bad_input():
    x, y = _blobs(n=10)
    with pytest.raises(ConfigError, match="test_size"):
        linear_probe(x, y, test_size=1.5)
    with pytest.raises(ConfigError, match="C must be > 0"):
        linear_probe(x, y, C=0.0)
    with pytest.raises(ConfigError, match="n_repeats"):
        linear_probe(x, y, n_repeats=0)
    with pytest.raises(DataError, match="too few for test_size"):
        linear_probe(x[:12], np.array([0] * 10 + [1] * 2), test_size=0.2)
    with pytest.raises(DataError, match=">= 2 classes"):
        linear_probe(x, np.zeros(len(y)))
    bad = x.copy()
    bad[0, 0] = np.inf
    with pytest.raises(DataError, match="non-finite"):
        linear_probe(bad, y)


def test_t_interval_is_clipped_to_the_range_of_a_proportion():
    values = [0.0, 0.0, 0.9]  # few, spread repeats: the raw t-interval leaves [0, 1]
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
    assert lo < 0 and hi > 1
    assert t_interval(values, 0.95)[2:] == (0.0, 1.0)
    assert t_interval(values, 0.95, bounds=None)[2:] == pytest.approx((lo, hi))
