"""Building GPT-2 from a config, and the checkpoint save/load round trip."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from safetensors.torch import load_file

from datalign.core.errors import ConfigError, TrainingError
from datalign.lm.models import build_gpt2, load_model, looks_like_path, save_checkpoint
from datalign.lm.tokenizer import train_bpe

torch.set_num_threads(1)

ARCH = {"n_layer": 2, "n_embd": 32, "n_head": 4, "n_positions": 24}
VOCAB = 64


def gpt2_param_count(V: int, P: int, d: int, L: int) -> int:
    """GPT-2 parameters with a tied head: embeddings + L blocks + final LayerNorm.

    A block: 2 LayerNorms (2d each), attention qkv (d x 3d + 3d) and projection
    (d x d + d), MLP up (d x 4d + 4d) and down (4d x d + d): 12 d^2 + 13 d.
    """
    return V * d + P * d + L * (12 * d * d + 13 * d) + 2 * d


def test_build_gpt2_matches_architecture():
    model = build_gpt2(ARCH, VOCAB, eos_id=5, seed=0)
    cfg = model.config
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_positions) == (2, 32, 4, 24)
    assert cfg.vocab_size == VOCAB
    assert cfg.bos_token_id == cfg.eos_token_id == cfg.pad_token_id == 5
    assert cfg.resid_pdrop == cfg.embd_pdrop == cfg.attn_pdrop == 0.0
    assert len(model.transformer.h) == 2
    assert model.transformer.wte.weight.shape == (VOCAB, 32)
    assert model.transformer.wpe.weight.shape == (24, 32)
    # Tied: the head is the input embedding, so it adds no parameters.
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == gpt2_param_count(VOCAB, 24, 32, 2)
    assert not model.training


def test_build_gpt2_dropout_keys():
    model = build_gpt2({**ARCH, "dropout": 0.1, "attn_pdrop": 0.2}, VOCAB, 0, 0)
    assert model.config.resid_pdrop == model.config.embd_pdrop == 0.1
    assert model.config.attn_pdrop == 0.2


def test_build_gpt2_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = build_gpt2(ARCH, VOCAB, 0, seed=7)
    b = build_gpt2(ARCH, VOCAB, 0, seed=7)
    c = build_gpt2(ARCH, VOCAB, 0, seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.transformer.wte.weight, c.transformer.wte.weight)


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ({**ARCH, "n_head": 5}, "not divisible"),
        ({**ARCH, "n_lyer": 2}, r"unknown architecture key\(s\) \['n_lyer'\]"),
        ({k: v for k, v in ARCH.items() if k != "n_positions"}, "missing key.*n_positions"),
        ({**ARCH, "n_layer": 0}, "n_layer must be a positive integer"),
        ({**ARCH, "dropout": 1.5}, "must be in"),
    ],
)
def test_build_gpt2_rejects_bad_architecture(arch, message):
    with pytest.raises(ConfigError, match=message):
        build_gpt2(arch, VOCAB, 0, 0)


def test_build_gpt2_rejects_eos_outside_vocab():
    with pytest.raises(ConfigError, match="eos id 64"):
        build_gpt2(ARCH, VOCAB, 64, 0)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    texts = ["hello world, hello tokens " * 4, "def f(x):\n    return x\n"] * 5
    return train_bpe(texts, 280, tmp_path_factory.mktemp("tok") / "bpe")


def test_checkpoint_round_trip(tmp_path, tokenizer):
    model = build_gpt2(ARCH, len(tokenizer), tokenizer.eos_token_id, seed=3)
    with torch.no_grad():  # move the weights off their init so a re-init could not pass
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    out = tmp_path / "ckpt"
    log = {"steps": [{"step": 1, "loss": 2.5}]}
    assert save_checkpoint(model, tokenizer, out, {"train_log.json": log}) == out

    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temp dir left
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "train_log.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    assert json.loads((out / "train_log.json").read_text()) == log

    tensors = load_file(out / "model.safetensors")
    assert torch.equal(tensors["transformer.wte.weight"], model.transformer.wte.weight)

    loaded = load_model(out)
    assert not loaded.training
    assert loaded.lm_head.weight.data_ptr() == loaded.transformer.wte.weight.data_ptr()
    ids = torch.randint(0, len(tokenizer), (3, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert load_model(out, dtype="bfloat16").dtype == torch.bfloat16

    from transformers import AutoTokenizer

    reloaded_tok = AutoTokenizer.from_pretrained(out)
    assert reloaded_tok("hello world")["input_ids"] == tokenizer("hello world")["input_ids"]


def test_checkpoint_overwrite_and_failed_save(tmp_path):
    out = tmp_path / "ckpt"
    first = build_gpt2(ARCH, VOCAB, 0, seed=1)
    second = build_gpt2(ARCH, VOCAB, 0, seed=2)
    save_checkpoint(first, None, out)
    save_checkpoint(second, None, out)
    assert torch.equal(load_model(out).transformer.wte.weight, second.transformer.wte.weight)
    # A save that fails half way (an extra file that is not JSON) leaves the old checkpoint.
    with pytest.raises(TypeError):
        save_checkpoint(first, None, out, {"bad.json": object()})
    assert torch.equal(load_model(out).transformer.wte.weight, second.transformer.wte.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    with pytest.raises(ConfigError, match="plain file name"):
        save_checkpoint(first, None, out, {"../escape.json": {}})
    with pytest.raises(ConfigError, match="overwrite"):
        save_checkpoint(first, None, out, {"config.json": {}})


def test_load_model_missing_checkpoint(tmp_path):
    missing = tmp_path / "checkpoints" / "pretrain" / "bbc_news"
    with pytest.raises(TrainingError, match=f"checkpoint not found: {missing}"):
        load_model(missing)
    with pytest.raises(TrainingError, match="checkpoint not found"):
        load_model(str(missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="no config.json"):
        load_model(tmp_path / "empty")


def test_looks_like_path():
    assert looks_like_path("/abs/dir") and looks_like_path("./rel") and looks_like_path("a/b/c")
    assert not looks_like_path("gpt2") and not looks_like_path("openai-community/gpt2")
