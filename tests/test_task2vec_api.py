"""The public Task2Vec API on a user's own texts (datalign.task2vec.api) and what it rests on:
batches from texts or an encoding, per-batch seeds, config/batch checks, the square matrix."""

from __future__ import annotations

import inspect
import json
import pydoc_data.topics
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from datalign.core.errors import ConfigError, DataError
from datalign.lm.tokens import SequenceBatch
from datalign.task2vec import (
    BatchShapeWarning,
    Task2VecConfig,
    api,
    batch_seed,
    check_batches,
    embed_batches,
)
from datalign.task2vec.coefficients import alignment_matrix, alignment_square, to_square

CFG = Task2VecConfig(batch_size=4, seq_len=32, num_batches=3, head_epochs=1, head_minibatch=4)
TINY = api.TinyProbe(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=64, tokens_per_set=3000,
                     seq_len=32, batch_size=8)
PROSE = list(pydoc_data.topics.topics.values())[:30]
CODE = [inspect.getsource(m) for m in (json, textwrap, warnings)]


@pytest.fixture(scope="module")
def probe() -> api.Probe:
    return api.train_probe({"prose": PROSE, "code": CODE}, TINY, seed=3, progress=False, seq_len=32)


def test_sequence_batch_from_texts_and_encoding(probe):
    batch = SequenceBatch.from_texts(["def f(x):\n    return x", "The quick brown fox."], probe.tokenizer, 16)
    assert batch.input_ids.shape == (2, 16) and batch.segment_index is None
    enc = probe.tokenizer(["def f(x):\n    return x", "The quick brown fox."], add_special_tokens=False,
                          padding="max_length", max_length=16, return_tensors="pt")
    again = SequenceBatch.from_encoding(enc["input_ids"], enc["attention_mask"])
    assert torch.equal(again.attention_mask, batch.attention_mask)
    assert torch.equal(again.input_ids[again.attention_mask.bool()], batch.input_ids[batch.attention_mask.bool()])
    assert SequenceBatch.from_encoding([[1, 2, 3]]).attention_mask.tolist() == [[1, 1, 1]]
    with pytest.raises(DataError, match="shape"):
        SequenceBatch.from_encoding([[1, 2, 3]], [[1, 1]])
    with pytest.raises(DataError, match="at least 2"):
        SequenceBatch.from_texts(["a"], probe.tokenizer, 16)


def test_batch_k_alone_equals_batch_k_of_the_whole_run(probe):
    res = api.embed_texts(PROSE, probe, config=CFG, seed=5, progress=False)
    from datalign.lm.tokenizer import tokenize_texts
    from datalign.lm.tokens import sample_segment_batches

    split = tokenize_texts(probe.tokenizer, PROSE, name="prose")
    batches = sample_segment_batches(split, 3, 4, 32, seed=5, pad_id=probe.model.config.pad_token_id)
    whole = embed_batches(probe.model, batches, CFG, seed=5, progress=False, strict=True)
    np.testing.assert_array_equal(whole.embeddings, res.embeddings)
    for k in range(3):
        alone = embed_batches(probe.model, [batches[k]], CFG, seed=5, progress=False, first_index=k, strict=True)
        np.testing.assert_array_equal(alone.embeddings[0], whole.embeddings[k])
        assert alone.metadata["batch_seeds"] == [batch_seed(5, k)] and alone.metadata["first_index"] == k
    assert "first_index" not in whole.metadata  # whole-dataset metadata as before
    # a user's own batch, no segment index needed
    own = SequenceBatch.from_texts(PROSE[:4], probe.tokenizer, 32)
    assert embed_batches(probe.model, [own], CFG, seed=0, progress=False, first_index=0,
                         strict=True).embeddings.shape == (1, res.embeddings.shape[1])


