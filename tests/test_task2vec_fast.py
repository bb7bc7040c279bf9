"""The ``fast`` Task2Vec estimator: closed forms against autograd, head fits against ``paper``'s, agreement.

References here are written independently of the estimator: autograd through
the (tied) model for the Fisher of given labels, autograd of the cross-entropy
for the closed-form logit gradient, a hand-written AdamW for the replayed fit,
``paper``'s own head fine-tuning on an untied probe, and ``paper`` itself for
the embeddings and the alignment ranking.
"""

from __future__ import annotations

import copy
import dataclasses
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from datalign.core.errors import ConfigError, DataError  # noqa: E402
from datalign.lm.tokens import SequenceBatch, TokenizedSplit, sample_segment_batches  # noqa: E402
from datalign.task2vec import (  # noqa: E402
    Task2VecConfig,
    embed_batches,
    embedding_parameters,
    get_estimator,
    normalized_cosine,
)
from datalign.task2vec import fast as fast_module  # noqa: E402
from datalign.task2vec.coefficients import alignment  # noqa: E402
from datalign.task2vec.fast import (  # noqa: E402
    FastEstimator,
    FastOptions,
    LinearHead,
    fit_head_exact,
    fit_head_frozen,
    frozen_schedule,
    sample_labels,
    softmax_xent_grad,
)
from datalign.task2vec.lm import minibatch_slices, sub_seed  # noqa: E402
from datalign.task2vec.paper import finetune_head  # noqa: E402

torch.set_num_threads(1)
VOCAB = 64


def probe(seed: int = 0, tied: bool = True, n_layer: int = 2, dtype: torch.dtype = torch.float32,
          scale: float | None = None) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=VOCAB, n_embd=16, n_layer=n_layer, n_head=2, n_positions=16,
        bos_token_id=0, eos_token_id=0, tie_word_embeddings=tied,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).to(dtype)
    if scale is not None:  # peaked, position-dependent next-token distributions
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, scale)
    return model.eval()


def batches_from(token_range: tuple[int, int], num_batches: int = 2, batch_size: int = 8, seed: int = 3,
                 seq_len: int = 12) -> list[SequenceBatch]:
    """Padded batches of real segments from random documents over a range of token ids."""
    rng = np.random.default_rng(seed)
    lo, hi = token_range
    docs = [list(rng.integers(lo, hi, size=int(rng.integers(3, 30)))) for _ in range(80)]
    split = TokenizedSplit.from_documents(docs, eos_id=0, name="toy")
    return sample_segment_batches(split, num_batches, batch_size=batch_size, seq_len=seq_len, seed=seed)


CFG = Task2VecConfig(estimator="fast", head_minibatch=4)


# ---------------------------------------------------------------- config and registry


def test_fast_is_registered_and_selected_by_the_config():
    assert isinstance(get_estimator("fast"), FastEstimator)
    cfg = Task2VecConfig.from_dict({"estimator": "fast", "fast": {"head_fit": "exact", "precision": "float32",
                                                                  "retain_graph": False}})
    opts = cfg.options_for("fast")
    assert (cfg.estimator, opts.head_fit, opts.precision, opts.retain_graph) == (
        "fast", "exact", "float32", False)
    assert isinstance(opts, FastOptions)
    for block, match in [({"fast": {"head_fit": "approx"}}, "task2vec.fast.head_fit"),
                         ({"fast": {"precision": "fp8"}}, "task2vec.fast.precision: must be one of auto, float32"),
                         ({"fast": {"retain_graph": "yes"}}, "task2vec.fast.retain_graph"),
                         ({"fast": {"head_fits": "exact"}}, "task2vec.fast: unknown key"),
                         ({"fast_head_fit": "exact"}, "unknown key")]:  # the old flat keys are gone
        with pytest.raises(ConfigError, match=match):
            Task2VecConfig.from_dict(block)
    with pytest.raises(ConfigError, match="task2vec.fast.precision"):
        FastOptions(precision="fp8")
    # the chosen estimator's options are always there (defaults); others only when given
    assert Task2VecConfig(estimator="fast").options == {"fast": FastOptions()}
    assert Task2VecConfig().options == {} and Task2VecConfig().options_for("fast") == FastOptions()


