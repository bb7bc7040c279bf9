"""The ``task2vec`` block of the config as a typed, validated dataclass."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datalign.core.errors import ConfigError

PARAMETER_SETS = ("all_but_head", "last_k_blocks")
DISTANCE_KINDS = ("normalized_cosine", "cosine")
FAST_HEAD_FITS = ("frozen", "exact")
FAST_PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class Task2VecConfig:
    """How Task2Vec embeddings are computed (see PAPERS.md part 1).

    ``batch_size``, ``seq_len`` and ``num_batches`` say how the caller draws
    batches (``datalign.lm.tokens.sample_segment_batches``); the rest say what is
    done with each batch. Defaults are the paper's values where it has one.
    The ``fast_*`` keys tune the ``fast`` estimator only: how it fits the head
    (``frozen`` gradients or ``exact``), the body's precision (``auto``:
    bfloat16 on CUDA, float32 elsewhere) and whether it keeps the body's
    autograd graph between its forward and its Fisher pass (memory for time).
    """

    estimator: str = "paper"
    batch_size: int = 32
    seq_len: int = 64
    num_batches: int = 8
    head_epochs: int = 5
    head_lr: float = 5.0e-5
    head_minibatch: int = 8
    weight_decay: float = 1.0e-4
    adam_eps: float = 1.0e-8
    parameters: str = "all_but_head"
    last_k: int = 1
    distance: str = "normalized_cosine"
    # The ``fast`` estimator only (see datalign.task2vec.fast).
    fast_head_fit: str = "frozen"
    fast_precision: str = "auto"
    fast_retain_graph: bool = True

    def __post_init__(self) -> None:
        # Imported here: the registry is filled when the estimator modules load.
        from datalign.task2vec.registry import available_estimators

        known = available_estimators()
        if self.estimator not in known:
            raise ConfigError(
                f"task2vec.estimator: unknown estimator '{self.estimator}' (known: {', '.join(known)})"
            )
        for key in ("batch_size", "seq_len", "num_batches", "head_minibatch", "last_k"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"task2vec.{key}: must be an integer >= 1, got {value!r}")
        if isinstance(self.head_epochs, bool) or not isinstance(self.head_epochs, int) or self.head_epochs < 0:
            raise ConfigError(f"task2vec.head_epochs: must be an integer >= 0, got {self.head_epochs!r}")
        for key in ("head_lr", "adam_eps"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise ConfigError(f"task2vec.{key}: must be a number > 0, got {value!r}")
        if not isinstance(self.weight_decay, int | float) or isinstance(self.weight_decay, bool) or self.weight_decay < 0:
            raise ConfigError(f"task2vec.weight_decay: must be a number >= 0, got {self.weight_decay!r}")
        for key, allowed in (("parameters", PARAMETER_SETS), ("distance", DISTANCE_KINDS),
                             ("fast_head_fit", FAST_HEAD_FITS), ("fast_precision", FAST_PRECISIONS)):
            value = getattr(self, key)
            if value not in allowed:
                raise ConfigError(f"task2vec.{key}: must be one of {', '.join(allowed)}, got {value!r}")
        if not isinstance(self.fast_retain_graph, bool):
            raise ConfigError(f"task2vec.fast_retain_graph: must be true or false, got {self.fast_retain_graph!r}")

    @classmethod
    def from_dict(cls, block: Mapping[str, Any] | None) -> Task2VecConfig:
        """Build from the config's ``task2vec`` mapping; unknown keys are a :class:`ConfigError`."""
        block = dict(block or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(block) - names)
        if unknown:
            raise ConfigError(
                f"task2vec: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})"
            )
        # YAML may give floats such as 5.0e-5 as strings when written without a dot.
        for key in ("head_lr", "weight_decay", "adam_eps"):
            if isinstance(block.get(key), str):
                try:
                    block[key] = float(block[key])
                except ValueError:
                    raise ConfigError(f"task2vec.{key}: not a number: {block[key]!r}") from None
        return cls(**block)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (for metadata and provenance)."""
        return dataclasses.asdict(self)
