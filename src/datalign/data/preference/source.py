"""What every preference source receives and returns.

A source is a function ``load(spec, ctx) -> LoadedPreferences``. ``ctx``
carries the dataset name, the seed, the group -> split map and the drop log,
so that a builder drawing negatives (another function's code, another class's
article) draws them from the same split: a test-split text never becomes a
training rejection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from datalign.data.preference.records import Record
from datalign.data.preference.rows import DropLog


@dataclass(frozen=True)
class BuildContext:
    """Dataset name, seed, ``split_of(group) -> "train" | "test"`` and the drop log."""

    name: str
    seed: int
    split_of: Callable[[str], str]
    log: DropLog


@dataclass
class LoadedPreferences:
    """A source's records before splitting.

    ``records`` are split by group hashing; ``presplit`` (``{"train": [...],
    "test": [...]}``, hub splits) is used as given. Exactly one is set.
    ``details`` goes to the manifest (files, columns, counts).
    """

    records: list[Record] | None = None
    presplit: dict[str, list[Record]] | None = None
    details: dict[str, Any] = field(default_factory=dict)
