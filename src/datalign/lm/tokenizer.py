"""Tokenizers: a byte-level BPE trained on the study's own text, or one from the hub.

The trained tokenizer follows GPT-2's conventions: byte-level pre-tokenization
(every string round-trips exactly, no unknown token is ever needed), no prefix
space, and a single special token ``<|endoftext|>`` that serves as BOS, EOS,
PAD and UNK. It is saved with ``save_pretrained`` so that
``transformers.AutoTokenizer.from_pretrained(out_dir)`` loads it anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sized
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from datalign.core.errors import ConfigError
from datalign.core.io import atomic_path
from datalign.lm.models import looks_like_path
from datalign.lm.tokens import TokenizedSplit

EOS_TOKEN = "<|endoftext|>"
# 256 byte symbols plus the special token: a byte-level BPE cannot be smaller.
MIN_VOCAB_SIZE = 257
_ENCODE_BATCH = 1024


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike,
    seed: int | None = None,
    min_frequency: int = 2,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE on ``texts`` and save it to ``out_dir``.

    The vocabulary holds the 256 byte symbols, ``<|endoftext|>`` (id 0, used
    as BOS = EOS = PAD = UNK) and the most frequent merges until ``vocab_size``
    entries (fewer if the corpus has fewer pairs seen ``min_frequency`` times).
    BPE training has no randomness: the same texts (in any order) give the same
    tokenizer byte for byte, so ``seed`` is accepted for a uniform call
    signature and recorded in the saved config, nothing more. ``out_dir`` is
    written atomically.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise ConfigError(
            f"tokenizer.vocab_size = {vocab_size} is too small for a byte-level BPE: "
            f"it needs at least {MIN_VOCAB_SIZE} (256 bytes + {EOS_TOKEN})"
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
    tok.train_from_iterator(texts, trainer=trainer, length=length)
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
    tokenizer.init_kwargs["datalign"] = {
        "kind": "byte_level_bpe",
        "vocab_size_requested": int(vocab_size),
        "min_frequency": int(min_frequency),
        "seed": seed,
    }
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
