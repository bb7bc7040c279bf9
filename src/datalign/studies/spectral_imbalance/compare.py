"""Comparisons of the spectral-imbalance study: per-class correlations, encoder rankings,
augmentation effects and combinations chosen by the Gaussian-predicted gap.

Every function takes arrays or tables and returns pandas DataFrames (or dicts
of them) that a thin script writes as CSV/JSON.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as _sps
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from datalign.core.errors import ConfigError, DataError
from datalign.studies.spectral_imbalance.gaussian import predict_probe_errors
from datalign.studies.spectral_imbalance.probes import linear_probe
from datalign.studies.spectral_imbalance.spectra import METRICS, class_spectra, spectral_imbalance

#: Per-class predictors of measured error: the spectral metrics and the Gaussian
#: predictions from test-split moments (theory check) and train-split moments.
PREDICTORS = (*METRICS, "predicted_error", "predicted_error_train")

# Bootstrap resamples are ranked in chunks of at most this many entries.
_MAX_CHUNK_ENTRIES = 2_000_000


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", da, db)
    den = np.sqrt(np.einsum("ij,ij->i", da, da) * np.einsum("ij,ij->i", db, db))
    return np.clip(num / den, -1.0, 1.0)


def spearman_with_ci(
    x: ArrayLike,
    y: ArrayLike,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Spearman rho of paired samples (n,) with a percentile bootstrap interval over the pairs.

    rho and its two-sided p come from ``scipy.stats.spearmanr`` (average ranks
    for ties). The interval resamples the n pairs (here: classes) with
    replacement ``n_boot`` times (numpy generator seeded by ``seed``) and takes
    the (1 -/+ confidence)/2 quantiles of the resampled rho (ranks of a
    resample by ``scipy.stats.rankdata``, ties averaged). Resamples in which x
    or y is constant have no rho and are skipped and counted. With few pairs
    (10 classes) the interval is wide and only approximate: a resample holds
    each class 0, 1 or more times, and rho is bounded by +/-1.

    Returns rho, p, n, ci_low, ci_high (None if no resample was usable),
    n_boot, boot_used, boot_skipped, confidence, seed. DataError for n < 3,
    unequal lengths, non-finite values or a constant x or y.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.size != ya.size:
        raise DataError(f"spearman_with_ci: x and y differ in length ({xa.size} vs {ya.size})")
    if xa.size < 3:
        raise DataError(f"spearman_with_ci: needs >= 3 pairs, got {xa.size}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise DataError("spearman_with_ci: x or y holds non-finite values")
    if xa.max() == xa.min() or ya.max() == ya.min():
        raise DataError("spearman_with_ci: x or y is constant, rho is undefined")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"spearman_with_ci: confidence must lie in (0, 1), got {confidence}")
    if n_boot < 0:
        raise ConfigError(f"spearman_with_ci: n_boot must be >= 0, got {n_boot}")
    res = _sps.spearmanr(xa, ya)
    n = xa.size
    rng = np.random.default_rng(seed)
    rhos = []
    skipped = 0
    done = 0
    chunk = max(1, _MAX_CHUNK_ENTRIES // n)
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        xs, ys = xa[idx], ya[idx]
        ok = (xs.max(axis=1) > xs.min(axis=1)) & (ys.max(axis=1) > ys.min(axis=1))
        skipped += int((~ok).sum())
        if ok.any():
            rhos.append(_row_pearson(_sps.rankdata(xs[ok], axis=1), _sps.rankdata(ys[ok], axis=1)))
        done += b
    boot = np.concatenate(rhos) if rhos else np.empty(0)
    lo = hi = None
    if boot.size:
        q = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
        lo, hi = float(q[0]), float(q[1])
    return {"rho": float(res.statistic), "p": float(res.pvalue), "n": int(n),
            "ci_low": lo, "ci_high": hi, "n_boot": int(n_boot), "boot_used": int(boot.size),
            "boot_skipped": skipped, "confidence": confidence, "seed": seed}


def _tie_round(v: np.ndarray) -> np.ndarray:
    """``v`` rounded to 12 significant digits (non-finite values unchanged)."""
    out = v.copy()
    ok = np.isfinite(v) & (v != 0)
    if ok.any():
        digits = 11 - np.floor(np.log10(np.abs(v[ok]))).astype(int)
        out[ok] = [round(float(a), int(d)) for a, d in zip(v[ok], digits, strict=True)]
    return out


def class_error_correlations(
    table: pd.DataFrame,
    error_column: str = "error_mean",
    predictors: Sequence[str] = PREDICTORS,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Spearman (with bootstrap CI over classes) of each per-class predictor against measured error.

    ``table`` has one row per class with the ``predictors`` columns (spectral
    metrics from ``class_spectra``, Gaussian ``predicted_error``) and
    ``error_column`` (measured probe error); see ``analyse_features``. A
    positive rho for a spectral metric means classes with a larger value are
    classified worse. Returns one row per predictor: predictor, rho, p, n,
    ci_low, ci_high, boot_used, boot_skipped, note. A constant predictor or
    error column gives rho NaN with the reason in ``note``; a missing column
    or non-finite values are a DataError (not silently dropped).
    """
    if error_column not in table.columns:
        raise DataError(f"class_error_correlations: no column {error_column!r} in {list(table.columns)}")
    rows = []
    for name in predictors:
        if name not in table.columns:
            raise DataError(f"class_error_correlations: no predictor column {name!r} in {list(table.columns)}")
        x, y = table[name].to_numpy(dtype=float), table[error_column].to_numpy(dtype=float)
        # Equal errors (e.g. 1 - 17/18 from different repeat means) must rank as ties, not be
        # ordered by float rounding noise: compare at 12 significant digits.
        x, y = _tie_round(x), _tie_round(y)
        if np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and (x.min() == x.max() or y.min() == y.max()):
            # E.g. a predicted error of 0 for every class: no ranking to correlate.
            rows.append({"predictor": name, "rho": math.nan, "p": math.nan, "n": int(x.size),
                         "ci_low": None, "ci_high": None, "boot_used": 0, "boot_skipped": 0,
                         "note": "constant predictor or error: rho undefined"})
            continue
        r = spearman_with_ci(x, y, n_boot, confidence, seed)
        rows.append({"predictor": name, **{k: r[k] for k in ("rho", "p", "n", "ci_low", "ci_high", "boot_used", "boot_skipped")},
                     "note": ""})
    return pd.DataFrame(rows)


