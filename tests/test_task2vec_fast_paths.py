"""The ``fast`` estimator's cheaper paths compute what the plain ones do.

- the two-level inverse-CDF label sampler draws from the softmax (Monte Carlo
  against the closed form) and, given the same uniforms, draws what the
  one-level inverse CDF draws;
- the head fit in row blocks and from a separate source head is AdamW written
  out by hand; its bfloat16 products move the head as float32 does, and
  the Fisher pass's bfloat16 head products move the embedding far less than
  another Monte Carlo seed;
- the input embedding's gradient gathered from its output's gradient (with a
  padding row) and the Fisher pass over chunks of mini-batches equal autograd
  through the model.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from datalign.task2vec import Task2VecConfig, embed_batches, normalized_cosine
from datalign.task2vec import fast as fast_module
from datalign.task2vec.fast import (
    FastEstimator,
    LinearHead,
    fit_head_exact,
    fit_head_frozen,
    frozen_schedule,
    head_dtype,
    sample_labels,
)

from .test_task2vec_fast import (
    CFG,
    VOCAB,
    autograd_fisher,
    batches_from,
    cached_features,
    probe,
    record_labels,
    reference_adamw,
)

torch.set_num_threads(1)


# ---------------------------------------------------------------- sampling


PROBS = torch.tensor([
    [0.05, 0.10, 0.00, 0.20, 0.00, 0.15, 0.10, 0.05, 0.05, 0.30],  # zeros inside blocks
    [0.00, 0.00, 0.00, 0.50, 0.00, 0.00, 0.00, 0.00, 0.00, 0.50],  # whole zero blocks
    [0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 1.00],  # all mass in the short last block
    [0.70, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.30],
], dtype=torch.float64)


@pytest.mark.parametrize("block", [1, 2, 3])
def test_two_level_sampler_draws_from_the_softmax(monkeypatch, block):
    """Blocks of 1, 2 and 3 over 10 entries (a short last block); every label's
    frequency is within 5 standard errors of its probability, zeros never drawn."""
    monkeypatch.setattr(fast_module, "TWO_LEVEL_BLOCKS", 1)  # two levels from two blocks on
    n = 40_000
    rows = PROBS.repeat(n, 1)
    draws = sample_labels(rows, torch.Generator().manual_seed(block), block=block).view(n, len(PROBS))
    for r in range(len(PROBS)):
        freq = torch.bincount(draws[:, r], minlength=PROBS.shape[1]).double() / n
        se = torch.sqrt(PROBS[r] * (1 - PROBS[r]) / n)
        assert torch.all((freq - PROBS[r]).abs() <= 5 * se + 1e-12), (r, freq)
        assert torch.all(freq[PROBS[r] == 0] == 0)


def test_two_level_sampler_is_the_inverse_cdf_given_the_same_uniforms():
    assert fast_module.TWO_LEVEL_BLOCKS < 1000 // 64  # the second draw takes two levels
    gen = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(500, 1000, generator=gen, dtype=torch.float64)
    logits[:, 100:400] = -torch.inf  # whole blocks of zero probability
    probs = torch.softmax(logits, dim=1)
    one = sample_labels(probs, torch.Generator().manual_seed(5), block=10_000)
    two = sample_labels(probs, torch.Generator().manual_seed(5), block=64)
    assert torch.equal(one, two)
    # float32 weights (the estimator's): the same draws but where rounding moves a boundary
    p32 = probs.float()
    one = sample_labels(p32, torch.Generator().manual_seed(6), block=10_000)
    two = sample_labels(p32, torch.Generator().manual_seed(6), block=64)
    assert (one != two).sum() <= 2
    assert bool((p32[torch.arange(500), two] > 0).all())


# ---------------------------------------------------------------- the head fit


@pytest.mark.parametrize("block_bytes", [1 << 30, 5 * 6 * 8 * 3])  # one block; blocks of 3 rows
def test_frozen_fit_in_blocks_from_a_source_head_is_adamw(block_bytes):
    gen = torch.Generator().manual_seed(3)
    V, d = 11, 5
    w0 = torch.randn(V, d, generator=gen, dtype=torch.float64)
    b0 = torch.randn(V, generator=gen, dtype=torch.float64)
    groups = [(torch.randn(n, d, generator=gen, dtype=torch.float64), torch.randint(0, V, (n,), generator=gen))
              for n in (6, 4)]
    cfg = Task2VecConfig(head_lr=1e-2, head_epochs=3)
    schedule = frozen_schedule(len(groups), cfg.head_epochs, torch.Generator().manual_seed(1))
    grads = []
    for X, y in groups:
        w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        grads.append(torch.autograd.grad(torch.nn.functional.cross_entropy(X @ w.T + b, y), [w, b]))
    ref_w, ref_b = reference_adamw(w0, b0, grads, schedule, cfg)
    for max_bytes in (1 << 30, 8):  # softmax gradients held; or normalisers first, logits per block
        source = LinearHead(w0.clone(), b0.clone(), torch.float64)
        head = LinearHead(torch.full_like(w0, torch.nan), torch.full_like(b0, torch.nan), torch.float64)
        fit_head_frozen(head, groups, schedule, cfg, max_bytes=max_bytes, source=source, block_bytes=block_bytes)
        torch.testing.assert_close(head.weight, ref_w, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(head.bias, ref_b, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(source.weight, w0, rtol=0, atol=0)  # the source is only read


def test_bfloat16_fit_moves_the_head_as_the_float32_fit_does():
    """The fit's bfloat16 products change the fitted head's displacement by far less than
    the frozen-gradient approximation itself (a few %, see test_task2vec_fast)."""
    model = probe(tied=False, scale=0.3)
    batch = batches_from((1, VOCAB), num_batches=1, batch_size=16)[0]
    feats = cached_features(model, batch)
    groups = [(torch.cat([x for x, _ in feats[i:i + 4]]), torch.cat([y for _, y in feats[i:i + 4]]))
              for i in range(0, len(feats), 4)]
    cfg = Task2VecConfig(head_epochs=5, head_lr=5.0e-5)
    schedule = frozen_schedule(len(groups), cfg.head_epochs, torch.Generator().manual_seed(0))
    heads = {}
    for dtype in (torch.float32, torch.bfloat16):
        heads[dtype] = LinearHead.copy_of(model.lm_head)
        fit_head_frozen(heads[dtype], groups, schedule, cfg, dtype=dtype)
    step = heads[torch.float32].weight - model.lm_head.weight.detach()
    assert float(step.abs().max()) > 1e-5
    rel = float((heads[torch.bfloat16].weight - heads[torch.float32].weight).norm() / step.norm())
    assert rel < 0.02, rel
    # which dtype the estimator picks
    cpu = torch.device("cpu")
    assert head_dtype(cpu, "float32", torch.float32) == torch.float32
    assert head_dtype(cpu, "bfloat16", torch.float32) == torch.bfloat16
    assert head_dtype(cpu, "bfloat16", torch.float64) == torch.float64  # a float64 probe stays exact
    assert head_dtype(cpu, "auto", torch.float32) == (torch.bfloat16 if fast_module.native_bfloat16(cpu) else torch.float32)


# ---------------------------------------------------------------- the Fisher pass


def test_exact_fit_with_bfloat16_products_steps_from_the_current_head():
    """The fused AdamW kernel does not bump the weight's version counter, so the head's cached
    bfloat16 operand must be dropped after every step: a stale one would take every gradient
    at the probe's head and hand the probe's head, not the fitted one, to the Fisher pass."""
    model = probe(tied=False, scale=0.3)
    batch = batches_from((1, VOCAB), num_batches=1)[0]
    cfg = Task2VecConfig(head_epochs=3, head_minibatch=3, head_lr=1e-2)
    feats = cached_features(model, batch)
    heads = {}
    for dtype in (torch.float32, torch.bfloat16):
        heads[dtype] = LinearHead.copy_of(model.lm_head, dtype)
        fit_head_exact(heads[dtype], feats, cfg, torch.Generator().manual_seed(5))
    fitted = heads[torch.bfloat16]
    assert torch.equal(fitted.operand(), fitted.weight.to(torch.bfloat16))
    step = (heads[torch.float32].weight - model.lm_head.weight).detach()
    rel = float((fitted.weight - heads[torch.float32].weight).norm() / step.norm())
    assert rel < 0.05, rel


def test_bfloat16_head_products_move_the_embedding_far_less_than_another_seed(monkeypatch):
    """``precision: auto`` on a device with native bfloat16 products takes the Fisher pass's
    head products (logits, dL/dh, the tied matrix's output-side gradient) in bfloat16: the
    embedding moves by a few % of what another Monte Carlo seed moves it."""
    model = probe(tied=True, scale=0.3)
    batch = batches_from((1, VOCAB), num_batches=1, batch_size=16)[0]

    def embedding(precision, seed):
        cfg = CFG.with_options("fast", precision=precision)
        return embed_batches(model, [batch], cfg, seed=seed, progress=False, strict=False).embeddings[0]

    full = embedding("float32", 1)
    other_seed = normalized_cosine(full, embedding("float32", 2))
    monkeypatch.setattr(fast_module, "native_bfloat16", lambda device: True)
    assert head_dtype(torch.device("cpu"), "auto", torch.float32) == torch.bfloat16
    assert fast_module.compute_dtype(torch.device("cpu"), "auto") == torch.float32  # the body stays float32
    bf16 = normalized_cosine(full, embedding("auto", 1))
    assert 0 < bf16 < 0.1 * other_seed, (bf16, other_seed)


@pytest.mark.parametrize("head_fit", ["frozen", "exact"])
def test_each_batch_records_the_precision_of_its_head_products(head_fit):
    model = probe(tied=True, scale=0.3)
    batch = batches_from((1, VOCAB), num_batches=1)[0]
    for precision in ("float32", "bfloat16"):
        cfg = CFG.with_options("fast", precision=precision, head_fit=head_fit)
        per_batch = embed_batches(model, [batch], cfg, seed=1, progress=False, strict=False).metadata["per_batch"]
        assert per_batch["head_precision"] == [precision] and per_batch["head_fit"] == [head_fit]
        assert per_batch["precision"] == [precision]  # on a CPU, bfloat16 asks for the body's autocast too


@pytest.mark.parametrize("tied", [True, False])
def test_embedding_gradient_from_its_output_skips_the_padding_row(monkeypatch, tied):
    """With a padding row (whose embedding gets no gradient), the gathered rows equal autograd."""
    model = probe(tied=tied, dtype=torch.float64, scale=0.5)
    batch = batches_from((1, VOCAB), num_batches=1)[0]
    pad_row = int(batch.input_ids[0, 1])
    model.transformer.wte.padding_idx = pad_row
    cfg = dataclasses.replace(CFG, head_epochs=0)
    drawn = record_labels(monkeypatch)
    est = FastEstimator()
    got = est.estimate(model, batch, cfg, seed=4).fisher
    assert est._plans and next(iter(est._plans.values())).embedding is model.transformer.wte  # the gathered path
    ref = autograd_fisher(model, cfg, batch, drawn)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-9, atol=1e-14 * float(ref[name].abs().max()))


def test_fisher_pass_in_chunks_of_one_minibatch_is_the_same(monkeypatch):
    """A memory budget below one mini-batch's probabilities: the fit recomputes its logits per
    block and the Fisher pass takes one mini-batch at a time; same draws, same Fisher."""
    model = probe(dtype=torch.float64, scale=0.5)
    batch = batches_from((1, VOCAB), num_batches=1)[0]
    together = FastEstimator().estimate(model, batch, CFG, seed=2)
    monkeypatch.setattr(fast_module, "FROZEN_FIT_BYTES", 64)
    monkeypatch.setattr(fast_module, "FISHER_CHUNK_BYTES", 64)
    apart = FastEstimator().estimate(model, batch, CFG, seed=2)
    assert together.info["fisher_minibatches"] == 2
    assert together.info["head_loss_final"] == pytest.approx(apart.info["head_loss_final"], rel=1e-10)
    for name, value in together.fisher.items():
        torch.testing.assert_close(apart.fisher[name], value, rtol=1e-8, atol=1e-14 * float(value.abs().max()))
