"""How much a correlation rests on single points or on two clusters of points.

A Pearson r over a handful of (alignment, loss) points can be carried by one
point, or by two groups of points far apart in alignment with no trend inside
either (two domains, say). :func:`leave_one_out` and :func:`two_cluster_split`
say which, so that a summary can report the trend in words a reader trusts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from datalign.core.errors import DataError

#: Share of the variance of x explained by the best split into two groups at or
#: above which the points are called two clusters. Points spread evenly along x
#: give 0.75 (each half keeps a quarter of the variance), so 0.9 means groups
#: clearly apart, not a spread.
CLUSTER_SHARE = 0.9


def _pair(x: ArrayLike, y: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if xa.size != ya.size:
        raise DataError(f"{what}: x has {xa.size} values, y has {ya.size}")
    if xa.size < 3:
        raise DataError(f"{what}: needs at least 3 points, got {xa.size}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise DataError(f"{what}: x and y must be finite")
    return xa, ya


def _r(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson r, or None where it is undefined (fewer than 3 points, a constant side)."""
    if x.size < 3:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy = float(dx @ dx), float(dy @ dy)
    if sxx <= 0 or syy <= 0:
        return None
    return float(np.clip((dx @ dy) / math.sqrt(sxx * syy), -1.0, 1.0))


def leave_one_out(x: ArrayLike, y: ArrayLike) -> dict[str, Any]:
    """Pearson r with each point left out in turn, and each point's Cook's distance.

    For n points (x_i, y_i): ``r_without[i]`` is r over the other n-1 points (None
    where undefined: n-1 < 3 or a constant side). The *most influential* point is
    the one whose removal moves r most, ``argmax_i |r - r_without[i]|``.
    ``cooks_distance[i]`` is Cook's D of the least-squares line y = a + b x
    (p = 2 parameters): ``D_i = e_i^2 / (p s^2) * h_i / (1 - h_i)^2`` with residual
    e_i, leverage ``h_i = 1/n + (x_i - mean x)^2 / S_xx`` and
    ``s^2 = sum e^2 / (n - 2)`` (Cook 1977, eq. 8); D_i > 1 is the usual flag.
    None where undefined (a perfect fit, or h_i = 1).

    Returns ``r``, ``r_without`` (list), ``most_influential`` (index),
    ``r_without_most_influential``, ``r_loo_min``, ``r_loo_max`` (over the defined
    values), ``cooks_distance`` (list) and ``max_cooks_distance``. x, y of
    shape (n,), n >= 3, finite, x and y not constant; else :class:`DataError`.
    """
    xa, ya = _pair(x, y, "leave_one_out")
    n = xa.size
    r = _r(xa, ya)
    if r is None:
        raise DataError("leave_one_out: x or y is constant, r is undefined")
    keep = ~np.eye(n, dtype=bool)
    without = [_r(xa[keep[i]], ya[keep[i]]) for i in range(n)]
    defined = [v for v in without if v is not None]
    shifts = [abs(r - v) if v is not None else -1.0 for v in without]
    most = int(np.argmax(shifts))

    dx = xa - xa.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (ya - ya.mean())) / sxx
    resid = ya - (ya.mean() + slope * dx)
    s2 = float(resid @ resid) / (n - 2) if n > 2 else 0.0
    leverage = 1.0 / n + dx**2 / sxx
    cooks: list[float | None] = []
    for e, h in zip(resid, leverage, strict=True):
        if s2 <= 0 or h >= 1.0:
            cooks.append(None)
        else:
            cooks.append(float(e**2 / (2 * s2) * h / (1.0 - h) ** 2))
    finite_cooks = [c for c in cooks if c is not None]
    return {
        "r": r,
        "r_without": without,
        "most_influential": most,
        "r_without_most_influential": without[most],
        "r_loo_min": min(defined) if defined else None,
        "r_loo_max": max(defined) if defined else None,
        "cooks_distance": cooks,
        "max_cooks_distance": max(finite_cooks) if finite_cooks else None,
    }


def two_cluster_split(x: ArrayLike, y: ArrayLike, share: float = CLUSTER_SHARE) -> dict[str, Any]:
    """The best split of the points into two groups along x, and r within each group.

    The split is the exact 1-D two-means solution: over the n-1 cuts of the sorted
    x, the one with the least within-group sum of squares. ``between_share`` =
    1 - within SS / total SS of x (1: two tight groups, 0.75: points spread
    evenly). ``clustered`` is ``between_share >= share`` (default
    :data:`CLUSTER_SHARE`) with at least two points per group. ``low`` / ``high``
    list the indices of each group; ``r_low`` / ``r_high`` are r within the
    groups (None with fewer than 3 points or a constant side). x, y of shape
    (n,), n >= 3, finite; else :class:`DataError`.
    """
    xa, ya = _pair(x, y, "two_cluster_split")
    order = np.argsort(xa, kind="stable")
    xs = xa[order]
    total = float(((xs - xs.mean()) ** 2).sum())
    best_cut, best_within = 1, math.inf
    for cut in range(1, xs.size):
        left, right = xs[:cut], xs[cut:]
        within = float(((left - left.mean()) ** 2).sum() + ((right - right.mean()) ** 2).sum())
        if within < best_within:
            best_cut, best_within = cut, within
    low, high = sorted(order[:best_cut].tolist()), sorted(order[best_cut:].tolist())
    between = 1.0 - best_within / total if total > 0 else 0.0
    return {
        "between_share": between,
        "clustered": bool(between >= share and len(low) >= 2 and len(high) >= 2),
        "threshold": float(share),
        "low": low,
        "high": high,
        "r_low": _r(xa[low], ya[low]),
        "r_high": _r(xa[high], ya[high]),
    }


def strength_words(r: float | None) -> str:
    """A plain word for |r|: negligible (< 0.1), weak (< 0.3), moderate (< 0.5), strong."""
    if r is None or not math.isfinite(r):
        return "undefined"
    a = abs(r)
    return "negligible" if a < 0.1 else "weak" if a < 0.3 else "moderate" if a < 0.5 else "strong"
