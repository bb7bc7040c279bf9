"""Evaluation: exact mean token cross-entropy against a hand computation in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datalign.core.errors import DataError, TrainingError
from datalign.lm.evaluate import evaluate_causal_lm, token_cross_entropies
from datalign.lm.models import build_gpt2

torch.set_num_threads(1)

V = 40
ARCH = {"n_layer": 2, "n_embd": 16, "n_head": 2, "n_positions": 12}


@pytest.fixture(scope="module")
def model():
    m = build_gpt2(ARCH, V, 0, seed=11)
    # Sharpen the random init so token losses differ a lot between positions and
    # batches: a mean of batch means would then visibly differ from the token mean.
    with torch.no_grad():
        m.transformer.wte.weight.mul_(20.0)
    return m


@pytest.fixture(scope="module")
def chunks():
    return np.random.default_rng(3).integers(0, V, size=(7, 12)).astype(np.int64)


def reference_cross_entropy(model: torch.nn.Module, chunks: np.ndarray) -> float:
    """Token-by-token: -log softmax(logits[t])[x[t+1]] in float64, one chunk at a time."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for row in chunks:
            ids = torch.from_numpy(row)[None]
            logits = model(ids).logits[0].double()
            for t in range(len(row) - 1):
                log_z = torch.logsumexp(logits[t], dim=0)
                total += float(log_z - logits[t, row[t + 1]])
                count += 1
    return total / count


def test_matches_manual_cross_entropy(model, chunks):
    result = evaluate_causal_lm(model, chunks, batch_size=3)
    expected = reference_cross_entropy(model, chunks)
    assert result["cross_entropy"] == pytest.approx(expected, rel=1e-6)
    assert result["tokens"] == 7 * 11
    assert result["chunks"] == 7 and result["seq_len"] == 12
    assert result["perplexity"] == pytest.approx(math.exp(expected), rel=1e-6)
    assert result["bits_per_token"] == pytest.approx(expected / math.log(2), rel=1e-6)


def test_matches_torch_cross_entropy_over_all_shifted_tokens(model, chunks):
    ids = torch.from_numpy(chunks)
    with torch.no_grad():
        logits = model(ids).logits
    expected = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1)
    ).item()
    assert evaluate_causal_lm(model, chunks)["cross_entropy"] == pytest.approx(expected, rel=1e-6)


def test_independent_of_batch_size(model, chunks):
    values = [evaluate_causal_lm(model, chunks, batch_size=b)["cross_entropy"]
              for b in (1, 2, 3, 4, 7, 100)]
    assert values == pytest.approx([values[0]] * len(values), rel=1e-6)
    # A mean of per-batch means (last batch of 1 chunk with batch_size=2) would differ.
    batch_means = [reference_cross_entropy(model, chunks[s : s + 2]) for s in range(0, 7, 2)]
    assert abs(np.mean(batch_means) - values[0]) > 1e-4


def test_eval_mode_and_restores_training_flag(chunks):
    m = build_gpt2({**ARCH, "dropout": 0.5}, V, 0, seed=1)
    expected = evaluate_causal_lm(m, chunks)["cross_entropy"]
    m.train()
    assert evaluate_causal_lm(m, chunks)["cross_entropy"] == expected  # dropout was off
    assert m.training
    assert all(p.grad is None for p in m.parameters())


def test_non_finite_is_training_error(chunks):
    m = build_gpt2(ARCH, V, 0, seed=1)
    with torch.no_grad():
        m.transformer.wpe.weight[3, 0] = float("nan")
    with pytest.raises(TrainingError, match="non-finite cross-entropy"):
        evaluate_causal_lm(m, chunks, name="broken")


def test_rejects_bad_chunks(model):
    with pytest.raises(DataError, match="vocabulary has 40"):
        evaluate_causal_lm(model, np.full((2, 12), V, dtype=np.int64))
    with pytest.raises(DataError, match="shape"):
        evaluate_causal_lm(model, np.zeros((3, 1), dtype=np.int64))


def test_token_cross_entropies_one_per_predicted_token_in_float32():
    logits = torch.randn(2, 6, V, dtype=torch.bfloat16)
    ids = torch.randint(0, V, (2, 6))
    ce = token_cross_entropies(logits, ids)
    assert ce.shape == (2 * 5,) and ce.dtype == torch.float32
    log_p = torch.log_softmax(logits.double(), dim=-1)
    expected = -log_p[:, :-1].gather(-1, ids[:, 1:, None])[..., 0].reshape(-1)
    assert ce.double().numpy() == pytest.approx(expected.numpy(), rel=1e-5)


def test_unigram_reference_matches_a_direct_count():
    from datalign.lm.evaluate import stream_token_counts, unigram_cross_entropy
    from datalign.lm.tokens import TokenizedSplit

    train = TokenizedSplit.from_documents([[1, 2, 2], [3]], eos_id=0)
    counts = stream_token_counts(train, vocab_size=5)
    assert counts.tolist() == [2, 1, 2, 1, 0]  # one EOS per document
    chunks = np.array([[0, 1, 2, 4], [2, 2, 0, 3]])
    out = unigram_cross_entropy(counts, chunks, smoothing=1.0)
    p = (counts + 1.0) / (counts.sum() + 5.0)
    targets = [1, 2, 4, 2, 0, 3]  # every token after the first of each chunk
    assert out["cross_entropy"] == pytest.approx(-np.mean(np.log(p[targets])))
    assert out["tokens"] == 6 and out["perplexity"] == pytest.approx(np.exp(out["cross_entropy"]))
    with pytest.raises(DataError, match="probability 0"):
        unigram_cross_entropy(counts, chunks, smoothing=0.0)
    with pytest.raises(DataError, match="vocabulary has 5"):
        unigram_cross_entropy(counts, np.array([[0, 7]]))