# ---------------------------------------------------------------- closed forms against autograd


def test_softmax_cross_entropy_gradient_matches_autograd():
    gen = torch.Generator().manual_seed(0)
    z = (3 * torch.randn(7, 11, generator=gen, dtype=torch.float64)).requires_grad_(True)
    y = torch.randint(0, 11, (7,), generator=gen)
    loss = torch.nn.functional.cross_entropy(z, y)
    (ref,) = torch.autograd.grad(loss, z)
    grad, value = softmax_xent_grad(z.detach().clone(), y)
    torch.testing.assert_close(grad, ref, rtol=1e-12, atol=1e-14)
    assert float(value) == pytest.approx(float(loss.detach()), rel=1e-12)


def test_inverse_cdf_sampler_draws_from_the_softmax():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2], [0.0, 0.0, 0.0, 1.0], [0.1, 0.6, 0.0, 0.3]], dtype=torch.float64)
    n = 20_000
    gen = torch.Generator().manual_seed(1)
    draws = torch.stack([sample_labels(probs, gen) for _ in range(n)])  # (n, 3)
    for row in range(3):
        freq = torch.bincount(draws[:, row], minlength=4).double() / n
        se = torch.sqrt(probs[row] * (1 - probs[row]) / n)
        assert torch.all((freq - probs[row]).abs() <= 5 * se + 1e-12), (row, freq)
        assert torch.all(freq[probs[row] == 0] == 0)  # impossible labels are never drawn


def record_labels(monkeypatch) -> list[torch.Tensor]:
    """Make the estimator's sampler record what it draws."""
    drawn: list[torch.Tensor] = []
    original = fast_module.sample_labels

    def recording(probs, generator):
        labels = original(probs, generator)
        drawn.append(labels.clone())
        return labels

    monkeypatch.setattr(fast_module, "sample_labels", recording)
    return drawn


def autograd_fisher(model, cfg, batch, labels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """(1/B) sum_b grad(L_b)^2 through the model itself (tied head: both paths), for given labels."""
    model = copy.deepcopy(model)
    params = embedding_parameters(model, cfg)
    out = {n: torch.zeros_like(p) for n, p in params}
    slices = minibatch_slices(batch.input_ids.shape[0], cfg.head_minibatch)
    # the estimator draws the labels of several mini-batches at once: split them per mini-batch
    labels = list(torch.cat(labels).split([int(batch.attention_mask[sl].sum()) for sl in slices]))
    for sl, y in zip(slices, labels, strict=True):
        ids, mask = batch.input_ids[sl], batch.attention_mask[sl]
        logits = model(input_ids=ids, attention_mask=mask).logits
        logp = torch.log_softmax(logits[mask.bool()], dim=-1)
        loss = -logp[torch.arange(len(y)), y].mean()
        grads = torch.autograd.grad(loss, [p for _, p in params])
        for (n, _), g in zip(params, grads, strict=True):
            out[n] += g.square()
    return {n: v / len(slices) for n, v in out.items()}


@pytest.mark.parametrize("tied", [True, False])
def test_fisher_pass_equals_autograd_through_the_model(monkeypatch, tied):
    """No head fit: the untied head copy is the probe's head, so for the tied wte the
    input-side plus output-side gradient must equal the gradient of the shared tensor."""
    model = probe(tied=tied, dtype=torch.float64, scale=0.5)
    batch = batches_from((1, VOCAB), num_batches=1)[0]
    assert int(batch.attention_mask.sum()) < batch.attention_mask.numel()  # padded
    cfg = dataclasses.replace(CFG, head_epochs=0)
    drawn = record_labels(monkeypatch)
    got = FastEstimator().estimate(model, batch, cfg, seed=4).fisher
    ref = autograd_fisher(model, cfg, batch, drawn)
    assert list(got) == list(ref) and ("transformer.wte.weight" in got)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-9, atol=1e-14 * float(ref[name].abs().max()))


