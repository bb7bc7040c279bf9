"""Token views: segments for Task2Vec, packed chunks for training and evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from datalign.core.errors import DataError
from datalign.lm.tokens import (
    TokenizedSplit,
    evaluation_chunks,
    gather_chunks,
    mixed_training_chunks,
    packed_chunks,
    sample_segment_batches,
    segment_bounds,
    training_chunks,
)


@pytest.fixture
def split():
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10], [11]]
    return TokenizedSplit.from_documents(docs, eos_id=0, name="toy")


def test_round_trip(tmp_path, split):
    split.save(tmp_path / "s.npz")
    back = TokenizedSplit.load(tmp_path / "s.npz")
    assert back.num_documents == 4 and back.num_tokens == 11
    assert back.document(2).tolist() == [6, 7, 8, 9, 10]


def test_packed_chunks_insert_eos_after_each_document(split):
    chunks = packed_chunks(split, 5)
    # 11 tokens + 4 EOS = 15 = three full chunks
    assert chunks.tolist() == [[1, 2, 3, 0, 4], [5, 0, 6, 7, 8], [9, 10, 0, 11, 0]]
    assert packed_chunks(split, 4).shape == (3, 4)  # the 3-token tail is dropped


def test_segments_never_cross_documents(split):
    bounds = segment_bounds(split, 2)
    for s, e in bounds:
        doc = np.searchsorted(split.offsets, s, side="right") - 1
        assert e <= split.offsets[doc + 1]
    # the single-token document has nothing to predict and is dropped
    assert all(e - s >= 2 for s, e in bounds)


def test_batches_are_disjoint_padded_and_masked(split):
    batches = sample_segment_batches(split, num_batches=2, batch_size=2, seq_len=3, seed=0, pad_id=99)
    seen = np.concatenate([b.segment_index for b in batches])
    assert len(set(seen.tolist())) == len(seen)
    for b in batches:
        assert ((b.input_ids == 99) == (b.attention_mask == 0)).all()
    again = sample_segment_batches(split, num_batches=2, batch_size=2, seq_len=3, seed=0, pad_id=99)
    assert all((a.input_ids == b.input_ids).all() for a, b in zip(batches, again, strict=True))


def test_too_small_for_task2vec_names_the_numbers(split):
    with pytest.raises(DataError, match=r"'toy' is too small for Task2Vec: 3 batches x 2 sequences"):
        sample_segment_batches(split, num_batches=3, batch_size=2, seq_len=3, seed=0)


def test_training_chunks_budget_and_error(split):
    chunks = training_chunks(split, 5, token_budget=6, seed=1)
    assert chunks.shape == (2, 5)
    with pytest.raises(DataError, match="too small for a token budget of 100"):
        training_chunks(split, 5, token_budget=100, seed=1)


def test_evaluation_chunks_are_the_first_chunks(split):
    assert (evaluation_chunks(split, 5, 5) == packed_chunks(split, 5)[:1]).all()
    with pytest.raises(DataError, match="too small for evaluation"):
        evaluation_chunks(split, 5, 1000)


def test_gathered_chunks_equal_an_explicit_stream():
    rng = np.random.default_rng(3)
    docs = [rng.integers(1, 50, size=rng.integers(1, 40)).tolist() for _ in range(60)]
    split = TokenizedSplit.from_documents(docs, eos_id=0)
    stream = [t for d in docs for t in [*d, 0]]
    for seq_len in (1, 7, 32):
        n = len(stream) // seq_len
        expect = np.array(stream[: n * seq_len]).reshape(n, seq_len)
        assert (packed_chunks(split, seq_len) == expect).all()
        picked = rng.permutation(n)[:5]
        assert (training_chunks(split, seq_len, 5 * seq_len, seed=0).shape == (5, seq_len))
        assert (gather_chunks(split, seq_len, picked) == expect[picked]).all()
        assert (gather_chunks(split, seq_len, picked, block=2) == expect[picked]).all()


def test_mixed_training_chunks_take_equal_shares():
    a = TokenizedSplit.from_documents([[1] * 50], eos_id=0, name="a")
    b = TokenizedSplit.from_documents([[2] * 50], eos_id=0, name="b")
    chunks = mixed_training_chunks([a, b], seq_len=5, token_budget=40, seed=3)
    assert chunks.shape == (8, 5)
    firsts = chunks[:, 0].tolist()
    assert firsts.count(1) == firsts.count(2) == 4
    assert firsts != sorted(firsts), "the two datasets' chunks should be interleaved"
    assert (mixed_training_chunks([a], 5, 40, seed=3) == training_chunks(a, 5, 40, seed=3)).all()
