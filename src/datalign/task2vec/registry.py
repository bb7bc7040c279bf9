"""Task2Vec estimators by name: a small protocol and a registry.

An estimator turns one batch into the diagonal Fisher information of the probe's
embedding parameters (full parameter shapes); :func:`datalign.task2vec.embed_batches`
reduces and concatenates those into the embedding vector, the same way for every
estimator. Register a new one with::

    @register_estimator("fast")
    class FastEstimator:
        name = "fast"
        def estimate(self, probe, batch, cfg, seed): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from datalign.core.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from datalign.task2vec.config import Task2VecConfig
    from datalign.lm.tokens import SequenceBatch


@dataclass
class BatchFisher:
    """What an estimator returns for one batch.

    ``fisher`` maps each name of :func:`datalign.task2vec.embedding_parameters`
    (same order) to a tensor of that parameter's shape holding the diagonal
    Fisher estimate (mean grad^2). ``info`` holds JSON-serialisable diagnostics
    (losses, token counts) that end up in the result's metadata.
    """

    fisher: dict[str, torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)


class Task2VecEstimator(Protocol):
    """The estimator protocol.

    ``estimate`` must leave ``probe`` unchanged (work on a copy), use only
    ``seed`` for its randomness (same seed, same result), and never let padded
    positions (``batch.attention_mask == 0``) enter anything.
    """

    name: str

    def estimate(
        self, probe: PreTrainedModel, batch: SequenceBatch, cfg: Task2VecConfig, seed: int
    ) -> BatchFisher: ...


_REGISTRY: dict[str, Callable[[], Task2VecEstimator]] = {}

F = TypeVar("F", bound=Callable[[], Task2VecEstimator])


def register_estimator(name: str) -> Callable[[F], F]:
    """Class decorator: make a zero-argument estimator factory available as ``name``."""

    def deco(factory: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"Task2Vec estimator '{name}' is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def get_estimator(name: str) -> Task2VecEstimator:
    """A fresh instance of the estimator registered as ``name`` (:class:`ConfigError` if none)."""
    if name not in _REGISTRY:
        raise ConfigError(
            f"task2vec.estimator: unknown estimator '{name}' (known: {', '.join(available_estimators())})"
        )
    return _REGISTRY[name]()


def available_estimators() -> tuple[str, ...]:
    """Names of the registered estimators, sorted."""
    return tuple(sorted(_REGISTRY))
