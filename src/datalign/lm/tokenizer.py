"""Tokenizers: a byte-level BPE trained on the study's own text, or one from the hub.

The trained tokenizer follows GPT-2's conventions: byte-level pre-tokenization
(every string round-trips exactly, no unknown token is ever needed), no prefix
space, and a single special token ``<|endoftext|>`` that serves as BOS, EOS,
PAD and UNK. It is saved with ``save_pretrained`` so that
``transformers.AutoTokenizer.from_pretrained(out_dir)`` loads it anywhere.

Long "words". The BPE trainer's time grows with the square of a pre-token's
length (merging inside one word of n symbols costs O(n) per occurrence), so one
run of letters without a space (a DNA read, a base64 blob, a minified file)
of 400k characters takes minutes. Before training, every pre-token (a run of
letters, of digits, of other symbols or of whitespace, as the byte-level
pre-tokenizer cuts it) longer than ``max_word_chars`` characters (default
:data:`DEFAULT_MAX_WORD_CHARS` = 1000) is cut into pieces of at most that
length, each trained on as a word of its own; how many were cut is logged and
recorded in the tokenizer's config (``datalign.long_words``). Only training is
affected: the saved tokenizer encodes any text. 1000 is ten times the longest
pre-token of the default study's corpora (93 characters, a rule line of an
ASCII table in pydoc_data.topics; stdlib code peaks at 80-character comment
rules), so there it cuts nothing and the tokenizer is the same byte for byte;
and it keeps the pathological case cheap (a 400k-letter run trains in well
under a second). While the trainer runs, a progress line is logged every
:data:`PROGRESS_SECONDS` seconds.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from datalign.core.errors import ConfigError
from datalign.core.io import atomic_path
from datalign.lm.models import looks_like_path
from datalign.lm.tokens import TokenizedSplit

log = logging.getLogger(__name__)

EOS_TOKEN = "<|endoftext|>"
# Pre-tokens longer than this are cut into pieces of this length before training (see above).
DEFAULT_MAX_WORD_CHARS = 1000
# Seconds between progress lines while the BPE trainer runs.
PROGRESS_SECONDS = 30.0
# 256 byte symbols plus the special token: a byte-level BPE cannot be smaller.
MIN_VOCAB_SIZE = 257
_ENCODE_BATCH = 1024


@dataclass
class WordBound:
    """Counts of the pre-tokens cut by :func:`bound_long_words`, and of what was read."""

    max_word_chars: int
    texts: int = 0
    characters: int = 0
    texts_cut: int = 0
    words_cut: int = 0
    longest: int = 0
    pieces: int = 0

    def record(self) -> dict[str, int]:
        return {
            "max_word_chars": self.max_word_chars,
            "words_cut": self.words_cut,
            "texts_cut": self.texts_cut,
            "longest_word_chars": self.longest,
            "pieces": self.pieces,
        }


_ASCII_SPACE = " \t\n\r\x0b\x0c"
# Characters Python counts as whitespace beyond ASCII's: a regex engine may not (Oniguruma,
# which the pre-tokenizer uses, does not count U+001C..U+001F), so where one occurs the
# quick test below falls back to runs between ASCII whitespace only.
_OTHER_SPACE_CHARS = "\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_OTHER_SPACE = re.compile(f"[{_OTHER_SPACE_CHARS}]")


class _MayHoldLongWord:
    """A quick test that a text may hold a pre-token longer than ``max_word_chars``.

    A byte-level pre-token is one space plus a run of non-whitespace at most,
    or a run of whitespace. Runs of non-whitespace are measured with
    ``str.split`` (fast), or between ASCII whitespace only where the text has
    other whitespace; runs of whitespace with Python's broad ``\\s``. The test
    can err only towards looking closer: the pre-tokenizer itself then decides.
    """

    def __init__(self, max_word_chars: int) -> None:
        n = self.n = int(max_word_chars)
        self.space_run = re.compile(rf"\s{{{n + 1}}}")
        self.ascii_run = re.compile(rf"(?<![^{_ASCII_SPACE}])[^{_ASCII_SPACE}]{{{n}}}")

    def __call__(self, text: str) -> bool:
        if len(text) <= self.n:
            return False
        if self.space_run.search(text) or max(map(len, text.split()), default=0) >= self.n:
            return True
        return _OTHER_SPACE.search(text) is not None and self.ascii_run.search(text) is not None


def bound_long_words(
    texts: Iterable[str], max_word_chars: int, bound: WordBound | None = None
) -> Iterator[str]:
    """``texts`` for BPE training with every pre-token longer than ``max_word_chars`` cut.

    A text without such a pre-token is passed on unchanged. A text with one is
    passed on in segments cut at pre-token boundaries: the text before the long
    pre-token, its pieces of at most ``max_word_chars`` characters, and so on,
    so that every other pre-token is trained on exactly as in the whole text.
    ``bound`` (if given) counts what was read and cut.
    """
    bound = bound if bound is not None else WordBound(max_word_chars)
    may_hold_long_word = _MayHoldLongWord(max_word_chars)
    splitter = pre_tokenizers.ByteLevel(add_prefix_space=False)
    for text in texts:
        bound.texts += 1
        bound.characters += len(text)
        if not may_hold_long_word(text):
            yield text
            continue
        long_words = [
            (start, end)
            for _piece, (start, end) in splitter.pre_tokenize_str(text)
            if end - start > max_word_chars
        ]
        if not long_words:
            yield text
            continue
        bound.texts_cut += 1
        cut = 0
        for start, end in long_words:
            bound.words_cut += 1
            bound.longest = max(bound.longest, end - start)
            if start > cut:
                yield text[cut:start]
            for piece in range(start, end, max_word_chars):
                bound.pieces += 1
                yield text[piece : min(piece + max_word_chars, end)]
            cut = end
        if cut < len(text):
            yield text[cut:]


class _Progress:
    """Logs a progress line every ``every`` seconds from a background thread until stopped."""

    def __init__(self, bound: WordBound, every: float) -> None:
        self.bound, self.every = bound, every
        self.start = time.monotonic()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bpe-progress", daemon=True)

    def _run(self) -> None:
        while not self.stop_event.wait(self.every):
            log.info(
                "tokenizer: BPE training running for %.0f s (%d texts, %d characters read so far)",
                time.monotonic() - self.start,
                self.bound.texts,
                self.bound.characters,
            )

    def __enter__(self) -> _Progress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join()


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike,
    seed: int | None = None,
    min_frequency: int = 2,
    max_word_chars: int = DEFAULT_MAX_WORD_CHARS,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on ``texts`` and save it to ``out_dir``.

    The vocabulary holds the 256 byte symbols, ``<|endoftext|>`` (id 0, used
    as BOS = EOS = PAD = UNK) and the most frequent merges until ``vocab_size``
    entries (fewer if the corpus has fewer pairs seen ``min_frequency`` times).
    BPE training has no randomness: the same texts (in any order) give the same
    tokenizer byte for byte, so ``seed`` is accepted for a uniform call
    signature and recorded in the saved config, nothing more. Pre-tokens
    longer than ``max_word_chars`` characters are cut before training (see the
    module docstring). ``out_dir`` is written atomically.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ConfigError(
            f"tokenizer.vocab_size = {vocab_size} is too small for a byte-level BPE: "
            f"it needs at least {MIN_VOCAB_SIZE} (256 bytes + {EOS_TOKEN})"
        )
    if isinstance(max_word_chars, bool) or not isinstance(max_word_chars, int) or max_word_chars < 1:
        raise ConfigError(
            f"tokenizer.max_word_chars: expected a positive integer, got {max_word_chars!r}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    length = len(texts) if isinstance(texts, Sized) else None
    bound = WordBound(max_word_chars)
    started = time.monotonic()
    with _Progress(bound, PROGRESS_SECONDS):
        tok.train_from_iterator(
            bound_long_words(texts, max_word_chars, bound), trainer=trainer, length=length
        )
    if bound.words_cut:
        log.warning(
            "tokenizer: %d word(s) longer than max_word_chars = %d characters (longest %d, in %d "
            "text(s)) cut into %d pieces for BPE training (runs without spaces: DNA, base64, "
            "minified code?)",
            bound.words_cut,
            max_word_chars,
            bound.longest,
            bound.texts_cut,
            bound.pieces,
        )
    log.info(
        "tokenizer: trained a %d-entry BPE on %d texts (%d characters) in %.1f s",
        tok.get_vocab_size(),
        bound.texts,
        bound.characters,
        time.monotonic() - started,
    )
    if tok.get_vocab_size() <= MIN_VOCAB_SIZE:
        raise ConfigError(
            f"the BPE training corpus is empty or too small: the tokenizer learned no merges "
            f"(vocabulary {tok.get_vocab_size()}, {vocab_size} requested)"
        )

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
    )
    record = {
        "kind": "byte_level_bpe",
        "vocab_size_requested": int(vocab_size),
        "min_frequency": int(min_frequency),
        "seed": seed,
    }
    if bound.words_cut:
        # Only when the bound changed the training data, so that a tokenizer it did
        # not touch is saved exactly as before the bound existed.
        record["long_words"] = bound.record()
    tokenizer.init_kwargs["datalign"] = record
    with atomic_path(out_dir, is_dir=True) as tmp:
        tokenizer.save_pretrained(tmp)
    return tokenizer


def load_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerFast:
    """Load a tokenizer from a local directory or a hub name (e.g. ``"gpt2"``).

    A tokenizer without a pad token gets pad = eos (GPT-2 has none). A name that
    is neither a local directory nor loadable from the hub is a
    :class:`ConfigError`.
    """
    name = str(name_or_path)
    is_path = isinstance(name_or_path, os.PathLike) or looks_like_path(name) or Path(name).exists()
    if is_path and not Path(name).expanduser().is_dir():
        raise ConfigError(f"tokenizer directory not found: {name}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(Path(name).expanduser()) if is_path else name)
    except (OSError, ValueError) as exc:
        where = "local directory" if Path(name).exists() else "local directory or hub name"
        raise ConfigError(
            f"cannot load tokenizer '{name}' (as a {where}): {str(exc).splitlines()[0]}"
        ) from None
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"tokenizer '{name}' has no EOS token; datalign separates documents with it")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenize_texts(tokenizer: PreTrainedTokenizerFast, texts: list[str], name: str) -> TokenizedSplit:
    """Encode every text into a :class:`TokenizedSplit` (documents concatenated, offsets kept).

    No special tokens are added and none are recognised inside the text: a
    literal ``<|endoftext|>`` in a document is encoded as ordinary bytes,
    because document boundaries are the library's to mark (with the EOS id
    stored in the split). Documents may be longer than the tokenizer's
    ``model_max_length``; nothing is truncated. Empty documents (no tokens)
    are dropped, as in :meth:`TokenizedSplit.from_documents`.
    """
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise ConfigError(f"tokenizer has no EOS token; cannot tokenize dataset '{name}'")
    pieces: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    for start in range(0, len(texts), _ENCODE_BATCH):
        batch = list(texts[start : start + _ENCODE_BATCH])
        # verbose=False silences the "longer than the specified maximum" warning:
        # long documents are cut into sequences later, never fed whole to a model.
        enc = tokenizer(
            batch,
            add_special_tokens=False,
            split_special_tokens=True,
            return_attention_mask=False,
            verbose=False,
        )["input_ids"]
        lengths.append(np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc)))
        pieces.extend(np.asarray(e, dtype=np.int32) for e in enc if len(e) > 0)
    all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    all_lengths = all_lengths[all_lengths > 0]
    offsets = np.concatenate([[0], np.cumsum(all_lengths)]).astype(np.int64)
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    return TokenizedSplit(ids=ids, offsets=offsets, eos_id=int(eos_id), name=name)