def test_config_and_batches_must_agree(probe):
    own = SequenceBatch.from_texts(PROSE[:4], probe.tokenizer, 32)
    wrong = Task2VecConfig(batch_size=16, seq_len=16, num_batches=8)
    problems = check_batches([own], wrong)
    assert len(problems) == 3 and "task2vec.batch_size = 16" in problems[1] and "seq_len = 16" in problems[2]
    with pytest.raises(ConfigError, match=r"do not match the task2vec config \(1 batches, task2vec.num_batches = 8"):
        embed_batches(probe.model, [own], wrong, seed=0, progress=False, strict=True)
    with pytest.warns(BatchShapeWarning):
        embed_batches(probe.model, [own], wrong, seed=0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embed_batches(probe.model, [own], wrong, seed=0, progress=False, strict=False)
    assert check_batches([own], CFG, first_index=2) == []  # batch 2 of 3
    assert check_batches([own], CFG, first_index=3)  # there is no batch 3
    narrow = SequenceBatch.from_encoding(own.input_ids[:, :20], own.attention_mask[:, :20])
    assert check_batches([narrow], CFG, first_index=0) == []  # padded less: same batch


def test_embed_sets_and_coefficients(probe):
    results, used = api.embed_sets({"prose": PROSE, "code": CODE}, probe, config=CFG, seed=1, progress=False)
    assert used is probe and results["prose"].metadata["probe"]["fingerprint"] == probe.fingerprint
    a = api.alignment(results["code"], results["prose"], bootstrap=50)
    from datalign.task2vec.coefficients import alignment

    ref = alignment(results["code"].embeddings, results["prose"].embeddings, "normalized_cosine", 50, 0.95, 0)
    assert a == ref and 0 < a.value < 1 and a.ci_low <= a.value <= a.ci_high
    table = api.rank(results["prose"], {"code": results["code"], "prose": results["prose"]}, bootstrap=0)
    assert list(table["candidate"]) == ["prose", "code"] and table["alignment"].is_monotonic_decreasing
    other = api.embed_texts(CODE, api.Probe(probe.model, probe.tokenizer, "model", _fingerprint="x" * 16),
                            config=CFG, seed=1, progress=False)
    with pytest.raises(DataError, match="different probes"):
        api.alignment(other, results["prose"])
    with pytest.raises(DataError, match=r"too small for Task2Vec: 3 batches x 4 sequences need 12 segments"):
        api.embed_texts(["tiny text"], probe, config=CFG, progress=False, name="tiny.jsonl")


def test_probe_round_trip_and_offline_hub_name(probe, tmp_path, monkeypatch):
    probe.save(tmp_path / "p")
    back = api.load_probe(tmp_path / "p")
    assert back.fingerprint == probe.fingerprint and back.source == f"dir:{tmp_path / 'p'}"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="unreachable.*pass a local directory"):
        api.load_probe("datalign-no-such-model")
    with pytest.raises(ConfigError, match="probe directory not found"):
        api.load_probe(tmp_path / "nothing")


def test_square_matrix_is_the_pivot_and_bootstrap_optional():
    rng = np.random.default_rng(0)
    emb = {k: rng.random((4, 6)) for k in "abc"}
    long = alignment_matrix(emb, ["a", "b", "c"], ["a", "c"])
    assert long["n_boot"].eq(0).all() and long["ci_low"].isna().all()  # no bootstrap unless asked
    boot = alignment_matrix(emb, ["a", "b", "c"], ["a", "c"], bootstrap=30)
    pd.testing.assert_series_equal(long["alignment"], boot["alignment"])
    square = alignment_square(emb, ["a", "b", "c"], ["a", "c"])
    expected = boot.pivot(index="row", columns="col", values="alignment").loc[["a", "b", "c"], ["a", "c"]]
    pd.testing.assert_frame_equal(square, expected)
    pd.testing.assert_frame_equal(to_square(boot, ["a", "b", "c"], ["a", "c"]), expected)
    assert alignment_square(emb).shape == (3, 3)
