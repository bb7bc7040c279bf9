"""Figures of the study: alignment heatmap, alignment-vs-loss scatter, loss curves, bars.

Every function draws on its own ``Figure`` with an Agg canvas (no pyplot, so no
global figure state and no display backend), writes a PNG at 150 dpi
atomically and returns the path it wrote.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnchoredText
from matplotlib.ticker import EngFormatter, LogFormatter
from numpy.typing import ArrayLike

from datalign.core.errors import DataError
from datalign.core.io import atomic_path
from datalign.stats.correlation import regression_band

DPI = 150


def new_figure(width: float, height: float) -> tuple[Figure, FigureCanvasAgg]:
    """A figure of ``width`` x ``height`` inches at the house DPI on an Agg canvas (no display needed)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    return fig, FigureCanvasAgg(fig)


def legend_entries(fig: Figure) -> list[str]:
    """The texts of every legend of ``fig``, axes by axes, in drawing order."""
    entries: list[str] = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            entries += [t.get_text() for t in legend.get_texts()]
    return entries


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG through a temporary sibling, renamed into place when complete.

    The PNG's text chunks carry the figure's titles and legend entries
    (``Title``; ``Legend``, a JSON list), so a plot's contents can be checked
    from the file (``PIL.Image.open(path).text``) as a reader sees them.
    """
    target = Path(path)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    metadata = {"Title": " | ".join(titles), "Legend": json.dumps(legend_entries(fig))}
    with atomic_path(target) as tmp:
        # The temporary name has no .png suffix, so the format is given explicitly.
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", metadata=metadata)
    return target


def _vector(values: ArrayLike, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    if n is not None and arr.size != n:
        raise DataError(f"{name} has {arr.size} values, expected {n}")
    return arr


def _labels(labels: Sequence[Any] | None, name: str, n: int) -> list[str] | None:
    if labels is None:
        return None
    out = [str(v) for v in labels]
    if len(out) != n:
        raise DataError(f"{name} has {len(out)} entries, expected {n}")
    return out


def _text_colour(rgba: Sequence[float]) -> str:
    # Relative luminance (ITU-R BT.709 weights) decides black or white text on a cell.
    lum = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]
    return "black" if lum > 0.5 else "white"


def alignment_heatmap(
    values: ArrayLike,
    row_labels: Sequence[Any],
    col_labels: Sequence[Any],
    path: str | os.PathLike,
    title: str,
    annotate: bool = True,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    fmt: str = "{:.2f}",
) -> Path:
    """Heatmap of a (rows x cols) matrix, e.g. alignment of every dataset pair, with a colourbar.

    The colour scale is [0, 1] when every finite value lies there (coefficients)
    and the finite data range otherwise, unless ``vmin``/``vmax`` are given.
    NaN cells are drawn grey and annotated "n/a". Returns ``path``.
    """
    mat = np.asarray(values, dtype=float)
    if mat.ndim != 2 or mat.size == 0:
        raise DataError(f"alignment_heatmap: values must be a non-empty 2-D array, got shape {mat.shape}")
    n_rows, n_cols = mat.shape
    rows = _labels(row_labels, "alignment_heatmap row_labels", n_rows)
    cols = _labels(col_labels, "alignment_heatmap col_labels", n_cols)
    finite = mat[np.isfinite(mat)]
    if vmin is None or vmax is None:
        # Coefficients (and an all-NaN matrix) get the fixed [0, 1] scale.
        if finite.size == 0 or (finite.min() >= 0.0 and finite.max() <= 1.0):
            lo, hi = 0.0, 1.0
        else:
            lo, hi = float(finite.min()), float(finite.max())
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax

    colormap = mpl.colormaps[cmap].with_extremes(bad="#d0d0d0")
    fig, _ = new_figure(max(4.0, 1.0 + 0.75 * n_cols), max(3.0, 1.0 + 0.55 * n_rows))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(mat), cmap=colormap, vmin=vmin, vmax=vmax, aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n_cols), labels=cols, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n_rows), labels=rows)
    ax.set_title(title)
    # Thin white grid lines between cells keep neighbouring similar colours apart.
    ax.set_xticks(np.arange(n_cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n_rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    if annotate:
        fontsize = 8 if max(n_rows, n_cols) <= 10 else 6
        for i in range(n_rows):
            for j in range(n_cols):
                v = mat[i, j]
                if np.isfinite(v):
                    text, colour = fmt.format(v), _text_colour(image.cmap(image.norm(v)))
                else:
                    text, colour = "n/a", "black"
                ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=fontsize)
    return save_figure(fig, path)


def _fmt_num(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(float(value), spec)


def _fmt_p(p: Any) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    p = float(p)
    if p == 0.0:
        return "< 1e-300"
    return f"{p:.3f}" if p >= 1e-3 else f"{p:.1e}"


def _stats_text(stats: Mapping[str, Any]) -> str:
    conf = stats.get("confidence", 0.95)
    lines = [
        f"n = {stats.get('n', 'n/a')}",
        f"r = {_fmt_num(stats.get('pearson_r'))}  (p = {_fmt_p(stats.get('pearson_p'))})",
        f"$r^2$ = {_fmt_num(stats.get('r2'))}",
        f"$\\rho$ = {_fmt_num(stats.get('spearman_rho'))}  (p = {_fmt_p(stats.get('spearman_p'))})",
    ]
    if stats.get("r_ci_low") is not None and stats.get("r_ci_high") is not None:
        lines.append(
            f"{round(100 * float(conf))}% CI r: [{_fmt_num(stats['r_ci_low'])}, "
            f"{_fmt_num(stats['r_ci_high'])}]"
        )
    return "\n".join(lines)


Box = tuple[float, float, float, float]


def _overlap(a: Box, b: Box) -> float:
    """Area (pixels^2) of the intersection of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(
    ax: Any,
    renderer: Any,
    x: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    obstacles: list[tuple[Box, float]],
) -> None:
    """Annotate each point, choosing per label the offset that covers the least.

    Candidates are eight directions around the point at two distances; a greedy
    pass scores each by its pixel overlap with labels already placed, the other
    markers and the weighted ``obstacles`` (legend, statistics box, error
    bars), plus any part outside the axes, and keeps the lowest (the first
    candidate wins ties). Labels set far from their point get a thin leader line.
    """
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    candidates = [(dx * d, dy * d) for d in (5, 13) for dx, dy in directions]
    points = ax.transData.transform(np.column_stack([x, y]))
    radius = renderer.points_to_pixels(3.5)
    markers = [(px - radius, py - radius, px + radius, py + radius) for px, py in points]
    frame = ax.get_window_extent(renderer)
    axes_box: Box = (frame.x0, frame.y0, frame.x1, frame.y1)
    placed: list[Box] = []
    for i, label in enumerate(labels):
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        best: tuple[float, int, int, str, str, Box] | None = None
        for dx, dy in candidates:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            ann = ax.annotate(label, (x[i], y[i]), xytext=(dx, dy), textcoords="offset points",
                              ha=ha, va=va, fontsize=7)
            ext = ann.get_window_extent(renderer)
            ann.remove()
            box: Box = (ext.x0, ext.y0, ext.x1, ext.y1)
            score = sum(_overlap(box, p) for p in placed)
            score += sum(_overlap(box, m) for j, m in enumerate(markers) if j != i)
            score += sum(w * _overlap(box, o) for o, w in obstacles)
            # Text past the frame is clipped or collides with tick labels.
            score += 3.0 * (ext.width * ext.height - _overlap(box, axes_box))
            if best is None or score < best[0]:
                best = (score, dx, dy, ha, va, box)
        assert best is not None
        _, dx, dy, ha, va, box = best
        leader = {"arrowstyle": "-", "color": "0.5", "lw": 0.5} if max(abs(dx), abs(dy)) > 5 else None
        ax.annotate(label, (x[i], y[i]), xytext=(dx, dy), textcoords="offset points",
                    ha=ha, va=va, fontsize=7, arrowprops=leader)
        placed.append(box)


