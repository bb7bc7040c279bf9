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

from datalign.core.lazy import lazy_exports

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
# ``api`` is also exported as a module: ``from datalign.task2vec import api``.
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals(), submodules=("api",))
