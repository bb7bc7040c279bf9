"""Linear probes over repeated stratified splits: per-class error, class gap, fitted weights.

The probe is the standard linear evaluation of a frozen encoder: features are
standardised with statistics of the training split (sklearn ``StandardScaler``)
and a multinomial logistic regression (sklearn ``LogisticRegression``, lbfgs,
L2 penalty of inverse strength ``C``) is fitted. Splits come from sklearn's
``StratifiedShuffleSplit`` so every repeat keeps the class proportions.

Per class c the measured error is 1 - recall_c on the test split (the fraction
of class-c test points assigned to another class). Over the repeats it is
summarised by its mean and a Student-t interval, mean -/+ t_{(1+conf)/2, R-1}
sd / sqrt(R). The repeats share training points, so they are not independent
and the interval is narrower than a fresh-data interval would be: read it as
the split-to-split spread, not as sampling uncertainty of the population error.

The fitted weights and the standardisation of every repeat are returned, so
the Gaussian theory (``gaussian.py``) can evaluate exactly the classifier that
was measured.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as _sps
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from datalign.core.errors import ConfigError, DataError
from datalign.studies.spectral_imbalance.spectra import python_scalar


@dataclass(frozen=True)
class ProbeFit:
    """One fitted probe: scores = ((x - scaler_mean) / scaler_scale) @ coef.T + intercept.

    ``coef`` is (K, d) for K > 2 classes (multinomial) and (1, d) for two
    classes, where a positive score means ``classes[1]`` (sklearn's convention).
    """

    repeat: int
    classes: np.ndarray  # (K,)
    coef: np.ndarray  # (K or 1, d), standardised feature space
    intercept: np.ndarray  # (K or 1,)
    scaler_mean: np.ndarray  # (d,)
    scaler_scale: np.ndarray  # (d,); sklearn sets 1 for constant features
    train_index: np.ndarray
    test_index: np.ndarray
    converged: bool

    def raw_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, b) acting on raw features: scores = x @ W.T + b, W (K or 1, d), b (K or 1,).

        Folds the standardisation into the weights: W = coef / scale,
        b = intercept - W @ mean.
        """
        w = self.coef / self.scaler_scale
        return w, self.intercept - w @ self.scaler_mean

    def decision(self, features: ArrayLike) -> np.ndarray:
        """Scores (n, K or 1) of raw ``features`` (n, d)."""
        w, b = self.raw_weights()
        x = np.asarray(features, dtype=float)
        if x.ndim != 2 or x.shape[1] != w.shape[1]:
            raise DataError(f"ProbeFit.decision: features must be (n, {w.shape[1]}), got shape {x.shape}")
        return x @ w.T + b

    def predict(self, features: ArrayLike) -> np.ndarray:
        """Predicted labels (n,) as sklearn's ``predict`` gives them."""
        s = self.decision(features)
        idx = (s[:, 0] > 0).astype(int) if s.shape[1] == 1 else np.argmax(s, axis=1)
        return self.classes[idx]


@dataclass(frozen=True)
class ProbeResult:
    """Output of ``linear_probe``.

    per_class: class, n_test, accuracy_mean, error_mean, error_std,
        error_ci_low, error_ci_high (one row per class).
    per_repeat: repeat, class, n_test, accuracy (one row per repeat and class).
    summary: overall accuracy (mean, CI), worst-class accuracy and class, best
        class, class gap and its CI, settings.
    fits: the R fitted probes.
    """

    per_class: pd.DataFrame
    per_repeat: pd.DataFrame
    summary: dict[str, Any]
    fits: list[ProbeFit]


def t_interval(
    values: ArrayLike, confidence: float, bounds: tuple[float, float] | None = (0.0, 1.0)
) -> tuple[float, float, float, float]:
    """(mean, sd, low, high): Student-t interval mean -/+ t_{(1+conf)/2, R-1} sd / sqrt(R).

    sd uses ddof = 1. With R = 1 the interval is (NaN, NaN): one repeat has no spread.
    ``bounds`` clips the interval to the range the quantity can take (default
    [0, 1]: accuracies, errors and class gaps are proportions); with few repeats
    of a noisy probe a t-interval can otherwise leave it (an error CI of
    [-0.55, 0.88] on a small text set). None leaves it unclipped.
    """
    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if v.size < 2:
        return mean, math.nan, math.nan, math.nan
    sd = float(v.std(ddof=1))
    half = float(_sps.t.ppf(0.5 + confidence / 2.0, v.size - 1)) * sd / math.sqrt(v.size)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, sd, low, high


def linear_probe(
    features: ArrayLike,
    labels: ArrayLike,
    n_repeats: int = 5,
    test_size: float = 0.2,
    C: float = 1.0,
    seed: int = 0,
    max_iter: int = 1000,
    confidence: float = 0.95,
    n_threads: int | None = 1,
) -> ProbeResult:
    """Fit standardised multinomial logistic-regression probes on ``n_repeats`` stratified splits.

    ``features`` (n, d) float, ``labels`` (n,) any hashable class ids.
    ``test_size`` is the test fraction of each ``StratifiedShuffleSplit``
    split (random_state = ``seed``). Measured per class: accuracy = recall on
    the test split, error = 1 - accuracy; summaries as in the module docstring.

    Summary keys: n_repeats, test_size, C, seed, confidence, ci_kind,
    overall_accuracy (mean over repeats), overall_accuracy_ci_low/high,
    worst_class, worst_class_accuracy, best_class, best_class_accuracy,
    class_gap = best_class_accuracy - worst_class_accuracy (of the repeat-mean
    per-class accuracies), class_gap_repeat_mean / _ci_low / _ci_high (the
    gap computed inside each repeat, then averaged: it is biased upwards by
    the max/min of noisy values, so the headline gap is the first one),
    n_not_converged (fits that hit ``max_iter``).

    ``n_threads`` caps the BLAS/OpenMP threads of the fits (threadpoolctl;
    None leaves the libraries' defaults). The default 1 is deliberate: the
    lbfgs gradient is a product of a (n, d) and a (d, K) matrix, too small
    for threads to pay, and on a busy 2-core machine two OpenBLAS threads
    made a 4000 x 784 MNIST fit 10-20x slower (12 s vs 0.6 s wall).

    Raises DataError for bad shapes, non-finite features, fewer than 2 classes
    or a class too small to appear in both splits; ConfigError for a bad
    n_repeats, test_size, C, max_iter or confidence.
    """
    if n_repeats < 1:
        raise ConfigError(f"linear_probe: n_repeats must be >= 1, got {n_repeats}")
    if not 0.0 < test_size < 1.0:
        raise ConfigError(f"linear_probe: test_size must lie in (0, 1), got {test_size}")
    if not C > 0:
        raise ConfigError(f"linear_probe: C must be > 0, got {C}")
    if max_iter < 1:
        raise ConfigError(f"linear_probe: max_iter must be >= 1, got {max_iter}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"linear_probe: confidence must lie in (0, 1), got {confidence}")
    if n_threads is not None and n_threads < 1:
        raise ConfigError(f"linear_probe: n_threads must be >= 1 or None, got {n_threads}")
    x = np.asarray(features, dtype=float)
    y = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"linear_probe: features must be a non-empty (n, d) array, got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise DataError(f"linear_probe: labels must have shape ({x.shape[0]},), got {y.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("linear_probe: features hold non-finite values")
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise DataError(f"linear_probe: needs >= 2 classes, got {classes.size}")
    # Each class needs a point on both sides of every split.
    smallest = int(counts.min())
    if math.floor(smallest * test_size) < 1 or smallest - math.ceil(smallest * test_size) < 1:
        raise DataError(f"linear_probe: class {classes[counts.argmin()]!r} has {smallest} samples, too few for test_size={test_size}")

    splitter = StratifiedShuffleSplit(n_splits=n_repeats, test_size=test_size, random_state=seed)
    fits: list[ProbeFit] = []
    repeat_rows = []
    overall = []
    for r, (train, test) in enumerate(splitter.split(x, y)):
        scaler = StandardScaler().fit(x[train])
        model = LogisticRegression(C=C, max_iter=max_iter)
        # Non-convergence is recorded in the result rather than printed as a warning.
        with warnings.catch_warnings(), threadpool_limits(limits=n_threads):
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(scaler.transform(x[train]), y[train])
        fit = ProbeFit(repeat=r, classes=model.classes_, coef=model.coef_.copy(),
                       intercept=model.intercept_.copy(), scaler_mean=scaler.mean_.copy(),
                       scaler_scale=scaler.scale_.copy(), train_index=train, test_index=test,
                       converged=bool(np.max(model.n_iter_) < max_iter))
        fits.append(fit)
        pred = fit.predict(x[test])
        overall.append(float(np.mean(pred == y[test])))
        for c in classes:
            mask = y[test] == c
            repeat_rows.append({"repeat": r, "class": python_scalar(c),
                                "n_test": int(mask.sum()),
                                "accuracy": float(np.mean(pred[mask] == c))})
    per_repeat = pd.DataFrame(repeat_rows)

    class_rows = []
    for c, group in per_repeat.groupby("class", sort=True):
        acc = group["accuracy"].to_numpy()
        err_mean, err_sd, lo, hi = t_interval(1.0 - acc, confidence)
        class_rows.append({"class": c, "n_test": int(group["n_test"].iloc[0]),
                           "accuracy_mean": 1.0 - err_mean, "error_mean": err_mean,
                           "error_std": err_sd, "error_ci_low": lo, "error_ci_high": hi})
    per_class = pd.DataFrame(class_rows)

    acc_mean = per_class["accuracy_mean"].to_numpy()
    worst, best = int(np.argmin(acc_mean)), int(np.argmax(acc_mean))
    wide = per_repeat.pivot(index="repeat", columns="class", values="accuracy")
    gaps = (wide.max(axis=1) - wide.min(axis=1)).to_numpy()
    o_mean, _, o_lo, o_hi = t_interval(overall, confidence)
    g_mean, _, g_lo, g_hi = t_interval(gaps, confidence)
    summary = {
        "n_repeats": n_repeats, "test_size": test_size, "C": C, "seed": seed,
        "confidence": confidence, "ci_kind": "student-t over repeated splits (repeats share data)",
        "overall_accuracy": o_mean, "overall_accuracy_ci_low": o_lo, "overall_accuracy_ci_high": o_hi,
        "worst_class": python_scalar(per_class["class"].iloc[worst]), "worst_class_accuracy": float(acc_mean[worst]),
        "best_class": python_scalar(per_class["class"].iloc[best]), "best_class_accuracy": float(acc_mean[best]),
        "class_gap": float(acc_mean[best] - acc_mean[worst]),
        "class_gap_repeat_mean": g_mean, "class_gap_ci_low": g_lo, "class_gap_ci_high": g_hi,
        "n_not_converged": int(sum(not f.converged for f in fits)),
    }
    return ProbeResult(per_class=per_class, per_repeat=per_repeat, summary=summary, fits=fits)
