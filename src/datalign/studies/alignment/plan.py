"""What a study computes, derived from its config: the table of contents of the workflow.

The Snakefile asks these functions which artifacts exist; keeping the logic
here makes it testable without Snakemake and keeps the rules declarative.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True, order=True)
class EmbeddingSet:
    """A (dataset, split) pair whose Task2Vec embeddings the study needs."""

    dataset: str
    split: str

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.split}"


def settings(config: dict[str, Any]) -> list[str]:
    """Experiment settings present in the config, in a fixed order."""
    return [s for s in ("pretrain", "finetune") if s in config.get("experiments", {})]


def train_sets(config: dict[str, Any], setting: str) -> list[str]:
    return list(config["experiments"][setting]["train_sets"])


def eval_sets(config: dict[str, Any], setting: str) -> list[str]:
    return list(config["experiments"][setting]["eval_sets"])


def embedding_sets(config: dict[str, Any]) -> list[EmbeddingSet]:
    """Every set Task2Vec embeds: train splits of training sets, test splits of evaluation sets."""
    sets: set[EmbeddingSet] = set()
    for setting in settings(config):
        sets.update(EmbeddingSet(d, "train") for d in train_sets(config, setting))
        sets.update(EmbeddingSet(d, "test") for d in eval_sets(config, setting))
    return sorted(sets)


def datasets_used(config: dict[str, Any]) -> list[str]:
    """Every registered dataset the study needs prepared (mixture components included)."""
    needed: set[str] = set()
    for setting in settings(config):
        needed.update(train_sets(config, setting))
        needed.update(eval_sets(config, setting))
    if config["tokenizer"]["kind"] == "bpe":
        needed.update(config["tokenizer"]["train_on"])
    if config["probe"].get("pretrained") is None:
        needed.update(config["probe"]["pretrain"]["datasets"])
    frontier = list(needed)
    while frontier:
        spec = config["datasets"][frontier.pop()]
        for comp in spec.get("components", {}) if spec["source"] == "mixture" else {}:
            if comp not in needed:
                needed.add(comp)
                frontier.append(comp)
    return sorted(needed)


def evaluation_pairs(config: dict[str, Any], setting: str) -> list[tuple[str, str]]:
    """(train_set, eval_set) pairs evaluated in a setting: every model on every evaluation set."""
    return [(t, e) for t in train_sets(config, setting) for e in eval_sets(config, setting)]


def derived_seed(config: dict[str, Any], *parts: str) -> int:
    """A stage-specific seed: the master seed hashed with the stage's name parts (stable across runs)."""
    text = ":".join([str(config.get("seed", 0)), *parts])
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
