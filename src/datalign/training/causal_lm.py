"""The causal-LM objective: next-token cross-entropy on a fixed list of token chunks.

One pass over the chunks, in the order given (the caller chose them for its
token budget with :func:`datalign.lm.tokens.mixed_training_chunks`), next-token
cross-entropy (:func:`causal_lm_loss`), AdamW, linear warmup then cosine decay
(:mod:`datalign.training.optim`). The same code runs on CPU, one GPU, or N
processes started by ``accelerate launch``. Registered as the training
objective ``"causal_lm"`` (:func:`run_causal_lm`, see
:mod:`datalign.training.objectives`).

Distributed semantics: ``batch_size`` is the GLOBAL batch. Each optimizer step
consumes the next ``batch_size`` chunks of the list whatever the number of
processes; each of N processes takes ``batch_size / N`` of them (so
``batch_size`` must be divisible by N), the gradients are averaged across
processes, and the loss logged per step is the mean over the whole global
batch. The run is therefore the same optimisation problem on 1 or N
processes, up to floating-point reduction order. When the chunk count is not a
multiple of ``batch_size`` the last step is smaller; with N > 1 processes
``accelerate`` completes that last global batch with chunks from the start of
the list (its ``even_batches`` behaviour), so a handful of chunks are seen
twice; ``tokens_seen`` counts distinct chunks only.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm
from transformers import PreTrainedModel

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.lm.evaluate import token_cross_entropies
from datalign.lm.tokenizer import load_tokenizer
from datalign.lm.tokens import TokenizedSplit, mixed_training_chunks
from datalign.training.objectives import register_objective
from datalign.training.optim import adamw, lr_at, set_lr
from datalign.training.runs import make_accelerator, model_from_spec, prepare_for_training, save_run

log = logging.getLogger(__name__)

__all__ = ["StepRecord", "TrainLog", "causal_lm_loss", "lr_at", "run_causal_lm", "train_causal_lm"]


@dataclass(frozen=True)
class StepRecord:
    """One optimizer step: loss of the global batch, the lr it used, cumulative tokens and time."""

    step: int
    tokens_seen: int
    loss: float
    lr: float
    seconds: float


@dataclass
class TrainLog:
    """Per-step records and summary of one training run (see :meth:`to_json`)."""

    run_name: str
    batch_size: int
    seq_len: int
    num_chunks: int
    total_steps: int
    peak_lr: float
    warmup_steps: int
    weight_decay: float
    grad_clip: float
    seed: int
    mixed_precision: str
    num_processes: int
    device: str
    records: list[StepRecord] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        """Loss of the last step (NaN before any step)."""
        return self.records[-1].loss if self.records else float("nan")

    @property
    def tail_loss(self) -> float:
        """Mean loss over the last 10% of steps (at least one): a less noisy final loss."""
        if not self.records:
            return float("nan")
        k = max(1, len(self.records) // 10)
        return float(np.mean([r.loss for r in self.records[-k:]]))

    @property
    def tokens(self) -> int:
        """Distinct training tokens seen: chunks x seq_len."""
        return self.records[-1].tokens_seen if self.records else 0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    def summary(self) -> dict[str, Any]:
        """Final loss, tail loss, tokens, steps, wall seconds and throughput."""
        return {
            "final_loss": self.final_loss,
            "tail_loss": self.tail_loss,
            "tokens": self.tokens,
            "steps": len(self.records),
            "wall_seconds": self.wall_seconds,
            "tokens_per_second": self.tokens_per_second,
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict: run settings, ``summary`` and ``steps`` (one dict per step)."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("records", "wall_seconds")}
        return {
            **settings,
            "summary": self.summary(),
            "steps": [asdict(r) for r in self.records],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainLog:
        """Rebuild a log from :meth:`to_json` output."""
        names = set(cls.__dataclass_fields__) - {"records", "wall_seconds"}
        settings = {k: obj[k] for k in names}
        records = [StepRecord(**r) for r in obj["steps"]]
        return cls(**settings, records=records, wall_seconds=obj["summary"]["wall_seconds"])


def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of token t+1 under the logits at t, over all positions of the batch.

    ``loss = -(1 / (B (T-1))) * sum_{b, t < T-1} log softmax(logits[b, t])[ids[b, t+1]]``,
    computed in float32 whatever the logits' dtype (the mean of
    :func:`datalign.lm.evaluate.token_cross_entropies`; no mask: packed chunks hold no padding).
    """
    return token_cross_entropies(logits, input_ids).mean()


