"""The study's headline numbers, and the words that report them.

Per setting: the correlation of alignment with loss, how strong it is, whether it
survives leaving out its most influential point or rests on two clusters of
points (:mod:`datalign.stats.robustness`), and what training bought against the
setting's reference loss. Per mixture family: alignment (and loss) with the
evaluation sets it was built for, as the mixed-in share grows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from datalign.stats.robustness import strength_words
from datalign.studies.alignment.plan import eval_key, train_key


def intervention_targets(config: Mapping[str, Any], eval_sets: Sequence[str]) -> dict[str, list[str]]:
    """Which evaluation sets each mixed-in dataset is meant to move alignment toward.

    The config's ``interventions`` ({component: [evaluation sets]}) when given;
    otherwise every mixture component that is itself one of ``eval_sets`` targets
    that set (py_docstrings mixed into news targets py_docstrings). A component
    without a target is not reported against any set.
    """
    declared = config.get("interventions") or {}
    if declared:
        return {c: [e for e in targets if e in eval_sets] for c, targets in declared.items()}
    components = {
        c
        for spec in config.get("datasets", {}).values()
        if spec.get("source") == "mixture"
        for c in spec["components"]
    }
    return {c: [c] for c in sorted(components) if c in eval_sets}


def mixture_families(datasets: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, ...], dict[str, dict[str, float]]]:
    """Mixtures grouped by their component names: {components: {mixture: shares}}."""
    families: dict[tuple[str, ...], dict[str, dict[str, float]]] = {}
    for name, spec in datasets.items():
        if spec.get("source") == "mixture":
            families.setdefault(tuple(sorted(spec["components"])), {})[name] = dict(spec["components"])
    return dict(sorted(families.items()))


def mixture_interventions(
    datasets: Mapping[str, Mapping[str, Any]],
    pairs: pd.DataFrame,
    targets: Mapping[str, Sequence[str]],
    points: Mapping[str, pd.DataFrame] | None = None,
) -> list[dict[str, Any]]:
    """Alignment with each *target* evaluation set as the share of its mixed-in component grows.

    A family is every mixture over the same component names plus the pure
    components (shares 0 and 1, where embedded; a family whose pure components
    were not all embedded is skipped). For each component with targets
    (:func:`intervention_targets`) and each target, the paper's intervention
    predicts that alignment rises with the component's share. Reported: the
    shares in order, the datasets, their alignments, whether they rise strictly,
    and per setting in ``points`` ({setting: points table}) the losses on the
    target of the models trained on those datasets, where all were trained.
    """
    index = pairs.set_index(["row", "col"])["alignment"]

    def align(name: str, eval_set: str) -> float | None:
        key = (train_key(name), eval_key(eval_set))
        return float(index.loc[key]) if key in index.index else None

    out = []
    for comps, members in mixture_families(datasets).items():
        for component in comps:
            for eval_set in targets.get(component, []):
                pure = {c: align(c, eval_set) for c in comps}
                if any(v is None for v in pure.values()):
                    continue
                rows = [(shares[component], name, align(name, eval_set)) for name, shares in members.items()]
                rows += [(1.0 if c == component else 0.0, c, pure[c]) for c in comps]
                rows = sorted(r for r in rows if r[2] is not None)
                values = [r[2] for r in rows]
                names = [r[1] for r in rows]
                losses = {}
                for setting, table in (points or {}).items():
                    on_target = table[table["eval_set"] == eval_set].set_index("train_set")["cross_entropy"]
                    if all(n in on_target.index for n in names):
                        losses[setting] = [float(on_target[n]) for n in names]
                out.append({
                    "components": list(comps),
                    "aligned_component": component,
                    "eval_set": eval_set,
                    "shares": [r[0] for r in rows],
                    "datasets": names,
                    "alignment": values,
                    "monotonic": bool(np.all(np.diff(values) > 0)),
                    "losses": losses,
                })
    return out


def untargeted_families(datasets: Mapping[str, Mapping[str, Any]], targets: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Mixture families none of whose components has a target: reported without a trend."""
    return [list(c) for c in mixture_families(datasets) if not any(targets.get(x) for x in c)]


