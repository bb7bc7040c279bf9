"""Join alignment with loss for one setting; statistics and the scatter plot."""

from pathlib import Path

import pandas as pd

from datalign.core.io import atomic_path, read_json, write_json
from datalign.core.runner import run_step
from datalign.plotting.charts import correlation_scatter
from datalign.stats.correlation import correlation_stats
from datalign.studies.alignment.plan import eval_key, train_key


def main(smk):
    setting = smk.wildcards.setting
    pairs = pd.read_csv(smk.input.alignment).set_index(["row", "col"])
    rows = []
    for (train_set, eval_set), loss_path in zip(smk.params.pairs, smk.input.losses, strict=True):
        a = pairs.loc[(train_key(train_set), eval_key(eval_set))]
        loss = read_json(loss_path)
        rows.append({
            "train_set": train_set, "eval_set": eval_set,
            "alignment": a["alignment"], "alignment_ci_low": a["ci_low"],
            "alignment_ci_high": a["ci_high"], "alignment_std": a["std"],
            "cross_entropy": loss["cross_entropy"], "perplexity": loss["perplexity"],
        })
    points = pd.DataFrame(rows)
    with atomic_path(smk.output.points) as tmp:
        points.to_csv(tmp, index=False, float_format="%.6g")
    cfg = smk.params.correlation
    stats = correlation_stats(points["alignment"].to_numpy(), points["cross_entropy"].to_numpy(),
                              bootstrap=cfg["bootstrap"], confidence=cfg["confidence"],
                              seed=smk.params.seed)
    stats["setting"] = setting
    write_json(smk.output.stats, stats)
    multi_eval = points["eval_set"].nunique() > 1
    labels = [f"{t}" + (f" -> {e}" if multi_eval else "") for t, e in
              zip(points["train_set"], points["eval_set"], strict=True)]
    xerr = [points["alignment"] - points["alignment_ci_low"],
            points["alignment_ci_high"] - points["alignment"]]
    correlation_scatter(
        points["alignment"].to_numpy(), points["cross_entropy"].to_numpy(), labels, stats,
        Path(smk.output.scatter), title=f"Alignment vs loss ({setting})",
        xerr=xerr, groups=list(points["eval_set"]) if multi_eval else None,
        group_title="evaluation set",
    )


run_step(snakemake, main)  # noqa: F821
