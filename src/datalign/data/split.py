"""Deterministic train/validation/test splits by group, and seeded document orders.

Every document carries a group (a module, a file, an article, a row). A group
goes wholly to one split, decided by hashing it with the seed and the dataset
name, so train and test never share a group and adding or removing one group
never moves another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from datalign.core.errors import ConfigError, DataError
from datalign.data.records import Document

SPLITS: tuple[str, ...] = ("train", "validation", "test")
DEFAULT_FRACTIONS: dict[str, float] = {"validation": 0.1, "test": 0.1}


def parse_fractions(value: Any, where: str) -> dict[str, float]:
    """Validate ``{validation: v, test: t}`` (either may be omitted: default 0.1 each).

    Requires ``0 <= v, t`` and ``v + t < 1`` so that train can be non-empty.
    """
    if value is None:
        return dict(DEFAULT_FRACTIONS)
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping like {{validation: 0.1, test: 0.2}}, got {value!r}"
        )
    unknown = sorted(set(value) - {"validation", "test"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} (allowed: validation, test)")
    fractions = dict(DEFAULT_FRACTIONS)
    for key, frac in value.items():
        if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 <= frac < 1:
            raise ConfigError(f"{where}.{key}: expected a fraction in [0, 1), got {frac!r}")
        fractions[key] = float(frac)
    if fractions["validation"] + fractions["test"] >= 1:
        raise ConfigError(
            f"{where}: validation + test = {fractions['validation'] + fractions['test']:g} leaves nothing for train"
        )
    return fractions


def unit_hash(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts: ``int(sha256(":".join(parts))[:16], 16) / 2**64``."""
    key = ":".join(str(p) for p in parts)
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16) / 2**64


def seed_from(*parts: object) -> int:
    """A 64-bit integer seed derived from the parts by SHA-256 (stable across runs and machines)."""
    key = ":".join(str(p) for p in parts)
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], 16)


def split_of_group(seed: int, name: str, group: str, fractions: Mapping[str, float]) -> str:
    """The split of a group: with u = unit_hash(seed, name, group),
    test if u < f_test, validation if u < f_test + f_validation, else train."""
    u = unit_hash(seed, name, group)
    if u < fractions["test"]:
        return "test"
    if u < fractions["test"] + fractions["validation"]:
        return "validation"
    return "train"


def seeded_order(docs: list[Document], seed: int, name: str, split: str) -> list[Document]:
    """The documents in a random order that depends only on (seed, name, split) and the input order."""
    rng = np.random.default_rng(seed_from(seed, name, split, "order"))
    return [docs[i] for i in rng.permutation(len(docs))]


def split_by_group(
    docs: list[Document], seed: int, name: str, fractions: Mapping[str, float]
) -> dict[str, list[Document]]:
    """Assign each document to the split of its group, then put each split in seeded order."""
    out: dict[str, list[Document]] = {s: [] for s in SPLITS}
    memo: dict[str, str] = {}
    for doc in docs:
        split = memo.get(doc.group)
        if split is None:
            split = memo[doc.group] = split_of_group(seed, name, doc.group, fractions)
        out[split].append(doc)
    return {s: seeded_order(out[s], seed, name, s) for s in SPLITS}


def require_nonempty(
    splits: Mapping[str, list[Document]], required: list[str], name: str, hint: str
) -> None:
    """Raise DataError naming the dataset and the first required split that has no document."""
    total_docs = sum(len(v) for v in splits.values())
    total_groups = len({d.group for v in splits.values() for d in v})
    for split in required:
        if not splits.get(split):
            raise DataError(
                f"dataset {name}: split '{split}' is empty ({total_docs} documents in "
                f"{total_groups} groups overall); {hint}"
            )
