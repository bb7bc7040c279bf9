"""Join alignment with loss for one setting; statistics, robustness and the scatter plot.

Each point also carries the setting's reference loss on its evaluation set (the
untuned base for finetune, the evaluation set's unigram model for pretrain; see
datalign.studies.alignment.plan.baseline_reference) and its change against it.
"""

from pathlib import Path

import pandas as pd

from datalign.core.io import atomic_path, read_json, write_json
from datalign.core.runner import run_step
from datalign.plotting.charts import correlation_scatter
from datalign.stats.correlation import correlation_stats
from datalign.stats.robustness import leave_one_out, two_cluster_split
from datalign.studies.alignment.plan import eval_key, train_key

REFERENCE_LABELS = {"base_model": "untuned base", "unigram": "unigram reference"}


def main(smk):
    setting = smk.wildcards.setting
    pairs = pd.read_csv(smk.input.alignment).set_index(["row", "col"])
    baselines = {e: read_json(p) for e, p in zip(smk.params.eval_sets, smk.input.baselines, strict=True)}
    rows = []
    for (train_set, eval_set), loss_path in zip(smk.params.pairs, smk.input.losses, strict=True):
        a = pairs.loc[(train_key(train_set), eval_key(eval_set))]
        loss = read_json(loss_path)
        base = baselines[eval_set]["cross_entropy"]
        rows.append({
            "train_set": train_set, "eval_set": eval_set,
            "alignment": a["alignment"], "alignment_ci_low": a["ci_low"],
            "alignment_ci_high": a["ci_high"], "alignment_std": a["std"],
            "cross_entropy": loss["cross_entropy"], "perplexity": loss["perplexity"],
            "reference": baselines[eval_set]["reference"],
            "reference_cross_entropy": base,
            "loss_change": loss["cross_entropy"] - base,
        })
    points = pd.DataFrame(rows)
    with atomic_path(smk.output.points) as tmp:
        points.to_csv(tmp, index=False, float_format="%.6g")
    cfg = smk.params.correlation
    x, y = points["alignment"].to_numpy(), points["cross_entropy"].to_numpy()
    stats = correlation_stats(x, y, bootstrap=cfg["bootstrap"], confidence=cfg["confidence"],
                              seed=smk.params.seed)
    stats["setting"] = setting
    names = [f"{t} -> {e}" for t, e in zip(points["train_set"], points["eval_set"], strict=True)]
    loo = leave_one_out(x, y)
    clusters = two_cluster_split(x, y)
    stats["robustness"] = {
        **loo,
        "points": names,
        "most_influential_point": names[loo["most_influential"]],
        "clusters": {**clusters, "low": [names[i] for i in clusters["low"]],
                     "high": [names[i] for i in clusters["high"]]},
    }
    stats["reference"] = {
        e: {"kind": b["reference"], "description": b["description"], "cross_entropy": b["cross_entropy"]}
        for e, b in baselines.items()
    }
    write_json(smk.output.stats, stats)
    multi_eval = points["eval_set"].nunique() > 1
    labels = [f"{t}" + (f" -> {e}" if multi_eval else "") for t, e in
              zip(points["train_set"], points["eval_set"], strict=True)]
    xerr = [points["alignment"] - points["alignment_ci_low"],
            points["alignment_ci_high"] - points["alignment"]]
    kinds = {b["reference"] for b in baselines.values()}
    correlation_scatter(
        x, y, labels, stats, Path(smk.output.scatter), title=f"Alignment vs loss ({setting})",
        xerr=xerr, groups=list(points["eval_set"]), group_title="evaluation set",
        references={e: b["cross_entropy"] for e, b in baselines.items()},
        reference_label=" / ".join(REFERENCE_LABELS.get(k, k) for k in sorted(kinds)),
    )


run_step(snakemake, main)  # noqa: F821
