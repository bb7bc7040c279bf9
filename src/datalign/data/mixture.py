"""Mixtures of prepared datasets by share (the paper's interventions).

``components: {a: 0.25, b: 0.75}`` builds, for each split, a set of documents
drawn with the seed from the components' same split, such that component c
holds close to ``share_c`` of the mixture's **characters**. Shares are by
characters because preparation is tokenizer-independent; with one tokenizer
for all components, token shares differ from character shares only by the
components' characters-per-token ratios.

The mixture is as large as every component can supply: total characters
``T = min_c chars_c / share_c`` over components with a positive share, target
``share_c * T`` characters for component c. Each component's documents are put
in a seeded order and the prefix whose character count is closest to its
target is taken (the limiting component gives all its documents). Achieved
shares are recorded in the manifest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import ConfigError, DataError
from datalign.data.records import Document, read_documents_file
from datalign.data.split import SPLITS, seed_from, seeded_order

SHARE_TOLERANCE = 1e-6


def mixture_shares(name: str, spec: Mapping[str, Any]) -> dict[str, float]:
    """The validated ``components`` mapping: shares >= 0 that sum to 1 (within 1e-6)."""
    components = spec.get("components")
    if not isinstance(components, Mapping) or not components:
        raise ConfigError(
            f"datasets.{name}.components: expected a mapping of dataset name to share, got {components!r}"
        )
    shares: dict[str, float] = {}
    for comp, share in components.items():
        if isinstance(share, bool) or not isinstance(share, int | float) or not share >= 0:
            raise ConfigError(
                f"datasets.{name}.components.{comp}: expected a share >= 0, got {share!r}"
            )
        if comp == name:
            raise ConfigError(f"datasets.{name}.components.{comp}: a mixture cannot contain itself")
        shares[str(comp)] = float(share)
    total = math.fsum(shares.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ConfigError(f"datasets.{name}.components: shares sum to {total:g}, not 1")
    return shares


def needed_components(spec: Mapping[str, Any]) -> list[str]:
    """Components with a positive share, in config order (a zero share needs nothing prepared)."""
    components = spec.get("components") or {}
    return [str(c) for c, s in components.items() if isinstance(s, int | float) and s > 0]


def _closest_prefix(lengths: list[int], target: float) -> int:
    """The k whose prefix sum of ``lengths[:k]`` is closest to ``target`` (ties: the smaller k)."""
    cumulative = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
    return int(np.argmin(np.abs(cumulative - target)))


def mix_split(
    components: Mapping[str, list[Document]],
    shares: Mapping[str, float],
    seed: int,
    name: str,
    split: str,
) -> tuple[list[Document], dict[str, Any]]:
    """One split of a mixture and its statistics (per component: rows, characters,
    target and achieved share of characters). Groups become ``<component>/<group>``."""
    available = {c: sum(len(d.text) for d in components[c]) for c in shares if shares[c] > 0}
    for comp, chars in available.items():
        if chars == 0:
            raise DataError(f"dataset {name}: component {comp} has no {split} documents to mix")
    total = min(chars / shares[c] for c, chars in available.items())
    chosen: list[Document] = []
    stats: dict[str, Any] = {}
    # Sorted, so the mixture does not depend on the order the config lists its components in.
    for comp, share in sorted(shares.items()):
        if share == 0:
            stats[comp] = {"share": 0.0, "rows": 0, "characters": 0}
            continue
        ordered = seeded_order(components[comp], seed_from(seed, name, comp), name, split)
        lengths = [len(d.text) for d in ordered]
        target = share * total
        k = len(ordered) if available[comp] <= target else _closest_prefix(lengths, target)
        taken = ordered[:k]
        chosen.extend(Document(d.text, f"{comp}/{d.group}") for d in taken)
        stats[comp] = {
            "share": share,
            "rows": k,
            "characters": int(sum(lengths[:k])),
            "available_rows": len(ordered),
            "available_characters": available[comp],
        }
    mixed_chars = sum(s["characters"] for s in stats.values())
    for comp in stats:
        stats[comp]["achieved_share"] = (
            stats[comp]["characters"] / mixed_chars if mixed_chars else 0.0
        )
    return seeded_order(chosen, seed, name, split), {
        "target_characters": total,
        "components": stats,
    }


def build_mixture(
    name: str,
    spec: Mapping[str, Any],
    seed: int,
    component_dirs: Mapping[str, Path] | None,
) -> tuple[dict[str, list[Document]], dict[str, Any]]:
    """All three splits of a mixture from the prepared component directories."""
    shares = mixture_shares(name, spec)
    dirs = dict(component_dirs or {})
    missing = [c for c in needed_components(spec) if c not in dirs]
    if missing:
        raise DataError(f"dataset {name}: component(s) {missing} not prepared (no directory given)")
    splits: dict[str, list[Document]] = {}
    details: dict[str, Any] = {"unit": "characters", "shares": shares, "splits": {}}
    for split in SPLITS:
        docs = {}
        for comp in needed_components(spec):
            path = Path(dirs[comp]) / f"{split}.jsonl"
            if not path.is_file():
                raise DataError(
                    f"dataset {name}: component {comp} has no prepared {split} split at {path}"
                )
            docs[comp] = read_documents_file(path)
        splits[split], details["splits"][split] = mix_split(docs, shares, seed, name, split)
    return splits, details
