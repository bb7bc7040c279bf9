"""Every measure's alignment against the losses, per setting: r, r^2, rho with CIs, and cost."""

from pathlib import Path

import numpy as np
import pandas as pd

from datalign.core.errors import DataError
from datalign.core.io import atomic_path, read_json, write_text
from datalign.core.runner import run_step
from datalign.plotting.charts import new_figure, save_figure
from datalign.stats.correlation import correlation_stats
from datalign.studies.alignment.plan import eval_key, train_key


def _task2vec_table(path: str, cost: dict) -> tuple[pd.DataFrame, str]:
    """The Task2Vec alignment table as a measure's (set, target, alignment, seconds).

    A pair's cost is the two sets' Task2Vec job times (their benchmark: probe loading
    and embedding), or where a benchmark is missing the embedding time recorded in the
    embeddings' metadata; NaN when neither is there.
    """
    per_set, sources = {}, set()
    for label, files in cost.items():
        bench, meta = Path(files["benchmark"]), Path(files["meta"])
        if bench.is_file():
            per_set[label] = float(pd.read_csv(bench, sep="\t")["s"].iloc[0])
            sources.add("job benchmark")
        elif meta.is_file():
            per_set[label] = float(sum(read_json(meta)["seconds_per_batch"]))
            sources.add("embedding time (metadata)")
    t2v = pd.read_csv(path).rename(columns={"row": "set", "col": "target"})
    t2v["seconds"] = [per_set.get(a, np.nan) + per_set.get(b, np.nan) for a, b in
                      zip(t2v["set"], t2v["target"], strict=True)]
    return t2v, " + ".join(sorted(sources)) or "unknown"


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not values.size:
        return (float("nan"), float("nan"))
    a = 1.0 - confidence
    lo, hi = np.quantile(values, [a / 2, 1 - a / 2])
    return float(lo), float(hi)


def _rank(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a, axis=-1)


def _resampled(x: np.ndarray, y: np.ndarray, bootstrap: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and Spearman rho on resamples of the (x, y) points (constant resamples: NaN)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(bootstrap, x.size))
    xs, ys = x[idx], y[idx]
    ok = (xs.max(1) > xs.min(1)) & (ys.max(1) > ys.min(1))

    def corr(a, b):
        da, db = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (da * db).sum(1) / np.sqrt((da * da).sum(1) * (db * db).sum(1))
        return np.where(ok, np.clip(r, -1, 1), np.nan)

    return corr(xs, ys), corr(_rank(xs), _rank(ys))


def _row(setting, measure, points, table, cfg, seed, cost_source, setup):
    keyed = table.set_index(["set", "target"])
    x, y, secs = [], [], []
    for train_set, eval_set, loss in zip(points["train_set"], points["eval_set"], points["cross_entropy"],
                                         strict=True):
        key = (train_key(train_set), eval_key(eval_set))
        if key not in keyed.index:
            raise DataError(f"measure {measure}: no alignment for {key[0]} -> {key[1]} (setting {setting})")
        x.append(float(keyed.loc[key, "alignment"]))
        secs.append(float(keyed.loc[key, "seconds"]))
        y.append(float(loss))
    x, y = np.array(x), np.array(y)
    stats = correlation_stats(x, y, bootstrap=cfg["bootstrap"], confidence=cfg["confidence"], seed=seed)
    rs, rhos = _resampled(x, y, cfg["bootstrap"], seed)
    r2_lo, r2_hi = _interval(rs ** 2, cfg["confidence"])
    rho_lo, rho_hi = _interval(rhos, cfg["confidence"])
    return {
        "setting": setting, "measure": measure, "n": stats["n"],
        "pearson_r": stats["pearson_r"], "r_ci_low": stats["r_ci_low"], "r_ci_high": stats["r_ci_high"],
        "pearson_p": stats["pearson_p"],
        "r2": stats["r2"], "r2_ci_low": r2_lo, "r2_ci_high": r2_hi,
        "spearman_rho": stats["spearman_rho"], "rho_ci_low": rho_lo, "rho_ci_high": rho_hi,
        "seconds_per_pair": float(np.mean(secs)), "setup_seconds": setup, "cost": cost_source,
        "alignment_min": float(x.min()), "alignment_max": float(x.max()),
    }


def _fmt(v, spec=".3f"):
    return "n/a" if v is None or not np.isfinite(v) else format(v, spec)


