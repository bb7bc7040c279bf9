"""Task2Vec embeddings of a dataset: one vector per batch, whatever the estimator."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.lm.tokens import SequenceBatch
from datalign.task2vec.config import Task2VecConfig
from datalign.task2vec.lm import batch_seed, model_device
from datalign.task2vec.parameters import embedding_parameters, reduce_fisher
from datalign.task2vec.registry import get_estimator


@dataclass
class Task2VecResult:
    """Embeddings of one dataset: row k is batch k's reduced, concatenated Fisher.

    ``parameter_names``/``parameter_sizes`` say which slice of a row comes from
    which probe weight (``sum(parameter_sizes) == embeddings.shape[1]``). Its
    file format is :mod:`datalign.task2vec.artifacts` (``save_embeddings`` /
    ``load_result``).
    """

    embeddings: np.ndarray
    parameter_names: list[str]
    parameter_sizes: list[int]
    seconds_per_batch: list[float]
    metadata: dict[str, Any] = field(default_factory=dict)

    def slices(self) -> dict[str, slice]:
        """The column range of each parameter in the embedding."""
        ends = np.cumsum(self.parameter_sizes)
        return {n: slice(int(e - s), int(e)) for n, s, e in zip(self.parameter_names, self.parameter_sizes, ends, strict=True)}


def _max_positions(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None


def embed_batches(
    model: nn.Module,
    batches: list[SequenceBatch],
    cfg: Task2VecConfig,
    seed: int,
    progress: bool = True,
) -> Task2VecResult:
    """Task2Vec embedding of each batch with the estimator ``cfg.estimator``.

    Row k is ``concat_w reduce(F_w)`` over the weights ``w`` of
    :func:`embedding_parameters`, where ``F_w`` is the estimator's diagonal
    Fisher of ``w`` on batch k and ``reduce`` averages over all axes but the
    first. Batch k's randomness is seeded by ``batch_seed(seed, k)``, so the
    same inputs and seed give the same embeddings (on the same device; CUDA
    scatter-adds are not bit-reproducible). ``model`` is left unchanged.
    The batches should be distinct (the caller's job, see
    ``datalign.lm.tokens.sample_segment_batches``).
    """
    if not batches:
        raise DataError("Task2Vec: no batches to embed")
    max_pos = _max_positions(model)
    seq_len = int(batches[0].input_ids.shape[1])
    if max_pos is not None and seq_len > max_pos:
        raise ConfigError(f"task2vec.seq_len: {seq_len} tokens exceed the probe's {max_pos} positions")
    estimator = get_estimator(cfg.estimator)
    params = embedding_parameters(model, cfg)
    names = [n for n, _ in params]
    sizes = [int(p.shape[0]) if p.dim() else 1 for _, p in params]
    rows: list[np.ndarray] = []
    seconds: list[float] = []
    infos: list[dict[str, Any]] = []
    seeds: list[int] = []
    for k, batch in enumerate(tqdm(batches, desc=f"task2vec[{cfg.estimator}]", disable=not progress)):
        bseed = batch_seed(seed, k)
        start = time.perf_counter()
        out = estimator.estimate(model, batch, cfg, bseed)
        missing = [n for n in names if n not in out.fisher]
        if missing:
            raise TrainingError(f"Task2Vec estimator '{cfg.estimator}' returned no Fisher for {missing[:3]}")
        row = torch.cat([reduce_fisher(out.fisher[n].to(torch.float64)) for n in names]).numpy()
        if not np.all(np.isfinite(row)):
            raise TrainingError(f"Task2Vec: non-finite embedding for batch {k} (estimator '{cfg.estimator}')")
        seconds.append(time.perf_counter() - start)
        rows.append(row.astype(np.float32))
        infos.append(out.info)
        seeds.append(bseed)
    metadata: dict[str, Any] = {
        "estimator": cfg.estimator,
        "config": cfg.to_dict(),
        "seed": int(seed),
        "batch_seeds": seeds,
        "num_batches": len(batches),
        "batch_shape": list(batches[0].input_ids.shape),
        "embedding_size": int(sum(sizes)),
        "probe_class": type(model).__name__,
        "device": str(model_device(model)),
        "dtype": str(next(model.parameters()).dtype),
        "per_batch": {key: [info.get(key) for info in infos] for key in sorted({k for i in infos for k in i})},
    }
    return Task2VecResult(
        embeddings=np.stack(rows),
        parameter_names=names,
        parameter_sizes=sizes,
        seconds_per_batch=seconds,
        metadata=metadata,
    )
