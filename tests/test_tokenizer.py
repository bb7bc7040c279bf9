"""Byte-level BPE training, saving/loading, and tokenization into TokenizedSplit."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from datalign.core.errors import ConfigError
from datalign.lm.tokenizer import EOS_TOKEN, load_tokenizer, tokenize_texts, train_bpe

CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps.",
    "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n    return a + b\n",
    "informal: the sum of two numbers\nformal: def add(a, b): return a + b",
    "Ünïcödé café, naïve façade — 日本語のテキスト, emoji 🙂🚀, tabs\tand  double  spaces",
    "   leading spaces and trailing newlines\n\n\n",
    "the the the the then there these those the",
    "class Stack:\n    def push(self, x):\n        self.items.append(x)\n",
] * 6
VOCAB = 300


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "bpe"
    train_bpe(CORPUS, VOCAB, out, seed=0)
    return out


def test_bpe_vocabulary_and_special_tokens(bpe_dir):
    tok = AutoTokenizer.from_pretrained(bpe_dir)
    # 256 bytes + EOS + merges: some merges were learned, and no more than asked.
    assert 257 < len(tok) <= VOCAB
    assert tok.eos_token == tok.bos_token == tok.pad_token == EOS_TOKEN
    assert tok.eos_token_id == tok.pad_token_id == tok.bos_token_id == 0
    # The frequent word " the" must have been merged into a single token.
    assert len(tok(" the", add_special_tokens=False)["input_ids"]) == 1
    assert tok.convert_ids_to_tokens(tok.eos_token_id) == EOS_TOKEN


def test_bpe_round_trips_text_exactly(bpe_dir):
    tok = AutoTokenizer.from_pretrained(bpe_dir)
    unseen = [
        "zebra quizzically vexes jumbo 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \x00\x7f control bytes\r\n",
        "",
        " ",
        "Ω≈ç√∫˜µ≤≥÷ 🇺🇳 👩‍👩‍👧",
    ]
    for text in CORPUS[:7] + unseen:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert all(0 < i < len(tok) for i in ids)  # only EOS is id 0, and it is never produced


def test_bpe_is_deterministic_and_order_independent(tmp_path):
    train_bpe(CORPUS, VOCAB, tmp_path / "a")
    train_bpe(list(reversed(CORPUS)), VOCAB, tmp_path / "b", seed=99)
    a = json.loads((tmp_path / "a" / "tokenizer.json").read_text())
    b = json.loads((tmp_path / "b" / "tokenizer.json").read_text())
    assert a["model"]["vocab"] == b["model"]["vocab"]
    assert a["model"]["merges"] == b["model"]["merges"]
    # Nothing but the two tokenizer directories was written: no temporary leftovers.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_bpe_loads_from_disk_like_in_memory(tmp_path):
    in_memory = train_bpe(CORPUS, VOCAB, tmp_path / "tok")
    on_disk = AutoTokenizer.from_pretrained(tmp_path / "tok")
    raw = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json"))
    for text in CORPUS[:7]:
        expected = in_memory(text, add_special_tokens=False)["input_ids"]
        assert on_disk(text, add_special_tokens=False)["input_ids"] == expected
        assert raw.encode(text, add_special_tokens=False).ids == expected


def test_bpe_rejects_impossible_sizes(tmp_path):
    with pytest.raises(ConfigError, match="vocab_size = 200"):
        train_bpe(CORPUS, 200, tmp_path / "small")
    with pytest.raises(ConfigError, match="no merges"):
        train_bpe([], VOCAB, tmp_path / "empty")
    assert not any(tmp_path.iterdir())


def test_tokenize_texts_documents_and_offsets(bpe_dir):
    tok = load_tokenizer(bpe_dir)
    texts = ["first document", "", "second one\nwith a newline", "x", "the end " * 50]
    split = tokenize_texts(tok, texts, "toy")
    expected = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    expected = [e for e in expected if e]  # the empty document is dropped
    assert split.name == "toy"
    assert split.eos_id == tok.eos_token_id
    assert split.ids.dtype == np.int32 and split.offsets.dtype == np.int64
    assert split.num_documents == 4
    np.testing.assert_array_equal(split.offsets, np.cumsum([0] + [len(e) for e in expected]))
    for i, doc in enumerate(expected):
        assert split.document(i).tolist() == doc
    assert [tok.decode(split.document(i)) for i in range(4)] == [t for t in texts if t]
    assert EOS_TOKEN not in tok.convert_ids_to_tokens(split.ids.tolist())


def test_tokenize_texts_batches_long_texts_silently(bpe_dir, capfd):
    tok = load_tokenizer(bpe_dir)
    tok.model_max_length = 8
    # More texts than one encoding batch (1024), and texts far over model_max_length.
    texts = [f"document number {i} " * (1 + i % 7) for i in range(2100)]
    split = tokenize_texts(tok, texts, "many")
    assert split.num_documents == len(texts)
    assert split.document(2099).tolist() == tok(texts[2099], add_special_tokens=False)["input_ids"]
    assert max(np.diff(split.offsets)) > 8
    assert "longer than the specified maximum" not in capfd.readouterr().err


def test_literal_special_token_in_text_is_plain_bytes(bpe_dir):
    tok = load_tokenizer(bpe_dir)
    text = "before <|endoftext|> after"
    split = tokenize_texts(tok, [text], "lit")
    assert tok.eos_token_id not in split.ids.tolist()
    assert tok.decode(split.document(0)) == text


def test_load_tokenizer_sets_missing_pad(tmp_path, bpe_dir):
    raw = Tokenizer.from_file(str(bpe_dir / "tokenizer.json"))
    no_pad = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=EOS_TOKEN)
    assert no_pad.pad_token_id is None
    no_pad.save_pretrained(tmp_path / "nopad")
    tok = load_tokenizer(tmp_path / "nopad")
    assert tok.pad_token == EOS_TOKEN and tok.pad_token_id == tok.eos_token_id


def test_load_tokenizer_missing_dir_is_config_error(tmp_path):
    missing = tmp_path / "no" / "such" / "tokenizer"
    with pytest.raises(ConfigError, match="tokenizer directory not found: .*tokenizer"):
        load_tokenizer(missing)
    with pytest.raises(ConfigError, match="not found"):
        load_tokenizer(str(missing))
