"""Task2Vec: parameter selection, padding, determinism, head fine-tuning, config, registry."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from datalign.core.errors import ConfigError, DataError  # noqa: E402
from datalign.lm.tokens import SequenceBatch, TokenizedSplit, sample_segment_batches  # noqa: E402
from datalign.task2vec import (  # noqa: E402
    BatchFisher,
    Task2VecConfig,
    embed_batches,
    embedding_parameters,
    embedding_size,
    get_estimator,
    load_result,
    register_estimator,
    save_embeddings,
)
from datalign.task2vec import registry as registry_module  # noqa: E402
from datalign.task2vec.lm import sub_seed  # noqa: E402
from datalign.task2vec.paper import finetune_head  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
VOCAB = 64


def small_probe(seed: int = 0, n_layer: int = 2) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=VOCAB, n_embd=16, n_layer=n_layer, n_head=2, n_positions=16,
        bos_token_id=0, eos_token_id=0,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def padded_batches(num_batches: int = 2, seed: int = 3) -> list[SequenceBatch]:
    """Real segments of uneven length (many padded) from a random token split."""
    rng = np.random.default_rng(seed)
    docs = [list(rng.integers(1, VOCAB, size=int(rng.integers(3, 30)))) for _ in range(60)]
    split = TokenizedSplit.from_documents(docs, eos_id=0, name="toy")
    batches = sample_segment_batches(split, num_batches, batch_size=6, seq_len=12, seed=seed)
    assert any(int(b.attention_mask.sum()) < b.attention_mask.numel() for b in batches)
    return batches


FAST = Task2VecConfig(head_epochs=2, head_minibatch=4)


# ---------------------------------------------------------------- parameters


def test_gpt2_default_parameter_count_is_134993():
    # Shapes only: the meta device builds GPT-2 124M without allocating or downloading it.
    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config())
    assert model.lm_head.weight is model.transformer.wte.weight
    params = embedding_parameters(model, Task2VecConfig())
    names = [n for n, _ in params]
    assert embedding_size(model, Task2VecConfig()) == 134_993
    assert names[0] == "transformer.wte.weight" and params[0][1].shape[0] == 50_257
    assert not any(n.startswith("lm_head") for n in names)
    assert all(n.endswith(".weight") for n in names)  # weights only, no biases
    # 12 blocks x (4 x 768 first axes + ln_1, ln_2) + wte + wpe + ln_f, counted by hand:
    assert 50_257 + 1_024 + 12 * (768 * 5 + 3_072) + 768 == 134_993


def test_last_k_blocks_selects_the_last_blocks_only():
    with torch.device("meta"):
        model = GPT2LMHeadModel(GPT2Config())
    cfg = Task2VecConfig(parameters="last_k_blocks", last_k=2)
    names = [n for n, _ in embedding_parameters(model, cfg)]
    assert names and all(n.startswith(("transformer.h.10.", "transformer.h.11.")) for n in names)
    assert {n.split(".")[2] for n in names} == {"10", "11"}
    assert len(names) == 2 * 6  # ln_1, c_attn, c_proj, ln_2, c_fc, mlp.c_proj
    assert embedding_size(model, cfg) == 2 * (768 * 5 + 3_072)
    with pytest.raises(ConfigError, match="last_k"):
        embedding_parameters(model, Task2VecConfig(parameters="last_k_blocks", last_k=13))


# ---------------------------------------------------------------- the estimator


def test_padding_does_not_enter_the_embedding():
    model = small_probe()
    batches = padded_batches()
    changed = []
    gen = torch.Generator().manual_seed(0)
    for b in batches:
        noise = torch.randint(1, VOCAB, b.input_ids.shape, generator=gen)
        ids = torch.where(b.attention_mask.bool(), b.input_ids, noise)
        assert not torch.equal(ids, b.input_ids)
        changed.append(SequenceBatch(ids, b.attention_mask, b.segment_index))
    a = embed_batches(model, batches, FAST, seed=5, progress=False).embeddings
    b = embed_batches(model, changed, FAST, seed=5, progress=False).embeddings
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)


def test_same_seed_same_embeddings_and_the_probe_is_left_unchanged():
    model = small_probe()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads_before = {n: p.requires_grad for n, p in model.named_parameters()}
    batches = padded_batches()
    r1 = embed_batches(model, batches, FAST, seed=9, progress=False)
    r2 = embed_batches(model, batches, FAST, seed=9, progress=False)
    r3 = embed_batches(model, batches, FAST, seed=10, progress=False)
    np.testing.assert_array_equal(r1.embeddings, r2.embeddings)
    assert not np.array_equal(r1.embeddings, r3.embeddings)
    assert r1.embeddings.shape == (2, embedding_size(model, FAST))
    assert sum(r1.parameter_sizes) == r1.embeddings.shape[1]
    assert np.all(r1.embeddings >= 0) and np.all(r1.embeddings.sum(axis=1) > 0)
    assert len(r1.seconds_per_batch) == 2 and r1.metadata["estimator"] == "paper"
    # Batches differ, so their embeddings do too.
    assert not np.allclose(r1.embeddings[0], r1.embeddings[1])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert {n: p.requires_grad for n, p in model.named_parameters()} == grads_before
    assert model.training


def head_loss(model: GPT2LMHeadModel, batch: SequenceBatch) -> float:
    """Next-token loss on the batch by the model's own labels path (pads as -100)."""
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    with torch.no_grad():
        return float(model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss)


