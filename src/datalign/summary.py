"""The study's headline numbers: correlation per setting and the mixture interventions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def mixture_interventions(
    datasets: dict[str, dict[str, Any]], pairs: pd.DataFrame, eval_sets: list[str]
) -> list[dict[str, Any]]:
    """Alignment with each evaluation set as the share of one component of a mixture family grows.

    A family is every mixture over the same component names, plus the pure
    components themselves (share 0 and 1) where they were embedded. For each
    family, component and evaluation set it reports the shares, the
    alignments in share order and whether they rise strictly (``monotonic``).
    """
    index = pairs.set_index(["row", "col"])["alignment"]
    families: dict[tuple[str, ...], dict[str, dict[str, float]]] = {}
    for name, spec in datasets.items():
        if spec.get("source") == "mixture":
            key = tuple(sorted(spec["components"]))
            families.setdefault(key, {})[name] = dict(spec["components"])
    out = []
    for comps, members in families.items():
        for comp in comps:
            points = {name: shares[comp] for name, shares in members.items()}
            for other in comps:
                points.setdefault(other, 1.0 if other == comp else 0.0)
            for eval_set in eval_sets:
                rows = []
                for name, share in points.items():
                    key = (f"{name}/train", f"{eval_set}/test")
                    if key in index.index:
                        rows.append((share, name, float(index.loc[key])))
                if len(rows) < 3:
                    continue
                rows.sort()
                values = [r[2] for r in rows]
                out.append({
                    "components": list(comps),
                    "varied": comp,
                    "eval_set": eval_set,
                    "shares": [r[0] for r in rows],
                    "datasets": [r[1] for r in rows],
                    "alignment": values,
                    "monotonic": bool(np.all(np.diff(values) > 0)),
                })
    return out


def summary_markdown(summary: dict[str, Any]) -> str:
    """A short human-readable account of the summary (what the README quotes)."""
    lines = ["# datalign study summary", ""]
    for setting, s in summary["correlation"].items():
        lines.append(
            f"- **{setting}**: n={s['n']}, Pearson r={s['pearson_r']:.3f} "
            f"(95% CI {s['r_ci_low']:.3f} to {s['r_ci_high']:.3f}, p={s['pearson_p']:.2g}), "
            f"r^2={s['r2']:.3f}, Spearman rho={s['spearman_rho']:.3f}"
        )
    for item in summary["interventions"]:
        series = ", ".join(f"{sh:.2f}: {a:.4f}" for sh, a in zip(item["shares"], item["alignment"], strict=True))
        lines.append(
            f"- alignment of mixtures with **{item['eval_set']}** as the share of "
            f"`{item['varied']}` grows: {series} -> "
            f"{'monotonic' if item['monotonic'] else 'NOT monotonic'}"
        )
    lines.append("")
    return "\n".join(lines)
