"""The study's analysis steps: what the scripts of si_analyse and si_compare run.

Each step reads its inputs, calls the library (:mod:`.compare`,
:mod:`.plots`; the encoding step is :mod:`.encoding`) and writes every artifact atomically. The
analysis reads the held-out ``test`` features only: the encoders (PCA, the
trained CNNs) were fitted on ``train``, so their test features are what an
encoder does on data it has not seen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datalign.core.errors import DataError
from datalign.core.io import atomic_path, read_json, write_json
from datalign.studies.spectral_imbalance.encoders.features import load_features

log = logging.getLogger(__name__)

#: Predictors of per-class error reported everywhere (spectral metrics, then the Gaussian prediction).
PREDICTORS = ("predicted_error", "effective_rank", "trace", "top_k_share", "participation_ratio", "power_law_alpha")


def write_csv(path: str | Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def analysis_settings(analysis: Mapping[str, Any], seed: int) -> Any:
    from datalign.studies.spectral_imbalance.compare import StudySettings

    return StudySettings(**{k: analysis[k] for k in analysis}, seed=int(seed) % (2**32 - 1))


def analyse_step(features_path: str, analysis: Mapping[str, Any], seed: int, outputs: Mapping[str, str],
                 title: str) -> dict[str, Any]:
    """Spectra, probes, Gaussian prediction and correlations of one encoder's test features; plots."""
    from datalign.studies.spectral_imbalance.compare import analyse_features
    from datalign.studies.spectral_imbalance.plots import (
        plot_class_spectra,
        plot_metrics_vs_error,
        plot_predicted_vs_measured,
    )
    from datalign.studies.spectral_imbalance.spectra import METRICS

    fs = load_features(features_path)
    result = analyse_features(fs.features, fs.y, analysis_settings(analysis, seed))
    names = fs.class_names
    classes = result["classes"].copy()
    classes.insert(1, "class_name", [names[int(c)] for c in classes["class"]])
    corr = result["correlations"]
    write_csv(outputs["classes"], classes)
    write_csv(outputs["imbalance"], result["imbalance"])
    write_csv(outputs["correlations"], corr)
    summary = {**result["probe_summary"], "encoder": fs.encoder, "n": int(fs.features.shape[0]),
               "dim": int(fs.features.shape[1]), "class_names": list(names),
               "worst_class_name": names[int(result["probe_summary"]["worst_class"])],
               "best_class_name": names[int(result["probe_summary"]["best_class"])]}
    write_json(outputs["probe"], summary)
    accuracy = dict(zip(classes["class_name"], classes["accuracy_mean"], strict=True))
    spectra = {names[int(c)]: lam for c, lam in result["spectra"].items()}
    plot_class_spectra(spectra, accuracy, outputs["spectra"], f"Per-class spectra: {title}")
    labelled_classes = classes.assign(**{"class": classes["class_name"]})
    plot_metrics_vs_error(labelled_classes, corr, list(METRICS), outputs["metrics"],
                          f"Spectral metrics vs per-class error: {title}")
    rho = corr.set_index("predictor").at["predicted_error", "rho"]
    err = np.vstack([classes["error_mean"] - classes["error_ci_low"], classes["error_ci_high"] - classes["error_mean"]])
    plot_predicted_vs_measured(classes["predicted_error"], classes["error_mean"], list(classes["class_name"]),
                               outputs["prediction"], f"Gaussian prediction vs measured error: {title}",
                               rho=None if math.isnan(rho) else float(rho), measured_err=np.clip(err, 0, None))
    log.info("%s: accuracy %.3f, class gap %.3f, Spearman(predicted, measured) %.2f", title,
             summary["overall_accuracy"], summary["class_gap"], rho)
    return summary


def _metric(imb: pd.DataFrame, metric: str, stat: str) -> float:
    return float(imb.loc[imb["metric"] == metric, stat].iloc[0])


