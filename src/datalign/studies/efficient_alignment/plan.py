"""What the efficient-alignment study derives from its config: budgets, methods, seeds, models.

Light on purpose (no torch, transformers, datasets or TRL): the workflow and
``snakemake -n`` import it while planning.
"""

from __future__ import annotations

import math
from typing import Any

#: Policy names the workflow builds itself; anything else is a hub name or a directory.
BUILT_POLICIES = ("probe", "smollm2")


def section(config: dict[str, Any]) -> dict[str, Any]:
    return config["efficient_alignment"]


def datasets(config: dict[str, Any]) -> list[str]:
    return list(section(config)["datasets"])


def budget_label(percent: float) -> str:
    """The wildcard of a budget in percent: ``1``, ``2.5``, ``100``."""
    return f"{float(percent):g}"


def budgets(config: dict[str, Any]) -> list[str]:
    """Budget labels in increasing order."""
    return [budget_label(b) for b in sorted(float(b) for b in section(config)["budgets"])]


def budget_percent(label: str) -> float:
    return float(label)


def methods(config: dict[str, Any]) -> list[str]:
    return list(section(config)["methods"])


def method_options(config: dict[str, Any], method: str) -> dict[str, Any]:
    return dict(section(config)["methods"][method] or {})


def seeds(config: dict[str, Any]) -> list[int]:
    return [int(s) for s in section(config)["seeds"]]


def budget_rows(percent: float, n: int) -> int:
    """Rows a budget of ``percent`` keeps out of ``n`` (the selection registry's rounding, half up)."""
    return min(n, math.floor(percent / 100.0 * n + 0.5))


def resolve_model(config: dict[str, Any], name: str | None) -> str | None:
    """``probe`` / ``policy`` / a name as the model it means: ``probe``, ``smollm2`` or a hub name/path."""
    if name == "policy":
        return section(config)["policy"]
    return name


def embedding_model(config: dict[str, Any]) -> str | None:
    emb = section(config)["embedding"]
    return resolve_model(config, emb["model"]) if emb["kind"] == "last_token" else emb["model"]


def quality_model(config: dict[str, Any]) -> str | None:
    """The LM of the per-row completion NLL (scored for every row, whether or not `quality` is selected)."""
    return resolve_model(config, section(config)["quality"]["model"])


def judge(config: dict[str, Any]) -> dict[str, Any] | None:
    """The reward-model judge's options (``evaluation.judge``), or None when the judge is off."""
    return section(config)["evaluation"].get("judge") or None


def generation(config: dict[str, Any]) -> dict[str, Any] | None:
    """What the align job needs of the judge: how the completions are generated (None: judge off).

    The reward model, its batch size and context are the judge job's alone,
    so changing them rescores the completions without retraining.
    """
    opts = judge(config)
    if opts is None:
        return None
    return {"max_new_tokens": opts["max_new_tokens"], "max_prompts": opts["max_prompts"]}


def align_evaluation(config: dict[str, Any]) -> dict[str, Any]:
    """The evaluation options of the align job: ``evaluation`` without the judge."""
    return {k: v for k, v in section(config)["evaluation"].items() if k != "judge"}


def models_used(config: dict[str, Any]) -> set[str]:
    """Every causal LM the study loads (policy, last-token embedder, quality scorer)."""
    used = {section(config)["policy"], quality_model(config)}
    if section(config)["embedding"]["kind"] == "last_token":
        used.add(embedding_model(config))
    return {m for m in used if m is not None}


def needs_probe(config: dict[str, Any]) -> bool:
    return "probe" in models_used(config)


def needs_export(config: dict[str, Any]) -> bool:
    return "smollm2" in models_used(config)
