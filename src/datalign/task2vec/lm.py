"""Causal-LM pieces shared by the Task2Vec estimators: losses, mini-batches, seeds."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from datalign.core.errors import DataError, TrainingError


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


def forward_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Logits (batch, seq, vocab) of a causal LM on a padded batch."""
    return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least float32 (half-precision logits make poor log-probabilities)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def next_token_loss(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over real targets, and how many there are.

    ``loss = mean_{(i,t): m[i,t] = m[i,t+1] = 1} -log softmax(logits[i,t])[x[i,t+1]]``;
    padded positions are neither inputs to a counted prediction nor targets.
    """
    logits = forward_logits(model, input_ids, attention_mask)
    valid = attention_mask[:, 1:].bool() & attention_mask[:, :-1].bool()
    count = int(valid.sum())
    if count == 0:
        raise DataError("Task2Vec mini-batch has no real next-token target (every sequence < 2 tokens)")
    # Index before the loss so that nothing computed at padded positions (even a NaN) enters it.
    loss = nn.functional.cross_entropy(upcast(logits[:, :-1][valid]), input_ids[:, 1:][valid])
    if not torch.isfinite(loss):
        raise TrainingError(f"Task2Vec head fine-tuning: non-finite loss {float(loss)}")
    return loss, count


def minibatch_slices(n: int, size: int) -> list[slice]:
    """Consecutive slices of ``size`` rows covering ``range(n)`` (the last one may be shorter)."""
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def batch_seed(seed: int, index: int) -> int:
    """A 63-bit seed for batch ``index`` of a run seeded with ``seed`` (independent streams)."""
    state = np.random.SeedSequence([int(seed) & (2**63 - 1), int(index)]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def sub_seed(seed: int, purpose: str) -> int:
    """A seed for one use (``purpose``) of a batch's randomness, derived from its seed."""
    tag = int.from_bytes(purpose.encode()[:8].ljust(8, b"\0"), "little")
    state = np.random.SeedSequence([int(seed) & (2**63 - 1), tag]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def weighted_mean(values: list[float], weights: list[int]) -> float:
    """Sum(v * w) / sum(w); NaN when there is nothing to average."""
    total = sum(weights)
    return math.fsum(v * w for v, w in zip(values, weights, strict=True)) / total if total else math.nan