# --- checks ----------------------------------------------------------------------------


def _check_chunks(chunks: np.ndarray, model: PreTrainedModel, run_name: str) -> None:
    if chunks.ndim != 2 or chunks.shape[0] == 0 or chunks.shape[1] < 2:
        raise DataError(
            f"training '{run_name}' needs a (n_chunks >= 1, seq_len >= 2) token array, "
            f"got shape {chunks.shape}"
        )
    vocab = model.config.vocab_size
    lo, hi = int(chunks.min()), int(chunks.max())
    if lo < 0 or hi >= vocab:
        raise DataError(
            f"training '{run_name}': token ids span [{lo}, {hi}] but the model's vocabulary has "
            f"{vocab} entries (tokenizer and model do not match)"
        )
    n_pos = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", None
    )
    if n_pos is not None and chunks.shape[1] > n_pos:
        raise ConfigError(
            f"training '{run_name}': seq_len {chunks.shape[1]} exceeds the model's "
            f"{n_pos} positions"
        )


def _check_settings(batch_size: int, lr: float, warmup_frac: float, run_name: str) -> None:
    if batch_size < 1:
        raise ConfigError(f"training '{run_name}': batch_size must be >= 1, got {batch_size}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"training '{run_name}': lr must be a positive number, got {lr}")
    if not 0.0 <= warmup_frac < 1.0:
        raise ConfigError(f"training '{run_name}': warmup_frac must be in [0, 1), got {warmup_frac}")


def _check_batch_split(batch_size: int, num_processes: int, run_name: str) -> None:
    if batch_size % num_processes:
        raise ConfigError(
            f"training '{run_name}': global batch_size {batch_size} is not divisible by "
            f"{num_processes} processes"
        )


def _check_finite(global_loss: float, step: int, total_steps: int, step_lr: float, run_name: str) -> None:
    if not math.isfinite(global_loss):
        raise TrainingError(
            f"NaN loss at step {step}/{total_steps} while training {run_name} "
            f"(lr={step_lr:.3g}, loss={global_loss})"
        )


# --- the pieces of a run ---------------------------------------------------------------


def _new_log(
    chunks: np.ndarray, accelerator: Accelerator, *, run_name: str, batch_size: int, lr: float,
    seed: int, weight_decay: float, warmup_frac: float, grad_clip: float,
) -> TrainLog:
    """An empty log with the run's settings: one step per ``batch_size`` chunks, the last maybe short."""
    n_chunks, seq_len = chunks.shape
    total_steps = -(-n_chunks // batch_size)
    return TrainLog(
        run_name=run_name, batch_size=batch_size, seq_len=int(seq_len), num_chunks=int(n_chunks),
        total_steps=total_steps, peak_lr=float(lr), warmup_steps=round(warmup_frac * total_steps),
        weight_decay=float(weight_decay), grad_clip=float(grad_clip), seed=int(seed),
        mixed_precision=str(accelerator.mixed_precision), num_processes=accelerator.num_processes,
        device=str(accelerator.device),
    )


def _chunk_loader(chunks: np.ndarray, batch_size: int) -> DataLoader:
    """The chunks in order, ``batch_size`` at a time (global batches, see :func:`make_accelerator`)."""
    data = TensorDataset(torch.from_numpy(chunks.astype(np.int64, copy=False)))
    return DataLoader(data, batch_size=batch_size, shuffle=False, drop_last=False)


def _batch_loss(model: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """:func:`causal_lm_loss` of this process's share of a batch."""
    # Packed chunks hold no padding; the all-ones mask says so (EOS = PAD here).
    mask = torch.ones_like(input_ids)
    return causal_lm_loss(model(input_ids=input_ids, attention_mask=mask).logits, input_ids)


def _optimizer_step(
    accelerator: Accelerator, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    loss: torch.Tensor, grad_clip: float,
) -> None:
    """Backward (gradients averaged across processes), clip the norm to ``grad_clip`` (0: no clip), step."""
    accelerator.backward(loss)
    if grad_clip > 0:
        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _run_steps(
    accelerator: Accelerator, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    loader: DataLoader, train_log: TrainLog, *, lr: float, grad_clip: float, start: float,
    log_every: int, progress: bool,
) -> None:
    """One optimizer step per batch of ``loader``, each recorded in ``train_log``."""
    total_steps, warmup_steps, run_name = train_log.total_steps, train_log.warmup_steps, train_log.run_name
    with tqdm(
        total=total_steps, desc=f"train {run_name}", unit="step", file=sys.stderr,
        disable=not (progress and accelerator.is_local_main_process), mininterval=1.0,
    ) as bar:
        for step_idx, (input_ids,) in enumerate(loader):
            step = step_idx + 1
            step_lr = lr_at(step_idx, total_steps, lr, warmup_steps)
            set_lr(optimizer, step_lr)
            loss = _batch_loss(model, input_ids)
            global_loss = float(accelerator.reduce(loss.detach(), reduction="mean"))
            _check_finite(global_loss, step, total_steps, step_lr, run_name)
            _optimizer_step(accelerator, model, optimizer, loss, grad_clip)
            train_log.records.append(StepRecord(
                step=step,
                tokens_seen=min(step * train_log.batch_size, train_log.num_chunks) * train_log.seq_len,
                loss=global_loss,
                lr=step_lr,
                seconds=time.perf_counter() - start,
            ))
            bar.update(1)
            if step % max(1, log_every) == 0 or step == total_steps:
                bar.set_postfix(loss=f"{global_loss:.4f}", lr=f"{step_lr:.2e}", refresh=False)
                log.info("%s step %d/%d loss %.4f lr %.3g", run_name, step, total_steps,
                         global_loss, step_lr)


def train_causal_lm(
    model: PreTrainedModel,
    chunks: np.ndarray,
    *,
    batch_size: int,
    lr: float,
    seed: int,
    weight_decay: float = 0.01,
    warmup_frac: float = 0.05,
    grad_clip: float = 1.0,
    mixed_precision: str = "no",
    run_name: str = "?",
    log_every: int = 1,
    progress: bool = True,
) -> TrainLog:
    """Train ``model`` in place for one pass over ``chunks`` (n, seq_len); return its log.

    Each step takes the next ``batch_size`` chunks (the global batch; see the
    module docstring for N processes), minimises the mean next-token
    cross-entropy (:func:`causal_lm_loss`) with AdamW (betas 0.9/0.95,
    ``weight_decay`` on matrices and embeddings only), clips the gradient norm
    to ``grad_clip`` (0 disables), and follows :func:`lr_at` with
    ``warmup_steps = round(warmup_frac * total_steps)``. Dropout draws from
    ``seed`` (offset by the process index), so a run on CPU is deterministic.

    A non-finite loss raises :class:`TrainingError` naming the step. The model
    ends in eval mode on the accelerator's device, never wrapped or patched by
    ``accelerate`` (:func:`datalign.training.runs.prepare_for_training`).
    ``log_every`` sets how often a step is logged through ``logging`` and
    shown on the progress bar (stderr); every step is recorded in the
    returned :class:`TrainLog`.
    """
    chunks = np.asarray(chunks)
    _check_chunks(chunks, model, run_name)
    _check_settings(batch_size, lr, warmup_frac, run_name)
    accelerator = make_accelerator(mixed_precision)
    _check_batch_split(batch_size, accelerator.num_processes, run_name)
    torch.manual_seed(seed + accelerator.process_index)
    train_log = _new_log(chunks, accelerator, run_name=run_name, batch_size=batch_size, lr=lr,
                         seed=seed, weight_decay=weight_decay, warmup_frac=warmup_frac,
                         grad_clip=grad_clip)
    loader = _chunk_loader(chunks, batch_size)
    optimizer = adamw(model, lr, weight_decay)
    model.train()
    prepared, optimizer, loader = prepare_for_training(accelerator, model, optimizer, loader)
    log.info(
        "training %s: %d chunks x %d tokens, %d steps of %d, lr %g, %d warmup, %s x%d, %s",
        run_name, train_log.num_chunks, train_log.seq_len, train_log.total_steps, batch_size, lr,
        train_log.warmup_steps, accelerator.device, accelerator.num_processes,
        accelerator.mixed_precision,
    )
    start = time.perf_counter()
    try:
        _run_steps(accelerator, prepared, optimizer, loader, train_log, lr=lr, grad_clip=grad_clip,
                   start=start, log_every=log_every, progress=progress)
    finally:
        accelerator.wait_for_everyone()
        del prepared
        accelerator.free_memory()
        model.eval()
    if len(train_log.records) != train_log.total_steps:
        raise TrainingError(
            f"training {run_name} ran {len(train_log.records)} steps, {train_log.total_steps} expected"
        )
    train_log.wall_seconds = time.perf_counter() - start
    log.info(
        "trained %s: final loss %.4f, %d tokens in %.1fs (%.0f tokens/s)", run_name,
        train_log.final_loss, train_log.tokens, train_log.wall_seconds, train_log.tokens_per_second,
    )
    return train_log


# --- the objective ---------------------------------------------------------------------

# Spec keys passed on to train_causal_lm when present (its defaults apply otherwise).
_TRAIN_SETTINGS = ("weight_decay", "warmup_frac", "grad_clip", "mixed_precision")


def spec_chunks(spec: dict[str, Any]) -> np.ndarray:
    """The training chunks a job spec names: ``seq_len``-token chunks of ``tokens`` (one
    split or several mixed equally) for ``token_budget`` tokens, drawn with ``seed``."""
    files = [spec["tokens"]] if isinstance(spec["tokens"], str) else list(spec["tokens"])
    splits = [TokenizedSplit.load(f, name=f"{Path(f).parent.name}/{Path(f).stem}") for f in files]
    chunks = mixed_training_chunks(splits, spec["seq_len"], spec["token_budget"], spec["seed"])
    log.info("%s: %d chunks of %d tokens from %s", spec["run_name"], len(chunks), spec["seq_len"],
             ", ".join(s.name for s in splits))
    return chunks


@register_objective("causal_lm")
def run_causal_lm(spec: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The ``"causal_lm"`` objective: train the model ``spec`` names on its chunks, save it.

    ``spec`` is a :meth:`datalign.training.launch.TrainJob.to_json` dict: the
    model (:func:`datalign.training.runs.model_from_spec`), its chunks
    (:func:`spec_chunks`), then :func:`train_causal_lm` with the spec's
    settings. The checkpoint goes to ``out_dir`` with ``train_log.json`` = the
    log's JSON plus ``spec["record"]`` (main process only); that dict is returned.
    This objective takes no ``options``.
    """
    if spec.get("options"):
        raise ConfigError(
            f"training '{spec['run_name']}': the causal_lm objective takes no options, "
            f"got {sorted(spec['options'])}"
        )
    tokenizer = load_tokenizer(spec["tokenizer"])
    model = model_from_spec(spec, tokenizer)
    chunks = spec_chunks(spec)
    train_log = train_causal_lm(
        model, chunks, batch_size=spec["batch_size"], lr=spec["lr"], seed=spec["seed"],
        run_name=spec["run_name"], **{k: spec[k] for k in _TRAIN_SETTINGS if k in spec},
    )
    return save_run(model, tokenizer, out_dir, train_log.to_json(), spec.get("record"))
