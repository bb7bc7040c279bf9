"""Tokenized splits on disk, and the two ways the library cuts them into sequences.

A tokenized split is stored as ``.npz`` with ``ids`` (int32, every document's
tokens concatenated, no separators) and ``offsets`` (int64, ``n_docs + 1``
boundaries), plus ``eos_id``. Two views are derived from it:

- *segments* (Task2Vec): each document cut into pieces of at most ``seq_len``
  tokens that never cross a document boundary; short pieces are padded and the
  padding masked. A Task2Vec batch is a set of distinct segments.
- *packed chunks* (training, evaluation): documents joined with an EOS token
  after each one and cut into contiguous ``seq_len`` chunks, as in LM training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datalign.core.errors import DataError


@dataclass(frozen=True)
class TokenizedSplit:
    """Token ids of one split of one dataset, document boundaries kept."""

    ids: np.ndarray
    offsets: np.ndarray
    eos_id: int
    name: str = "?"

    @classmethod
    def from_documents(cls, docs: list[list[int]], eos_id: int, name: str = "?") -> TokenizedSplit:
        """Build a split from per-document token id lists (empty documents dropped)."""
        docs = [d for d in docs if len(d) > 0]
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.fromiter((t for d in docs for t in d), dtype=np.int32, count=int(offsets[-1]))
        return cls(ids=ids, offsets=offsets, eos_id=int(eos_id), name=name)

    @property
    def num_documents(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.offsets[-1])

    def document(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def save(self, path: str | os.PathLike) -> None:
        """Write the split as ``.npz`` (the caller provides atomicity)."""
        with open(path, "wb") as fh:
            np.savez(fh, ids=self.ids, offsets=self.offsets, eos_id=np.int64(self.eos_id))

    @classmethod
    def load(cls, path: str | os.PathLike, name: str | None = None) -> TokenizedSplit:
        if not Path(path).exists():
            raise DataError(f"tokenized split not found: {path}")
        with np.load(path) as z:
            return cls(
                ids=z["ids"], offsets=z["offsets"], eos_id=int(z["eos_id"]),
                name=name or Path(path).stem,
            )


def segment_bounds(split: TokenizedSplit, seq_len: int, min_len: int = 2) -> np.ndarray:
    """(start, end) token positions of every segment: documents cut into <= seq_len pieces.

    Pieces shorter than ``min_len`` (nothing to predict) are dropped.
    """
    bounds = []
    for i in range(split.num_documents):
        start, stop = int(split.offsets[i]), int(split.offsets[i + 1])
        for s in range(start, stop, seq_len):
            e = min(s + seq_len, stop)
            if e - s >= min_len:
                bounds.append((s, e))
    return np.asarray(bounds, dtype=np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class SequenceBatch:
    """A padded batch: ``input_ids`` and ``attention_mask`` of shape (batch, seq_len).

    ``segment_index`` says which segments of a split the rows are, when the
    batch was drawn by :func:`sample_segment_batches` (provenance only: nothing
    computes with it); a batch built from a user's own texts or encoding has
    none (``None``). Build one with :meth:`from_encoding` (a tokenizer's
    ``input_ids`` / ``attention_mask``) or :meth:`from_texts`.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    segment_index: np.ndarray | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @classmethod
    def from_encoding(cls, input_ids: object, attention_mask: object | None = None) -> SequenceBatch:
        """A batch from token ids (batch, seq_len) and their mask (default: all ones).

        Accepts what a tokenizer returns (lists, numpy arrays or tensors), e.g.
        ``SequenceBatch.from_encoding(**tokenizer(texts, padding=True, return_tensors="pt"))``
        minus any other keys. Masked positions (0) are padding: they enter nothing.
        """
        ids = torch.as_tensor(np.asarray(input_ids) if isinstance(input_ids, list) else input_ids)
        if ids.ndim != 2 or ids.shape[0] < 1 or ids.shape[1] < 2:
            raise DataError(f"a batch needs token ids of shape (batch >= 1, seq_len >= 2), got {tuple(ids.shape)}")
        if ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise DataError(f"token ids must be integers, got {ids.dtype}")
        if attention_mask is None:
            mask = torch.ones_like(ids, dtype=torch.long)
        else:
            mask = torch.as_tensor(
                np.asarray(attention_mask) if isinstance(attention_mask, list) else attention_mask)
            if tuple(mask.shape) != tuple(ids.shape):
                raise DataError(f"attention_mask shape {tuple(mask.shape)} differs from input_ids {tuple(ids.shape)}")
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise DataError("attention_mask must hold only 0 and 1")
        return cls(ids.to(torch.long), mask.to(torch.long))

    @classmethod
    def from_texts(cls, texts: list[str], tokenizer: object, seq_len: int, pad_id: int | None = None) -> SequenceBatch:
        """A batch of one row per text: its first ``seq_len`` tokens, padded to ``seq_len``.

        Texts are encoded without special tokens (as the library's tokenized
        splits are); tokens past ``seq_len`` are dropped, so to embed long
        documents whole, cut them into segments instead
        (:func:`datalign.task2vec.api.embed_texts` does). ``pad_id`` defaults to
        the tokenizer's pad token (else its EOS). A text with fewer than 2
        tokens has nothing to predict and is a :class:`DataError`.
        """
        if not texts:
            raise DataError("a batch needs at least one text")
        enc = tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False,
                        verbose=False)["input_ids"]
        pad = pad_id if pad_id is not None else (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
        if pad is None:
            raise DataError("from_texts: the tokenizer has no pad or EOS token; pass pad_id")
        ids = torch.full((len(enc), seq_len), int(pad), dtype=torch.long)
        mask = torch.zeros((len(enc), seq_len), dtype=torch.long)
        for row, tokens in enumerate(enc):
            tokens = tokens[:seq_len]
            if len(tokens) < 2:
                raise DataError(f"from_texts: text {row} has {len(tokens)} token(s), at least 2 are needed")
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[row, : len(tokens)] = 1
        return cls(ids, mask)


def sample_segment_batches(
    split: TokenizedSplit,
    num_batches: int,
    batch_size: int,
    seq_len: int,
    seed: int,
    pad_id: int | None = None,
) -> list[SequenceBatch]:
    """Draw ``num_batches`` batches of ``batch_size`` distinct segments (no segment twice).

    Segments are shuffled once with ``seed`` and dealt out in order, so batches
    are disjoint and batch ``k`` is the same for a given seed whatever
    ``num_batches`` is. Asking for more segments than the split holds is a
    :class:`DataError` naming the numbers.
    """
    bounds = segment_bounds(split, seq_len)
    need = num_batches * batch_size
    if need > len(bounds):
        raise DataError(
            f"dataset '{split.name}' is too small for Task2Vec: {num_batches} batches x "
            f"{batch_size} sequences of <= {seq_len} tokens need {need} segments, "
            f"it has {len(bounds)} ({split.num_tokens} tokens in {split.num_documents} documents)"
        )
    order = np.random.default_rng(seed).permutation(len(bounds))
    pad = split.eos_id if pad_id is None else pad_id
    batches = []
    for k in range(num_batches):
        idx = order[k * batch_size : (k + 1) * batch_size]
        ids = torch.full((batch_size, seq_len), pad, dtype=torch.long)
        mask = torch.zeros((batch_size, seq_len), dtype=torch.long)
        for row, j in enumerate(idx):
            s, e = bounds[j]
            ids[row, : e - s] = torch.from_numpy(split.ids[s:e].astype(np.int64))
            mask[row, : e - s] = 1
        batches.append(SequenceBatch(ids, mask, idx))
    return batches


def num_packed_chunks(split: TokenizedSplit, seq_len: int) -> int:
    """How many full ``seq_len`` chunks the packed stream (documents + EOS each) holds."""
    return (split.num_tokens + split.num_documents) // seq_len


def gather_chunks(
    split: TokenizedSplit, seq_len: int, chunk_index: np.ndarray, block: int = 1 << 16
) -> np.ndarray:
    """Packed chunks ``chunk_index`` as a (len(chunk_index), seq_len) int64 array.

    Only the requested chunks are materialised, ``block`` chunks at a time, so
    memory grows with what is asked (plus a block's scratch), not with the
    split: a multi-billion-token corpus costs its ids and the output. Document
    ``i`` occupies stream positions ``[offsets[i] + i, offsets[i+1] + i)`` and
    its EOS sits at ``offsets[i+1] + i``.
    """
    chunk_index = np.asarray(chunk_index, dtype=np.int64)
    out = np.empty((len(chunk_index), seq_len), dtype=np.int64)
    # exclusive end of each document's stretch of the stream, its EOS included
    stream_ends = split.offsets[1:] + np.arange(1, split.num_documents + 1)
    for lo in range(0, len(chunk_index), block):
        rows = chunk_index[lo : lo + block]
        positions = (rows[:, None] * seq_len + np.arange(seq_len)[None, :]).ravel()
        doc = np.searchsorted(stream_ends, positions, side="right")
        start = split.offsets[doc]
        within = positions - (start + doc)
        is_token = within < split.offsets[doc + 1] - start
        tokens = np.full(positions.shape, split.eos_id, dtype=np.int64)
        tokens[is_token] = split.ids[(start + within)[is_token]]
        out[lo : lo + len(rows)] = tokens.reshape(len(rows), seq_len)
    return out


def packed_chunks(split: TokenizedSplit, seq_len: int) -> np.ndarray:
    """The split as a (n_chunks, seq_len) int64 array: documents + EOS each, cut contiguously.

    The tail shorter than ``seq_len`` is dropped.
    """
    return gather_chunks(split, seq_len, np.arange(num_packed_chunks(split, seq_len)))


def training_chunks(split: TokenizedSplit, seq_len: int, token_budget: int, seed: int) -> np.ndarray:
    """The chunks a run with ``token_budget`` training tokens sees, in a seeded order.

    Uses ``ceil(token_budget / seq_len)`` distinct chunks; a split with fewer is a
    :class:`DataError` (the budget would silently repeat data).
    """
    available = num_packed_chunks(split, seq_len)
    need = -(-token_budget // seq_len)
    if need > available:
        raise DataError(
            f"dataset '{split.name}' is too small for a token budget of {token_budget}: "
            f"it packs into {available} chunks of {seq_len} tokens "
            f"({available * seq_len} tokens), {need} chunks are needed"
        )
    order = np.random.default_rng(seed).permutation(available)[:need]
    return gather_chunks(split, seq_len, order)


def mixed_training_chunks(
    splits: list[TokenizedSplit], seq_len: int, token_budget: int, seed: int
) -> np.ndarray:
    """Training chunks drawn equally from ``splits``: ``token_budget // len(splits)`` tokens each.

    One split is :func:`training_chunks` itself; several are concatenated and
    shuffled together with ``seed``, so no dataset's chunks come as a block.
    """
    if len(splits) == 1:
        return training_chunks(splits[0], seq_len, token_budget, seed)
    per_split = token_budget // len(splits)
    chunks = np.concatenate([training_chunks(s, seq_len, per_split, seed) for s in splits])
    return chunks[np.random.default_rng(seed).permutation(len(chunks))]


def evaluation_chunks(split: TokenizedSplit, seq_len: int, eval_tokens: int) -> np.ndarray:
    """The fixed held-out token set: the first ``eval_tokens // seq_len`` packed chunks."""
    available = num_packed_chunks(split, seq_len)
    need = max(1, eval_tokens // seq_len)
    if need > available:
        raise DataError(
            f"dataset '{split.name}' is too small for evaluation on {eval_tokens} tokens: "
            f"it packs into {available} chunks of {seq_len} tokens, {need} are needed"
        )
    return gather_chunks(split, seq_len, np.arange(need))
