"""Predicting a new model's loss from its training set's alignment: OLS and its prediction interval.

A finished alignment study has, per setting, the points (alignment_i, loss_i)
of its trained models (``correlation/<setting>/points.csv``). :func:`fit_line`
fits ``loss = a + b * alignment`` by ordinary least squares (closed form):

    b = Sxy / Sxx,  a = ybar - b xbar,  Sxx = sum (x_i - xbar)^2,  Sxy = sum (x_i - xbar)(y_i - ybar)
    s^2 = sum (y_i - a - b x_i)^2 / (n - 2)                         (residual variance)

and :func:`predict` gives, for a new alignment ``x0``, the predicted loss
``yhat = a + b x0`` and the standard prediction interval for a **new
observation** (not the narrower interval for the mean loss at ``x0``):

    yhat +- t_{n-2, (1 + confidence) / 2} * s * sqrt(1 + 1/n + (x0 - xbar)^2 / Sxx)

which assumes a straight line with independent, equal-variance normal errors.
A new point outside the fitted range ``[min x_i, max x_i]`` is an
extrapolation: flagged (``outside_range``), since nothing says the line holds
there. Alignment values compare across probes and Task2Vec settings only when
they are the same: a candidate must be embedded with the study's probe
(``results/probe``) and its ``task2vec`` settings for the prediction to mean
anything.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from datalign.core.errors import DataError


@dataclass(frozen=True)
class LineFit:
    """An OLS line ``y = intercept + slope * x`` with what its prediction intervals need."""

    slope: float
    intercept: float
    n: int
    residual_std: float
    x_mean: float
    sxx: float
    x_min: float
    x_max: float
    r2: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prediction:
    """The predicted ``y`` at ``x`` with its prediction interval at ``confidence``."""

    x: float
    y: float
    low: float
    high: float
    confidence: float
    outside_range: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_line(x: Any, y: Any) -> LineFit:
    """OLS fit of ``y`` on ``x`` (closed form, see the module docstring); needs >= 3 points and spread in x."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise DataError(f"fit_line: x and y must be vectors of one length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 3:
        raise DataError(f"a line with a prediction interval needs >= 3 points, got {n}")
    xbar, ybar = float(x.mean()), float(y.mean())
    sxx = float(((x - xbar) ** 2).sum())
    if sxx <= 0:
        raise DataError("all points have the same alignment: no line can be fitted")
    slope = float(((x - xbar) * (y - ybar)).sum()) / sxx
    intercept = ybar - slope * xbar
    resid = y - (intercept + slope * x)
    sse = float((resid**2).sum())
    syy = float(((y - ybar) ** 2).sum())
    return LineFit(slope=slope, intercept=intercept, n=n, residual_std=math.sqrt(sse / (n - 2)),
                   x_mean=xbar, sxx=sxx, x_min=float(x.min()), x_max=float(x.max()),
                   r2=1.0 - sse / syy if syy > 0 else float("nan"))


def predict(fit: LineFit, x0: float, confidence: float = 0.95) -> Prediction:
    """``fit``'s prediction at ``x0`` with the prediction interval for a new observation."""
    if not 0 < confidence < 1:
        raise DataError(f"confidence must be in (0, 1), got {confidence}")
    x0 = float(x0)
    yhat = fit.intercept + fit.slope * x0
    t = float(stats.t.ppf((1 + confidence) / 2, fit.n - 2))
    half = t * fit.residual_std * math.sqrt(1 + 1 / fit.n + (x0 - fit.x_mean) ** 2 / fit.sxx)
    return Prediction(x=x0, y=yhat, low=yhat - half, high=yhat + half, confidence=confidence,
                      outside_range=not fit.x_min <= x0 <= fit.x_max)