# ---------------------------------------------------------------- the head fit


def cached_features(model, batch):
    with torch.no_grad():
        h = model.transformer(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    real = batch.attention_mask.bool()
    valid = real[:, 1:] & real[:, :-1]
    return [(h[i, :-1][valid[i]], batch.input_ids[i, 1:][valid[i]]) for i in range(h.shape[0])]


@pytest.mark.parametrize("lr", [5.0e-5, 1.0e-2])
def test_exact_fit_on_cached_states_is_papers_finetuning_on_an_untied_probe(lr):
    """Untied, paper's head-only fine-tuning leaves the body alone: same steps, same head."""
    model = probe(tied=False, scale=0.3)
    batch = batches_from((1, VOCAB), num_batches=1)[0]
    cfg = Task2VecConfig(head_epochs=3, head_minibatch=3, head_lr=lr)
    tuned = copy.deepcopy(model)
    finetune_head(tuned, batch.input_ids, batch.attention_mask, cfg,
                  torch.Generator().manual_seed(sub_seed(9, "shuffle")))
    head = LinearHead.copy_of(model.lm_head)
    info = fit_head_exact(head, cached_features(model, batch), cfg, torch.Generator().manual_seed(sub_seed(9, "shuffle")))
    assert info["head_steps"] == 3 * 3
    moved = (tuned.lm_head.weight - model.lm_head.weight).detach()
    assert moved.abs().max() > 0.5 * lr  # the fit did something
    torch.testing.assert_close(head.weight, tuned.lm_head.weight, rtol=1e-5, atol=1e-3 * float(moved.abs().max()))


def reference_adamw(w0, b0, grads, schedule, cfg):
    """AdamW written out (decoupled decay, bias-corrected moments), on fixed gradients."""
    params = [w0.clone(), b0.clone()]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    beta1, beta2 = 0.9, 0.999
    for t, k in enumerate(schedule, start=1):
        for i, g in enumerate(grads[k]):
            params[i] *= 1 - cfg.head_lr * cfg.weight_decay
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            mhat, vhat = m[i] / (1 - beta1**t), v[i] / (1 - beta2**t)
            params[i] -= cfg.head_lr * mhat / (vhat.sqrt() + cfg.adam_eps)
    return params


def test_frozen_fit_replays_adamw_on_the_gradients_at_the_start():
    gen = torch.Generator().manual_seed(2)
    V, d = 13, 5
    w0 = torch.randn(V, d, generator=gen, dtype=torch.float64)
    b0 = torch.randn(V, generator=gen, dtype=torch.float64)
    groups = [(torch.randn(n, d, generator=gen, dtype=torch.float64), torch.randint(0, V, (n,), generator=gen))
              for n in (6, 4, 7)]
    cfg = Task2VecConfig(head_lr=1e-2, head_epochs=4)
    schedule = frozen_schedule(len(groups), cfg.head_epochs, torch.Generator().manual_seed(0))
    assert schedule[:3] == [0, 1, 2] and sorted(schedule[3:6]) == [0, 1, 2] and len(schedule) == 12
    # the gradients at the start, by autograd of the mean cross-entropy of each group
    grads = []
    for X, y in groups:
        w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(X @ w.T + b, y)
        grads.append(torch.autograd.grad(loss, [w, b]))
    ref_w, ref_b = reference_adamw(w0, b0, grads, schedule, cfg)
    for max_bytes in (1 << 30, 3 * 8 * (d + 1) * 4):  # one block; blocks of 4 vocabulary rows
        head = LinearHead(w0.clone(), b0.clone(), torch.float64)
        info = fit_head_frozen(head, groups, schedule, cfg, max_bytes=max_bytes)
        torch.testing.assert_close(head.weight, ref_w, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(head.bias, ref_b, rtol=1e-10, atol=1e-12)
        loss0 = sum(float(torch.nn.functional.cross_entropy(X @ w0.T + b0, y, reduction="sum")) for X, y in groups)
        assert info["head_loss_initial"] == pytest.approx(loss0 / 17, rel=1e-10)
        assert info["head_steps"] == 12


def test_frozen_fit_is_close_to_the_exact_fit_at_the_paper_learning_rate():
    """One mini-batch per epoch isolates the frozen-gradient approximation: tiny at lr 5e-5, not at 5e-2."""
    model = probe(tied=False, scale=0.3)
    batch = batches_from((1, VOCAB), num_batches=1)[0]
    feats = cached_features(model, batch)
    errors = {}
    for lr in (5.0e-5, 5.0e-2):
        cfg = Task2VecConfig(head_epochs=5, head_minibatch=len(feats), head_lr=lr)
        exact = LinearHead.copy_of(model.lm_head)
        fit_head_exact(exact, feats, cfg, torch.Generator().manual_seed(0))
        frozen = LinearHead.copy_of(model.lm_head)
        X = torch.cat([x for x, _ in feats])
        y = torch.cat([t for _, t in feats])
        fit_head_frozen(frozen, [(X, y)], frozen_schedule(1, 5, torch.Generator()), cfg)
        step = (exact.weight - model.lm_head.weight).detach()
        errors[lr] = float((frozen.weight - exact.weight).norm() / step.norm())
    assert errors[5.0e-5] < 0.01 and errors[5.0e-2] > 5 * errors[5.0e-5], errors


# ---------------------------------------------------------------- the estimator


def test_padding_probe_state_and_determinism():
    model = probe()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    batches = batches_from((1, VOCAB))
    gen = torch.Generator().manual_seed(0)
    noisy = []
    for b in batches:
        noise = torch.randint(1, VOCAB, b.input_ids.shape, generator=gen)
        noisy.append(SequenceBatch(torch.where(b.attention_mask.bool(), b.input_ids, noise), b.attention_mask,
                                   b.segment_index))
    r1 = embed_batches(model, batches, CFG, seed=5, progress=False)
    r2 = embed_batches(model, noisy, CFG, seed=5, progress=False)
    r3 = embed_batches(model, batches, dataclasses.replace(CFG, options={"fast": {"retain_graph": False}}), seed=5, progress=False)
    r4 = embed_batches(model, batches, CFG, seed=6, progress=False)
    np.testing.assert_allclose(r1.embeddings, r2.embeddings, rtol=1e-5, atol=0)  # pads never enter
    np.testing.assert_allclose(r1.embeddings, r3.embeddings, rtol=1e-6, atol=0)  # recomputed forward
    assert not np.allclose(r1.embeddings, r4.embeddings)
    np.testing.assert_array_equal(r1.embeddings, embed_batches(model, batches, CFG, seed=5, progress=False).embeddings)
    assert r1.metadata["estimator"] == "fast" and r1.metadata["per_batch"]["head_steps"] == [10, 10]
    info = r1.metadata["per_batch"]
    assert all(f < i for f, i in zip(info["head_loss_final"], info["head_loss_initial"], strict=True))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags and model.training


def test_last_k_blocks_and_errors():
    model = probe(n_layer=2)
    batch = batches_from((1, VOCAB), num_batches=1)
    cfg = dataclasses.replace(CFG, parameters="last_k_blocks", last_k=1)
    res = embed_batches(model, batch, cfg, seed=0, progress=False)
    assert res.parameter_names and all(n.startswith("transformer.h.1.") for n in res.parameter_names)
    ids = torch.ones((4, 6), dtype=torch.long)
    mask = torch.zeros_like(ids)
    mask[:, 0] = 1  # one real token per sequence: no next-token target
    with pytest.raises(DataError, match="no real next-token target"):
        FastEstimator().estimate(model, SequenceBatch(ids, mask, np.arange(4)), CFG, seed=0)


def synthetic_batches(kind: str, seed: int, num_batches: int = 3) -> list[SequenceBatch]:
    """Batches of one synthetic language: counting (+1 or +3 mod 32 over tokens 1-32) or noise (33-63)."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(80):
        n = int(rng.integers(8, 30))
        start = int(rng.integers(0, 32))
        if kind == "noise":
            docs.append(list(rng.integers(33, VOCAB, size=n)))
        else:
            step = {"count": 1, "skip": 3}[kind]
            docs.append([(start + step * t) % 32 + 1 for t in range(n)])
    split = TokenizedSplit.from_documents(docs, eos_id=0, name=kind)
    return sample_segment_batches(split, num_batches, batch_size=8, seq_len=12, seed=seed)


@pytest.fixture(scope="module")
def trained_probe() -> GPT2LMHeadModel:
    """The tiny probe trained briefly on the three languages, so that its Fisher tells them apart."""
    model = probe()
    train = [b for i, k in enumerate(("count", "skip", "noise")) for b in synthetic_batches(k, 100 + i, 8)]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(150):
        b = train[step % len(train)]
        labels = b.input_ids.masked_fill(b.attention_mask == 0, -100)
        loss = model(input_ids=b.input_ids, attention_mask=b.attention_mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def mean_embedding(model, batch, cfg, seed, draws=30):
    """The mean of ``draws`` independent Monte Carlo embeddings of one batch."""
    return embed_batches(model, [batch] * draws, cfg, seed=seed, progress=False).embeddings.mean(axis=0)


def test_fast_and_paper_embeddings_agree(trained_probe):
    """Averaged over Monte Carlo draws, fast is as near to paper as paper is to itself under
    other seeds, and far nearer than the embedding of a batch of other data."""
    batch, other = synthetic_batches("count", 1, 1)[0], synthetic_batches("noise", 4, 1)[0]
    paper = Task2VecConfig(head_minibatch=4)
    fast = dataclasses.replace(paper, estimator="fast")
    p = mean_embedding(trained_probe, batch, paper, seed=0)
    noise_floor = normalized_cosine(p, mean_embedding(trained_probe, batch, paper, seed=1))
    agreement = normalized_cosine(p, mean_embedding(trained_probe, batch, fast, seed=0))
    apart = normalized_cosine(p, mean_embedding(trained_probe, other, paper, seed=0))
    assert agreement < 1.5 * noise_floor and agreement < apart / 4, (agreement, noise_floor, apart)


def test_fast_and_paper_rank_alignments_the_same_on_clearly_different_data(trained_probe):
    data = {"count": synthetic_batches("count", 1), "count2": synthetic_batches("count", 2),
            "skip": synthetic_batches("skip", 3), "noise": synthetic_batches("noise", 4)}
    names = list(data)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    values = {}
    for est in ("paper", "fast"):
        cfg = Task2VecConfig(estimator=est, head_minibatch=4)
        emb = {k: embed_batches(trained_probe, v, cfg, seed=11, progress=False).embeddings for k, v in data.items()}
        values[est] = np.array([alignment(emb[x], emb[y], bootstrap=0).value for x, y in pairs])
    # Every two pairs that paper ranks clearly apart, fast ranks the same way.
    paper, fast = values["paper"], values["fast"]
    clear = [(i, j) for i in range(len(pairs)) for j in range(len(pairs)) if paper[i] > paper[j] + 0.1]
    assert len(clear) >= 9, values  # the three pairs with noise against the three without
    assert all(fast[i] > fast[j] for i, j in clear), values
