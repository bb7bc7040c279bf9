"""Task2Vec embeddings of datasets with a causal-LM probe (PAPERS.md part 1).

``embed_batches`` turns each batch of a dataset into one vector: the diagonal
Fisher information of the probe's weights (after fine-tuning its head on the
batch), averaged over all axes but the first and concatenated. Estimators are
chosen by name (``paper``, see :mod:`datalign.task2vec.paper`; ``fast``, the
same quantity for about one forward+backward pass, see
:mod:`datalign.task2vec.fast`); distances
between embeddings live in :mod:`datalign.task2vec.distance`.
"""

from datalign.task2vec import fast as _fast  # noqa: F401  (registers "fast")
from datalign.task2vec import paper as _paper  # noqa: F401  (registers "paper")
from datalign.task2vec.config import DISTANCE_KINDS, PARAMETER_SETS, Task2VecConfig
from datalign.task2vec.distance import cosine, normalized_cosine, pairwise_distances
from datalign.task2vec.embed import Task2VecResult, embed_batches
from datalign.task2vec.parameters import (
    embedding_parameters,
    embedding_size,
    head_parameters,
    reduce_fisher,
)
from datalign.task2vec.registry import (
    BatchFisher,
    Task2VecEstimator,
    available_estimators,
    get_estimator,
    register_estimator,
)

__all__ = [
    "DISTANCE_KINDS",
    "PARAMETER_SETS",
    "BatchFisher",
    "Task2VecConfig",
    "Task2VecEstimator",
    "Task2VecResult",
    "available_estimators",
    "cosine",
    "embed_batches",
    "embedding_parameters",
    "embedding_size",
    "get_estimator",
    "head_parameters",
    "normalized_cosine",
    "pairwise_distances",
    "reduce_fisher",
    "register_estimator",
]
