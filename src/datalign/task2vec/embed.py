"""Task2Vec embeddings of a dataset: one vector per batch, whatever the estimator."""

from __future__ import annotations

import time
import warnings
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


class BatchShapeWarning(UserWarning):
    """The batches given to :func:`embed_batches` are not shaped as the config's sampling keys say."""


def check_batches(batches: list[SequenceBatch], cfg: Task2VecConfig, first_index: int | None = None) -> list[str]:
    """What in ``batches`` disagrees with ``cfg.batch_size``, ``cfg.seq_len``, ``cfg.num_batches``.

    Every batch must have ``cfg.batch_size`` rows and at most ``cfg.seq_len``
    columns (a narrower batch is the same batch padded less: padded positions
    never enter the Fisher). ``first_index=None`` means the batches are the
    whole dataset, so there must be exactly ``cfg.num_batches`` of them; an
    explicit ``first_index`` says they are batches ``first_index, ...`` of
    such a run, so ``first_index + len(batches) <= cfg.num_batches``. Returns
    one message per problem (empty when everything agrees).
    """
    problems: list[str] = []
    if first_index is None and len(batches) != cfg.num_batches:
        problems.append(f"{len(batches)} batches, task2vec.num_batches = {cfg.num_batches}")
    if first_index is not None and first_index + len(batches) > cfg.num_batches:
        problems.append(f"batches {first_index}..{first_index + len(batches) - 1}, "
                        f"task2vec.num_batches = {cfg.num_batches}")
    shapes = sorted({tuple(int(d) for d in b.input_ids.shape) for b in batches})
    rows = sorted({s[0] for s in shapes})
    if rows != [cfg.batch_size]:
        problems.append(f"batches of {'/'.join(map(str, rows))} sequences, task2vec.batch_size = {cfg.batch_size}")
    width = max(s[1] for s in shapes) if shapes else 0
    if width > cfg.seq_len:
        problems.append(f"sequences of {width} tokens, task2vec.seq_len = {cfg.seq_len}")
    return problems


def embed_batches(
    model: nn.Module,
    batches: list[SequenceBatch],
    cfg: Task2VecConfig,
    seed: int,
    progress: bool = True,
    *,
    first_index: int | None = None,
    strict: bool | None = None,
) -> Task2VecResult:
    """Task2Vec embedding of each batch with the estimator ``cfg.estimator``.

    Row k is ``concat_w reduce(F_w)`` over the weights ``w`` of
    :func:`embedding_parameters`, where ``F_w`` is the estimator's diagonal
    Fisher of ``w`` on batch k and ``reduce`` averages over all axes but the
    first. The k-th batch of the list is batch ``first_index + k`` of the run
    (``first_index`` defaults to 0) and its randomness is seeded by
    ``batch_seed(seed, first_index + k)`` (:func:`datalign.task2vec.batch_seed`),
    so the same inputs and seed give the same embeddings (on the same device;
    CUDA scatter-adds are not bit-reproducible), and batch k embedded alone
    with ``first_index=k`` equals row k of the call on the whole list.
    ``model`` is left unchanged. The batches should be distinct (the caller's
    job, see ``datalign.lm.tokens.sample_segment_batches``).

    ``cfg.batch_size``, ``cfg.seq_len`` and ``cfg.num_batches`` say how batches
    are *drawn*; no estimator reads them: what is embedded is the batches as
    given, and their real shape is recorded in the metadata (``batch_shape``,
    ``num_batches``, ``first_index``). A mismatch (:func:`check_batches`) makes
    the recorded ``config`` describe something other than the embeddings, so
    ``strict=True`` makes it a :class:`ConfigError`, ``strict=None`` (default)
    a :class:`BatchShapeWarning`, ``strict=False`` accepts it silently (batches
    drawn some other way on purpose). :func:`datalign.task2vec.api.embed_texts`
    draws the batches from the config and is strict.
    """
    if not batches:
        raise DataError("Task2Vec: no batches to embed")
    if first_index is not None and (isinstance(first_index, bool) or not isinstance(first_index, int)
                                    or first_index < 0):
        raise ConfigError(f"Task2Vec: first_index must be a non-negative integer, got {first_index!r}")
    if strict is not False:
        problems = check_batches(batches, cfg, first_index)
        if problems:
            message = ("Task2Vec: the batches do not match the task2vec config (" + "; ".join(problems)
                       + "): draw them with these settings or pass a config that says how they were drawn")
            if strict:
                raise ConfigError(message)
            warnings.warn(message, BatchShapeWarning, stacklevel=2)
    start_index = 0 if first_index is None else first_index
    max_pos = _max_positions(model)
    seq_len = max(int(b.input_ids.shape[1]) for b in batches)
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
        bseed = batch_seed(seed, start_index + k)
        start = time.perf_counter()
        out = estimator.estimate(model, batch, cfg, bseed)
        missing = [n for n in names if n not in out.fisher]
        if missing:
            raise TrainingError(f"Task2Vec estimator '{cfg.estimator}' returned no Fisher for {missing[:3]}")
        row = torch.cat([reduce_fisher(out.fisher[n]) for n in names]).numpy()
        if not np.all(np.isfinite(row)):
            raise TrainingError(f"Task2Vec: non-finite embedding for batch {start_index + k} (estimator '{cfg.estimator}')")
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
    if first_index is not None:  # only then, so that whole-dataset metadata stays as it was
        metadata["first_index"] = start_index
    return Task2VecResult(
        embeddings=np.stack(rows),
        parameter_names=names,
        parameter_sizes=sizes,
        seconds_per_batch=seconds,
        metadata=metadata,
    )
