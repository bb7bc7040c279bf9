"""The study summary (JSON + markdown) and the overview plot of the per-encoder correlations.

The summary says, per labelled dataset and encoder, how strongly each
predictor (the Gaussian-mixture prediction and the per-class spectral
metrics) ranks the per-class probe error: Spearman rho over the K classes
with its bootstrap interval over classes. With K = 10 classes an interval is
wide and a rho of 0.6 is not distinguishable from 0.9; the text says so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datalign.core.io import provenance, read_json, write_json, write_text

LABELS = {
    "predicted_error": "Gaussian prediction",
    "effective_rank": "effective rank",
    "trace": "trace",
    "top_k_share": "top-k share",
    "participation_ratio": "participation ratio",
    "power_law_alpha": "power-law alpha",
}


def plot_correlation_overview(table: pd.DataFrame, predictors: Sequence[str], path: str | os.PathLike,
                              title: str) -> Path:
    """One row per encoder, one marker per predictor: Spearman rho with its bootstrap CI."""
    from datalign.plotting.charts import new_figure, save_figure

    fig, _ = new_figure(7.2, 0.5 + 0.55 * len(table) + 1.2)
    ax = fig.add_subplot()
    offsets = np.linspace(-0.3, 0.3, len(predictors))
    for off, pred in zip(offsets, predictors, strict=True):
        y = np.arange(len(table)) + off
        rho = table[f"rho_{pred}"].to_numpy(dtype=float)
        lo = table[f"rho_{pred}_ci_low"].to_numpy(dtype=float)
        hi = table[f"rho_{pred}_ci_high"].to_numpy(dtype=float)
        err = np.vstack([np.clip(rho - lo, 0, None), np.clip(hi - rho, 0, None)])
        ax.errorbar(rho, y, xerr=np.nan_to_num(err), fmt="o", markersize=4, capsize=2, label=LABELS.get(pred, pred))
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(np.arange(len(table)), list(table["encoder"]))
    ax.invert_yaxis()
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("Spearman rho with per-class probe error (95% bootstrap CI over classes)")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    return save_figure(fig, path)


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _fmt(rho: Any, lo: Any, hi: Any) -> str:
    r, a, b = _num(rho), _num(lo), _num(hi)
    if r is None:
        return "n/a"
    return f"{r:+.2f} [{a:+.2f}, {b:+.2f}]" if a is not None and b is not None else f"{r:+.2f}"


def build_summary(datasets: Sequence[str], pairs: Sequence[tuple[str, str]], study: Mapping[str, Any],
                  inputs: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The summary record from the comparison tables (see the module docstring)."""
    per_dataset: dict[str, Any] = {}
    infos = {(d, e): read_json(p) for (d, e), p in zip(pairs, inputs["infos"], strict=True)}
    for i, d in enumerate(datasets):
        manifest = read_json(Path(inputs["data"][i]) / "manifest.json")
        enc = pd.read_csv(inputs["encoders"][i])
        sel = pd.read_csv(inputs["selection"][i])
        aug = pd.read_csv(inputs["augmentation"][i])
        agree = pd.read_csv(inputs["agreement"][i])
        encoders = {}
        for _, r in enc.iterrows():
            e = r["encoder"]
            encoders[e] = {
                "dim": int(r["dim"]),
                "overall_accuracy": [_num(r["overall_accuracy"]), _num(r["overall_accuracy_ci_low"]),
                                     _num(r["overall_accuracy_ci_high"])],
                "class_gap": _num(r["class_gap"]),
                "class_gap_per_repeat": [_num(r["class_gap_repeat_mean"]), _num(r["class_gap_ci_low"]),
                                         _num(r["class_gap_ci_high"])],
                "predicted_gap": _num(r["predicted_gap"]),
                "worst_class": r["worst_class"],
                "worst_class_accuracy": _num(r["worst_class_accuracy"]),
                "spearman": {p: [_num(r[f"rho_{p}"]), _num(r[f"rho_{p}_ci_low"]), _num(r[f"rho_{p}_ci_high"])]
                             for p in LABELS},
                "encode_seconds": infos[(d, e)].get("seconds", {}),
            }
        rho = {p: np.array([encoders[e]["spearman"][p][0] if encoders[e]["spearman"][p][0] is not None else np.nan
                            for e in encoders]) for p in LABELS}
        median = {p: _num(np.nanmedian(v)) if np.isfinite(v).any() else None for p, v in rho.items()}
        gauss_beats_trace = int(np.sum(rho["predicted_error"] > rho["trace"]))
        erank_beats_trace = int(np.sum(rho["effective_rank"] > rho["trace"]))
        chosen = sel.loc[sel["chosen"].astype(bool)]
        per_dataset[d] = {
            "n_classes": manifest["n_classes"],
            "class_names": manifest["class_names"],
            "train_per_class": manifest["balance"]["train_per_class"],
            "test_per_class": manifest["balance"]["test_per_class"],
            "encoders": encoders,
            "median_spearman": median,
            "gaussian_beats_trace": f"{gauss_beats_trace} of {len(encoders)}",
            "effective_rank_beats_trace": f"{erank_beats_trace} of {len(encoders)}",
            "selection": {
                "chosen": list(chosen["candidate"]),
                "chosen_measured_rank": [_num(v) for v in chosen["measured_rank"]],
                "best_measured": str(sel.loc[sel["measured_gap"].idxmin(), "candidate"]),
                "n_candidates": int(len(sel)),
                # rank agreement of predicted and measured gaps over the candidates (coarse: few points)
                "spearman_predicted_vs_measured_gap": _num(sel["predicted_gap"].corr(sel["measured_gap"],
                                                                                     method="spearman"))
                if len(sel) >= 3 else None,
            },
            "augmentation": aug.to_dict(orient="records"),
            "ranking_agreement": agree.to_dict(orient="records"),
        }
    return {"study": "spectral_imbalance", "datasets": per_dataset, "config": dict(study),
            "reading": reading_notes(per_dataset), "provenance": provenance()}


