"""Evaluation of a causal language model: exact mean token cross-entropy on held-out chunks."""

from __future__ import annotations

import math

import numpy as np
import torch
from transformers import PreTrainedModel

from datalign.core.errors import DataError, TrainingError


def token_cross_entropies(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every token t+1 under the logits at t, unmasked and flattened (float32).

    ``ce[b, t] = -log softmax(logits[b, t])[ids[b, t+1]]`` for every t < T-1 (packed
    chunks: no padding to skip), in float32 whatever the logits' dtype; returns a
    tensor of B (T-1) values. Their mean is the training loss
    (:func:`datalign.training.causal_lm.causal_lm_loss`), their float64 sum the
    evaluation's (:func:`evaluate_causal_lm`).
    """
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        input_ids[:, 1:].reshape(-1),
        reduction="none",
    )


def evaluate_causal_lm(
    model: PreTrainedModel, chunks: np.ndarray, batch_size: int = 8, name: str = "?"
) -> dict[str, float | int]:
    """Mean next-token cross-entropy of ``model`` over every predicted token of ``chunks``.

    For chunks ``x`` of shape (n, T), every position t < T-1 predicts token t+1:

    ``ce = -(1 / (n (T-1))) * sum_{i, t} log softmax(logits_i[t])[x_i[t+1]]``

    accumulated per token in float64, so the result is the exact mean over all
    predicted tokens (not a mean of batch means) and does not depend on
    ``batch_size``. Returns ``cross_entropy`` (nats), ``perplexity`` = exp(ce),
    ``bits_per_token`` = ce / ln 2, ``tokens`` (predicted tokens, n (T-1)),
    ``chunks`` and ``seq_len``. Runs without gradients in eval mode on the
    model's device, restoring the model's train/eval mode afterwards. A
    non-finite cross-entropy is a :class:`TrainingError`.
    """
    chunks = np.asarray(chunks)
    if chunks.ndim != 2 or chunks.shape[0] == 0 or chunks.shape[1] < 2:
        raise DataError(
            f"evaluation on '{name}' needs a (n_chunks >= 1, seq_len >= 2) token array, "
            f"got shape {chunks.shape}"
        )
    if batch_size < 1:
        raise DataError(f"evaluation on '{name}': batch_size must be >= 1, got {batch_size}")
    vocab = model.config.vocab_size
    if int(chunks.min()) < 0 or int(chunks.max()) >= vocab:
        raise DataError(
            f"evaluation on '{name}': token ids span [{int(chunks.min())}, {int(chunks.max())}] "
            f"but the model's vocabulary has {vocab} entries"
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    try:
        with torch.inference_mode():
            for start in range(0, len(chunks), batch_size):
                ids = torch.from_numpy(chunks[start : start + batch_size].astype(np.int64)).to(device)
                # Packed chunks hold no padding; the all-ones mask says so (EOS = PAD here).
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
                total += token_cross_entropies(logits, ids).double().sum()
    finally:
        model.train(was_training)
    n_chunks, seq_len = chunks.shape
    count = n_chunks * (seq_len - 1)
    ce = float(total) / count
    if not math.isfinite(ce):
        raise TrainingError(
            f"evaluation on '{name}' gave a non-finite cross-entropy ({ce}) over {count} tokens"
        )
    return {
        "cross_entropy": ce,
        "perplexity": math.exp(ce) if ce < 700 else float("inf"),
        "bits_per_token": ce / math.log(2),
        "tokens": int(count),
        "chunks": int(n_chunks),
        "seq_len": int(seq_len),
    }