def correlation_scatter(
    x: ArrayLike,
    y: ArrayLike,
    labels: Sequence[Any] | None,
    stats: Mapping[str, Any],
    path: str | os.PathLike,
    title: str,
    xlabel: str = "alignment coefficient",
    ylabel: str = "cross-entropy loss",
    xerr: ArrayLike | None = None,
    groups: Sequence[Any] | None = None,
    group_title: str | None = None,
    references: Mapping[str, float] | None = None,
    reference_label: str = "reference",
) -> Path:
    """Scatter of y against x with the least-squares line, its confidence band and the statistics.

    ``stats`` is the dict of ``datalign.stats.correlation.correlation_stats`` for (x, y); its
    ``confidence`` sets the band level. ``xerr`` gives horizontal error bars as
    matplotlib does: shape (n,) for symmetric half-widths or (2, n) for
    (x - low, high - x), e.g. from an alignment CI. ``groups`` colours points by
    group (e.g. evaluation set) with a legend, one entry per group even when there
    is one. ``references`` draws a dashed horizontal line per group name (or per
    name, in grey, without groups) at its y, e.g. the untuned base model's loss on
    each evaluation set, labelled ``"<reference_label>: <name>"``. Returns ``path``.
    """
    xa = _vector(x, "correlation_scatter x")
    n = xa.size
    ya = _vector(y, "correlation_scatter y", n)
    names = _labels(labels, "correlation_scatter labels", n)
    group_names = _labels(groups, "correlation_scatter groups", n)
    err = None
    if xerr is not None:
        err = np.asarray(xerr, dtype=float)
        if err.shape not in ((n,), (2, n)):
            raise DataError(f"correlation_scatter xerr has shape {err.shape}, expected ({n},) or (2, {n})")
        if np.any(err[np.isfinite(err)] < 0):
            raise DataError("correlation_scatter xerr holds negative half-widths; pass distances, not bounds")
    confidence = float(stats.get("confidence", 0.95))

    fig, canvas = new_figure(6.4, 4.8)
    ax = fig.add_subplot()
    slope = stats.get("slope")
    descending = slope is not None and float(slope) < 0

    finite = np.isfinite(xa) & np.isfinite(ya)
    if finite.sum() >= 3:
        span = float(np.ptp(xa[finite])) or 1.0
        grid = np.linspace(xa[finite].min() - 0.05 * span, xa[finite].max() + 0.05 * span, 200)
        fit, low, high = regression_band(xa[finite], ya[finite], grid, confidence)
        ax.fill_between(grid, low, high, color="tab:gray", alpha=0.2, linewidth=0,
                        label=f"{round(100 * confidence)}% band of the mean", zorder=1)
        ax.plot(grid, fit, color="black", linewidth=1.2, label="least-squares fit", zorder=2)

    if group_names is None:
        order: list[str | None] = [None]
    else:
        order = list(dict.fromkeys(group_names))
    palette = mpl.colormaps["tab10" if len(order) <= 10 else "tab20"]
    for k, group in enumerate(order):
        mask = np.ones(n, bool) if group is None else np.array([g == group for g in group_names])
        colour = palette(k % palette.N)
        if err is not None:
            e = err[mask] if err.ndim == 1 else err[:, mask]
            ax.errorbar(xa[mask], ya[mask], xerr=e, fmt="none", ecolor=colour, alpha=0.6,
                        elinewidth=1.0, capsize=2, zorder=3)
        ax.scatter(xa[mask], ya[mask], s=28, color=colour, edgecolor="black", linewidth=0.5,
                   label=group, zorder=4)
    for name, level in (references or {}).items():
        if not math.isfinite(float(level)):
            raise DataError(f"correlation_scatter reference '{name}' is not finite: {level}")
        colour = palette(order.index(name) % palette.N) if name in order else "dimgray"
        ax.axhline(float(level), color=colour, linestyle="--", linewidth=1.0, alpha=0.9,
                   label=f"{reference_label}: {name}", zorder=2)

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend = None
    if ax.get_legend_handles_labels()[0]:
        legend = ax.legend(loc="lower left" if descending else "lower right", fontsize=7,
                           framealpha=0.8, title=group_title, title_fontsize=7)
    # A falling trend leaves the upper right empty, a rising one the upper left.
    box = AnchoredText(_stats_text(stats), loc="upper right" if descending else "upper left",
                       prop={"fontsize": 8}, frameon=True)
    box.patch.set_alpha(0.85)
    ax.add_artist(box)
    if names is not None:
        # Label placement measures text in pixels, so it needs the final layout.
        canvas.draw()
        renderer = canvas.get_renderer()
        obstacles: list[tuple[Box, float]] = []
        for artist in (box, legend):
            if artist is not None:
                ext = artist.get_window_extent(renderer)
                obstacles.append(((ext.x0, ext.y0, ext.x1, ext.y1), 3.0))
        if err is not None:
            lo_err, hi_err = (err, err) if err.ndim == 1 else (err[0], err[1])
            left = ax.transData.transform(np.column_stack([xa - lo_err, ya]))
            right = ax.transData.transform(np.column_stack([xa + hi_err, ya]))
            half = renderer.points_to_pixels(1.5)
            obstacles += [((lx, ly - half, rx, ry + half), 0.5)
                          for (lx, ly), (rx, ry) in zip(left, right, strict=True)
                          if np.isfinite([lx, ly, rx, ry]).all()]
        _place_labels(ax, renderer, xa, ya, names, obstacles)
    return save_figure(fig, path)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` points: out[i] = mean(values[i : i + window]).

    Each window is summed on its own (not by differencing a running sum), so a
    NaN spoils only the windows that contain it and long curves accumulate no
    rounding drift.
    """
    return np.lib.stride_tricks.sliding_window_view(values, window).mean(axis=1)


def loss_curves(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | os.PathLike,
    title: str,
    smooth: int = 1,
    log_y: bool = False,
    xlabel: str = "tokens seen",
    ylabel: str = "training loss",
) -> Path:
    """Training loss against tokens seen, one line per run.

    ``smooth`` > 1 replaces each curve by its trailing moving average over
    ``smooth`` steps (capped at the curve length), plotted at the token count
    of the window's last step. ``log_y`` puts the loss on a log axis. Returns ``path``.
    """
    if not curves:
        raise DataError("loss_curves: no curves to plot")
    if smooth < 1:
        raise DataError(f"loss_curves: smooth must be >= 1 steps, got {smooth}")
    fig, _ = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    for name, (tokens, loss) in curves.items():
        t = _vector(tokens, f"loss_curves[{name!r}] tokens")
        v = _vector(loss, f"loss_curves[{name!r}] loss", t.size)
        if t.size == 0:
            raise DataError(f"loss_curves: curve {name!r} is empty")
        w = min(smooth, t.size)
        if w > 1:
            v = _moving_average(v, w)
            t = t[w - 1:]
        ax.plot(t, v, linewidth=1.2, label=str(name), marker="o" if t.size == 1 else None)
    if log_y:
        ax.set_yscale("log")
        # Losses span less than a decade or two: plain numbers read better than 4x10^0.
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.4)))
    ax.xaxis.set_major_formatter(EngFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel + (f" ({smooth}-step mean)" if smooth > 1 else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if log_y:
        ax.grid(which="minor", alpha=0.1)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def coefficient_bars(
    names: Sequence[Any],
    values: ArrayLike,
    ci_low: ArrayLike,
    ci_high: ArrayLike,
    path: str | os.PathLike,
    title: str,
    ylabel: str,
) -> Path:
    """Bars of one coefficient per item (e.g. diversity per dataset) with CI whiskers.

    Whiskers span [ci_low, ci_high] as given, whether or not they straddle the
    bar (a percentile bootstrap interval need not contain the estimate); NaN
    bounds draw no whisker. Returns ``path``.
    """
    labels = [str(name) for name in names]
    n = len(labels)
    if n == 0:
        raise DataError("coefficient_bars: no bars to plot")
    v = _vector(values, "coefficient_bars values", n)
    lo = _vector(ci_low, "coefficient_bars ci_low", n)
    hi = _vector(ci_high, "coefficient_bars ci_high", n)
    both = np.isfinite(lo) & np.isfinite(hi)
    if np.any(lo[both] > hi[both]):
        bad = labels[int(np.flatnonzero(both & (lo > hi))[0])]
        raise DataError(f"coefficient_bars: ci_low > ci_high for {bad!r}")

    fig, _ = new_figure(max(4.0, 1.2 + 0.7 * n), 4.0)
    ax = fig.add_subplot()
    pos = np.arange(n)
    ax.bar(pos, v, color=mpl.colormaps["tab10"](0), alpha=0.85, zorder=2)
    ax.errorbar(pos[both], (lo[both] + hi[both]) / 2, yerr=(hi[both] - lo[both]) / 2,
                fmt="none", ecolor="black", elinewidth=1.0, capsize=4, zorder=3)
    long_names = max(len(s) for s in labels) > 8
    ax.set_xticks(pos, labels=labels, rotation=30 if long_names else 0,
                  ha="right" if long_names else "center", rotation_mode="anchor")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3, zorder=0)
    return save_figure(fig, path)
