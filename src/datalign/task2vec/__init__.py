"""Task2Vec embeddings of datasets with a causal-LM probe (PAPERS.md part 1).

``embed_batches`` turns each batch of a dataset into one vector: the diagonal
Fisher information of the probe's weights (after fine-tuning its head on the
batch), averaged over all axes but the first and concatenated. Estimators are
chosen by name and live one module each in :mod:`datalign.task2vec.estimators`
(``paper``; ``fast``, the same quantity for about one forward+backward pass),
found there by the registry (:mod:`datalign.task2vec.registry`, which says how
to add one). **Your own texts**: :mod:`datalign.task2vec.api` (``embed_texts``,
``embed_sets``, ``alignment``, ``diversity``, ``rank``; the ``datalign`` command
line uses it). The ``task2vec`` config block is :class:`Task2VecConfig` (its JSON
schema: :func:`task2vec_schema`); the embedding files are written and read by
:mod:`datalign.task2vec.artifacts`; distances between embeddings live in
:mod:`datalign.task2vec.distance`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names exported here, by the submodule that defines them. They load on first
# use (PEP 562), so that importing the config, the options or the registry (to
# validate a study while planning it) does not import torch.
_EXPORTS = {
    "api": ("Probe", "TinyProbe", "embed_sets", "embed_texts", "load_probe", "train_probe"),
    "artifacts": ("load_embeddings", "load_result", "save_embeddings", "sidecar_path"),
    "config": ("DISTANCE_KINDS", "PARAMETER_SETS", "Task2VecConfig", "task2vec_schema"),
    "distance": ("cosine", "normalized_cosine", "pairwise_distances"),
    "embed": ("BatchShapeWarning", "Task2VecResult", "check_batches", "embed_batches"),
    "lm": ("batch_seed",),
    "options": ("Options", "option"),
    "parameters": ("embedding_parameters", "embedding_size", "head_parameters", "reduce_fisher"),
    "registry": (
        "BatchFisher", "Task2VecEstimator", "available_estimators", "estimator_options",
        "get_estimator", "register_estimator", "register_lazy_estimator",
    ),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name == "api":  # the public entry point as a module: ``from datalign.task2vec import api``
        value = importlib.import_module("datalign.task2vec.api")
        globals()[name] = value
        return value
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'datalign.task2vec' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"datalign.task2vec.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME, "api"])


__all__ = [
    "DISTANCE_KINDS",
    "BatchShapeWarning",
    "Probe",
    "TinyProbe",
    "api",
    "batch_seed",
    "check_batches",
    "embed_sets",
    "embed_texts",
    "load_probe",
    "train_probe",
    "PARAMETER_SETS",
    "BatchFisher",
    "Options",
    "Task2VecConfig",
    "Task2VecEstimator",
    "Task2VecResult",
    "available_estimators",
    "cosine",
    "embed_batches",
    "embedding_parameters",
    "embedding_size",
    "estimator_options",
    "get_estimator",
    "head_parameters",
    "load_embeddings",
    "load_result",
    "normalized_cosine",
    "option",
    "pairwise_distances",
    "reduce_fisher",
    "register_estimator",
    "register_lazy_estimator",
    "save_embeddings",
    "sidecar_path",
    "task2vec_schema",
]
