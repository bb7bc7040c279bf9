"""``random``: a uniformly random subset, the baseline every method is compared with."""

from __future__ import annotations

import numpy as np

from datalign.studies.efficient_alignment.selection.registry import (
    SelectionResult,
    register_method,
    top_k,
)
from datalign.studies.efficient_alignment.selection.sampling import gumbel_keys


@register_method("random", needs="any")
def random_subset(data: np.ndarray, k: int, seed: int) -> SelectionResult:
    """k of the n rows uniformly at random without replacement (only n is read from ``data``).

    ``data``: (n,) or (n, d). Every k-subset is equally likely; the order of
    ``indices`` is a uniformly random order, so smaller budgets with the same
    seed are prefixes. ``scores`` are the Gumbel keys of equal weights (see
    :mod:`.sampling`). PAPERS.md part 2, "Baselines: random".
    """
    n = data.shape[0]
    keys = gumbel_keys(np.zeros(n), seed)
    return SelectionResult("random", top_k(keys, k), keys)