def encoder_ranking(
    imbalance: Mapping[str, pd.DataFrame],
    class_gaps: Mapping[str, float],
    statistics: Sequence[str] = ("cv", "max_min_ratio"),
) -> dict[str, pd.DataFrame]:
    """Rank encoders by each spectral-imbalance score and by measured class gap, and compare the rankings.

    ``imbalance`` maps encoder -> ``spectral_imbalance`` table; ``class_gaps``
    maps encoder -> class gap (best minus worst class accuracy). Rank 1 is the
    most imbalanced / largest gap (scipy ``rankdata``, ties averaged).

    Returns {"ranks": encoder, class_gap, gap_rank, then <metric>_<stat> and
    its _rank for every pair; "agreement": metric, statistic, spearman_rho, p,
    n_encoders, caveat}. Spearman over E encoders is coarse: with E = 3 the
    only possible values are +/-1, +/-0.5, and even E = 5 needs rho = 1 for
    p < 0.05; ``caveat`` says so. Fewer than 3 encoders, or a constant score,
    give NaN rho with the reason in ``caveat``. DataError if the encoders of
    the two mappings differ.
    """
    names = list(imbalance)
    if set(names) != set(class_gaps):
        raise DataError(f"encoder_ranking: encoders differ between imbalance {sorted(names)} and class_gaps {sorted(class_gaps)}")
    if not names:
        raise DataError("encoder_ranking: no encoders")
    gaps = np.array([float(class_gaps[n]) for n in names])
    ranks = pd.DataFrame({"encoder": names, "class_gap": gaps,
                          "gap_rank": _sps.rankdata(-gaps)})
    agreement = []
    first = imbalance[names[0]]
    for metric in first["metric"]:
        for stat in statistics:
            vals = []
            for n in names:
                t = imbalance[n]
                hit = t.loc[t["metric"] == metric, stat]
                if hit.empty:
                    raise DataError(f"encoder_ranking: encoder {n!r} has no {metric!r} imbalance row")
                vals.append(float(hit.iloc[0]))
            v = np.array(vals)
            col = f"{metric}_{stat}"
            ranks[col] = v
            ranks[col + "_rank"] = _sps.rankdata(-v) if np.all(np.isfinite(v)) else np.nan
            rho = p = math.nan
            if len(names) < 3:
                caveat = f"only {len(names)} encoders: no rank correlation"
            elif not np.all(np.isfinite(v)):
                caveat = "score undefined (NaN) for some encoder"
            elif v.max() == v.min() or gaps.max() == gaps.min():
                caveat = "constant score or gap: rho undefined"
            else:
                res = _sps.spearmanr(v, gaps)
                rho, p = float(res.statistic), float(res.pvalue)
                caveat = (f"{len(names)} encoders: rank correlation is coarse (p from the t "
                          f"approximation, unreliable below ~10 points)")
            agreement.append({"metric": metric, "statistic": stat, "spearman_rho": rho, "p": p,
                              "n_encoders": len(names), "caveat": caveat})
    return {"ranks": ranks, "agreement": pd.DataFrame(agreement)}


