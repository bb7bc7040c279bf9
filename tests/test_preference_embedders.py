"""Embedders and the completion-NLL probe of the efficient-alignment study, against unbatched references."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from datalign.core.errors import DataError
from datalign.lm.models import build_gpt2, save_checkpoint
from datalign.lm.tokenizer import train_bpe
from datalign.studies.efficient_alignment.embedders import (
    embed_texts,
    last_token_embeddings,
    last_token_positions,
    load_causal_lm,
    load_embeddings,
    save_embeddings,
    sentence_embeddings,
)
from datalign.studies.efficient_alignment.selection.quality import completion_nll

ARCH = {"n_layer": 2, "n_embd": 32, "n_head": 4, "n_positions": 64}
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "User: how do I sort a list in Python? Assistant: use sorted(xs) or xs.sort().",
    "Alignment data should be helpful, honest and harmless.",
    "def add(a, b):\n    return a + b\n",
    "A short answer.",
] * 20
TEXTS = [
    "Hello there, general.",
    "User: what is two plus two? Assistant: four.",
    "a",
    "The lazy dog sleeps while the quick brown fox jumps over it again and again.",
    "sorted(xs) returns a new list",
    "honest",
    "Assistant: use xs.sort() to sort in place.",
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return train_bpe(CORPUS, 300, tmp_path_factory.mktemp("tok") / "bpe")


@pytest.fixture(scope="module")
def gpt2(tokenizer):
    return build_gpt2(ARCH, len(tokenizer), tokenizer.eos_token_id, seed=5)


@pytest.fixture(scope="module")
def llama(tokenizer):
    # Rotary positions: a model where wrong position ids under left padding would show.
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=64, pad_token_id=tokenizer.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    return model.eval()


def _unbatched_last_token(model, tokenizer, text: str, layer: int = -1) -> np.ndarray:
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        states = model(input_ids=ids, output_hidden_states=True).hidden_states
    return states[layer][0, -1].numpy()


@pytest.mark.parametrize("which", ["gpt2", "llama"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_last_token_batched_equals_unbatched(request, tokenizer, which, side):
    model = request.getfixturevalue(which)
    got = last_token_embeddings(TEXTS, model, tokenizer, batch_size=3, padding_side=side,
                                progress=False)
    want = np.stack([_unbatched_last_token(model, tokenizer, t) for t in TEXTS])
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), model.config.hidden_size)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    # Rows differ: a wrong gather (e.g. a pad position) would repeat vectors.
    assert np.unique(got.round(4), axis=0).shape[0] == len(TEXTS)


def test_last_token_layer_and_truncation(gpt2, tokenizer):
    got = last_token_embeddings(TEXTS, gpt2, tokenizer, batch_size=4, layer=1, progress=False)
    want = np.stack([_unbatched_last_token(gpt2, tokenizer, t, layer=1) for t in TEXTS])
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    # Truncation keeps the last tokens: the reference is the unbatched run on the tail.
    text = TEXTS[3]
    ids = tokenizer(text)["input_ids"]
    assert len(ids) > 6
    cut = last_token_embeddings([text, "a"], gpt2, tokenizer, max_length=6, progress=False)[0]
    with torch.no_grad():
        ref = gpt2.transformer(input_ids=torch.tensor([ids[-6:]])).last_hidden_state[0, -1].numpy()
    np.testing.assert_allclose(cut, ref, atol=2e-5, rtol=1e-4)


def test_last_token_positions_any_padding_layout():
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]])
    assert last_token_positions(mask).tolist() == [2, 4, 4, 1]


def test_last_token_rejects_empty_text(gpt2, tokenizer):
    with pytest.raises(DataError, match="text 1 has no tokens"):
        last_token_embeddings(["ok", ""], gpt2, tokenizer, progress=False)


def test_embed_texts_loads_a_datalign_checkpoint(tmp_path, gpt2, tokenizer):
    ckpt = save_checkpoint(gpt2, tokenizer, tmp_path / "probe")
    model, tok = load_causal_lm(ckpt)
    assert tok.pad_token_id == tokenizer.eos_token_id
    via_name = embed_texts(TEXTS[:4], "last_token", model=str(ckpt), batch_size=2, progress=False)
    direct = last_token_embeddings(TEXTS[:4], gpt2, tokenizer, progress=False)
    np.testing.assert_allclose(via_name, direct, atol=1e-5)


def test_sentence_encoder_matches_mean_pooling_offline():
    from transformers import AutoModel, AutoTokenizer

    from datalign.lm.sentence import default_minilm_path

    texts = ["How do I bake bread?", "Bread baking at home, step by step.", "The stock market fell."]
    got = sentence_embeddings(texts, progress=False)
    assert got.shape == (3, 384) and got.dtype == np.float32
    # Independent reference: plain transformers, masked mean over tokens, unit norm.
    path = default_minilm_path()
    tok = AutoTokenizer.from_pretrained(path)
    enc = AutoModel.from_pretrained(path).eval()
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = enc(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = ((states * mask).sum(1) / mask.sum(1)).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # The two bread texts are closer to each other than to the market one.
    sim = got @ got.T
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[1, 2] + 0.2


def test_embeddings_npz_round_trip_and_reorder(tmp_path):
    emb = np.arange(12, dtype=np.float64).reshape(4, 3)
    path = save_embeddings(tmp_path / "e.npz", emb, ["r0", "r1", "r2", "r3"],
                           meta={"embedder": "sentence", "dims": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npz"]
    table = load_embeddings(path)
    assert table.embeddings.dtype == np.float32
    np.testing.assert_array_equal(table.embeddings, emb)
    assert table.row_ids.tolist() == ["r0", "r1", "r2", "r3"] and table.meta["dims"] == 3
    again = load_embeddings(path, expected_ids=["r2", "r0"])
    np.testing.assert_array_equal(again.embeddings, emb[[2, 0]])
    with pytest.raises(DataError, match=r"row id 'r9' is not in the file \(4 rows\)"):
        load_embeddings(path, expected_ids=["r9"])
    ints = load_embeddings(save_embeddings(tmp_path / "i.npz", emb, np.array([7, 3, 5, 1])))
    assert ints.row_ids.dtype == np.int64 and ints.row_ids.tolist() == [7, 3, 5, 1]


@pytest.mark.parametrize(("emb", "ids", "message"), [
    (np.zeros((3, 2)), ["a", "b", "a"], "row id 'a' occurs 2 times"),
    (np.zeros((3, 2)), ["a", "b"], "2 row ids for 3 embeddings"),
    (np.array([[0.0, np.nan]]), ["a"], "non-finite values in row 0"),
    (np.zeros(3), ["a", "b", "c"], r"expected a non-empty \(n, d\) array"),
    (np.zeros((2, 2)), [1.5, 2.5], "row ids must be all integers or all strings"),
])
def test_save_embeddings_rejects_bad_input(tmp_path, emb, ids, message):
    with pytest.raises(DataError, match=message):
        save_embeddings(tmp_path / "bad.npz", emb, ids)
    assert list(tmp_path.iterdir()) == []


def test_load_embeddings_rejects_missing_and_malformed(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_embeddings(tmp_path / "none.npz")
    np.savez(tmp_path / "x.npz", embeddings=np.zeros((2, 2)), meta=np.array(json.dumps({})))
    with pytest.raises(DataError, match=r"missing array\(s\) \['row_ids'\]"):
        load_embeddings(tmp_path / "x.npz")


def _manual_nll(model, tokenizer, prompt: str, completion: str) -> float:
    p = tokenizer(prompt)["input_ids"]
    c = tokenizer(completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + c])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    first = max(len(p), 1)
    return float(-np.mean([logp[t - 1, ids[0, t]].item() for t in range(first, ids.shape[1])]))


def test_completion_nll_scores_only_completion_tokens(gpt2, tokenizer):
    prompts = ["User: what is two plus two? Assistant:", "Hello", "", "The quick brown fox"]
    completions = [" four.", " there, general. How are you?", "honest answer", " jumps."]
    got = completion_nll(prompts, completions, gpt2, tokenizer, batch_size=3, progress=False)
    want = [_manual_nll(gpt2, tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)]
    np.testing.assert_allclose(got.mean_nll, want, rtol=1e-5)
    counts = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions]
    counts[2] -= 1  # no prompt token: the first completion token has no context
    assert got.n_tokens.tolist() == counts and not got.truncated.any()
    # The prompt changes the score of the same completion (it is context, not scored).
    other = completion_nll(["zzzz qqq"], [completions[0]], gpt2, tokenizer, progress=False)
    assert abs(other.mean_nll[0] - got.mean_nll[0]) > 1e-4


def test_completion_nll_truncates_the_prompt_first(gpt2, tokenizer):
    prompt, completion = "The lazy dog sleeps while the quick brown fox", " jumps over it."
    n_c = len(tokenizer(completion, add_special_tokens=False)["input_ids"])
    limit = n_c + 2
    got = completion_nll([prompt], [completion], gpt2, tokenizer, max_length=limit, progress=False)
    p = tokenizer(prompt)["input_ids"][-2:]
    c = tokenizer(completion, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(gpt2(input_ids=torch.tensor([p + c])).logits[0].double(), -1)
    want = -np.mean([logp[1 + j, c[j]].item() for j in range(len(c))])
    assert got.truncated.tolist() == [True] and got.n_tokens.tolist() == [n_c]
    np.testing.assert_allclose(got.mean_nll[0], want, rtol=1e-5)


def test_completion_nll_rejects_unscorable_rows(gpt2, tokenizer):
    with pytest.raises(DataError, match="2 prompts but 1 completions"):
        completion_nll(["a", "b"], ["c"], gpt2, tokenizer, progress=False)
    with pytest.raises(DataError, match=r"row 1 has no completion token to score \(prompt 0 tokens, completion 1 tokens\)"):
        completion_nll(["x", ""], [" y", "a"], gpt2, tokenizer, progress=False)
