"""The ``paper`` Fisher estimator against an exact expectation on a model small enough to enumerate.

The reference here is written independently of the estimator: it enumerates
every assignment of sampled labels over the real positions of a mini-batch,
weights it by its probability under the model, and takes the expected squared
gradient of the mini-batch mean loss. The estimator's average over N seeds must
land within 5 Monte Carlo standard errors (sqrt(Var/N), Var also exact from the
enumeration) of it, and must NOT land near the off-by-one version (label sampled
at t+1 scored against the logits at t), which the authors' code computed.
"""

from __future__ import annotations

import copy
import itertools
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from datalign.lm.tokens import SequenceBatch  # noqa: E402
from datalign.task2vec import Task2VecConfig, embed_batches  # noqa: E402

torch.set_num_threads(1)

VOCAB = 3


def tiny_probe() -> GPT2LMHeadModel:
    """1 layer, d=4, vocab 3, dropout left at GPT-2's 0.1 (the estimator must turn it off).

    Weights are redrawn from N(0, 1) so the next-token distributions are peaked and
    differ by position (with GPT-2's 0.02 init they are all near uniform, and the
    off-by-one error would be invisible).
    """
    config = GPT2Config(
        vocab_size=VOCAB, n_embd=4, n_layer=1, n_head=2, n_positions=4,
        bos_token_id=0, eos_token_id=0,
    )
    torch.manual_seed(7)
    model = GPT2LMHeadModel(config).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 1.0)
    model.train()  # as a caller might hand it over; the estimator must not rely on eval()
    return model


def two_sequence_batch() -> SequenceBatch:
    ids = torch.tensor([[0, 1, 2], [2, 2, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])  # one padded position
    return SequenceBatch(ids, mask, np.arange(2))


def reduced_sq(grads: list[torch.Tensor]) -> np.ndarray:
    """grad^2 averaged over all axes but the first, concatenated (written here, not imported)."""
    parts = []
    for g in grads:
        sq = g.detach().double() ** 2
        parts.append(sq.reshape(-1) if sq.dim() == 1 else sq.reshape(sq.shape[0], -1).mean(dim=1))
    return torch.cat(parts).numpy()


def exact_minibatch_moments(
    model: GPT2LMHeadModel, names: list[str], ids: torch.Tensor, mask: torch.Tensor, off_by_one: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Exact E[X] and Var[X] of X = reduced grad(L)^2 for one mini-batch.

    Correct: L = mean over real (i,t) of -log p_{i,t}(y_{i,t}), y_{i,t} ~ p_{i,t}.
    Off by one: L = mean over real (i,t) with (i,t+1) real of -log p_{i,t}(y_{i,t+1}),
    y_{i,t+1} ~ p_{i,t+1}.
    """
    model = copy.deepcopy(model).eval()
    params = [model.get_parameter(n) for n in names]
    logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, dim=-1)
    probs = logp.detach().exp()
    terms = []  # (row, scored position, sampled-from position)
    for i in range(ids.shape[0]):
        for t in range(ids.shape[1]):
            if off_by_one:
                if t + 1 < ids.shape[1] and mask[i, t] and mask[i, t + 1]:
                    terms.append((i, t, t + 1))
            elif mask[i, t]:
                terms.append((i, t, t))
    mean = 0.0
    second = 0.0
    total_prob = 0.0
    for labels in itertools.product(range(VOCAB), repeat=len(terms)):
        prob = float(np.prod([probs[i, s, y].item() for (i, _, s), y in zip(terms, labels, strict=True)]))
        loss = -torch.stack([logp[i, t, y] for (i, t, _), y in zip(terms, labels, strict=True)]).mean()
        x = reduced_sq(list(torch.autograd.grad(loss, params, retain_graph=True)))
        mean = mean + prob * x
        second = second + prob * x**2
        total_prob += prob
    assert total_prob == pytest.approx(1.0, abs=1e-12)
    return mean, second - mean**2


def exact_fisher(model, names, batch, minibatch, off_by_one=False):
    """Exact mean and variance of the estimator: average over mini-batches of their X."""
    slices = [slice(s, s + minibatch) for s in range(0, batch.input_ids.shape[0], minibatch)]
    moments = [
        exact_minibatch_moments(model, names, batch.input_ids[sl], batch.attention_mask[sl], off_by_one)
        for sl in slices
    ]
    mean = sum(m for m, _ in moments) / len(slices)
    var = sum(v for _, v in moments) / len(slices) ** 2
    return mean, var


@pytest.mark.parametrize(("minibatch", "n_draws"), [(2, 1500), (1, 800)])
def test_monte_carlo_fisher_matches_exact_expectation(minibatch, n_draws):
    model = tiny_probe()
    batch = two_sequence_batch()
    cfg = Task2VecConfig(head_epochs=0, head_minibatch=minibatch)
    # The same batch repeated: each copy gets its own seed, so the rows are independent draws.
    result = embed_batches(model, [batch] * n_draws, cfg, seed=11, progress=False)
    estimate = result.embeddings.astype(np.float64).mean(axis=0)

    mean, var = exact_fisher(model, result.parameter_names, batch, minibatch)
    assert mean.shape == estimate.shape
    stderr = np.sqrt(var / n_draws)
    tol = 5 * stderr + 1e-6 * np.abs(mean).max()  # 5 standard errors; float32 storage
    assert np.all(np.abs(estimate - mean) <= tol), np.max(np.abs(estimate - mean) / tol)
    # Not a vacuous check: the Monte Carlo error is small against the signal.
    assert np.median(stderr / np.maximum(mean, 1e-300)) < 0.1

    wrong, _ = exact_fisher(model, result.parameter_names, batch, minibatch, off_by_one=True)
    assert np.any(np.abs(estimate - wrong) > 10 * tol), "estimate is also close to the off-by-one Fisher"
