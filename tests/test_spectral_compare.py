"""Comparisons (correlations, rankings, augmentations, combinations) and the study's figures."""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from scipy import stats

from datalign.core.errors import DataError
from datalign.studies.spectral_imbalance.compare import (
    PREDICTORS,
    StudySettings,
    analyse_features,
    augmentation_effects,
    class_error_correlations,
    concatenate_features,
    encoder_ranking,
    ensemble_candidates,
    select_by_predicted_gap,
    spearman_with_ci,
)
from datalign.studies.spectral_imbalance.plots import (
    draw_class_spectra,
    draw_encoder_comparison,
    draw_metrics_vs_error,
    draw_predicted_vs_measured,
    plot_class_spectra,
    plot_encoder_comparison,
    plot_metrics_vs_error,
    plot_predicted_vs_measured,
)
from datalign.studies.spectral_imbalance.spectra import METRICS

FAST = StudySettings(n_repeats=2, n_samples=20_000, n_boot=300)


# --- Spearman with bootstrap CI ----------------------------------------------------------


def test_spearman_matches_scipy_and_bootstrap_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = x + rng.normal(scale=0.8, size=12)
    res = spearman_with_ci(x, y, n_boot=500, seed=3)
    ref = stats.spearmanr(x, y)
    assert res["rho"] == pytest.approx(ref.statistic) and res["p"] == pytest.approx(ref.pvalue)
    # The same resamples, one scipy call each.
    idx = np.random.default_rng(3).integers(0, 12, size=(500, 12))
    loop = [stats.spearmanr(x[i], y[i]).statistic for i in idx
            if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0]
    lo, hi = np.quantile(loop, [0.025, 0.975])
    assert res["ci_low"] == pytest.approx(lo) and res["ci_high"] == pytest.approx(hi)
    assert res["boot_used"] + res["boot_skipped"] == 500
    assert res["ci_low"] <= res["rho"] <= res["ci_high"]


def test_spearman_monotone_data_and_degenerate_resamples():
    x = np.arange(5.0)
    res = spearman_with_ci(x, x**3, n_boot=400, seed=1)
    assert res["rho"] == pytest.approx(1.0)
    assert res["ci_low"] == pytest.approx(1.0) and res["ci_high"] == pytest.approx(1.0)
    # With 5 points some resamples repeat one point five times: skipped, not imputed.
    assert res["boot_skipped"] >= 0 and res["boot_used"] == 400 - res["boot_skipped"]
    with pytest.raises(DataError, match="constant"):
        spearman_with_ci(x, np.ones(5))
    with pytest.raises(DataError, match=">= 3 pairs"):
        spearman_with_ci([1.0, 2.0], [2.0, 1.0])


def test_class_error_correlations_rows_and_constant_predictor():
    t = pd.DataFrame({"class": range(6), "trace": [1, 2, 3, 4, 5, 6.0],
                      "predicted_error": [0.0] * 6, "error_mean": [0.1, 0.15, 0.2, 0.3, 0.25, 0.5]})
    out = class_error_correlations(t, predictors=("trace", "predicted_error"), n_boot=200).set_index("predictor")
    assert out.at["trace", "rho"] == pytest.approx(stats.spearmanr(t["trace"], t["error_mean"]).statistic)
    assert math.isnan(out.at["predicted_error", "rho"])
    assert "constant" in out.at["predicted_error", "note"]
    with pytest.raises(DataError, match="no predictor column 'effective_rank'"):
        class_error_correlations(t, predictors=("effective_rank",))


# --- encoder ranking and augmentation effects --------------------------------------------


def _imbalance_table(cv: float, ratio: float) -> pd.DataFrame:
    return pd.DataFrame({"metric": ["trace", "effective_rank"], "mean": [10.0, 5.0],
                         "cv": [cv, 2 * cv], "max_min_ratio": [ratio, ratio + 1]})


def test_encoder_ranking_agreement_and_caveats():
    imb = {"a": _imbalance_table(0.1, 1.5), "b": _imbalance_table(0.3, 2.0),
           "c": _imbalance_table(0.2, 3.0), "d": _imbalance_table(0.4, 2.5)}
    gaps = {"a": 0.05, "b": 0.12, "c": 0.10, "d": 0.20}
    out = encoder_ranking(imb, gaps)
    ranks = out["ranks"].set_index("encoder")
    assert list(ranks["gap_rank"]) == [4, 2, 3, 1]  # 1 = largest gap
    assert list(ranks["trace_cv_rank"]) == [4, 2, 3, 1]
    agree = out["agreement"].set_index(["metric", "statistic"])
    assert agree.at[("trace", "cv"), "spearman_rho"] == pytest.approx(1.0)
    expect = stats.spearmanr([1.5, 2.0, 3.0, 2.5], [0.05, 0.12, 0.10, 0.20]).statistic
    assert agree.at[("trace", "max_min_ratio"), "spearman_rho"] == pytest.approx(expect)
    assert "coarse" in agree.at[("trace", "cv"), "caveat"]
    two = encoder_ranking({"a": imb["a"], "b": imb["b"]}, {"a": 0.1, "b": 0.2})["agreement"]
    assert two["spearman_rho"].isna().all() and two["caveat"].str.contains("only 2").all()
    with pytest.raises(DataError, match="encoders differ"):
        encoder_ranking(imb, {"a": 0.1})


