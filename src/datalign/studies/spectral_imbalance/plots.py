"""Figures of the spectral-imbalance study.

Each figure has a ``draw_*`` function that returns the matplotlib ``Figure``
(Agg canvas, no pyplot state; tests inspect its lines, labels and colorbar)
and a ``plot_*`` function that draws it and writes a PNG atomically with the
helpers and resolution of ``datalign.plotting.charts``, returning the path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from datalign.core.errors import DataError
from datalign.plotting.charts import new_figure, save_figure

_METRIC_LABELS = {
    "trace": "trace (total variance)",
    "top_k_share": "top-k eigenvalue share",
    "effective_rank": "effective rank",
    "participation_ratio": "participation ratio",
    "power_law_alpha": r"power-law decay $\alpha$",
    "predicted_error": "Gaussian-predicted error",
}


def _rho_text(rho: Any) -> str:
    return "n/a" if rho is None or (isinstance(rho, float) and math.isnan(rho)) else f"{float(rho):.2f}"


def _vec(values: ArrayLike, what: str, n: int | None = None) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    if n is not None and v.size != n:
        raise DataError(f"{what} has {v.size} values, expected {n}")
    return v


def draw_class_spectra(
    spectra: Mapping[Any, ArrayLike],
    accuracy: Mapping[Any, float],
    title: str,
    cmap: str = "viridis",
) -> Figure:
    """Log-log eigenvalue spectra, one line per class, coloured by the class's probe accuracy.

    ``spectra`` maps class -> eigenvalues (descending, plotted against index
    1..d; zero eigenvalues are left out, the log axis has no place for them);
    ``accuracy`` maps the same classes -> accuracy in [0, 1]. A colorbar
    gives the accuracy scale. DataError if the class sets differ or a
    spectrum has no positive value.
    """
    if not spectra:
        raise DataError("draw_class_spectra: no spectra")
    if set(spectra) != set(accuracy):
        raise DataError(f"draw_class_spectra: classes differ between spectra {sorted(map(str, spectra))} and accuracy {sorted(map(str, accuracy))}")
    acc = np.array([float(accuracy[c]) for c in spectra])
    lo, hi = float(acc.min()), float(acc.max())
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-9)
    colormap = mpl.colormaps[cmap]
    fig, _ = new_figure(6.4, 4.8)
    ax = fig.add_subplot()
    for c, a in zip(spectra, acc, strict=True):
        lam = _vec(spectra[c], f"draw_class_spectra spectrum of class {c!r}")
        idx = np.arange(1, lam.size + 1)
        pos = lam > 0
        if not pos.any():
            raise DataError(f"draw_class_spectra: class {c!r} has no positive eigenvalue")
        ax.plot(idx[pos], lam[pos], color=colormap(norm(a)), linewidth=1.0, label=str(c))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index i")
    ax.set_ylabel(r"eigenvalue $\lambda_i$ of the class covariance")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.colorbar(ScalarMappable(norm=norm, cmap=colormap), ax=ax, label="per-class probe accuracy")
    if len(spectra) <= 20:
        ax.legend(fontsize=6, ncol=2, title="class", title_fontsize=6)
    return fig


def plot_class_spectra(spectra: Mapping[Any, ArrayLike], accuracy: Mapping[Any, float],
                       path: str | os.PathLike, title: str) -> Path:
    """Write ``draw_class_spectra`` as a PNG at ``path``; returns the path."""
    return save_figure(draw_class_spectra(spectra, accuracy, title), path)


def draw_metrics_vs_error(
    classes: pd.DataFrame,
    correlations: pd.DataFrame,
    metrics: Sequence[str],
    title: str,
    error_column: str = "error_mean",
) -> Figure:
    """One panel per metric: per-class metric (x) against measured error (y), Spearman rho in the title.

    ``classes`` has columns class, ``error_column`` and the ``metrics``
    (``analyse_features()["classes"]``); ``correlations`` has predictor and
    rho (``class_error_correlations``). Points are labelled by class.
    DataError for a missing column or a metric without a correlation row.
    """
    if not metrics:
        raise DataError("draw_metrics_vs_error: no metrics")
    for col in ("class", error_column, *metrics):
        if col not in classes.columns:
            raise DataError(f"draw_metrics_vs_error: column {col!r} missing from the class table")
    rho = dict(zip(correlations["predictor"], correlations["rho"], strict=True))
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, _ = new_figure(3.4 * ncols, 3.0 * nrows + 0.4)
    y = classes[error_column].to_numpy(dtype=float)
    for i, m in enumerate(metrics):
        if m not in rho:
            raise DataError(f"draw_metrics_vs_error: no correlation row for {m!r}")
        ax = fig.add_subplot(nrows, ncols, i + 1)
        x = classes[m].to_numpy(dtype=float)
        ax.scatter(x, y, s=22, color=mpl.colormaps["tab10"](0), edgecolor="black", linewidth=0.5)
        for xi, yi, c in zip(x, y, classes["class"], strict=True):
            ax.annotate(str(c), (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=6)
        ax.set_xlabel(_METRIC_LABELS.get(m, m), fontsize=8)
        ax.set_ylabel("measured class error", fontsize=8)
        ax.set_title(f"{m}: Spearman $\\rho$ = {_rho_text(rho[m])}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_metrics_vs_error(classes: pd.DataFrame, correlations: pd.DataFrame, metrics: Sequence[str],
                          path: str | os.PathLike, title: str, error_column: str = "error_mean") -> Path:
    """Write ``draw_metrics_vs_error`` as a PNG at ``path``; returns the path."""
    return save_figure(draw_metrics_vs_error(classes, correlations, metrics, title, error_column), path)


def draw_predicted_vs_measured(
    predicted: ArrayLike,
    measured: ArrayLike,
    labels: Sequence[Any],
    title: str,
    rho: float | None = None,
    measured_err: ArrayLike | None = None,
) -> Figure:
    """Gaussian-predicted (x) against measured (y) per-class error, with the y = x line.

    ``measured_err`` (n,) or (2, n): vertical error bars as matplotlib takes
    them (e.g. the distance from the mean to the CI bounds). ``rho`` (the
    Spearman of the two) goes into the title. DataError for length mismatches.
    """
    x = _vec(predicted, "draw_predicted_vs_measured predicted")
    y = _vec(measured, "draw_predicted_vs_measured measured", x.size)
    names = [str(v) for v in labels]
    if len(names) != x.size:
        raise DataError(f"draw_predicted_vs_measured labels has {len(names)} entries, expected {x.size}")
    fig, _ = new_figure(5.0, 5.0)
    ax = fig.add_subplot()
    finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
    top = float(finite.max()) * 1.08 if finite.size and finite.max() > 0 else 1.0
    ax.plot([0, top], [0, top], linestyle="--", color="0.4", linewidth=1.0, label="y = x")
    if measured_err is not None:
        err = np.asarray(measured_err, dtype=float)
        if err.shape not in ((x.size,), (2, x.size)):
            raise DataError(f"draw_predicted_vs_measured measured_err has shape {err.shape}, expected ({x.size},) or (2, {x.size})")
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor="0.5", elinewidth=0.8, capsize=2)
    ax.scatter(x, y, s=28, color=mpl.colormaps["tab10"](1), edgecolor="black", linewidth=0.5,
               label="class", zorder=3)
    for xi, yi, c in zip(x, y, names, strict=True):
        ax.annotate(c, (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_aspect("equal")
    ax.set_xlabel("Gaussian-predicted class error")
    ax.set_ylabel("measured class error (probe)")
    ax.set_title(f"{title}\nSpearman $\\rho$ = {_rho_text(rho)}" if rho is not None else title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def plot_predicted_vs_measured(predicted: ArrayLike, measured: ArrayLike, labels: Sequence[Any],
                               path: str | os.PathLike, title: str, rho: float | None = None,
                               measured_err: ArrayLike | None = None) -> Path:
    """Write ``draw_predicted_vs_measured`` as a PNG at ``path``; returns the path."""
    return save_figure(draw_predicted_vs_measured(predicted, measured, labels, title, rho, measured_err), path)


def draw_encoder_comparison(
    imbalance: ArrayLike,
    class_gap: ArrayLike,
    encoders: Sequence[Any],
    title: str,
    xlabel: str = "spectral-imbalance score",
    rho: float | None = None,
) -> Figure:
    """One point per encoder: spectral-imbalance score (x) against measured class gap (y).

    Points are labelled by encoder; the Spearman ``rho`` of the two rankings
    and the number of encoders go into the title. DataError for mismatched lengths.
    """
    x = _vec(imbalance, "draw_encoder_comparison imbalance")
    y = _vec(class_gap, "draw_encoder_comparison class_gap", x.size)
    names = [str(e) for e in encoders]
    if len(names) != x.size:
        raise DataError(f"draw_encoder_comparison encoders has {len(names)} entries, expected {x.size}")
    fig, _ = new_figure(5.6, 4.4)
    ax = fig.add_subplot()
    ax.scatter(x, y, s=36, color=mpl.colormaps["tab10"](2), edgecolor="black", linewidth=0.5)
    for xi, yi, e in zip(x, y, names, strict=True):
        ax.annotate(e, (xi, yi), xytext=(4, 4), textcoords="offset points", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("class gap (best - worst class accuracy)")
    ax.set_title(f"{title}\nSpearman $\\rho$ = {_rho_text(rho)} over {x.size} encoders")
    ax.grid(alpha=0.3)
    return fig


def plot_encoder_comparison(imbalance: ArrayLike, class_gap: ArrayLike, encoders: Sequence[Any],
                            path: str | os.PathLike, title: str,
                            xlabel: str = "spectral-imbalance score", rho: float | None = None) -> Path:
    """Write ``draw_encoder_comparison`` as a PNG at ``path``; returns the path."""
    return save_figure(draw_encoder_comparison(imbalance, class_gap, encoders, title, xlabel, rho), path)
