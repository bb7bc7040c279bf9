"""Pieces every training objective needs around its loop: the accelerator, the
model a spec names, ``accelerate``'s preparation, and the saved checkpoint.

``accelerate`` prepares a model for mixed precision by patching an autocast
wrapper onto the instance's ``forward``, and marks the instance as prepared.
:func:`prepare_for_training` hands it a throwaway :class:`Shell` that holds the
model instead, so the wrapper (and any DDP wrapper) lands on the shell and the
caller's model never carries one: there is nothing to undo after training, and
the model can be saved, evaluated or trained again as it is.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from datalign.core.errors import ConfigError


def make_accelerator(mixed_precision: str) -> Accelerator:
    """An :class:`Accelerator` whose data loaders yield GLOBAL batches split across processes.

    ``split_batches=True``: the loader's batch is the global batch, each of N
    processes gets its 1/N slice, so the step sequence does not depend on N. A
    second run in the same process with another precision resets accelerate's
    process-wide state (the process group, if any, stays); an invalid
    precision is a :class:`ConfigError`.
    """
    dl_config = DataLoaderConfiguration(split_batches=True)
    try:
        return Accelerator(mixed_precision=mixed_precision, dataloader_config=dl_config)
    except ValueError as exc:
        if "already been initialized" not in str(exc):
            raise ConfigError(f"mixed_precision = '{mixed_precision}': {exc}") from None
    AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed_precision, dataloader_config=dl_config)


def is_main_process() -> bool:
    """Whether this is the main process of the (possibly single-process) launch."""
    return PartialState().is_main_process


class Shell(torch.nn.Module):
    """Holds ``model`` for ``accelerate`` to wrap; calling it calls the model."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **inputs: Any) -> Any:
        return self.model(**inputs)


def prepare_for_training(
    accelerator: Accelerator, model: torch.nn.Module, *objects: Any
) -> tuple[Any, ...]:
    """``accelerator.prepare`` of a :class:`Shell` around ``model`` and of ``objects``.

    Returns the prepared shell (call it as the model) followed by the prepared
    ``objects`` (optimizer, data loader, ...), in order. The model's parameters
    are moved in place to the accelerator's device; the model itself is not
    wrapped or patched.
    """
    return accelerator.prepare(Shell(model), *objects)


def model_from_spec(spec: dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """The model a job spec starts from: a fresh GPT-2 from ``spec["architecture"]``
    seeded with ``spec["seed"]``, or ``spec["base"]`` loaded (cast to ``base_dtype``)."""
    from datalign.lm.models import build_gpt2, load_model

    if spec.get("architecture") is not None:
        return build_gpt2(spec["architecture"], vocab_size=len(tokenizer),
                          eos_id=tokenizer.eos_token_id, seed=spec["seed"])
    return load_model(str(spec["base"]), dtype=spec.get("base_dtype"))


def save_run(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | os.PathLike,
    log: dict[str, Any],
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``log`` with ``record`` merged in; on the main process only, also saved with the
    checkpoint of ``model`` and ``tokenizer`` in ``out_dir`` as ``train_log.json``."""
    from datalign.lm.models import save_checkpoint

    saved = {**log, **(record or {})}
    if is_main_process():
        save_checkpoint(model, tokenizer, out_dir, extra_files={"train_log.json": saved})
    return saved