def _markdown(df: pd.DataFrame, confidence: float) -> str:
    pct = f"{confidence:.0%}"
    lines = ["# Alignment measures: predictive power against cost", "",
             f"Pearson r of each measure's alignment against the cross-entropy (a good measure: "
             f"strongly negative), r², Spearman ρ, each with its {pct} bootstrap CI over the points; "
             "cost: seconds to compute one pair's alignment from raw documents "
             "(Task2Vec: its two sets' Task2Vec jobs; the measures: preparing both sets and comparing "
             "them, their one-time set-up aside).", ""]
    for setting, part in df.groupby("setting", sort=False):
        lines += [f"## {setting} (n = {int(part['n'].iloc[0])} points)", "",
                  f"| measure | Pearson r ({pct} CI) | r² ({pct} CI) | Spearman ρ ({pct} CI) | "
                  "s / pair | set-up s |",
                  "|---|---|---|---|---|---|"]
        for _, r in part.iterrows():
            lines.append(
                f"| {r['measure']} | {_fmt(r['pearson_r'])} ({_fmt(r['r_ci_low'])} to {_fmt(r['r_ci_high'])}) "
                f"| {_fmt(r['r2'], '.2f')} ({_fmt(r['r2_ci_low'], '.2f')} to {_fmt(r['r2_ci_high'], '.2f')}) "
                f"| {_fmt(r['spearman_rho'])} ({_fmt(r['rho_ci_low'])} to {_fmt(r['rho_ci_high'])}) "
                f"| {_fmt(r['seconds_per_pair'], '.3g')} | {_fmt(r['setup_seconds'], '.2f')} |")
        lines.append("")
    costs = sorted(set(df.loc[df["measure"].str.startswith("task2vec"), "cost"]))
    lines.append(f"Task2Vec cost from: {', '.join(costs) or 'n/a'}.")
    return "\n".join(lines) + "\n"


def _plot(df: pd.DataFrame, path: str, confidence: float) -> None:
    settings = list(dict.fromkeys(df["setting"]))
    fig, _ = new_figure(4.6 * len(settings), 3.8)
    measures = list(dict.fromkeys(df["measure"]))
    colours = {m: f"C{i}" for i, m in enumerate(measures)}
    share = None
    for k, setting in enumerate(settings):
        ax = fig.add_subplot(1, len(settings), k + 1, sharey=share)
        share = ax
        part = df[df["setting"] == setting]
        for _, r in part.iterrows():
            cost = r["seconds_per_pair"]
            if not np.isfinite(cost):
                continue
            lo, hi = r["r2_ci_low"], r["r2_ci_high"]
            yerr = None if not (np.isfinite(lo) and np.isfinite(hi)) else \
                [[max(r["r2"] - lo, 0.0)], [max(hi - r["r2"], 0.0)]]
            ax.errorbar([cost], [r["r2"]], yerr=yerr, fmt="o", color=colours[r["measure"]], capsize=3,
                        markeredgecolor="black", markeredgewidth=0.5, label=r["measure"])
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("seconds per (set, target) pair (log)")
        if k == 0:
            ax.set_ylabel(f"r² of alignment vs loss ({confidence:.0%} CI)")
        ax.set_title(f"{setting} (n = {int(part['n'].iloc[0])})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    save_figure(fig, path)


def main(smk):
    cfg = smk.params.correlation
    t2v, t2v_cost = _task2vec_table(smk.input.task2vec, smk.params.task2vec_cost)
    tables = {f"task2vec_{smk.params.estimator}": (t2v, t2v_cost, float("nan"))}
    for measure, path, meta_path in zip(smk.params.measures, smk.input.tables, smk.input.metas, strict=True):
        meta = read_json(meta_path)
        tables[measure] = (pd.read_csv(path), "measured", float(meta.get("setup_seconds", np.nan)))
    rows = []
    for setting, points_path in zip(smk.params.settings, smk.input.points, strict=True):
        points = pd.read_csv(points_path)
        expected = [tuple(p) for p in smk.params.pairs[setting]]
        got = list(zip(points["train_set"], points["eval_set"], strict=True))
        if sorted(got) != sorted(expected):
            raise DataError(f"{points_path}: its (train_set, eval_set) points are not the setting's pairs")
        for measure, (table, cost, setup) in tables.items():
            rows.append(_row(setting, measure, points, table, cfg, smk.params.seed, cost, setup))
    df = pd.DataFrame(rows)
    with atomic_path(smk.output.table) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    write_text(smk.output.markdown, _markdown(df, cfg["confidence"]))
    _plot(df, smk.output.plot, cfg["confidence"])


run_step(snakemake, main)  # noqa: F821
