"""Preference records: unpaired KTO rows and DPO pairs, field checks, conversions both ways.

Two forms of the same human (or synthetic) judgement:

- a **KTO row** (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect
  Theoretic Optimization", sec. 3): one completion of a prompt labelled
  desirable or undesirable on its own;
- a **preference pair** (Rafailov et al. 2023, "Direct Preference
  Optimization", sec. 3, the dataset D = {(x, y_w, y_l)}): a prompt, the
  chosen completion and the rejected one.

Every record has a ``group`` that decides its train/test split (see
:mod:`datalign.data.split`): the two rows of a pair share their group, so
they always land in the same split.

A pair gives two KTO rows linked by a ``pair`` id; KTO rows go back to pairs
by that id when both are present, and unlinked rows pair up by prompt (see
:func:`kto_to_pairs`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datalign.core.errors import DataError

PAIRINGS = ("zip", "cycle", "product")


@dataclass(frozen=True)
class KTORow:
    """One completion of a prompt with a binary label (the unpaired form TRL's KTOTrainer reads).

    ``pair`` links the two rows made from one preference pair (same id, one
    desirable and one undesirable); it is None for a row that was never part
    of a pair.
    """

    prompt: str
    completion: str
    desirable: bool
    group: str
    pair: int | None = None


@dataclass(frozen=True)
class PreferencePair:
    """A DPO pair: a prompt, the chosen (preferred) completion and the rejected one."""

    prompt: str
    chosen: str
    rejected: str
    group: str


Record = KTORow | PreferencePair


class BadRowError(Exception):
    """A row whose ``field`` is unusable; ``kind`` is a short class of the problem
    (counted in manifests), ``detail`` the specifics (shown in the one-line error)."""

    def __init__(self, field: str, kind: str, detail: str = "") -> None:
        super().__init__(f"field '{field}': {kind}{f' ({detail})' if detail else ''}")
        self.field, self.kind, self.detail = field, kind, detail


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def require_text(value: Any, field: str) -> str:
    """``value`` if it is a string with a non-whitespace character.

    Raises BadRowError(field, "missing") for None, (field, "not a string") for any
    other type (no ``str()`` coercion: a number where text belongs is a data
    error), (field, "empty") for a blank string.
    """
    if value is None:
        raise BadRowError(field, "missing")
    if not isinstance(value, str):
        raise BadRowError(field, "not a string", f"got {type(value).__name__} {_shown(value)}")
    if not value.strip():
        raise BadRowError(field, "empty")
    return value


def require_label(value: Any, field: str) -> bool:
    """``value`` as a bool when it is a boolean (Python or NumPy), else BadRowError.

    No truthiness: ``1``, ``"yes"``, ``"true"`` are ``(field, "not a boolean")``;
    None is ``(field, "missing")``.
    """
    if value is None:
        raise BadRowError(field, "missing")
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise BadRowError(field, "not a boolean", f"got {type(value).__name__} {_shown(value)}")


def prompt_group(prompt: str) -> str:
    """The default group of a record: ``"prompt:" + sha256(prompt)[:16]`` (hex).

    Records with the same prompt share a group, so one prompt never has
    completions on both sides of the train/test split.
    """
    return "prompt:" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def pairs_to_kto(pairs: Iterable[PreferencePair], first_pair_id: int = 0) -> list[KTORow]:
    """Unpair: each pair gives its chosen completion as a desirable row, then its
    rejected one as an undesirable row, both with the pair's prompt and group and
    the pair id ``first_pair_id + i`` (i = the pair's index).

    2n rows for n pairs, in pair order; the same conversion as TRL's
    ``unpair_preference_dataset`` (which returns the rows label-major and
    without ids). Raises nothing.
    """
    rows: list[KTORow] = []
    for i, pair in enumerate(pairs):
        pid = first_pair_id + i
        rows.append(KTORow(pair.prompt, pair.chosen, True, pair.group, pid))
        rows.append(KTORow(pair.prompt, pair.rejected, False, pair.group, pid))
    return rows


def _pair_by_prompt(rows: Sequence[KTORow], pairing: str) -> tuple[list[PreferencePair], list[KTORow]]:
    by_prompt: dict[str, tuple[list[KTORow], list[KTORow]]] = {}
    for row in rows:
        good, bad = by_prompt.setdefault(row.prompt, ([], []))
        (good if row.desirable else bad).append(row)
    pairs: list[PreferencePair] = []
    left: list[KTORow] = []
    for good, bad in by_prompt.values():
        if not good or not bad:
            left.extend(good or bad)
            continue
        if pairing == "zip":
            n = min(len(good), len(bad))
            matched = list(zip(good[:n], bad[:n], strict=True))
            left.extend(good[n:] + bad[n:])
        elif pairing == "cycle":
            n = max(len(good), len(bad))
            matched = [(good[i % len(good)], bad[i % len(bad)]) for i in range(n)]
        else:  # product
            matched = [(g, b) for g in good for b in bad]
        pairs.extend(PreferencePair(g.prompt, g.completion, b.completion, g.group) for g, b in matched)
    return pairs, left


def kto_to_pairs(
    rows: Iterable[KTORow], pairing: str = "zip"
) -> tuple[list[PreferencePair], list[KTORow]]:
    """Pair KTO rows; return ``(pairs, unpaired rows)``, both deterministic in the input order.

    1. Linked rows: the two rows sharing a ``pair`` id (one desirable, one
       undesirable) give back their pair, in the order the id first appears.
       A linked row whose partner is absent (e.g. left out by a selection)
       stays unpaired: it is never matched with another pair's completion,
       since no one compared those two.
    2. Unlinked rows (``pair`` None) pair up by identical prompt, prompts in
       order of first appearance; with d desirable and u undesirable rows of a
       prompt, each list in input order:

       - ``zip``: the i-th desirable with the i-th undesirable, min(d, u) pairs;
         the surplus rows of the larger label stay unpaired (no completion is
         used twice);
       - ``cycle``: max(d, u) pairs, the shorter list reused cyclically (every
         row in at least one pair);
       - ``product``: all d * u combinations, desirable-major.

       A prompt with only one label gives no pair. A pair's group is the
       desirable row's group.

    Raises ValueError for an unknown ``pairing`` and DataError when one pair
    id holds anything but one desirable and one undesirable row.
    """
    if pairing not in PAIRINGS:
        raise ValueError(f"pairing: expected one of {list(PAIRINGS)}, got {pairing!r}")
    linked: dict[int, list[KTORow]] = {}
    unlinked: list[KTORow] = []
    for row in rows:
        if row.pair is None:
            unlinked.append(row)
        else:
            linked.setdefault(row.pair, []).append(row)
    pairs: list[PreferencePair] = []
    unpaired: list[KTORow] = []
    for pid, members in linked.items():
        labels = sorted(r.desirable for r in members)
        if len(members) == 1:
            unpaired.extend(members)
            continue
        if labels != [False, True]:
            raise DataError(
                f"pair id {pid}: expected one desirable and one undesirable row, found "
                f"{labels.count(True)} desirable and {labels.count(False)} undesirable"
            )
        good, bad = (members[0], members[1]) if members[0].desirable else (members[1], members[0])
        if good.prompt != bad.prompt:
            raise DataError(f"pair id {pid}: its two rows have different prompts")
        pairs.append(PreferencePair(good.prompt, good.completion, bad.completion, good.group))
    by_prompt, left = _pair_by_prompt(unlinked, pairing)
    return pairs + by_prompt, unpaired + left


def label_counts(rows: Iterable[KTORow]) -> tuple[int, int]:
    """``(desirable, undesirable)`` row counts."""
    good = bad = 0
    for row in rows:
        if row.desirable:
            good += 1
        else:
            bad += 1
    return good, bad


def to_columns(records: Sequence[Record]) -> dict[str, list[Any]]:
    """Column lists for ``datasets.Dataset.from_dict``, in the layout TRL's trainers read.

    KTO rows give ``prompt``, ``completion``, ``label`` (KTOTrainer); pairs give
    ``prompt``, ``chosen``, ``rejected`` (DPOTrainer). Raises DataError for an
    empty or mixed list.
    """
    if not records:
        raise DataError("to_columns: no records")
    if all(isinstance(r, KTORow) for r in records):
        return {
            "prompt": [r.prompt for r in records],  # type: ignore[union-attr]
            "completion": [r.completion for r in records],  # type: ignore[union-attr]
            "label": [r.desirable for r in records],  # type: ignore[union-attr]
        }
    if all(isinstance(r, PreferencePair) for r in records):
        return {
            "prompt": [r.prompt for r in records],
            "chosen": [r.chosen for r in records],  # type: ignore[union-attr]
            "rejected": [r.rejected for r in records],  # type: ignore[union-attr]
        }
    raise DataError("to_columns: records mix KTO rows and pairs")


def record_rows(record: Record) -> int:
    """How many KTO rows a record stores as: 2 for a pair, 1 for a KTO row."""
    return 2 if isinstance(record, PreferencePair) else 1

