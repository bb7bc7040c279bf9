"""Evaluation of a causal language model: exact mean token cross-entropy on held-out chunks."""

from __future__ import annotations

import math

import numpy as np
import torch
from transformers import PreTrainedModel

from datalign.core.errors import DataError, TrainingError
from datalign.lm.tokens import TokenizedSplit


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
    return _loss_record(ce, count, n_chunks, seq_len)


def _loss_record(ce: float, count: int, n_chunks: int, seq_len: int) -> dict[str, float | int]:
    return {
        "cross_entropy": ce,
        "perplexity": math.exp(ce) if ce < 700 else float("inf"),
        "bits_per_token": ce / math.log(2),
        "tokens": int(count),
        "chunks": int(n_chunks),
        "seq_len": int(seq_len),
    }


def unigram_cross_entropy(
    counts: np.ndarray, chunks: np.ndarray, smoothing: float = 1.0, name: str = "?"
) -> dict[str, float | int]:
    """Cross-entropy of the tokens a causal LM would predict in ``chunks`` under a unigram model.

    The unigram model is the add-``smoothing`` (Laplace for 1.0) estimate from token
    ``counts`` of shape (V,): ``p(v) = (counts[v] + a) / (sum(counts) + a V)``. Scored
    are exactly the tokens :func:`evaluate_causal_lm` scores, ``chunks[:, 1:]`` of a
    (n, T) array, so the two numbers are comparable (nats per token):

    ``ce = -(1 / (n (T-1))) * sum_{i, t >= 1} log p(x_i[t])``

    It is the loss of a model that knows the domain's token frequencies and no
    context: the alignment study's reference for models pre-trained from scratch,
    whose untrained base (uniform over V, ``ln V``) says nothing about the domain.
    Returns the record of :func:`evaluate_causal_lm`. A token id outside
    ``[0, V)`` or a smoothing <= 0 with an unseen token is a :class:`DataError`.
    """
    counts = np.asarray(counts, dtype=np.float64)
    chunks = np.asarray(chunks)
    if counts.ndim != 1 or counts.size == 0 or np.any(counts < 0):
        raise DataError(f"unigram reference for '{name}': counts must be a non-negative (V,) vector")
    if chunks.ndim != 2 or chunks.shape[0] == 0 or chunks.shape[1] < 2:
        raise DataError(
            f"unigram reference for '{name}' needs a (n_chunks >= 1, seq_len >= 2) token array, "
            f"got shape {chunks.shape}"
        )
    vocab = counts.size
    targets = chunks[:, 1:].reshape(-1)
    if int(targets.min()) < 0 or int(targets.max()) >= vocab:
        raise DataError(
            f"unigram reference for '{name}': token ids span [{int(targets.min())}, "
            f"{int(targets.max())}] but the vocabulary has {vocab} entries"
        )
    probs = (counts + smoothing) / (counts.sum() + smoothing * vocab)
    with np.errstate(divide="ignore"):
        log_p = np.log(probs)
    ce = float(-np.mean(log_p[targets]))
    if not math.isfinite(ce):
        raise DataError(
            f"unigram reference for '{name}': a token never seen in the counts has probability 0 "
            f"(smoothing {smoothing}); use a smoothing > 0"
        )
    n_chunks, seq_len = chunks.shape
    return _loss_record(ce, targets.size, n_chunks, seq_len)


def stream_token_counts(split: TokenizedSplit, vocab_size: int) -> np.ndarray:
    """Token counts (V,) of the packed stream a model trains on: every document plus its EOS.

    A token id outside ``[0, vocab_size)`` is a :class:`DataError` naming the split.
    """
    ids = np.asarray(split.ids, dtype=np.int64)
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise DataError(
            f"split '{split.name}': token ids span [{int(ids.min())}, {int(ids.max())}] "
            f"but the vocabulary has {vocab_size} entries"
        )
    counts = np.bincount(ids, minlength=vocab_size).astype(np.int64)
    counts[split.eos_id] += split.num_documents
    return counts