def reference_outcome(points: pd.DataFrame) -> dict[str, Any]:
    """What training bought against the reference, per evaluation set of one setting.

    ``points`` is a correlation points table (``loss_change`` = loss minus the
    reference loss, nats). Per evaluation set: the reference kind and loss, how
    many models beat it (loss_change < 0), the best and the worst model and
    their changes.
    """
    out = {}
    for eval_set, group in points.groupby("eval_set", sort=True):
        best, worst = group.loc[group["loss_change"].idxmin()], group.loc[group["loss_change"].idxmax()]
        out[str(eval_set)] = {
            "reference": str(group["reference"].iloc[0]),
            "reference_cross_entropy": float(group["reference_cross_entropy"].iloc[0]),
            "models": int(len(group)),
            "improved": int((group["loss_change"] < 0).sum()),
            "best": {"train_set": str(best["train_set"]), "loss_change": float(best["loss_change"])},
            "worst": {"train_set": str(worst["train_set"]), "loss_change": float(worst["loss_change"])},
        }
    return out


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def correlation_reading(setting: str, s: Mapping[str, Any]) -> list[str]:
    """The correlation of one setting in words: strength, direction, CI, robustness."""
    r, lo, hi = s["pearson_r"], s.get("r_ci_low"), s.get("r_ci_high")
    conf = round(100 * s.get("confidence", 0.95))
    strength = strength_words(r)
    direction = (
        "" if strength == "negligible"
        else ", more aligned training data, lower loss (the direction the paper predicts)" if r < 0
        else ", more aligned training data, HIGHER loss (against the paper's prediction)"
    )
    lines = [
        f"- **{setting}** (n={s['n']} models x evaluation sets): Pearson r={_fmt(r)} "
        f"({conf}% bootstrap CI {_fmt(lo)} to {_fmt(hi)}, p={_fmt(s['pearson_p'], '.2g')}), "
        f"r^2={_fmt(s['r2'])}, Spearman rho={_fmt(s['spearman_rho'])}: "
        f"a {strength} correlation{direction}."
    ]
    if lo is not None and hi is not None and lo < 0 < hi:
        lines.append(f"  - The CI includes 0: with {s['n']} points this is not distinguishable from no correlation.")
    rob = s.get("robustness")
    if rob and rob["r_loo_min"] is None:
        lines.append(f"  - With {s['n']} points, leaving one out leaves too few for an r: no robustness check.")
    elif rob:
        lines.append(
            f"  - Leaving one point out, r ranges from {_fmt(rob['r_loo_min'])} to {_fmt(rob['r_loo_max'])}; "
            f"without the most influential point ({rob['most_influential_point']}) r="
            f"{_fmt(rob['r_without_most_influential'])}"
            + (f" (Cook's distance {_fmt(rob['max_cooks_distance'], '.2f')})"
               if rob.get("max_cooks_distance") is not None else "") + "."
        )
        cl = rob["clusters"]
        if cl["clustered"]:
            within = [
                f"r={_fmt(cl[f'r_{side}'])} among {len(cl[side])} ({', '.join(cl[side])})"
                if cl[f"r_{side}"] is not None else f"{len(cl[side])} point(s) ({', '.join(cl[side])})"
                for side in ("low", "high")
            ]
            weak = all(cl[f"r_{side}"] is None or abs(cl[f"r_{side}"]) < 0.3 or
                       np.sign(cl[f"r_{side}"]) != np.sign(r) for side in ("low", "high"))
            lines.append(
                f"  - The points form two clusters in alignment (the split explains "
                f"{100 * cl['between_share']:.0f}% of its variance): lower {within[0]}; higher {within[1]}. "
                + ("The correlation rests on the gap between the clusters, not on a trend within them."
                   if weak else "The trend also holds within the clusters.")
            )
    return lines


def reference_reading(setting: str, outcome: Mapping[str, Any]) -> list[str]:
    """What training bought against the reference, in words, per evaluation set."""
    lines = []
    for eval_set, o in outcome.items():
        what = "the untuned base" if o["reference"] == "base_model" else "its unigram reference"
        lines.append(
            f"  - On {eval_set}, against {what} ({o['reference_cross_entropy']:.3f} nats): "
            f"{o['improved']} of {o['models']} models lower the loss; best {o['best']['train_set']} "
            f"({o['best']['loss_change']:+.3f}), worst {o['worst']['train_set']} ({o['worst']['loss_change']:+.3f})."
        )
    return lines


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """A short human-readable account of the summary (what the README quotes)."""
    lines = ["# datalign study summary", "", "## Does alignment predict loss?", ""]
    for setting, s in summary["correlation"].items():
        lines += correlation_reading(setting, s)
        lines += reference_reading(setting, summary.get("reference", {}).get(setting, {}))
    if summary["interventions"] or summary.get("untargeted_families"):
        lines += ["", "## Mixture interventions (against the evaluation sets they were built for)", ""]
    for item in summary["interventions"]:
        series = ", ".join(
            f"{sh:.2f}: {a:.4f}" for sh, a in zip(item["shares"], item["alignment"], strict=True)
        )
        lines.append(
            f"- alignment with **{item['eval_set']}** (test) as the share of "
            f"`{item['aligned_component']}` in the mixtures grows: {series} -> "
            f"{'rises monotonically' if item['monotonic'] else 'NOT monotonic'}"
        )
        for setting, losses in item.get("losses", {}).items():
            loss_series = ", ".join(f"{sh:.2f}: {v:.3f}" for sh, v in zip(item["shares"], losses, strict=True))
            lines.append(f"  - {setting} loss on {item['eval_set']}: {loss_series}")
    for comps in summary.get("untargeted_families", []):
        lines.append(
            f"- mixtures of {', '.join(comps)}: no evaluation set is a component or declared in "
            "`interventions`, so no trend is reported"
        )
    lines.append("")
    return "\n".join(lines)
