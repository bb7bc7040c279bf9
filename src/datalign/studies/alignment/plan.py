"""What a study computes, derived from its config: the table of contents of the workflow.

The Snakefile asks these functions which artifacts exist; keeping the logic
here makes it testable without Snakemake and keeps the rules declarative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datalign.core.seeds import derived_seed

SPLITS = ("train", "validation", "test")

__all__ = [
    "SPLITS", "EmbeddingSet", "baseline_reference", "derived_seed", "embedding_sets", "eval_key", "eval_sets",
    "evaluation_pairs", "settings", "train_key", "train_sets",
]


@dataclass(frozen=True, order=True)
class EmbeddingSet:
    """A (dataset, split) pair whose Task2Vec embeddings the study needs."""

    dataset: str
    split: str

    @property
    def label(self) -> str:
        """The set's key in the alignment tables (``row``/``col`` of alignment.csv)."""
        return f"{self.dataset}/{self.split}"


def train_key(dataset: str) -> str:
    """The alignment-table key of a training set (its train split)."""
    return EmbeddingSet(dataset, "train").label


def eval_key(dataset: str) -> str:
    """The alignment-table key of an evaluation set (its test split)."""
    return EmbeddingSet(dataset, "test").label


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


def task2vec_sets_per_job(config: dict[str, Any]) -> int:
    """``resources.task2vec.sets_per_job`` (validated by the schema: an integer >= 1), default 1."""
    return int(((config.get("resources") or {}).get("task2vec") or {}).get("sets_per_job", 1))


def embedding_groups(config: dict[str, Any]) -> list[list[EmbeddingSet]]:
    """The embedding sets as the Task2Vec jobs share them: consecutive chunks of
    ``resources.task2vec.sets_per_job`` sets of :func:`embedding_sets`, in its order
    (the last chunk may be shorter). A resource choice: each set's embeddings do not
    depend on the chunk it is embedded in."""
    sets = embedding_sets(config)
    n = task2vec_sets_per_job(config)
    return [sets[i:i + n] for i in range(0, len(sets), n)]


def datasets_used(config: dict[str, Any]) -> list[str]:
    """Every registered dataset the study needs prepared: its training and evaluation
    sets, the tokenizer's and the probe's training sets, mixture components included."""
    from datalign.studies import datasets_used as all_used

    return all_used({**config, "studies": ["alignment"]})


#: Keys of an experiment that say what is evaluated, not how a model is trained:
#: changing them retrains nothing.
EVALUATION_KEYS = ("eval_sets", "eval_tokens")


def training_keys(config: dict[str, Any], setting: str) -> dict[str, Any]:
    """What changes one model of a setting: its training keys (not the list of sets)."""
    exp = config["experiments"][setting]
    return {k: v for k, v in exp.items() if k not in (*EVALUATION_KEYS, "train_sets")}


def evaluation_keys(config: dict[str, Any], setting: str) -> dict[str, Any]:
    """What changes one loss besides its model: the held-out tokens and how they are cut and batched."""
    exp = config["experiments"][setting]
    return {k: exp[k] for k in ("eval_tokens", "seq_len", "batch_size") if k in exp}


def training_plan(config: dict[str, Any]) -> dict[str, Any]:
    """Per setting: the training keys and the models trained (the DVC training stage's params)."""
    return {s: {**training_keys(config, s), "train_sets": train_sets(config, s)} for s in settings(config)}


def evaluation_plan(config: dict[str, Any]) -> dict[str, Any]:
    """Per setting: what the evaluation stage computes (models x sets, tokens)."""
    return {
        s: {**evaluation_keys(config, s), "train_sets": train_sets(config, s), "eval_sets": eval_sets(config, s)}
        for s in settings(config)
    }


def baseline_reference(config: dict[str, Any], setting: str) -> dict[str, Any]:
    """What a setting's losses are held against (the ``baseline`` rule's reference).

    finetune: the base model itself before any fine-tuning (``base``: ``probe`` or a
    hub name / path), evaluated on the same held-out chunks: a candidate below it
    helped, above it hurt. pretrain: the untrained base is uniform over the
    vocabulary (``ln V`` for every evaluation set), which says nothing about any
    domain, so the reference is the evaluation set's own unigram model (its train
    split's token frequencies, add-one smoothed): a model pre-trained on a candidate
    that does not beat it learned less about the target than its token counts.
    """
    if setting == "finetune":
        return {"kind": "base_model", "base": config["experiments"]["finetune"]["base"]}
    return {"kind": "unigram", "smoothing": 1.0}


def evaluation_pairs(config: dict[str, Any], setting: str) -> list[tuple[str, str]]:
    """(train_set, eval_set) pairs evaluated in a setting: every model on every evaluation set."""
    return [(t, e) for t in train_sets(config, setting) for e in eval_sets(config, setting)]
