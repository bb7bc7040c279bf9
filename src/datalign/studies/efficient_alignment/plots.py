"""Figures of the efficient-alignment study: score against percent of data, per selection method.

Drawn in the house style of :mod:`datalign.plotting.charts` (own ``Figure`` on
an Agg canvas, no pyplot state, PNG at 150 dpi written atomically).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from numpy.typing import ArrayLike
from scipy import stats as sps

from datalign.core.errors import ConfigError, DataError
from datalign.plotting.charts import new_figure, save_figure
from datalign.studies.efficient_alignment.scaling import plateau_curve


def mean_with_ci(
    x: ArrayLike, y: ArrayLike, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct x: (x levels, mean y, CI half-width, number of points), each (m,).

    The half-width is Student's t interval of the mean over the points at that
    x (seeds): t_{(1+c)/2, n-1} s / sqrt(n), s the sample standard deviation;
    NaN where only one point exists (no spread to estimate).
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.size != ya.size or xa.size == 0:
        raise DataError(f"score plot: x and y must be non-empty and equally long, got {xa.size} "
                        f"and {ya.size}")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise DataError("score plot: non-finite x or y values")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"score plot: confidence must lie in (0, 1), got {confidence}")
    levels = np.unique(xa)
    means = np.empty(levels.size)
    half = np.full(levels.size, np.nan)
    counts = np.empty(levels.size, dtype=np.int64)
    for i, level in enumerate(levels):
        vals = ya[xa == level]
        means[i], counts[i] = vals.mean(), vals.size
        if vals.size > 1:
            t = sps.t.ppf(0.5 + confidence / 2, vals.size - 1)
            half[i] = t * vals.std(ddof=1) / np.sqrt(vals.size)
    return levels, means, half, counts


def _fit_params(fit: Any, method: str) -> tuple[float, float, float]:
    """(r, a, b) of a :class:`~.scaling.PlateauFit` or a dict with those keys (its ``to_dict``)."""
    get = fit.get if isinstance(fit, Mapping) else lambda k: getattr(fit, k, None)
    values = [get(k) for k in ("r", "a", "b")]
    if any(v is None for v in values):
        raise DataError(f"score plot: the fit for '{method}' lacks r, a or b")
    return float(values[0]), float(values[1]), float(values[2])


def score_vs_fraction_figure(
    points: Mapping[str, tuple[ArrayLike, ArrayLike]],
    fits: Mapping[str, Any] | None = None,
    title: str = "score vs data fraction",
    xlabel: str = "percent of the data",
    ylabel: str = "score",
    log_x: bool = False,
    confidence: float = 0.95,
) -> Figure:
    """The figure of score against percent of data, one colour per method.

    ``points`` maps a method to (x percent, y score) arrays with one point per
    run (seeds repeat an x): drawn as the mean at each x with
    ``confidence`` t-interval bars (:func:`mean_with_ci`), labelled with the
    method name. ``fits`` maps a method to its fitted plateau (a
    :class:`~datalign.studies.efficient_alignment.scaling.PlateauFit` or its
    dict), drawn dashed in the same colour and labelled "<method> fit (r=..,
    a=.., b=..)". ``log_x`` uses a symmetric-log x axis, linear below the
    smallest positive x, so x = 0 (the unaligned model) stays on the plot.
    """
    if not points:
        raise DataError("score plot: no methods to plot")
    fits = fits or {}
    unknown = sorted(set(fits) - set(points))
    if unknown:
        raise DataError(f"score plot: fits given for methods without points: {unknown}")
    fig, _ = new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    palette = mpl.colormaps["tab10" if len(points) <= 10 else "tab20"]
    all_x = np.concatenate([np.asarray(x, dtype=float).ravel() for x, _ in points.values()])
    positive = all_x[all_x > 0]
    if positive.size == 0:
        raise DataError("score plot: no x above 0 percent of the data")
    x_hi = float(all_x.max())
    grid = np.unique(np.concatenate([np.linspace(0.0, x_hi, 200),
                                     np.geomspace(positive.min(), x_hi, 200)]))
    handles: list[Any] = []
    for k, (method, (x, y)) in enumerate(points.items()):
        colour = palette(k % palette.N)
        levels, means, half, _ = mean_with_ci(x, y, confidence)
        bars = np.where(np.isfinite(half), half, 0.0)
        handles.append(ax.errorbar(levels, means, yerr=bars, fmt="o", color=colour, ecolor=colour,
                                   elinewidth=1.0, capsize=3, markersize=5, label=str(method),
                                   zorder=3))
        if method in fits:
            r, a, b = _fit_params(fits[method], str(method))
            (line,) = ax.plot(grid, plateau_curve(grid, r, a, b), linestyle="--", linewidth=1.2,
                              color=colour, label=f"{method} fit (r={r:.3g}, a={a:.3g}, b={b:.3g})",
                              zorder=2)
            handles.append(line)
    if log_x:
        ax.set_xscale("symlog", linthresh=float(positive.min()))
        # Percentages read better as 1, 10, 100 than as powers of ten.
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + f" (mean, {round(100 * confidence)}% CI)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # Explicit handles: each method's points, then its fit (matplotlib would list all lines first).
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    return fig


def plot_score_vs_fraction(
    points: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | os.PathLike,
    fits: Mapping[str, Any] | None = None,
    title: str = "score vs data fraction",
    xlabel: str = "percent of the data",
    ylabel: str = "score",
    log_x: bool = False,
    confidence: float = 0.95,
) -> Path:
    """Draw :func:`score_vs_fraction_figure` and write it to ``path`` as PNG, atomically; returns ``path``."""
    fig = score_vs_fraction_figure(points, fits, title=title, xlabel=xlabel, ylabel=ylabel,
                                   log_x=log_x, confidence=confidence)
    return save_figure(fig, path)