def augmentation_effects(
    imbalance: Mapping[str, pd.DataFrame],
    probe_summaries: Mapping[str, Mapping[str, Any]],
    baseline: str = "none",
    statistic: str = "cv",
) -> pd.DataFrame:
    """How each augmentation strategy changes the spectra and the class gap relative to ``baseline``.

    ``imbalance`` maps strategy -> ``spectral_imbalance`` table of features
    computed under that augmentation; ``probe_summaries`` maps strategy ->
    ``ProbeResult.summary``. One row per (strategy, metric): metric_mean and
    its change (strategy - baseline), the imbalance ``statistic`` and its
    change, class_gap and delta_gap, worst_class_accuracy and its change,
    overall_accuracy and its change. A negative delta_gap means the strategy
    narrowed the gap. DataError if the baseline or a strategy is missing.
    """
    if baseline not in imbalance or baseline not in probe_summaries:
        raise DataError(f"augmentation_effects: baseline strategy {baseline!r} missing; have {sorted(imbalance)}")
    if set(imbalance) != set(probe_summaries):
        raise DataError(f"augmentation_effects: strategies differ: {sorted(imbalance)} vs {sorted(probe_summaries)}")
    base_t, base_s = imbalance[baseline].set_index("metric"), probe_summaries[baseline]
    rows = []
    for strategy, t in imbalance.items():
        ti, s = t.set_index("metric"), probe_summaries[strategy]
        for metric in ti.index:
            if metric not in base_t.index:
                raise DataError(f"augmentation_effects: metric {metric!r} missing for baseline {baseline!r}")
            rows.append({
                "strategy": strategy, "metric": metric,
                "metric_mean": float(ti.at[metric, "mean"]),
                "delta_metric_mean": float(ti.at[metric, "mean"] - base_t.at[metric, "mean"]),
                f"imbalance_{statistic}": float(ti.at[metric, statistic]),
                f"delta_imbalance_{statistic}": float(ti.at[metric, statistic] - base_t.at[metric, statistic]),
                "class_gap": float(s["class_gap"]),
                "delta_gap": float(s["class_gap"] - base_s["class_gap"]),
                "worst_class_accuracy": float(s["worst_class_accuracy"]),
                "delta_worst_class_accuracy": float(s["worst_class_accuracy"] - base_s["worst_class_accuracy"]),
                "overall_accuracy": float(s["overall_accuracy"]),
                "delta_overall_accuracy": float(s["overall_accuracy"] - base_s["overall_accuracy"]),
            })
    return pd.DataFrame(rows)