def test_augmentation_effects_are_differences_from_baseline():
    imb = {"none": _imbalance_table(0.2, 2.0), "flip": _imbalance_table(0.1, 1.5)}
    summ = {"none": {"class_gap": 0.2, "worst_class_accuracy": 0.7, "overall_accuracy": 0.85},
            "flip": {"class_gap": 0.15, "worst_class_accuracy": 0.75, "overall_accuracy": 0.86}}
    out = augmentation_effects(imb, summ).set_index(["strategy", "metric"])
    assert out.at[("flip", "trace"), "delta_gap"] == pytest.approx(-0.05)
    assert out.at[("flip", "trace"), "delta_imbalance_cv"] == pytest.approx(-0.1)
    assert out.at[("flip", "effective_rank"), "delta_imbalance_cv"] == pytest.approx(-0.2)
    assert out.at[("none", "trace"), "delta_gap"] == 0.0
    assert out.at[("flip", "trace"), "delta_worst_class_accuracy"] == pytest.approx(0.05)
    with pytest.raises(DataError, match="baseline strategy 'raw'"):
        augmentation_effects(imb, summ, baseline="raw")


# --- combinations ------------------------------------------------------------------------


def _balanced_and_imbalanced(seed: int = 0, n: int = 150, d: int = 10, k: int = 3):
    """Same class means; one feature set gives class 1 a 6x larger covariance spectrum."""
    rng = np.random.default_rng(seed)
    means = 2.5 * np.eye(k, d)
    y = np.repeat(np.arange(k), n)
    noise = rng.normal(size=(k * n, d))
    balanced = means[y] + noise
    scale = np.where(y == 1, math.sqrt(6.0), 1.0)[:, None]
    imbalanced = means[y] + noise * scale
    return balanced, imbalanced, y


def test_concatenation_standardises_each_block():
    rng = np.random.default_rng(1)
    a, b = rng.normal(5, 3, size=(40, 3)), rng.normal(-2, 0.1, size=(40, 2))
    z = concatenate_features(a, b)
    assert z.shape == (40, 5)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-12)
    assert set(ensemble_candidates({"p": a, "q": b, "r": a})) == {"p+q", "p+r", "q+r"}
    with pytest.raises(DataError, match="block 1"):
        concatenate_features(a, b[:10])


def test_selection_by_predicted_gap_picks_the_balanced_features():
    balanced, imbalanced, y = _balanced_and_imbalanced()
    out = select_by_predicted_gap({"imbalanced": imbalanced, "balanced": balanced}, y, FAST)
    t = out["table"].set_index("candidate")
    assert out["chosen"] == "balanced"
    assert t.at["balanced", "predicted_gap"] < t.at["imbalanced", "predicted_gap"]
    assert out["best_measured"] == "balanced" and out["chosen_measured_rank"] == 1.0
    assert math.isnan(out["spearman_rho"])  # two candidates: no rank correlation


def test_analyse_features_merges_all_tables():
    _, imbalanced, y = _balanced_and_imbalanced(seed=2)
    res = analyse_features(imbalanced, y, FAST)
    classes = res["classes"]
    assert list(classes["class"]) == [0, 1, 2]
    for col in (*METRICS, "error_mean", "error_ci_low", "predicted_error", "mc_se",
                "predicted_error_train", "mc_se_train"):
        assert col in classes.columns
    # The wide class has the largest trace, predicted and measured error.
    for col in ("trace", "predicted_error", "predicted_error_train", "error_mean"):
        assert classes[col].idxmax() == 1, col
    assert list(res["correlations"]["predictor"]) == list(PREDICTORS)
    assert set(res["imbalance"]["metric"]) == set(METRICS)
    assert res["probe_summary"]["predicted_gap"] > 0 and res["probe_summary"]["predicted_gap_train"] > 0
    assert set(res["spectra"]) == {0, 1, 2}


# --- figures -----------------------------------------------------------------------------


