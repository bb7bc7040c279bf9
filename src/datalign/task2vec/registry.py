"""Task2Vec estimators by name: a small protocol, a registry, and its discovery.

An estimator turns one batch into the diagonal Fisher information of the probe's
embedding parameters (full parameter shapes); :func:`datalign.task2vec.embed_batches`
reduces and concatenates those into the embedding vector, the same way for every
estimator.

**Adding an estimator is one new file** in the subpackage
:mod:`datalign.task2vec.estimators`, say ``estimators/mine.py``::

    @dataclass(frozen=True)
    class MineOptions(Options):              # optional: the estimator's own keys
        steps: int = option(10, "what it does", minimum=1)

    @register_estimator("mine", options=MineOptions)
    class MineEstimator:
        \"\"\"One line: what it is (goes into the config schema).\"\"\"
        name = "mine"
        def estimate(self, probe, batch, cfg, seed):
            opts = cfg.options_for("mine")   # a validated MineOptions
            ...

The registry imports every module of that subpackage (``pkgutil``, names not
starting with ``_``, see :func:`datalign.task2vec.estimators.import_all`) the
first time an estimator is looked up
(:func:`get_estimator`, :func:`available_estimators`, :func:`estimator_options`),
and the decorator registers what each defines. From then on the config accepts
``task2vec: {estimator: mine, mine: {steps: 20}}``, checks it, and
:func:`datalign.task2vec.task2vec_schema` documents it; nothing else is edited.
An estimator defined elsewhere (a test, a notebook) registers the same way,
by running the decorator.

This module imports no other part of :mod:`datalign.task2vec` but the
estimators package itself (whose ``__init__`` imports nothing); the config
imports it, not the other way round.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from datalign.core.discovery import Discovery
from datalign.core.errors import ConfigError
from datalign.task2vec import estimators as estimator_package

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from datalign.lm.tokens import SequenceBatch

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


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

    ``cfg`` is a :class:`datalign.task2vec.Task2VecConfig` (its common keys, and
    ``cfg.options_for(name)`` for the estimator's own options). ``estimate`` must
    leave ``probe`` unchanged (work on a copy), use only ``seed`` for its
    randomness (same seed, same result), and never let padded positions
    (``batch.attention_mask == 0``) enter anything.
    """

    name: str

    def estimate(self, probe: PreTrainedModel, batch: SequenceBatch, cfg: Any, seed: int) -> BatchFisher: ...


@dataclass(frozen=True)
class EstimatorEntry:
    """A registered estimator: its factory, its options class (or None) and a one-line summary."""

    name: str
    factory: Callable[[], Task2VecEstimator]
    options: type | None
    summary: str


_REGISTRY: dict[str, EstimatorEntry] = {}
_discovery = Discovery(estimator_package.import_all)
F = TypeVar("F", bound=Callable[[], Task2VecEstimator])


def register_estimator(name: str, options: type | None = None) -> Callable[[F], F]:
    """Class decorator: make a zero-argument estimator factory available as ``name``.

    ``options`` is the estimator's :class:`~datalign.task2vec.options.Options`
    dataclass, if it has keys of its own: they live under ``task2vec.<name>``.
    The summary is the first line of the factory's docstring.
    """
    if not _NAME.match(name):
        raise ValueError(f"Task2Vec estimator name '{name}': lower case letters, digits, '_' and '-' only")

    def deco(factory: F) -> F:
        old = _REGISTRY.get(name)
        if old is not None and old.factory is not factory:
            raise ValueError(f"Task2Vec estimator '{name}' is already registered")
        if options is not None:
            options.section = f"task2vec.{name}"  # type: ignore[attr-defined]
        summary = (factory.__doc__ or "").strip().split("\n")[0].strip() or name
        _REGISTRY[name] = EstimatorEntry(name=name, factory=factory, options=options, summary=summary)
        return factory

    return deco


def register_lazy_estimator(name: str, target: str, options: type | None = None, summary: str = "") -> None:
    """Register ``name`` without importing its implementation yet.

    ``target`` is ``"package.module:Class"``; the module is imported when the
    estimator is first instantiated (:func:`get_estimator`). The shipped
    estimators register this way so that validating a config (planning a study)
    never imports torch; an estimator defined in one file may use the
    :func:`register_estimator` decorator instead.
    """
    if not _NAME.match(name):
        raise ValueError(f"Task2Vec estimator name '{name}': lower case letters, digits, '_' and '-' only")
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"Task2Vec estimator '{name}': target must be 'module:Class', got {target!r}")

    def factory() -> Task2VecEstimator:
        import importlib

        return getattr(importlib.import_module(module_name), attr)()

    factory.target = target  # type: ignore[attr-defined]
    old = _REGISTRY.get(name)
    if old is not None and getattr(old.factory, "target", None) != target:
        raise ValueError(f"Task2Vec estimator '{name}' is already registered")
    if options is not None:
        options.section = f"task2vec.{name}"  # type: ignore[attr-defined]
    _REGISTRY[name] = EstimatorEntry(name=name, factory=factory, options=options, summary=summary or name)


def discover_estimators() -> None:
    """Import every module of :mod:`datalign.task2vec.estimators` once (their decorators register them)."""
    _discovery()


def _entry(name: str) -> EstimatorEntry:
    discover_estimators()
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ConfigError(
            f"task2vec.estimator: unknown estimator {name!r} (known: {', '.join(available_estimators())})"
        )
    return entry


def get_estimator(name: str) -> Task2VecEstimator:
    """A fresh instance of the estimator registered as ``name`` (:class:`ConfigError` if none)."""
    return _entry(name).factory()


def estimator_options(name: str) -> type | None:
    """The options class of the estimator ``name`` (None if it has no options of its own)."""
    return _entry(name).options


def estimator_summary(name: str) -> str:
    """The one-line summary of the estimator ``name``."""
    return _entry(name).summary


def available_estimators() -> tuple[str, ...]:
    """Names of the registered estimators, sorted."""
    discover_estimators()
    return tuple(sorted(_REGISTRY))