def compare_step(labelled: str, params: Mapping[str, Any], seed: int, inputs: Mapping[str, Sequence[str]],
                 outputs: Mapping[str, str]) -> dict[str, Any]:
    """Encoder table and ranking agreement, correlations of all encoders, augmentation effects,
    the choice by lowest predicted gap (single encoders and configured ensembles), two plots."""
    from datalign.studies.spectral_imbalance.compare import (
        augmentation_effects,
        concatenate_features,
        encoder_ranking,
        select_by_predicted_gap,
    )
    from datalign.studies.spectral_imbalance.plots import plot_encoder_comparison
    from datalign.studies.spectral_imbalance.summary import plot_correlation_overview

    encoders = list(params["encoders"])
    imbalance = {e: pd.read_csv(p) for e, p in zip(encoders, inputs["imbalance"], strict=True)}
    probes = {e: read_json(p) for e, p in zip(encoders, inputs["probes"], strict=True)}
    corrs = {e: pd.read_csv(p) for e, p in zip(encoders, inputs["correlations"], strict=True)}

    # One row per encoder: accuracy, gap, predicted gap, spectra spread, correlations with CIs.
    rows = []
    for e in encoders:
        s, c = probes[e], corrs[e].set_index("predictor")
        row = {"encoder": e, "dim": s["dim"], "overall_accuracy": s["overall_accuracy"],
               "overall_accuracy_ci_low": s["overall_accuracy_ci_low"],
               "overall_accuracy_ci_high": s["overall_accuracy_ci_high"],
               # the gap of the repeat-mean accuracies; the interval is that of the per-repeat gap
               # (biased upwards by the max/min of noisy values), hence its own column
               "class_gap": s["class_gap"], "class_gap_repeat_mean": s["class_gap_repeat_mean"],
               "class_gap_ci_low": s["class_gap_ci_low"],
               "class_gap_ci_high": s["class_gap_ci_high"], "worst_class": s["worst_class_name"],
               "worst_class_accuracy": s["worst_class_accuracy"], "predicted_gap": s["predicted_gap"]}
        for metric in ("effective_rank", "trace"):
            row[f"{metric}_cv"] = _metric(imbalance[e], metric, "cv")
        for pred in PREDICTORS:
            row[f"rho_{pred}"] = c.at[pred, "rho"]
            row[f"rho_{pred}_ci_low"] = c.at[pred, "ci_low"]
            row[f"rho_{pred}_ci_high"] = c.at[pred, "ci_high"]
        rows.append(row)
    table = pd.DataFrame(rows)
    ranking = encoder_ranking(imbalance, {e: probes[e]["class_gap"] for e in encoders})
    ranks = ranking["ranks"][["encoder", "gap_rank", "effective_rank_cv_rank", "trace_cv_rank"]]
    write_csv(outputs["encoders"], table.merge(ranks, on="encoder"))
    write_csv(outputs["agreement"], ranking["agreement"])
    write_csv(outputs["correlations"], pd.concat([corrs[e].assign(encoder=e) for e in encoders], ignore_index=True))

    # Augmentation strategies of the cnn encoders against the baseline.
    base, strategies = params.get("augmentation_baseline"), list(params.get("augmentation_strategies") or [])
    if base:
        aug = augmentation_effects({e: imbalance[e] for e in strategies}, {e: probes[e] for e in strategies},
                                   baseline=base)
        aug = aug[aug["metric"].isin(["effective_rank", "trace"])].reset_index(drop=True)
    else:
        aug = pd.DataFrame(columns=["strategy", "metric", "note"])
    write_csv(outputs["augmentation"], aug)

    # The choice by lowest Gaussian-predicted gap, checked against the measured gap.
    cand = [{"candidate": e, "members": e, "predicted_gap": probes[e]["predicted_gap"],
             "measured_gap": probes[e]["class_gap"], "overall_accuracy": probes[e]["overall_accuracy"]}
            for e in encoders]
    ensembles = [list(m) for m in params.get("ensembles") or []]
    if ensembles:
        members = list(params.get("ensemble_members") or [])
        feats = {m: load_features(p) for m, p in zip(members, inputs["ensemble_features"], strict=True)}
        labels = feats[members[0]].y
        for m in members[1:]:
            if not np.array_equal(feats[m].ids, feats[members[0]].ids):
                raise DataError(f"ensembles of {labelled}: features of {m} and {members[0]} hold different rows")
        blocks = {"+".join(ens): concatenate_features(*[feats[m].features for m in ens]) for ens in ensembles}
        chosen = select_by_predicted_gap(blocks, labels, analysis_settings(params["analysis"], seed))
        for _, r in chosen["table"].iterrows():
            cand.append({"candidate": r["candidate"], "members": r["candidate"], "predicted_gap": r["predicted_gap"],
                         "measured_gap": r["measured_gap"], "overall_accuracy": r["overall_accuracy"]})
    sel = pd.DataFrame(cand)
    sel["predicted_rank"] = sel["predicted_gap"].rank(method="average")
    sel["measured_rank"] = sel["measured_gap"].rank(method="average")
    sel["chosen"] = sel["predicted_rank"] == sel["predicted_rank"].min()
    write_csv(outputs["selection"], sel)

    agree = ranking["agreement"]
    hit = agree[(agree["metric"] == "effective_rank") & (agree["statistic"] == "cv")]
    rho = float(hit["spearman_rho"].iloc[0]) if not hit.empty else math.nan
    plot_encoder_comparison(table["effective_rank_cv"], table["class_gap"], encoders, outputs["encoder_plot"],
                            f"Encoders on {labelled}: effective-rank spread vs class gap",
                            xlabel="coefficient of variation of per-class effective rank",
                            rho=None if math.isnan(rho) else rho)
    plot_correlation_overview(table, PREDICTORS, outputs["correlation_plot"],
                              f"Spearman of each predictor with per-class error ({labelled})")
    return {"table": table, "selection": sel}
