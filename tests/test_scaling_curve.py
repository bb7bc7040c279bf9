"""The exponential-plateau fit: parameter recovery, closed forms, bootstrap coverage, errors, and its plot."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from scipy import stats as sps
from scipy.optimize import minimize_scalar

from datalign.core.errors import DataError
from datalign.studies.efficient_alignment.plots import (
    mean_with_ci,
    plot_score_vs_fraction,
    score_vs_fraction_figure,
)
from datalign.studies.efficient_alignment.scaling import (
    fit_plateau,
    fit_plateau_paper,
    fraction_of_gain_x,
    plateau_curve,
    scaling_report,
)

X_LEVELS = np.array([0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0])


def synthetic(r: float, a: float, b: float, sd: float, seed: int, seeds: int = 3):
    x = np.repeat(X_LEVELS, seeds)
    y = plateau_curve(x, r, a, b) + np.random.default_rng(seed).normal(0.0, sd, x.size)
    return x, y


def test_exact_points_give_the_parameters_and_closed_forms():
    r, a, b = 83.17, 18.27, 0.3  # the paper's HH fit
    x = X_LEVELS
    fit = fit_plateau(x, plateau_curve(x, r, a, b), n_boot=0)
    assert (fit.r, fit.a, fit.b) == pytest.approx((r, a, b), rel=1e-6)
    assert fit.r2 == pytest.approx(1.0, abs=1e-10)
    assert fit.x_90 == pytest.approx(math.log(10) / b) and fit.x_95 == pytest.approx(math.log(20) / b)
    assert fit.saving == pytest.approx(100 - math.log(20) / b)
    # R(x_q) = a + q (r - a): the closed form is the share q of the gain.
    for q in (0.5, 0.9, 0.95):
        xq = fraction_of_gain_x(b, q)
        assert plateau_curve(xq, r, a, b) == pytest.approx(a + q * (r - a), rel=1e-12)
    assert fit.plateau and fit.status == "plateau"


def test_three_budgets_fix_the_curve_and_do_not_test_its_shape():
    """With 3 distinct x either reading passes through every x's mean: R² = 1 with one seed, whatever
    the scores; with 4 the points can contradict the curve (here: a straight line, R² < 1)."""
    x3, y3 = np.array([0.0, 10.0, 100.0]), np.array([0.5, 0.75, 0.8])
    for fitter in (fit_plateau, fit_plateau_paper):
        fit = fitter(x3, y3, n_boot=0)
        assert fit.n_x == 3 and not fit.shape_tested
        assert fit.r2 == pytest.approx(1.0, abs=1e-6)
    x4 = np.array([0.0, 10.0, 50.0, 100.0])
    fit = fit_plateau(x4, 0.5 + 0.003 * x4 + np.array([0.0, 0.02, -0.02, 0.0]), n_boot=0)
    assert fit.n_x == 4 and fit.shape_tested and fit.r2 < 0.999
    assert fit_plateau(*synthetic(80, 20, 0.3, 1.0, seed=0), n_boot=0).shape_tested


def test_recovers_parameters_from_noisy_points():
    r, a, b = 27.48, 7.60, 0.055  # the paper's UltraFeedback fit
    x, y = synthetic(r, a, b, sd=0.8, seed=11)
    fit = fit_plateau(x, y, n_boot=200, seed=1)
    for name, true in (("r", r), ("a", a), ("b", b)):
        est, se = getattr(fit, name), fit.stderr[name]
        assert abs(est - true) < 4 * se, (name, est, true, se)
        lo, hi = fit.ci[name]
        assert lo < est < hi
    assert fit.r2 > 0.95 and fit.plateau and fit.n_failed == 0
    lo95, hi95 = fit.ci["x_95"]
    # The x_95 interval is b's interval mapped through ln 20 / b.
    assert lo95 == pytest.approx(math.log(20) / fit.ci["b"][1])
    assert hi95 == pytest.approx(math.log(20) / fit.ci["b"][0])
    assert fit.ci["saving"] == pytest.approx((100 - hi95, 100 - lo95))


def test_fit_matches_an_independent_profile_least_squares():
    # For fixed b the model is linear in (r, a): profile b on a fine 1-D search.
    x, y = synthetic(24.66, 8.45, 0.04, sd=1.0, seed=3)

    def profile(b: float) -> tuple[float, np.ndarray]:
        e = np.exp(-b * x)
        design = np.column_stack([1 - e, e])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        return float(np.sum((design @ coef - y) ** 2)), coef

    best = minimize_scalar(lambda b: profile(b)[0], bounds=(1e-4, 5.0), method="bounded",
                           options={"xatol": 1e-10})
    coef = profile(best.x)[1]
    fit = fit_plateau(x, y, n_boot=0)
    assert (fit.r, fit.a, fit.b) == pytest.approx((coef[0], coef[1], best.x), rel=1e-4)


def test_paper_reading_fixes_r_and_a_to_observed_means():
    x, y = synthetic(83.17, 18.27, 0.3, sd=1.0, seed=2)
    fit = fit_plateau_paper(x, y, n_boot=100, seed=0)
    assert fit.reading == "paper"
    assert fit.r == pytest.approx(y[x == 100].mean()) and fit.a == pytest.approx(y[x == 0].mean())
    ref = minimize_scalar(lambda b: np.sum((plateau_curve(x, fit.r, fit.a, b) - y) ** 2),
                          bounds=(1e-4, 5.0), method="bounded", options={"xatol": 1e-10})
    assert fit.b == pytest.approx(ref.x, rel=1e-4)
    assert fit.stderr["r"] is None and fit.stderr["b"] > 0
    assert fit.ci["r"][0] <= fit.r <= fit.ci["r"][1]


def test_straight_line_has_no_plateau():
    x = np.repeat(X_LEVELS, 3)
    y = 5.0 + 0.2 * x + np.random.default_rng(4).normal(0, 0.5, x.size)
    fit = fit_plateau(x, y, n_boot=50, seed=0)
    assert not fit.plateau
    assert fit.x_90 is None and fit.x_95 is None and fit.saving is None
    assert fit.status.startswith("no plateau: 95% of the gain would need x = ")
    assert fit.x_95_extrapolated > 100
    record = fit.to_dict()
    json.dumps(record, allow_nan=False)
    assert record["x_95"] is None and record["status"] == fit.status


def test_bootstrap_counts_failed_refits_and_is_seeded():
    # 3 distinct single points: a resample keeps all three x with probability 3!/3^3 = 2/9.
    x = np.array([0.0, 10.0, 100.0])
    y = np.array([10.0, 20.0, 25.0])
    n_boot = 300
    fit = fit_plateau(x, y, n_boot=n_boot, seed=5)
    lo, hi = sps.binom.ppf([0.0005, 0.9995], n_boot, 7 / 9)
    assert lo <= fit.n_failed <= hi
    again = fit_plateau(x, y, n_boot=n_boot, seed=5)
    assert again.ci == fit.ci and again.n_failed == fit.n_failed


def test_bootstrap_ci_of_b_covers_near_nominal():
    r, a, b = 25.0, 8.0, 0.05
    reps, covered = 100, 0
    for rep in range(reps):
        x, y = synthetic(r, a, b, sd=1.5, seed=1000 + rep)
        lo, hi = fit_plateau(x, y, n_boot=100, seed=rep).ci["b"]
        covered += lo <= b <= hi
    assert 0.85 <= covered / reps <= 0.99, covered


@pytest.mark.parametrize(("x", "y", "message"), [
    ([0, 0, 50, 50], [1, 2, 3, 4], "needs at least 3 distinct x values to fit r, a and b, got 2 among 4 points"),
    ([0, 10, 100], [3, 3, 3], r"y is constant \(3\) over all 3 points"),
    ([0, 10, 100], [1, np.nan, 3], r"1 non-finite value\(s\) among 3"),
    ([0, 10, 150], [1, 2, 3], r"must lie in \[0, 100\], got \[0, 150\]"),
    ([0, 10, 100], [1, 2], r"x and y differ in length \(3 vs 2\)"),
])
@pytest.mark.parametrize("fitter", [fit_plateau, fit_plateau_paper])
def test_degenerate_inputs_are_one_line_errors(fitter, x, y, message):
    with pytest.raises(DataError, match=message) as info:
        fitter(x, y, n_boot=0)
    assert "\n" not in str(info.value) and fitter.__name__ in str(info.value)


def test_scaling_report_holds_both_readings_as_json():
    x, y = synthetic(27.48, 7.60, 0.055, sd=0.5, seed=8)
    report = scaling_report(x, y, n_boot=30, seed=2)
    assert set(report) == {"free", "paper"}
    assert report["paper"]["reading"] == "paper" and report["free"]["n_boot"] == 30
    json.dumps(report, allow_nan=False)


# ---------------------------------------------------------------- plot


def test_mean_with_ci_is_the_t_interval():
    x = [0, 0, 0, 10, 50, 50]
    y = [1.0, 2.0, 4.0, 5.0, 6.0, 8.0]
    levels, means, half, counts = mean_with_ci(x, y, confidence=0.9)
    assert levels.tolist() == [0, 10, 50] and counts.tolist() == [3, 1, 2]
    np.testing.assert_allclose(means, [7 / 3, 5.0, 7.0])
    ref = sps.t.interval(0.9, 2, loc=7 / 3, scale=sps.sem([1.0, 2.0, 4.0]))
    assert half[0] == pytest.approx(ref[1] - 7 / 3)
    assert np.isnan(half[1])


def _points_and_fits():
    points, fits = {}, {}
    for name, (r, a, b) in {"isa": (26.0, 8.0, 0.2), "random": (26.0, 8.0, 0.04)}.items():
        x, y = synthetic(r, a, b, sd=0.5, seed=len(name))
        points[name] = (x, y)
        fits[name] = fit_plateau(x, y, n_boot=0)
    return points, fits


@pytest.mark.parametrize("log_x", [False, True])
def test_score_plot_has_one_series_and_one_fitted_curve_per_method(log_x):
    points, fits = _points_and_fits()
    fig = score_vs_fraction_figure(points, {"isa": fits["isa"], "random": fits["random"].to_dict()},
                                   log_x=log_x, ylabel="win rate (%)")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    f_isa, f_rand = fits["isa"], fits["random"]
    assert labels == [
        "isa", f"isa fit (r={f_isa.r:.3g}, a={f_isa.a:.3g}, b={f_isa.b:.3g})",
        "random", f"random fit (r={f_rand.r:.3g}, a={f_rand.a:.3g}, b={f_rand.b:.3g})",
    ]
    fit_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(fit_lines) == 2
    for line, fit in zip(fit_lines, (f_isa, f_rand), strict=True):
        gx, gy = line.get_xdata(), line.get_ydata()
        assert gx.min() == 0.0 and gx.max() == 100.0
        np.testing.assert_allclose(gy, plateau_curve(gx, fit.r, fit.a, fit.b))
    # The markers are the per-x means, in the colour of their fitted curve.
    containers = ax.containers
    assert len(containers) == 2
    for container, name, line in zip(containers, ("isa", "random"), fit_lines, strict=True):
        marker_line = container.lines[0]
        _, means, _, _ = mean_with_ci(*points[name])
        np.testing.assert_allclose(marker_line.get_ydata(), means)
        assert to_rgba(marker_line.get_color()) == to_rgba(line.get_color())
    assert ax.get_xscale() == ("symlog" if log_x else "linear")
    assert ax.get_ylabel() == "win rate (%) (mean, 95% CI)"


def test_score_plot_writes_png_atomically_and_rejects_stray_fits(tmp_path):
    points, fits = _points_and_fits()
    out = plot_score_vs_fraction(points, tmp_path / "fig" / "scaling.png", fits=fits, log_x=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["scaling.png"]
    with pytest.raises(DataError, match=r"fits given for methods without points: \['density'\]"):
        score_vs_fraction_figure(points, {"density": fits["isa"]})
    points_only = score_vs_fraction_figure({"isa": points["isa"]})
    assert [t.get_text() for t in points_only.axes[0].get_legend().get_texts()] == ["isa"]