@pytest.mark.parametrize("lr", [5.0e-5, 1.0e-2])
def test_head_finetuning_lowers_the_head_loss_and_moves_only_the_head(lr):
    model = small_probe().eval()
    batch = padded_batches(1)[0]
    before = head_loss(model, batch)
    tuned = copy.deepcopy(model)
    cfg = Task2VecConfig(head_epochs=5, head_minibatch=4, head_lr=lr)
    info = finetune_head(tuned, batch.input_ids, batch.attention_mask, cfg,
                         torch.Generator().manual_seed(sub_seed(1, "shuffle")))
    after = head_loss(tuned, batch)
    assert after < before
    assert info["head_steps"] == 5 * 2 and info["head_loss_last_epoch"] < info["head_loss_first_epoch"]
    old, new = dict(model.named_parameters()), dict(tuned.named_parameters())
    # Tied head: the shared wte matrix moves (that is the input embedding too); nothing else does.
    moved = [n for n in old if not torch.equal(old[n], new[n])]
    assert moved == ["transformer.wte.weight"]


def test_embedding_is_the_reduced_fisher_of_the_estimator():
    """A registered estimator returning known Fisher tensors: check reduction and order."""

    @register_estimator("constant-test")
    class Constant:
        name = "constant-test"

        def estimate(self, probe, batch, cfg, seed):
            fisher = {
                n: torch.arange(p.numel(), dtype=torch.float64).reshape(p.shape) + seed % 7
                for n, p in embedding_parameters(probe, cfg)
            }
            return BatchFisher(fisher=fisher, info={"seed": seed})

    try:
        model = small_probe(n_layer=1)
        cfg = Task2VecConfig(estimator="constant-test")
        assert isinstance(get_estimator("constant-test"), Constant)
        res = embed_batches(model, padded_batches(1), cfg, seed=0, progress=False)
        shift = res.metadata["per_batch"]["seed"][0] % 7
        row = res.embeddings[0]
        for name, sl in res.slices().items():
            p = model.get_parameter(name)
            if p.dim() == 1:
                expected = np.arange(p.shape[0]) + shift
            else:  # mean over all axes but the first of arange(numel).reshape(shape)
                width = p.numel() // p.shape[0]
                expected = np.arange(p.shape[0]) * width + (width - 1) / 2 + shift
            np.testing.assert_allclose(row[sl], expected, rtol=1e-6)
    finally:
        registry_module._REGISTRY.pop("constant-test", None)
    with pytest.raises(ConfigError, match="constant-test"):
        Task2VecConfig(estimator="constant-test")


def test_reduce_fisher_matches_float64_means_without_a_float64_copy():
    from datalign.task2vec import reduce_fisher

    rng = np.random.default_rng(0)
    # squared-gradient-like values over 8 orders of magnitude, rows as long as GPT-2's vocabulary
    values = rng.lognormal(-12, 3, size=(6, 50257))
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        fisher = torch.from_numpy(values).to(dtype)
        exact = fisher.double().numpy().mean(axis=1)  # the same stored numbers, float64 means
        got = reduce_fisher(fisher)
        assert got.dtype == torch.float64 and got.shape == (6,)
        np.testing.assert_allclose(got.numpy(), exact, rtol=1e-6 if dtype != torch.float64 else 1e-12)
    vector = torch.from_numpy(values[0]).to(torch.bfloat16)
    np.testing.assert_array_equal(reduce_fisher(vector).numpy(), vector.double().numpy())
    cube = torch.from_numpy(values[:, :4800].reshape(6, 40, 120)).float()
    np.testing.assert_allclose(reduce_fisher(cube).numpy(), cube.double().numpy().mean(axis=(1, 2)), rtol=1e-6)


def test_result_round_trip(tmp_path):
    res = embed_batches(small_probe(n_layer=1), padded_batches(1), Task2VecConfig(head_epochs=1),
                        seed=0, progress=False)
    path = tmp_path / "emb.npz"
    save_embeddings(res, path)
    back = load_result(path)
    np.testing.assert_array_equal(back.embeddings, res.embeddings)
    assert back.parameter_names == res.parameter_names and back.parameter_sizes == res.parameter_sizes
    assert back.metadata["config"] == Task2VecConfig(head_epochs=1).to_dict()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.json", "emb.npz"]  # no temporary left


def test_sequences_longer_than_the_probe_are_a_config_error():
    ids = torch.ones((2, 20), dtype=torch.long)
    batch = SequenceBatch(ids, torch.ones_like(ids), np.arange(2))
    with pytest.raises(ConfigError, match="20 tokens exceed the probe's 16 positions"):
        embed_batches(small_probe(n_layer=1), [batch], FAST, seed=0, progress=False)
    with pytest.raises(DataError, match="no batches"):
        embed_batches(small_probe(n_layer=1), [], FAST, seed=0, progress=False)


# ---------------------------------------------------------------- config


def test_config_from_the_default_yaml():
    block = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["task2vec"]
    cfg = Task2VecConfig.from_dict(block)
    assert cfg.estimator == "fast" and cfg.parameters == "all_but_head"
    assert (cfg.head_lr, cfg.weight_decay, cfg.adam_eps) == (5.0e-5, 1.0e-4, 1.0e-8)
    assert cfg.head_minibatch == block["head_minibatch"] and cfg.head_epochs == block["head_epochs"]


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"estimatr": "paper"}, "unknown key"),
        ({"estimator": "nope"}, "task2vec.estimator"),
        ({"parameters": "some"}, "task2vec.parameters"),
        ({"distance": "l2"}, "task2vec.distance"),
        ({"head_minibatch": 0}, "task2vec.head_minibatch"),
        ({"head_lr": "fast"}, "task2vec.head_lr"),
        ({"head_epochs": -1}, "task2vec.head_epochs"),
    ],
)
def test_bad_config_is_a_one_line_config_error(block, match):
    with pytest.raises(ConfigError, match=match):
        Task2VecConfig.from_dict(block)
