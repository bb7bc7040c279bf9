"""Training a causal language model on a fixed list of token chunks, with ``accelerate``.

One pass over the chunks, in the order given (the caller chose them for its
token budget with :func:`datalign.lm.tokens.training_chunks`), next-token
cross-entropy, AdamW, linear warmup then cosine decay. The same code runs on
CPU, one GPU, or N processes started by ``accelerate launch``.

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
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm
from transformers import PreTrainedModel

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.lm.evaluate import next_token_losses

log = logging.getLogger(__name__)


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


def lr_at(step: int, total_steps: int, peak_lr: float, warmup_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based) out of ``total_steps``.

    Linear warmup, ``lr = peak * (step + 1) / warmup_steps`` for
    ``step < warmup_steps``; then cosine decay towards zero,
    ``lr = peak * 0.5 * (1 + cos(pi * (step - W) / (total_steps - W)))``.
    No step has a zero learning rate.
    """
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _make_accelerator(mixed_precision: str) -> Accelerator:
    dl_config = DataLoaderConfiguration(split_batches=True)
    try:
        return Accelerator(mixed_precision=mixed_precision, dataloader_config=dl_config)
    except ValueError as exc:
        if "already been initialized" not in str(exc):
            raise ConfigError(f"mixed_precision = '{mixed_precision}': {exc}") from None
    # A second run in the same process with another precision: accelerate keeps
    # its state process-wide, so reset it (the process group, if any, stays).
    AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed_precision, dataloader_config=dl_config)


def _decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # Decay matrices and embeddings only; biases and LayerNorm gains stay undecayed.
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def next_token_loss(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of token t+1 under the logits at t, over all positions of the batch.

    ``loss = -(1 / (B (T-1))) * sum_{b, t < T-1} log softmax(logits[b, t])[ids[b, t+1]]``,
    computed in float32 whatever the logits' dtype.
    """
    return next_token_losses(logits, input_ids).mean()


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
    cross-entropy (:func:`next_token_loss`) with AdamW (betas 0.9/0.95,
    ``weight_decay`` on matrices and embeddings only), clips the gradient norm
    to ``grad_clip`` (0 disables), and follows :func:`lr_at` with
    ``warmup_steps = round(warmup_frac * total_steps)``. Dropout draws from
    ``seed`` (offset by the process index), so a run on CPU is deterministic.

    A non-finite loss raises :class:`TrainingError` naming the step. The model
    ends in eval mode on the accelerator's device, unwrapped (no DDP or
    autocast wrapper left on it). ``log_every`` sets how often a step is
    logged through ``logging`` and shown on the progress bar (stderr); every
    step is recorded in the returned :class:`TrainLog`.
    """
    chunks = np.asarray(chunks)
    _check_chunks(chunks, model, run_name)
    if batch_size < 1:
        raise ConfigError(f"training '{run_name}': batch_size must be >= 1, got {batch_size}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"training '{run_name}': lr must be a positive number, got {lr}")
    if not 0.0 <= warmup_frac < 1.0:
        raise ConfigError(f"training '{run_name}': warmup_frac must be in [0, 1), got {warmup_frac}")

    accelerator = _make_accelerator(mixed_precision)
    n_proc = accelerator.num_processes
    if batch_size % n_proc:
        raise ConfigError(
            f"training '{run_name}': global batch_size {batch_size} is not divisible by "
            f"{n_proc} processes"
        )
    torch.manual_seed(seed + accelerator.process_index)

    n_chunks, seq_len = chunks.shape
    total_steps = -(-n_chunks // batch_size)
    warmup_steps = round(warmup_frac * total_steps)
    train_log = TrainLog(
        run_name=run_name, batch_size=batch_size, seq_len=int(seq_len), num_chunks=int(n_chunks),
        total_steps=total_steps, peak_lr=float(lr), warmup_steps=warmup_steps,
        weight_decay=float(weight_decay), grad_clip=float(grad_clip), seed=int(seed),
        mixed_precision=str(accelerator.mixed_precision), num_processes=n_proc,
        device=str(accelerator.device),
    )

    data = TensorDataset(torch.from_numpy(chunks.astype(np.int64, copy=False)))
    # With split_batches=True the loader yields GLOBAL batches that accelerate
    # slices across processes, so the step sequence does not depend on N.
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, drop_last=False)
    optimizer = torch.optim.AdamW(
        _decay_groups(model, weight_decay), lr=lr, betas=(0.9, 0.95), eps=1e-8
    )
    model.train()
    # accelerate patches mixed-precision autocast onto the instance's forward;
    # remember what the instance had so the caller gets its model back unpatched.
    own_attrs = {k: model.__dict__[k] for k in ("forward", "_original_forward") if k in model.__dict__}
    prepared_model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    bar = tqdm(
        total=total_steps, desc=f"train {run_name}", unit="step", file=sys.stderr,
        disable=not (progress and accelerator.is_local_main_process), mininterval=1.0,
    )
    log.info(
        "training %s: %d chunks x %d tokens, %d steps of %d, lr %g, %d warmup, %s x%d, %s",
        run_name, n_chunks, seq_len, total_steps, batch_size, lr, warmup_steps,
        accelerator.device, n_proc, accelerator.mixed_precision,
    )
    start = time.perf_counter()
    try:
        for step_idx, (input_ids,) in enumerate(loader):
            step = step_idx + 1
            step_lr = lr_at(step_idx, total_steps, lr, warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = step_lr
            # Packed chunks hold no padding; the all-ones mask says so (EOS = PAD here).
            mask = torch.ones_like(input_ids)
            logits = prepared_model(input_ids=input_ids, attention_mask=mask).logits
            loss = next_token_loss(logits, input_ids)
            global_loss = float(accelerator.reduce(loss.detach(), reduction="mean"))
            if not math.isfinite(global_loss):
                raise TrainingError(
                    f"NaN loss at step {step}/{total_steps} while training {run_name} "
                    f"(lr={step_lr:.3g}, loss={global_loss})"
                )
            accelerator.backward(loss)
            if grad_clip > 0:
                accelerator.clip_grad_norm_(prepared_model.parameters(), grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            record = StepRecord(
                step=step,
                tokens_seen=min(step * batch_size, n_chunks) * int(seq_len),
                loss=global_loss,
                lr=step_lr,
                seconds=time.perf_counter() - start,
            )
            train_log.records.append(record)
            bar.update(1)
            if step % max(1, log_every) == 0 or step == total_steps:
                bar.set_postfix(loss=f"{global_loss:.4f}", lr=f"{step_lr:.2e}", refresh=False)
                log.info("%s step %d/%d loss %.4f lr %.3g", run_name, step, total_steps,
                          global_loss, step_lr)
    finally:
        bar.close()
        accelerator.wait_for_everyone()
        # Undo the autocast patch by hand: unwrap_model(keep_fp32_wrapper=False)
        # unwraps through every functools.wraps layer, transformers' own included.
        for key in ("forward", "_original_forward"):
            model.__dict__.pop(key, None)
        model.__dict__.update(own_attrs)
        del prepared_model
        accelerator.free_memory()
        model.eval()
    if len(train_log.records) != total_steps:
        raise TrainingError(
            f"training {run_name} ran {len(train_log.records)} steps, {total_steps} expected"
        )
    train_log.wall_seconds = time.perf_counter() - start
    log.info(
        "trained %s: final loss %.4f, %d tokens in %.1fs (%.0f tokens/s)", run_name,
        train_log.final_loss, train_log.tokens, train_log.wall_seconds, train_log.tokens_per_second,
    )
    return train_log
