"""Prepare one preference dataset: load it, split it by group, cap it, write it with a manifest.

A prepared preference dataset is a directory holding ``train.jsonl`` and
``test.jsonl`` in the stored form of :mod:`.storage` (one KTO row per line,
pairs linked by id) and ``manifest.json``: name, source, spec, seed, per
split rows / pairs / desirable / undesirable / unpaired rows / groups /
SHA-256, totals, the rows dropped and why, source details and provenance. The
directory is written atomically (:func:`datalign.core.io.atomic_path`).

Split: the records of a source are cut by group like the text registry
(:func:`datalign.data.split.split_of_group`): a group goes to test when
``unit_hash(seed, name, group) < test_fraction``, so held-out prompts (or
modules, or message trees) never reach selection or training. Hub splits
given as ``splits`` are used as they are, and any training record whose group
also occurs in the test split is dropped (counted), for the same guarantee.

Order and size: each split is put in a seeded order (a permutation that
depends only on seed, name and split); with ``max_rows`` the longest prefix
of that order holding at most ``max_rows`` KTO rows is kept (a pair counts 2
and is never cut in half), so a larger ``max_rows`` only adds rows.

Drop counts in the manifest are in source records (a pair, or an unpaired row).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from datalign.core.errors import DataError
from datalign.core.io import Timer, atomic_path, provenance, write_json
from datalign.data.preference.bbc_news import build_bbc_pairs
from datalign.data.preference.drug_reviews import build_drug_review_pairs
from datalign.data.preference.hub import load_hf_preferences, with_hub_defaults
from datalign.data.preference.local import load_local_preferences
from datalign.data.preference.records import (
    KTORow,
    PreferencePair,
    Record,
    kto_to_pairs,
    label_counts,
    record_rows,
)
from datalign.data.preference.rows import DropLog
from datalign.data.preference.source import BuildContext, LoadedPreferences
from datalign.data.preference.spec import DEFAULTS, validate_preference_spec
from datalign.data.preference.stdlib_pairs import build_stdlib_pairs
from datalign.data.preference.storage import read_rows, write_rows
from datalign.data.split import seed_from, split_of_group

log = logging.getLogger(__name__)

PREFERENCE_SPLITS = ("train", "test")
STORED_FORM = "kto_rows"
LOADERS: dict[str, Callable[[Mapping[str, Any], BuildContext], LoadedPreferences]] = {
    "hf": load_hf_preferences,
    "local": load_local_preferences,
    "stdlib": build_stdlib_pairs,
    "bbc_news": build_bbc_pairs,
    "drug_reviews": build_drug_review_pairs,
}


def stored_rows(records: list[Record]) -> list[KTORow]:
    """The stored rows of a split's records: a pair gives its chosen then its rejected
    row with pair id = its index among the split's pairs (0, 1, ...); a KTO row is kept
    with pair None."""
    rows: list[KTORow] = []
    next_id = 0
    for record in records:
        if isinstance(record, PreferencePair):
            rows.append(KTORow(record.prompt, record.chosen, True, record.group, next_id))
            rows.append(KTORow(record.prompt, record.rejected, False, record.group, next_id))
            next_id += 1
        else:
            rows.append(KTORow(record.prompt, record.completion, record.desirable, record.group))
    return rows


def cap_rows(records: list[Record], max_rows: int | None) -> list[Record]:
    """The longest prefix of ``records`` with at most ``max_rows`` stored rows (a pair
    counts 2); all of them when ``max_rows`` is None."""
    if max_rows is None:
        return records
    total = 0
    for i, record in enumerate(records):
        total += record_rows(record)
        if total > max_rows:
            return records[:i]
    return records


def _split_records(
    loaded: LoadedPreferences, split_of: Callable[[str], str], drops: DropLog
) -> dict[str, list[Record]]:
    if loaded.presplit is None:
        out: dict[str, list[Record]] = {s: [] for s in PREFERENCE_SPLITS}
        for record in loaded.records or []:
            out[split_of(record.group)].append(record)
        return out
    test = list(loaded.presplit.get("test", []))
    test_groups = {r.group for r in test}
    train = [r for r in loaded.presplit.get("train", []) if r.group not in test_groups]
    drops.drop("group also in the test split", len(loaded.presplit.get("train", [])) - len(train))
    return {"train": train, "test": test}


def _check_labels(name: str, split: str, rows: list[KTORow], hint: str) -> None:
    good, bad = label_counts(rows)
    if not rows:
        raise DataError(f"dataset {name}: split '{split}' is empty; {hint}")
    if not good or not bad:
        raise DataError(
            f"dataset {name}: split '{split}' has {good} desirable and {bad} undesirable rows; "
            "KTO needs both labels"
        )


def prepare_preference_dataset(
    name: str, spec: Mapping[str, Any], out_dir: str | Path, seed: int
) -> dict[str, Any]:
    """Build preference dataset ``name`` from its spec into ``out_dir``; return its manifest.

    See the module docstring for the split, order, cap and files. Raises
    ConfigError for a bad spec (before any work), DataError for unreadable or
    bad data (with ``on_bad_row: error``), a split left empty, or a split
    with only one label.
    """
    validate_preference_spec(name, spec)
    source = spec["source"]
    fraction = float(spec.get("test_fraction") or DEFAULTS["test_fraction"])
    fractions = {"test": fraction, "validation": 0.0}

    def split_of(group: str) -> str:
        return split_of_group(seed, name, group, fractions)

    drops = DropLog(name, spec.get("on_bad_row") or DEFAULTS["on_bad_row"])
    with Timer() as timer:
        loaded = LOADERS[source](spec, BuildContext(name, seed, split_of, drops))
        splits = _split_records(loaded, split_of, drops)
        rows: dict[str, list[KTORow]] = {}
        for split in PREFERENCE_SPLITS:
            records = splits[split]
            order = np.random.default_rng(seed_from(seed, name, split, "order")).permutation(len(records))
            kept = cap_rows([records[i] for i in order], spec.get("max_rows"))
            drops.drop(f"over max_rows ({split})", len(records) - len(kept))
            rows[split] = stored_rows(kept)
            hint = (
                "its hub split gave no usable record"
                if loaded.presplit is not None
                else f"{len(loaded.records or [])} records in {len({r.group for r in loaded.records or []})} groups overall: raise test_fraction or the row limits"
            )
            _check_labels(name, split, rows[split], hint)
    manifest: dict[str, Any] = {
        "name": name,
        "source": source,
        "spec": dict(spec),
        "seed": seed,
        "form": STORED_FORM,
        "test_fraction": None if loaded.presplit is not None else fraction,
        "splits": {},
    }
    with atomic_path(Path(out_dir), is_dir=True) as tmp:
        for split in PREFERENCE_SPLITS:
            manifest["splits"][split] = write_rows(tmp / f"{split}.jsonl", rows[split])
        for key in ("rows", "pairs", "desirable", "undesirable", "unpaired_rows"):
            manifest[key] = sum(manifest["splits"][s][key] for s in PREFERENCE_SPLITS)
        manifest["dropped"] = drops.as_dict()
        manifest["details"] = {**loaded.details, **({"resolved_spec": with_hub_defaults(spec)} if source == "hf" else {})}
        manifest["provenance"] = provenance(
            config_slice=dict(spec), seed=seed, seconds=round(timer.seconds, 3)
        )
        write_json(tmp / "manifest.json", manifest)
    log.info(
        "preference dataset %s: %s in %.1fs (%d bad rows skipped)",
        name,
        ", ".join(f"{s} {manifest['splits'][s]['rows']} rows / {manifest['splits'][s]['pairs']} pairs" for s in PREFERENCE_SPLITS),
        timer.seconds,
        manifest["dropped"]["bad_rows_skipped"],
    )
    return manifest


def read_preference_split(
    data_dir: str | Path,
    split: str,
    form: Literal["kto", "pairs"] = "kto",
    pairing: str = "zip",
) -> list[KTORow] | list[PreferencePair]:
    """The records of one prepared split, in their stored (seeded) order.

    ``form="kto"``: the stored KTO rows; ``form="pairs"``: the pairs of
    :func:`.records.kto_to_pairs` with ``pairing`` (linked rows by id, then
    unlinked rows by prompt). Raises DataError for an unknown split or form, a
    missing or malformed file, a split without rows, a KTO split with only one
    label, or a pairs read that finds no pair.
    """
    if split not in PREFERENCE_SPLITS:
        raise DataError(f"unknown preference split '{split}' (expected one of {list(PREFERENCE_SPLITS)})")
    if form not in ("kto", "pairs"):
        raise DataError(f"unknown preference form '{form}' (expected 'kto' or 'pairs')")
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: prepared preference split not found (is {Path(data_dir).name} prepared?)")
    rows = read_rows(path)
    if form == "kto":
        _check_labels(Path(data_dir).name, split, rows, f"{path} has no rows")
        return rows
    pairs, unpaired = kto_to_pairs(rows, pairing)
    if not pairs:
        raise DataError(
            f"{path}: no preference pair among {len(rows)} rows ({len(unpaired)} unpaired: "
            "no prompt has both a desirable and an undesirable row)"
        )
    return pairs


def write_preference_rows(path: str | Path, rows: list[KTORow]) -> dict[str, Any]:
    """Write KTO rows (e.g. a selected subset of a train split) atomically in the stored form;
    return their :func:`.storage.split_stats` and ``sha256``. Raises DataError for no rows."""
    if not rows:
        raise DataError(f"{path}: no rows to write")
    with atomic_path(Path(path)) as tmp:
        return write_rows(tmp, rows)

