"""Causal language models: built from a config, loaded, and saved as checkpoints.

A checkpoint is a directory holding the model (``config.json``,
``model.safetensors``), its tokenizer, and any JSON records the caller adds
(training log, provenance). It is written atomically: a crash leaves either
the previous checkpoint or none, never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from datalign.core.errors import ConfigError, TrainingError
from datalign.core.io import atomic_path, write_json

_REQUIRED_KEYS = ("n_layer", "n_embd", "n_head", "n_positions")
_DROPOUT_KEYS = ("resid_pdrop", "embd_pdrop", "attn_pdrop")
_EXTRA_KEYS = ("n_inner", "activation_function", "layer_norm_epsilon", "initializer_range")
_OPTIONAL_KEYS = ("dropout", "tie_word_embeddings", *_DROPOUT_KEYS, *_EXTRA_KEYS)


def gpt2_config(architecture: dict[str, Any], vocab_size: int, eos_id: int) -> GPT2Config:
    """A from-scratch GPT-2 config from an ``architecture`` dict of config.yaml.

    Required keys: ``n_layer``, ``n_embd``, ``n_head``, ``n_positions``.
    Optional: ``dropout`` (sets all three dropout rates), ``resid_pdrop``,
    ``embd_pdrop``, ``attn_pdrop`` (each overrides ``dropout``; all default to
    0.0, since the tiny models see little data and dropout would only add noise
    to the comparisons), ``n_inner``, ``activation_function``,
    ``layer_norm_epsilon``, ``initializer_range``. BOS, EOS and PAD are all
    ``eos_id``; input and output embeddings are tied, as in GPT-2, unless
    ``tie_word_embeddings: false``.
    """
    unknown = sorted(set(architecture) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown architecture key(s) {unknown}; allowed: "
            f"{list(_REQUIRED_KEYS) + list(_OPTIONAL_KEYS)}"
        )
    missing = [k for k in _REQUIRED_KEYS if k not in architecture]
    if missing:
        raise ConfigError(f"architecture is missing key(s) {missing} (got {dict(architecture)})")
    for key in _REQUIRED_KEYS:
        value = architecture[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"architecture.{key} must be a positive integer, got {value!r}")
    n_embd, n_head = architecture["n_embd"], architecture["n_head"]
    if n_embd % n_head:
        raise ConfigError(
            f"architecture.n_embd = {n_embd} is not divisible by architecture.n_head = {n_head}"
        )
    if not 0 <= eos_id < vocab_size:
        raise ConfigError(f"eos id {eos_id} is outside the vocabulary of {vocab_size} tokens")
    base_dropout = float(architecture.get("dropout", 0.0))
    dropouts = {k: float(architecture.get(k, base_dropout)) for k in _DROPOUT_KEYS}
    for key, value in dropouts.items():
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"architecture.{key} must be in [0, 1), got {value}")
    extra = {k: architecture[k] for k in _EXTRA_KEYS if k in architecture}
    return GPT2Config(
        vocab_size=int(vocab_size),
        n_positions=architecture["n_positions"],
        n_embd=n_embd,
        n_layer=architecture["n_layer"],
        n_head=n_head,
        **dropouts,
        # GPT2ForSequenceClassification-only summary dropout: keep it consistent.
        summary_first_dropout=dropouts["resid_pdrop"],
        bos_token_id=int(eos_id),
        eos_token_id=int(eos_id),
        pad_token_id=int(eos_id),
        tie_word_embeddings=bool(architecture.get("tie_word_embeddings", True)),
        **extra,
    )


def build_gpt2(architecture: dict[str, Any], vocab_size: int, eos_id: int, seed: int) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 (see :func:`gpt2_config`), weights drawn with ``seed``.

    The initialisation runs under a forked torch RNG, so the caller's global
    random state is left as it was and the same seed always gives the same
    weights.
    """
    config = gpt2_config(architecture, vocab_size, eos_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model.eval()
    return model


@contextlib.contextmanager
def _no_hf_progress_bars() -> Iterator[None]:
    # Per-shard "Loading weights" / "Writing model shards" bars only clutter rule logs.
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def looks_like_path(name: str) -> bool:
    """Whether ``name`` can only be a local path, not a hub id ("name" or "owner/name")."""
    return (
        os.path.isabs(name)
        or name.startswith((".", "~"))
        or name.count("/") > 1
        or os.sep != "/" and os.sep in name
    )


def load_model(
    path_or_name: str | os.PathLike, dtype: torch.dtype | str | None = None
) -> PreTrainedModel:
    """Load a causal LM from a checkpoint directory or a hub name (``AutoModelForCausalLM``).

    ``dtype`` (e.g. ``torch.bfloat16`` or ``"bfloat16"``) casts the weights on
    load; ``None`` keeps float32. A checkpoint directory that does not exist,
    or holds no loadable model, is a :class:`TrainingError` naming the path.
    The model is returned in eval mode.
    """
    name = str(path_or_name)
    path = Path(name).expanduser()
    is_path = isinstance(path_or_name, os.PathLike) or looks_like_path(name) or path.exists()
    if is_path and not path.is_dir():
        raise TrainingError(f"checkpoint not found: {path} (no such directory)")
    if is_path and not (path / "config.json").is_file():
        raise TrainingError(f"checkpoint {path} is incomplete: it has no config.json")
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ConfigError(f"unknown dtype '{dtype}' for model {name}")
        dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = {"dtype": dtype if dtype is not None else torch.float32}
    try:
        with _no_hf_progress_bars():
            model = AutoModelForCausalLM.from_pretrained(str(path) if is_path else name, **kwargs)
    except (OSError, ValueError) as exc:
        what = f"checkpoint {path}" if is_path else f"model '{name}' (not a local directory)"
        raise TrainingError(f"cannot load {what}: {str(exc).splitlines()[0]}") from None
    model.eval()
    return model


def save_checkpoint(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    out_dir: str | os.PathLike,
    extra_files: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (safetensors), ``tokenizer`` and JSON ``extra_files`` to ``out_dir``.

    ``extra_files`` maps a file name (e.g. ``"train_log.json"``) to a
    JSON-serialisable object. The directory is assembled under a temporary
    name and renamed into place, replacing any previous checkpoint only once
    complete. Returns ``out_dir`` as a Path.
    """
    out = Path(out_dir)
    extra_files = extra_files or {}
    reserved = {"config.json", "generation_config.json", "model.safetensors",
                "tokenizer.json", "tokenizer_config.json"}
    for fname in extra_files:
        if Path(fname).name != fname or fname in ("", ".", ".."):
            raise ConfigError(f"checkpoint extra file name must be a plain file name, got '{fname}'")
        if fname in reserved:
            raise ConfigError(f"checkpoint extra file '{fname}' would overwrite the model's own file")
    with atomic_path(out, is_dir=True) as tmp, _no_hf_progress_bars():
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        for fname, obj in extra_files.items():
            write_json(tmp / fname, obj)
    return out