def test_class_spectra_figure_lines_colours_and_colorbar(tmp_path):
    spectra = {c: np.arange(1, 31, dtype=float) ** -(1 + c / 2) for c in range(4)}
    spectra[3][-5:] = 0.0  # zero eigenvalues cannot sit on a log axis
    accuracy = {0: 0.9, 1: 0.7, 2: 0.8, 3: 0.95}
    fig = draw_class_spectra(spectra, accuracy, "spectra")
    ax, cax = fig.axes  # the plot and its colorbar
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["0", "1", "2", "3"]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert len(lines[3].get_xdata()) == 25 and len(lines[0].get_xdata()) == 30
    # Colour encodes accuracy: the worst class gets the low end of viridis, the best the high end.
    viridis = mpl.colormaps["viridis"]
    assert lines[1].get_color() == pytest.approx(viridis(0.0))
    assert to_rgba(lines[3].get_color()) == pytest.approx(viridis(1.0))
    assert cax.get_ylabel() == "per-class probe accuracy"
    assert ax.get_title() == "spectra"
    out = plot_class_spectra(spectra, accuracy, tmp_path / "spectra.png", "spectra")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spectra.png"]  # no temporary left
    with pytest.raises(DataError, match="classes differ"):
        draw_class_spectra(spectra, {0: 0.5}, "x")


def test_metrics_vs_error_panels_carry_spearman(tmp_path):
    t = pd.DataFrame({"class": ["a", "b", "c", "d"], "trace": [1.0, 2, 3, 4],
                      "effective_rank": [4.0, 3, 2, 1], "error_mean": [0.1, 0.2, 0.4, 0.3]})
    corr = class_error_correlations(t, predictors=("trace", "effective_rank"), n_boot=100)
    fig = draw_metrics_vs_error(t, corr, ["trace", "effective_rank"], "per-class")
    axes = fig.axes
    assert len(axes) == 2
    assert axes[0].get_title() == "trace: Spearman $\\rho$ = 0.80"
    assert axes[1].get_title() == "effective_rank: Spearman $\\rho$ = -0.80"
    assert axes[0].get_xlabel() == "trace (total variance)"
    assert axes[1].get_ylabel() == "measured class error"
    assert [tx.get_text() for tx in axes[0].texts] == ["a", "b", "c", "d"]
    np.testing.assert_allclose(axes[0].collections[0].get_offsets()[:, 1], t["error_mean"])
    plot_metrics_vs_error(t, corr, ["trace"], tmp_path / "m.png", "m")
    assert (tmp_path / "m.png").stat().st_size > 0
    with pytest.raises(DataError, match="column 'top_k_share' missing"):
        draw_metrics_vs_error(t, corr, ["top_k_share"], "x")


def test_predicted_vs_measured_has_identity_line(tmp_path):
    pred, meas = [0.05, 0.2, 0.1], [0.07, 0.15, 0.12]
    fig = draw_predicted_vs_measured(pred, meas, [0, 1, 2], "theory", rho=0.5,
                                     measured_err=[0.01, 0.02, 0.01])
    ax = fig.axes[0]
    identity = [ln for ln in ax.get_lines() if ln.get_label() == "y = x"]
    assert len(identity) == 1
    xd, yd = identity[0].get_xdata(), identity[0].get_ydata()
    np.testing.assert_allclose(xd, yd)
    assert xd[0] == 0 and xd[-1] >= 0.2
    assert "Spearman $\\rho$ = 0.50" in ax.get_title()
    assert ax.get_xlabel() == "Gaussian-predicted class error"
    assert ax.get_ylabel() == "measured class error (probe)"
    np.testing.assert_allclose(ax.collections[-1].get_offsets(), np.column_stack([pred, meas]))
    plot_predicted_vs_measured(pred, meas, [0, 1, 2], tmp_path / "p.png", "theory")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(DataError, match="expected 3"):
        draw_predicted_vs_measured(pred, meas[:2], [0, 1, 2], "x")


def test_encoder_comparison_labels_encoders(tmp_path):
    fig = draw_encoder_comparison([0.1, 0.3, 0.2], [0.05, 0.2, 0.1], ["pixels", "cnn", "random"],
                                  "encoders", xlabel="effective-rank CV", rho=1.0)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["pixels", "cnn", "random"]
    assert ax.get_xlabel() == "effective-rank CV"
    assert ax.get_ylabel() == "class gap (best - worst class accuracy)"
    assert "over 3 encoders" in ax.get_title() and "1.00" in ax.get_title()
    plot_encoder_comparison([0.1, 0.3], [0.05, 0.2], ["a", "b"], tmp_path / "e.png", "enc")
    assert (tmp_path / "e.png").exists()