def concatenate_features(*blocks: ArrayLike) -> np.ndarray:
    """Feature ensemble: each (n, d_i) block standardised (sklearn ``StandardScaler``), then concatenated.

    Standardising each encoder first keeps one encoder's feature scale from
    dominating the joint covariance spectrum. It is unsupervised and uses all
    n rows; the probe re-standardises on its training split anyway. Returns
    (n, sum d_i). DataError for fewer than 2 blocks or differing row counts.
    """
    if len(blocks) < 2:
        raise DataError(f"concatenate_features: needs >= 2 feature blocks, got {len(blocks)}")
    arrays = [np.asarray(b, dtype=float) for b in blocks]
    n = arrays[0].shape[0]
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[0] != n:
            raise DataError(f"concatenate_features: block {i} has shape {a.shape}, expected ({n}, d)")
    return np.hstack([StandardScaler().fit_transform(a) for a in arrays])


def ensemble_candidates(features: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    """Every pairwise feature ensemble "a+b" of the encoders in ``features`` (see ``concatenate_features``)."""
    return {f"{a}+{b}": concatenate_features(features[a], features[b])
            for a, b in itertools.combinations(list(features), 2)}


@dataclass(frozen=True)
class StudySettings:
    """Settings shared by ``analyse_features`` and ``select_by_predicted_gap`` (defaults sized for 2 cores)."""

    estimator: str = "ledoit_wolf"  # spectra (d x d covariance)
    shrink_when: str = "underdetermined"
    gaussian_estimator: str = "none"  # Gaussian theory (K x K projections); see gaussian.py
    top_k: int = 10
    n_repeats: int = 5
    test_size: float = 0.2
    C: float = 1.0
    max_iter: int = 1000
    n_samples: int = 100_000
    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0
    n_threads: int | None = 1  # BLAS/OpenMP threads; see ``linear_probe``


def analyse_features(features: ArrayLike, labels: ArrayLike, settings: StudySettings | None = None) -> dict[str, Any]:
    """The per-encoder analysis: spectra, imbalance scores, probes, Gaussian prediction, correlations.

    ``features`` (n, d), ``labels`` (n,). Returns a dict:
    "classes" (one row per class: spectral metrics of all n rows, measured
    probe accuracy/error with CI, Gaussian predicted_error from the
    test-split moments of each repeat and predicted_error_train from its
    train-split moments, each with its spread over repeats and MC error);
    "imbalance" (``spectral_imbalance``); "correlations"
    (``class_error_correlations`` over ``PREDICTORS``); "probe_summary"
    (dict, plus predicted_gap and predicted_gap_train = max - min predicted
    error); "spectra" (class -> eigenvalues) and "probe" (the
    ``ProbeResult``, with its weights).
    """
    s = settings or StudySettings()
    # Small matrix products throughout: extra BLAS threads only add contention.
    with threadpool_limits(limits=s.n_threads):
        spec = class_spectra(features, labels, s.estimator, s.shrink_when, k=s.top_k)
        probe = linear_probe(features, labels, s.n_repeats, s.test_size, s.C, s.seed, s.max_iter,
                             s.confidence, s.n_threads)
        preds = {mf: predict_probe_errors(features, labels, probe, mf, s.gaussian_estimator,
                                          s.shrink_when, n_samples=s.n_samples, seed=s.seed)
                 for mf in ("test", "train")}
    test, train = preds["test"], preds["train"]
    train = train.rename(columns={"predicted_error": "predicted_error_train",
                                  "predicted_error_sd": "predicted_error_train_sd", "mc_se": "mc_se_train"})
    classes = (spec.table.merge(probe.per_class, on="class", validate="one_to_one")
               .merge(test[["class", "predicted_error", "predicted_error_sd", "mc_se"]],
                      on="class", validate="one_to_one")
               .merge(train[["class", "predicted_error_train", "predicted_error_train_sd", "mc_se_train"]],
                      on="class", validate="one_to_one"))
    summary = dict(probe.summary)
    summary["predicted_gap"] = float(test["predicted_error"].max() - test["predicted_error"].min())
    summary["predicted_gap_train"] = float(train["predicted_error_train"].max()
                                           - train["predicted_error_train"].min())
    return {
        "classes": classes,
        "imbalance": spectral_imbalance(spec.table),
        "correlations": class_error_correlations(classes, n_boot=s.n_boot, confidence=s.confidence,
                                                 seed=s.seed),
        "probe_summary": summary,
        "spectra": spec.eigenvalues,
        "probe": probe,
    }


def select_by_predicted_gap(
    candidates: Mapping[str, ArrayLike],
    labels: ArrayLike,
    settings: StudySettings | None = None,
) -> dict[str, Any]:
    """Choose among feature sets (encoder ensembles, augmentation mixes) by the Gaussian-predicted gap.

    For every candidate (n, d_i) feature matrix: fit the probes, predict each
    class's error from the Gaussian theory with moments of the TRAINING
    split only, and take predicted_gap = max_c - min_c predicted error (the
    predicted best-class minus worst-class accuracy). The candidate with the
    lowest predicted gap is chosen; its measured gap (test splits) checks the
    choice.

    Returns {"table": candidate, predicted_gap, measured_gap, predicted_rank,
    measured_rank (1 = smallest gap), overall_accuracy, chosen;
    "chosen": name, "chosen_measured_rank": its rank by measured gap,
    "best_measured": name with the lowest measured gap, "spearman_rho": rank
    agreement of predicted and measured gaps over candidates (NaN below 3)}.
    DataError for no candidates.
    """
    if not candidates:
        raise DataError("select_by_predicted_gap: no candidates")
    s = settings or StudySettings()
    rows = []
    for name, feats in candidates.items():
        with threadpool_limits(limits=s.n_threads):
            probe = linear_probe(feats, labels, s.n_repeats, s.test_size, s.C, s.seed, s.max_iter,
                                 s.confidence, s.n_threads)
            pred = predict_probe_errors(feats, labels, probe, "train", s.gaussian_estimator,
                                        s.shrink_when, n_samples=s.n_samples, seed=s.seed)
        rows.append({"candidate": name,
                     "predicted_gap": float(pred["predicted_error"].max() - pred["predicted_error"].min()),
                     "measured_gap": float(probe.summary["class_gap"]),
                     "overall_accuracy": float(probe.summary["overall_accuracy"])})
    table = pd.DataFrame(rows)
    table["predicted_rank"] = _sps.rankdata(table["predicted_gap"])
    table["measured_rank"] = _sps.rankdata(table["measured_gap"])
    chosen = str(table["candidate"].iloc[int(np.argmin(table["predicted_gap"]))])
    table["chosen"] = table["candidate"] == chosen
    rho = math.nan
    if len(table) >= 3 and table["predicted_gap"].nunique() > 1 and table["measured_gap"].nunique() > 1:
        rho = float(_sps.spearmanr(table["predicted_gap"], table["measured_gap"]).statistic)
    return {"table": table, "chosen": chosen,
            "chosen_measured_rank": float(table.loc[table["chosen"], "measured_rank"].iloc[0]),
            "best_measured": str(table["candidate"].iloc[int(np.argmin(table["measured_gap"]))]),
            "spearman_rho": rho}