def reading_notes(per_dataset: Mapping[str, Any]) -> list[str]:
    """Plain statements drawn from the numbers (no claim beyond them)."""
    notes = []
    for d, rec in per_dataset.items():
        m = rec["median_spearman"]
        k = rec["n_classes"]
        notes.append(
            f"{d}: median Spearman over {len(rec['encoders'])} encoders: Gaussian prediction "
            f"{_fmt(m['predicted_error'], None, None)}, effective rank {_fmt(m['effective_rank'], None, None)}, "
            f"trace {_fmt(m['trace'], None, None)}; the Gaussian prediction beats the trace on "
            f"{rec['gaussian_beats_trace']} encoders, the effective rank on {rec['effective_rank_beats_trace']}."
        )
        notes.append(
            f"{d}: each rho is over {k} classes, so its bootstrap interval is wide; differences between "
            "predictors of one encoder are within each other's intervals unless the intervals are disjoint."
        )
        sel = rec["selection"]
        notes.append(
            f"{d}: the lowest Gaussian-predicted class gap chose {', '.join(sel['chosen'])} (measured-gap rank "
            f"{', '.join(f'{r:g}' for r in sel['chosen_measured_rank'] if r is not None)} of {sel['n_candidates']}; "
            f"smallest measured gap: {sel['best_measured']}); Spearman of predicted and measured gaps over "
            f"the candidates {_fmt(sel['spearman_predicted_vs_measured_gap'], None, None)}."
        )
    return notes


def summary_markdown(summary: Mapping[str, Any]) -> str:
    lines = ["# Spectral imbalance: per-class spectra and class gaps", ""]
    for d, rec in summary["datasets"].items():
        lines += [f"## {d} ({rec['n_classes']} classes, {rec['train_per_class']} train / "
                  f"{rec['test_per_class']} analysed samples per class)", "",
                  "Spearman rho of each predictor with the per-class probe error, 95% bootstrap CI over classes:", "",
                  "Class gap: best minus worst class accuracy of the repeat-mean accuracies; per-repeat gap: "
                  "the gap within each probe split, averaged (biased upwards by noise), with its interval.", "",
                  "| encoder | dim | accuracy [CI] | class gap | per-repeat gap [CI] | Gaussian prediction | "
                  "effective rank | trace |",
                  "|---|---|---|---|---|---|---|---|"]
        for e, r in rec["encoders"].items():
            s = r["spearman"]
            lines.append(
                f"| {e} | {r['dim']} | {_fmt(*r['overall_accuracy'])} | {r['class_gap']:.3f} | "
                f"{_fmt(*r['class_gap_per_repeat'])} | "
                f"{_fmt(*s['predicted_error'])} | {_fmt(*s['effective_rank'])} | {_fmt(*s['trace'])} |"
            )
        lines.append("")
        if rec["augmentation"]:
            lines += ["Augmentation strategies (cnn encoders, against the baseline):", "",
                      "| strategy | class gap | change | worst-class accuracy | accuracy |", "|---|---|---|---|---|"]
            for a in rec["augmentation"]:
                if a.get("metric") == "effective_rank":
                    lines.append(f"| {a['strategy']} | {a['class_gap']:.3f} | {a['delta_gap']:+.3f} | "
                                 f"{a['worst_class_accuracy']:.3f} | {a['overall_accuracy']:.3f} |")
            lines.append("")
    lines += ["## Reading", ""] + [f"- {n}" for n in summary["reading"]] + [""]
    return "\n".join(lines)


def write_summary(datasets: Sequence[str], pairs: Sequence[tuple[str, str]], study: Mapping[str, Any],
                  inputs: Mapping[str, Sequence[str]], json_path: str, markdown_path: str) -> dict[str, Any]:
    summary = build_summary(datasets, pairs, study, inputs)
    write_json(json_path, summary)
    write_text(markdown_path, summary_markdown(summary))
    return summary
