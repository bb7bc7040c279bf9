"""The exponential-plateau scaling curve of score against data fraction.

Khera, Ghosh & Dutta 2024 (PAPERS.md part 2) model alignment performance at
x percent of the data as

    R(x) = r - (r - a) exp(-b x),        x in [0, 100],

r the plateau, a the unaligned score (R(0) = a), b the rate. The share q of
the gain r - a is reached at R(x_q) = a + q (r - a), i.e.

    x_q = -ln(1 - q) / b,   x_90 = ln 10 / b,   x_95 = ln 20 / b,

and the data the plateau saves is 100 - x_95 percent. :func:`fit_plateau`
fits r, a and b freely (``scipy.optimize.curve_fit``, bounded) with percentile
bootstrap CIs over resampled points; :func:`fit_plateau_paper` is the paper's
apparent reading (r and a read off the data, only b fitted).

A curve that does not level off inside the measured range has no plateau to
speak of: b tends to 0, r runs off to its bound, and x_95 = ln 20 / b lands
beyond the largest x measured. Such a fit is reported as "no plateau", with
x_90, x_95 and the saving left empty (their extrapolations are kept apart).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import OptimizeWarning, curve_fit

from datalign.core.errors import ConfigError, DataError

X_MAX = 100.0
# b is bounded so that exp(-b x) at the smallest positive x is at most e^-50:
# a larger b changes no fitted value, it only lets the optimiser wander.
_B_RANGE_AT_FIRST_X = 50.0
# r and a may lie this many score ranges beyond the observed scores: wide enough
# for any real plateau, finite so a straight line (b -> 0, r -> inf) stops at a bound.
_LEVEL_MARGIN = 10.0
_PARAMS = ("r", "a", "b")


#: With this many distinct x or fewer, either reading of the curve passes through every
#: x's mean score (three free values, or r and a observed and b fitted to one interior x).
MIN_DISTINCT_X_FOR_SHAPE = 3


def plateau_curve(x: ArrayLike, r: float, a: float, b: float) -> np.ndarray:
    """R(x) = r - (r - a) exp(-b x) for x in percent of the data; same shape as ``x``.

    Khera et al. 2024, the exponential-plateau scaling law (PAPERS.md part 2).
    """
    x = np.asarray(x, dtype=float)
    return r - (r - a) * np.exp(-b * x)


def _jacobian(x: np.ndarray, r: float, a: float, b: float) -> np.ndarray:
    """d R / d (r, a, b) at every x: an (n, 3) array (analytic, so refits need no finite differences)."""
    e = np.exp(-b * x)
    return np.column_stack([1.0 - e, e, (r - a) * x * e])


def fraction_of_gain_x(b: float, q: float) -> float:
    """x_q = -ln(1 - q) / b: the percent of data at which the share q of the gain is reached.

    ``b`` >= 0 (per percent of data), ``q`` in (0, 1); ``inf`` when b == 0.
    """
    if not 0.0 < q < 1.0:
        raise ConfigError(f"scaling: the share of the gain q must lie in (0, 1), got {q}")
    return math.inf if b <= 0.0 else -math.log1p(-q) / b


def _check_points(x: ArrayLike, y: ArrayLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.size != ya.size:
        raise DataError(f"{what}: x and y differ in length ({xa.size} vs {ya.size})")
    bad = int((~np.isfinite(xa)).sum() + (~np.isfinite(ya)).sum())
    if bad:
        raise DataError(f"{what}: {bad} non-finite value(s) among {xa.size} (x, y) points")
    if xa.size and (xa.min() < 0.0 or xa.max() > X_MAX):
        raise DataError(f"{what}: x is percent of the data and must lie in [0, 100], "
                        f"got [{xa.min():g}, {xa.max():g}]")
    distinct = np.unique(xa).size
    if distinct < 3:
        raise DataError(f"{what}: needs at least 3 distinct x values to fit r, a and b, "
                        f"got {distinct} among {xa.size} points")
    if ya.max() == ya.min():
        raise DataError(f"{what}: y is constant ({ya[0]:g}) over all {ya.size} points; "
                        "there is no curve to fit")
    return xa, ya


def _b_upper(x: np.ndarray) -> float:
    positive = x[x > 0]
    return _B_RANGE_AT_FIRST_X / float(positive.min())


def _mean_at(x: np.ndarray, y: np.ndarray, value: float) -> float:
    return float(y[x == value].mean())


def _initial_b(x: np.ndarray, y: np.ndarray, a0: float, r0: float, b_hi: float) -> float:
    """A starting rate from where the mean score first crosses half the gain: b = ln 2 / x_half."""
    levels = np.unique(x)
    means = np.array([y[x == v].mean() for v in levels])
    half = a0 + 0.5 * (r0 - a0)
    crossed = (means - half) * np.sign(r0 - a0) >= 0 if r0 != a0 else np.zeros(levels.size, bool)
    hit = levels[crossed & (levels > 0)]
    x_half = float(hit[0]) if hit.size else float(levels.max())
    return float(np.clip(math.log(2.0) / x_half, 1e-6 * b_hi, 0.5 * b_hi))


def _r_squared(y: np.ndarray, fitted: np.ndarray) -> float:
    ss_res = float(np.sum((y - fitted) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot


def _fit_free(
    x: np.ndarray, y: np.ndarray, p0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (r, a, b) and their covariance; ``p0`` None means the data-driven start."""
    span = float(np.ptp(y))
    lo_level, hi_level = y.min() - _LEVEL_MARGIN * span, y.max() + _LEVEL_MARGIN * span
    b_hi = _b_upper(x)
    lower = np.array([lo_level, lo_level, 0.0])
    upper = np.array([hi_level, hi_level, b_hi])
    if p0 is None:
        a0 = _mean_at(x, y, x.min())
        r0 = _mean_at(x, y, x.max())
        p0 = np.array([r0, a0, _initial_b(x, y, a0, r0, b_hi)])
    # A start on or outside a bound makes the trust-region solver refuse to run.
    width = upper - lower
    p0 = np.clip(p0, lower + 1e-9 * width, upper - 1e-9 * width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        params, cov = curve_fit(plateau_curve, x, y, p0=p0, bounds=(lower, upper),
                                jac=lambda xx, r, a, b: _jacobian(xx, r, a, b),
                                method="trf", x_scale="jac", max_nfev=2000)
    return params, cov


def _fit_paper(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r, a = observed mean score at the largest and the smallest x; b by least squares."""
    r = _mean_at(x, y, x.max())
    a = _mean_at(x, y, x.min())
    b_hi = _b_upper(x)
    b0 = _initial_b(x, y, a, r, b_hi)

    def model(xx: np.ndarray, b: float) -> np.ndarray:
        return plateau_curve(xx, r, a, b)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        (b,), cov = curve_fit(model, x, y, p0=[b0], bounds=([0.0], [b_hi]),
                              jac=lambda xx, bb: _jacobian(xx, r, a, bb)[:, 2:],
                              method="trf", max_nfev=2000)
    full_cov = np.full((3, 3), np.nan)
    full_cov[2, 2] = cov[0, 0]
    return np.array([r, a, b]), full_cov


@dataclass
class PlateauFit:
    """A fitted R(x) = r - (r - a) exp(-b x) with its derived quantities (x in percent).

    ``reading``: ``"free"`` (r, a, b fitted) or ``"paper"`` (only b).
    ``r2``: coefficient of determination over all points. ``plateau``: whether
    the fit reaches 95% of its gain inside the measured x range (x_95 <=
    ``x_max``); if not, ``x_90``, ``x_95`` and ``saving`` are None and
    ``status`` says "no plateau", while ``x_90_extrapolated`` /
    ``x_95_extrapolated`` keep ln 10 / b and ln 20 / b (inf when b = 0).
    ``saving`` = 100 - x_95 (percent of the data not needed). ``ci`` maps r, a,
    b, x_90, x_95, saving to a percentile bootstrap (low, high), None for an
    unbounded end (b's low end at 0); ``n_failed`` counts bootstrap refits that
    failed (fewer than 3 distinct x drawn, constant y, no convergence).
    ``n_x``: distinct x values. ``shape_tested``: whether the points can
    contradict the curve's shape, i.e. more distinct x than the curve has free
    values (4 or more for both readings: the free fit has three parameters,
    the paper's reading takes r and a from the end points and fits b to the
    rest, so with 3 distinct x either curve passes through every mean and R²
    measures only the seed scatter around those means, 1 with one seed).
    """

    reading: str
    r: float
    a: float
    b: float
    r2: float
    n_points: int
    x_min: float
    x_max: float
    plateau: bool
    status: str
    x_90: float | None
    x_95: float | None
    saving: float | None
    x_90_extrapolated: float
    x_95_extrapolated: float
    n_x: int = 0
    shape_tested: bool = False
    stderr: dict[str, float | None] = field(default_factory=dict)
    ci: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    confidence: float | None = None
    n_boot: int = 0
    n_failed: int = 0
    seed: int | None = None

    def curve(self, x: ArrayLike) -> np.ndarray:
        """R(x) of this fit at ``x`` (percent of data)."""
        return plateau_curve(x, self.r, self.a, self.b)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (infinite extrapolations become None)."""
        out = asdict(self)
        for key in ("x_90_extrapolated", "x_95_extrapolated"):
            if not math.isfinite(out[key]):
                out[key] = None
        out["ci"] = {k: list(v) for k, v in self.ci.items()}
        return out


def _derive(reading: str, params: np.ndarray, cov: np.ndarray, x: np.ndarray,
            y: np.ndarray) -> PlateauFit:
    r, a, b = (float(v) for v in params)
    n_x = int(np.unique(x).size)
    x90, x95 = fraction_of_gain_x(b, 0.90), fraction_of_gain_x(b, 0.95)
    x_max = float(x.max())
    plateau = x95 <= x_max
    if plateau:
        status = "plateau"
        if x95 < float(x[x > 0].min()):
            status = ("plateau reached before the smallest positive x measured: "
                      "x_90 and x_95 are upper bounds")
    else:
        status = (f"no plateau: 95% of the gain would need x = {x95:.4g} percent, beyond the "
                  f"largest x measured ({x_max:g})")
    diag = np.diag(cov) if cov is not None else np.full(3, np.nan)
    stderr = {name: (float(math.sqrt(v)) if np.isfinite(v) and v >= 0 else None)
              for name, v in zip(_PARAMS, diag, strict=True)}
    return PlateauFit(
        reading=reading, r=r, a=a, b=b, r2=_r_squared(y, plateau_curve(x, r, a, b)),
        n_points=int(x.size), x_min=float(x.min()), x_max=x_max, plateau=plateau, status=status,
        x_90=x90 if plateau else None, x_95=x95 if plateau else None,
        saving=X_MAX - x95 if plateau else None,
        x_90_extrapolated=x90, x_95_extrapolated=x95, stderr=stderr,
        n_x=n_x, shape_tested=n_x > MIN_DISTINCT_X_FOR_SHAPE,
    )


def _bootstrap(
    fit: PlateauFit, x: np.ndarray, y: np.ndarray, reading: str, n_boot: int,
    confidence: float, seed: int,
) -> None:
    """Percentile bootstrap over resampled (x, y) points, filling ``fit.ci`` and ``fit.n_failed``.

    Each replicate draws n points with replacement and refits the same reading
    (the free fit starts from the full-data estimate). The x_q interval is
    b's interval mapped through x_q = -ln(1 - q) / b, which is decreasing:
    percentile intervals carry over monotone maps, and this keeps a b interval
    reaching 0 as an x_q interval unbounded above (None) instead of an
    interpolation between infinities.
    """
    rng = np.random.default_rng(seed)
    start = np.array([fit.r, fit.a, fit.b])
    draws: list[np.ndarray] = []
    failed = 0
    n = x.size
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        xs, ys = x[idx], y[idx]
        if np.unique(xs).size < 3 or ys.max() == ys.min():
            failed += 1
            continue
        try:
            params, _ = _fit_free(xs, ys, start) if reading == "free" else _fit_paper(xs, ys)
        except (RuntimeError, ValueError):
            failed += 1
            continue
        draws.append(params)
    fit.n_boot, fit.n_failed, fit.confidence, fit.seed = n_boot, failed, confidence, seed
    if len(draws) < 2:
        return
    alpha = 1.0 - confidence
    table = np.array(draws)
    lo, hi = np.quantile(table, [alpha / 2, 1 - alpha / 2], axis=0)
    ci: dict[str, tuple[float | None, float | None]] = {
        name: (float(lo[i]), float(hi[i])) for i, name in enumerate(_PARAMS)}

    def finite_or_none(v: float) -> float | None:
        return v if math.isfinite(v) else None

    for q, name in ((0.90, "x_90"), (0.95, "x_95")):
        low_x = fraction_of_gain_x(float(hi[2]), q)
        high_x = fraction_of_gain_x(float(lo[2]), q)
        ci[name] = (finite_or_none(low_x), finite_or_none(high_x))
    low95, high95 = ci["x_95"]
    ci["saving"] = (None if high95 is None else X_MAX - high95,
                    None if low95 is None else X_MAX - low95)
    fit.ci = ci


def _check_bootstrap(n_boot: int, confidence: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
        raise ConfigError(f"scaling: n_boot must be a non-negative integer, got {n_boot!r}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"scaling: confidence must lie strictly between 0 and 1, got {confidence}")


def fit_plateau(
    x: ArrayLike, y: ArrayLike, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> PlateauFit:
    """Fit R(x) = r - (r - a) exp(-b x) freely to points (x percent of data, y score).

    ``x``, ``y``: (n,) arrays; repeated x (several seeds) are separate points.
    ``scipy.optimize.curve_fit`` (trust-region reflective, analytic Jacobian)
    within bounds b in [0, 50 / smallest positive x] and r, a within 10 score
    ranges of the observed scores, starting from a = mean score at the
    smallest x, r = mean score at the largest x, b = ln 2 / (first x whose mean
    passes half the gain). Returns a :class:`PlateauFit` with r, a, b, their
    standard errors (from the curve_fit covariance), R^2, x_90, x_95, the
    saving, and ``n_boot`` percentile bootstrap CIs at ``confidence`` (seeded
    by ``seed``; 0 skips the bootstrap). Khera et al. 2024, scaling law
    (PAPERS.md part 2). Fewer than 3 distinct x, constant y, non-finite values
    or x outside [0, 100] is a one-line :class:`DataError`.
    """
    xa, ya = _check_points(x, y, "fit_plateau")
    _check_bootstrap(n_boot, confidence)
    try:
        params, cov = _fit_free(xa, ya)
    except RuntimeError as exc:
        raise DataError(f"fit_plateau: no convergence on {xa.size} points: "
                        f"{str(exc).splitlines()[0]}") from None
    fit = _derive("free", params, cov, xa, ya)
    if n_boot:
        _bootstrap(fit, xa, ya, "free", n_boot, confidence, seed)
    return fit


def fit_plateau_paper(
    x: ArrayLike, y: ArrayLike, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> PlateauFit:
    """The paper's reading: r = mean score at the largest x, a = at the smallest x; only b fitted.

    Khera et al. 2024 report r and a equal to observed scores (full data and
    the unaligned model), so only b looks fitted (PAPERS.md part 2). Here a is
    the mean score at the smallest x given, which is the unaligned score when
    x = 0 is among the points. Same inputs, bounds on b, outputs and errors as
    :func:`fit_plateau`; the bootstrap recomputes r and a on every resample.
    """
    xa, ya = _check_points(x, y, "fit_plateau_paper")
    _check_bootstrap(n_boot, confidence)
    try:
        params, cov = _fit_paper(xa, ya)
    except RuntimeError as exc:
        raise DataError(f"fit_plateau_paper: no convergence on {xa.size} points: "
                        f"{str(exc).splitlines()[0]}") from None
    fit = _derive("paper", params, cov, xa, ya)
    if n_boot:
        _bootstrap(fit, xa, ya, "paper", n_boot, confidence, seed)
    return fit


def scaling_report(
    x: ArrayLike, y: ArrayLike, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> dict[str, Any]:
    """Both readings of one method's points as a JSON-ready dict: ``{"free": ..., "paper": ...}``.

    Each value is :meth:`PlateauFit.to_dict` of :func:`fit_plateau` /
    :func:`fit_plateau_paper` with the same bootstrap settings.
    """
    return {
        "free": fit_plateau(x, y, n_boot=n_boot, confidence=confidence, seed=seed).to_dict(),
        "paper": fit_plateau_paper(x, y, n_boot=n_boot, confidence=confidence, seed=seed).to_dict(),
    }
