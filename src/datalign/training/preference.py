"""Preference optimisation of a causal LM on a preference subset, with TRL's KTO and DPO trainers.

Two objectives, both through TRL 1.16's own trainers (``KTOTrainer`` /
``DPOTrainer``), both against a frozen reference policy pi_ref = the base:

* **KTO** (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic
  Optimization", arXiv 2402.01306, eqs. 7-8) on unpaired rows
  ``{"prompt", "completion", "label"}`` (label True = desirable).
* **DPO** (Rafailov et al. 2023, "Direct Preference Optimization", NeurIPS,
  eq. 7) on pairs ``{"prompt", "chosen", "rejected"}``.

A run is :func:`train_preference` (one run) or :func:`train_many` (several
runs from the same base in one process: each trains a fresh copy of the base,
so its result is the same as a run of its own, without paying the import and
model-load start-up again). :func:`run_preference_job` is the same as a plain
JSON-able spec plus an output directory, for a training job that names its
objective.

How a row becomes tokens (:func:`encode_prompt_completion`, used by the
evaluation too): with a tokenizer that has a chat template, string prompts and
completions become one user and one assistant message and the template renders
them; without one (the project's own byte-level BPE), the text is the plain
concatenation ``prompt + completion + eos``. As in TRL, the completion starts
where the tokenized prompt and the tokenized prompt+completion first differ,
so a BPE merge across the boundary moves it; end prompts on a token boundary
(a newline, or a completion that starts with a space) to avoid that.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import logging
import math
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.core.io import Timer, provenance, write_json
from datalign.lm.models import load_model, save_checkpoint
from datalign.lm.tokenizer import load_tokenizer

log = logging.getLogger(__name__)

#: The preference objectives and the row keys each needs.
OBJECTIVES = ("kto", "dpo")
ROW_KEYS = {"kto": ("prompt", "completion", "label"), "dpo": ("prompt", "chosen", "rejected")}
#: Cap of the default ``max_length``: tiny policies and CPU runs need no more.
DEFAULT_MAX_LENGTH_CAP = 512


#: Keys of a LoRA block (``PreferenceOptions.lora``).
LORA_KEYS = ("r", "alpha", "dropout", "target_modules")
#: dtypes a base loaded from a directory may be cast to (``PreferenceOptions.dtype``; None: float32).
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class LoraOptions:
    """LoRA adapters (Hu et al. 2021) trained through TRL's ``peft_config`` instead of the whole policy.

    * ``r`` 16: the adapters' rank; ``alpha`` 32.0: their scale is alpha / r.
    * ``dropout`` 0.0: dropout on the adapters' input. TRL's ``disable_dropout``
      (on) zeroes every dropout module, the adapters' included; the adapters'
      is set back to this value after (the base's stays off).
    * ``target_modules`` None = peft's default for the architecture (GPT-2:
      ``c_attn``; Llama / Mistral: ``q_proj``, ``v_proj``); otherwise module
      names matched as peft matches them (the full name or its last
      ``.``-separated parts). ``lm_head`` is refused (TRL computes log-probs
      from its weight directly, so an adapter there would never train).

    The reference policy is the base with the adapters disabled: no frozen
    copy is made. Built with the ``peft`` library (the maintained
    implementation TRL integrates with), not re-implemented here.
    """

    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, options: Any, where: str = "options.lora") -> LoraOptions:
        """A LoRA block from a mapping (missing keys take the defaults); a bad block is a one-line ConfigError."""
        if isinstance(options, LoraOptions):
            options.validate(where)
            return options
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where} must be a mapping of {list(LORA_KEYS)} or null, got {options!r}")
        unknown = sorted(set(options) - set(LORA_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown LoRA option(s) {unknown}; known: {list(LORA_KEYS)}")
        values = dict(options)
        targets = values.get("target_modules")
        if isinstance(targets, list | tuple):
            values["target_modules"] = tuple(targets)
        elif targets is not None:
            raise ConfigError(f"{where}.target_modules must be null or a list of module names, got {targets!r}")
        opts = cls(**values)
        opts.validate(where)
        return opts

    def validate(self, where: str = "options.lora") -> None:
        """Raise a one-line :class:`ConfigError` naming the first bad value."""
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise ConfigError(f"{where}.r must be an integer >= 1, got {self.r!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or not (
            math.isfinite(self.alpha) and self.alpha > 0
        ):
            raise ConfigError(f"{where}.alpha must be a positive number, got {self.alpha!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float) or not (
            0.0 <= self.dropout < 1.0
        ):
            raise ConfigError(f"{where}.dropout must be in [0, 1), got {self.dropout!r}")
        if self.target_modules is not None:
            names = self.target_modules
            if not isinstance(names, tuple) or not names or not all(isinstance(n, str) and n.strip() for n in names):
                raise ConfigError(f"{where}.target_modules must be null or a non-empty list of module names, "
                                  f"got {names!r}")
            if len(set(names)) != len(names):
                raise ConfigError(f"{where}.target_modules names a module twice: {list(names)}")

    def peft_config(self, model: PreTrainedModel, where: str = "options.lora") -> Any:
        """The ``peft.LoraConfig`` of these options for ``model``; a target it does not have is a ConfigError.

        Each target must match (as peft matches: the module's full name or its
        last ``.``-separated parts) at least one linear layer of ``model``
        (``nn.Linear`` or GPT-2's ``Conv1D``, for which ``fan_in_fan_out`` is
        set), and not the output head.
        """
        from peft import LoraConfig
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
        from transformers.pytorch_utils import Conv1D

        targets = self.target_modules
        if targets is None:
            model_type = getattr(model.config, "model_type", None)
            default = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
            if not default:
                raise ConfigError(f"{where}.target_modules: peft has no default for model type {model_type!r}; "
                                  f"name the layers to adapt")
            targets = tuple(default)
        linear = {name: module for name, module in model.named_modules()
                  if isinstance(module, torch.nn.Linear | Conv1D)}
        head = model.get_output_embeddings()
        matched: list[str] = []
        for target in targets:
            hits = [name for name in linear if name == target or name.endswith("." + target)]
            matched += hits
            if not hits:
                leaves = sorted({name.rsplit(".", 1)[-1] for name in linear})
                raise ConfigError(f"{where}.target_modules: '{target}' matches no linear layer of the policy "
                                  f"({type(model).__name__}; its linear layers: {', '.join(leaves)})")
            if head is not None and any(linear[name] is head for name in hits):
                raise ConfigError(f"{where}.target_modules: '{target}' is the output head; TRL computes "
                                  f"log-probabilities from its weight directly, so an adapter there never trains")
        conv1d = any(isinstance(linear[name], Conv1D) for name in matched)
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=list(targets),
                          bias="none", task_type="CAUSAL_LM", fan_in_fan_out=conv1d)


@dataclass(frozen=True)
class PreferenceOptions:
    """Optimisation settings of one preference run, with defaults for small models on CPU.

    TRL's defaults (lr 1e-6, 3 epochs, max_length 1024, gradient checkpointing
    on, bf16 on) are for 7B-class models on GPUs; these are for policies of
    1M-135M parameters:

    * ``lr`` 1e-4: AdamW peak learning rate (tiny GPT-2s pre-train at ~1e-3;
      fine-tuning runs an order of magnitude lower). For SmolLM2-135M use ~1e-5.
    * ``epochs`` 1.0 and ``max_steps`` -1 (no cap): one pass over the subset,
      so the number of steps grows with the subset, as in the ISA paper's
      data-fraction sweeps.
    * ``batch_size`` 8 per step (KTO needs >= 2: its KL estimate pairs each
      prompt with another row's completion in the same batch);
      ``grad_accum`` 1.
    * ``max_length`` None = the policy's context length, at most
      :data:`DEFAULT_MAX_LENGTH_CAP` tokens (prompt + completion; longer
      sequences are cut at the end, rows whose prompt alone fills it dropped).
    * ``beta`` 0.1: the KL-regularisation strength, the KTO and DPO papers'
      default.
    * ``desirable_weight`` / ``undesirable_weight`` 1.0: KTO's lambda_D and
      lambda_U (KTO paper eq. 8; raise the weight of the rarer class so that
      lambda_D n_D / (lambda_U n_U) lies in [1, 4/3]).
    * ``warmup_ratio`` 0.1 of the steps (the KTO paper warms up linearly), then
      ``lr_scheduler`` "linear" decay to 0; ``weight_decay`` 0.0;
      ``max_grad_norm`` 1.0.
    * ``use_chat_template`` True: format rows with the tokenizer's chat template
      when it has one (plain text otherwise).
    * ``device`` "auto": CUDA when visible (bf16 where it supports it), else
      the CPU in float32; "cpu" forces the CPU.
    * ``lora`` None: full fine-tuning of a copy of the base against a frozen
      copy as reference; a :class:`LoraOptions` (or its mapping): LoRA adapters
      on the base itself, the reference being the base with them disabled (no
      copy of the model is made; the base is restored after each run).
    * ``dtype`` None: a base loaded from a directory is float32; "bfloat16" /
      "float16" / "float32" cast its weights on load (a 7B policy in bf16
      is 14.5 GB instead of 29). An in-memory base keeps its own dtype.
    """

    lr: float = 1e-4
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int | None = None
    beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    warmup_ratio: float = 0.1
    lr_scheduler: str = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    use_chat_template: bool = True
    device: str = "auto"
    lora: LoraOptions | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.lora is not None and not isinstance(self.lora, LoraOptions):
            object.__setattr__(self, "lora", LoraOptions.from_dict(self.lora))

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None, where: str = "options") -> PreferenceOptions:
        """Options from a plain dict (missing keys take the defaults); bad keys or values are a ConfigError."""
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown preference option(s) {unknown}; known: {sorted(known)}")
        if options.get("lora") is not None:
            options["lora"] = LoraOptions.from_dict(options["lora"], f"{where}.lora")
        opts = cls(**options)
        opts.validate(where)
        return opts

    def validate(self, where: str = "options") -> None:
        """Raise a one-line :class:`ConfigError` naming the first bad value."""

        def positive(name: str, value: Any) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value) and value > 0
            ):
                raise ConfigError(f"{where}.{name} must be a positive number, got {value!r}")

        for name in ("lr", "epochs", "beta", "max_grad_norm"):
            positive(name, getattr(self, name))
        for name in ("desirable_weight", "undesirable_weight"):
            positive(name, getattr(self, name))
        for name in ("batch_size", "grad_accum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}.{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or (
            self.max_steps != -1 and self.max_steps < 1
        ):
            raise ConfigError(f"{where}.max_steps must be -1 (no cap) or an integer >= 1, got {self.max_steps!r}")
        if self.max_length is not None and (
            isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 2
        ):
            raise ConfigError(f"{where}.max_length must be null or an integer >= 2, got {self.max_length!r}")
        if not isinstance(self.warmup_ratio, int | float) or not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"{where}.warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if not isinstance(self.weight_decay, int | float) or self.weight_decay < 0:
            raise ConfigError(f"{where}.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.lr_scheduler not in ("linear", "cosine", "constant", "constant_with_warmup"):
            raise ConfigError(
                f"{where}.lr_scheduler must be linear, cosine, constant or constant_with_warmup, "
                f"got {self.lr_scheduler!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"{where}.device must be auto, cpu or cuda, got {self.device!r}")
        if self.lora is not None:
            self.lora.validate(f"{where}.lora")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ConfigError(f"{where}.dtype must be null or one of {list(DTYPES)}, got {self.dtype!r}")

    def to_json(self) -> dict[str, Any]:
        """The options as a JSON-serialisable dict (``lora`` a dict with a list of targets, or None)."""
        out = asdict(self)
        if out["lora"] is not None and out["lora"]["target_modules"] is not None:
            out["lora"]["target_modules"] = list(out["lora"]["target_modules"])
        return out


# --------------------------------------------------------------------------- rows


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)


def _check_text(value: Any, key: str, where: str) -> None:
    if isinstance(value, str):
        if not value.strip() and key != "prompt":
            raise DataError(f"{where}: '{key}' is empty")
        return
    if not _is_messages(value) or not value:
        raise DataError(
            f"{where}: '{key}' must be a string or a non-empty list of {{role, content}} messages, "
            f"got {type(value).__name__}"
        )


def check_rows(rows: Sequence[Mapping[str, Any]], objective: str, name: str = "rows") -> list[dict[str, Any]]:
    """Validate preference rows; return them as new dicts holding only the objective's keys.

    KTO rows: ``{"prompt", "completion", "label"}`` with ``label`` a bool (or
    0/1); DPO rows: ``{"prompt", "chosen", "rejected"}``. Texts are strings or
    lists of ``{role, content}`` messages. Other keys (ids, scores) are
    dropped. An unknown objective is a :class:`ConfigError`; an empty list, a
    missing key or a bad value a one-line :class:`DataError` naming the row.
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"preference objective must be one of {list(OBJECTIVES)}, got {objective!r}")
    if not rows:
        raise DataError(f"{name}: no preference rows to train on")
    keys = ROW_KEYS[objective]
    out = []
    for i, row in enumerate(rows):
        where = f"{name}[{i}]"
        if not isinstance(row, Mapping):
            raise DataError(f"{where}: a row must be a dict, got {type(row).__name__}")
        missing = [k for k in keys if k not in row]
        if missing:
            raise DataError(f"{where}: missing key(s) {missing} for {objective.upper()} (has {sorted(row)})")
        clean = {k: row[k] for k in keys}
        for key in keys:
            if key == "label":
                label = clean["label"]
                if isinstance(label, bool) or (isinstance(label, int) and label in (0, 1)):
                    clean["label"] = bool(label)
                else:
                    raise DataError(f"{where}: 'label' must be true/false (or 1/0), got {label!r}")
            else:
                _check_text(clean[key], key, where)
        out.append(clean)
    return out


def has_chat_template(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether ``tokenizer`` carries a chat template (the project's BPE does not)."""
    return bool(getattr(tokenizer, "chat_template", None))


def as_messages(text: str | list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """``text`` as a one-message conversation with ``role``; a message list is returned as is."""
    return list(text) if isinstance(text, list) else [{"role": role, "content": text}]


def format_rows(
    rows: Sequence[Mapping[str, Any]], tokenizer: PreTrainedTokenizerBase, use_chat_template: bool = True
) -> list[dict[str, Any]]:
    """Rows in the form TRL's trainers take for this tokenizer.

    With a chat template (and ``use_chat_template``), every text becomes a
    conversation: the prompt one user message, each completion one assistant
    message (message lists pass through), so TRL renders them with the
    template. Without, texts stay plain strings (TRL appends EOS to each
    completion). A message list without a chat template is a
    :class:`DataError`. Keys are kept; values are not modified in place.
    """
    chat = use_chat_template and has_chat_template(tokenizer)
    out = []
    for i, row in enumerate(rows):
        new = dict(row)
        for key, value in row.items():
            if key == "label":
                continue
            if chat:
                new[key] = as_messages(value, "user" if key == "prompt" else "assistant")
            elif not isinstance(value, str):
                raise DataError(
                    f"rows[{i}]: '{key}' is a message list but the tokenizer has no chat template "
                    f"(give plain strings, or a tokenizer with a chat template)"
                )
        out.append(new)
    return out


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_prompt_completion(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str | list[dict[str, Any]],
    completion: str | list[dict[str, Any]],
) -> tuple[list[int], list[int]]:
    """Token ids (prompt_ids, completion_ids) of one row, exactly as TRL 1.16 tokenizes it.

    Plain text (both strings): EOS is appended to the completion unless it
    ends with it, then ``prompt_ids = tok(prompt)``, ``full = tok(prompt +
    completion)``. Conversational (both message lists): ``prompt_ids =
    apply_chat_template(prompt, add_generation_prompt=True)``, ``full =
    apply_chat_template(prompt + completion)``. In both cases the split point
    is the longest common prefix of ``prompt_ids`` and ``full`` (TRL's
    ``common_prefix_length``): ``(full[:k], full[k:])``. Mixed forms are a
    :class:`DataError`. Source: ``trl.trainer.kto_trainer.KTOTrainer._prepare_dataset``
    and its DPO twin.
    """
    if isinstance(prompt, str) and isinstance(completion, str):
        eos = tokenizer.eos_token
        if eos is None:
            raise ConfigError("tokenizer has no EOS token: a plain-text completion cannot be terminated")
        if not completion.endswith(eos):
            completion = completion + eos
        prompt_ids = tokenizer(text=prompt)["input_ids"]
        full = tokenizer(text=prompt + completion)["input_ids"]
    elif isinstance(prompt, list) and isinstance(completion, list):
        prompt_ids = tokenizer.apply_chat_template(
            prompt, tokenize=True, return_dict=True, add_generation_prompt=True
        )["input_ids"]
        full = tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"]
    else:
        raise DataError(
            f"a prompt and its completion must both be strings or both message lists, got "
            f"{type(prompt).__name__} and {type(completion).__name__}"
        )
    k = _common_prefix(prompt_ids, full)
    return list(full[:k]), list(full[k:])


# --------------------------------------------------------------------------- set-up


def context_length(model: PreTrainedModel) -> int | None:
    """The policy's number of positions (``n_positions`` / ``max_position_embeddings``), if it has one."""
    config = model.config
    return getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)


def resolve_max_length(options: PreferenceOptions, model: PreTrainedModel) -> int:
    """``options.max_length``, or the policy's context length capped at :data:`DEFAULT_MAX_LENGTH_CAP`.

    A ``max_length`` above the policy's context length is a :class:`ConfigError`
    (positions past it have no embedding).
    """
    n_pos = context_length(model)
    if options.max_length is None:
        return min(n_pos or DEFAULT_MAX_LENGTH_CAP, DEFAULT_MAX_LENGTH_CAP)
    if n_pos is not None and options.max_length > n_pos:
        raise ConfigError(f"options.max_length = {options.max_length} exceeds the policy's {n_pos} positions")
    return options.max_length


def resolve_device(device: str) -> tuple[bool, bool]:
    """(use_cpu, bf16) for ``device`` "auto" / "cpu" / "cuda".

    bf16 only on CUDA devices that support it: TRL's configs default ``bf16``
    to True, and ``use_cpu=True`` alone keeps it and fails on CPU.
    """
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ConfigError("options.device = 'cuda' but no CUDA device is visible")
    use_cpu = device == "cpu" or not cuda
    return use_cpu, (not use_cpu) and torch.cuda.is_bf16_supported()


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """A copy of ``tokenizer`` with pad = eos when it has no pad token (GPT-2 and the project's BPE)."""
    if tokenizer.eos_token is None:
        raise ConfigError("the policy's tokenizer has no EOS token: completions cannot be terminated")
    tokenizer = copy.deepcopy(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A deep copy of ``model`` in eval mode with every parameter frozen: the reference policy pi_ref."""
    ref = copy.deepcopy(model)
    ref.requires_grad_(False)
    ref.eval()
    return ref


def trl_config(
    objective: str, options: PreferenceOptions, max_length: int, seed: int, output_dir: str
) -> Any:
    """The ``KTOConfig`` / ``DPOConfig`` of one run (see :class:`PreferenceOptions` for the values).

    Fixed choices, each a TRL-default override: no gradient checkpointing
    (passed as ``activation_checkpointing``, the name transformers 5.24 reads),
    float32 on CPU (``use_cpu`` + ``bf16=False``), no checkpoints during
    training (``save_strategy="no"``), no reporting integrations, one log
    record per step with NaN/inf losses logged as they are (the Trainer's
    default hides them behind the running mean), no tqdm of the Trainer's
    own (the run's bar replaces it), the same ``seed`` for weights, dropout
    and data order, and an explicit reference model (no
    ``precompute_ref_log_probs``).
    """
    from trl import DPOConfig, KTOConfig

    use_cpu, bf16 = resolve_device(options.device)
    common: dict[str, Any] = {
        "output_dir": output_dir,
        "seed": seed,
        "data_seed": seed,
        "learning_rate": options.lr,
        "num_train_epochs": options.epochs,
        "max_steps": options.max_steps,
        "per_device_train_batch_size": options.batch_size,
        "gradient_accumulation_steps": options.grad_accum,
        "lr_scheduler_type": options.lr_scheduler,
        # transformers 5 reads a float in [0, 1) as a share of the steps.
        "warmup_steps": float(options.warmup_ratio),
        "weight_decay": options.weight_decay,
        "max_grad_norm": options.max_grad_norm,
        "max_length": max_length,
        "beta": options.beta,
        "use_cpu": use_cpu,
        "bf16": bf16,
        "activation_checkpointing": False,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        # Log a NaN/inf loss as it is (the Trainer's default logs the running mean instead).
        "logging_nan_inf_filter": False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "precompute_ref_log_probs": False,
    }
    if objective == "kto":
        return KTOConfig(
            **common, desirable_weight=options.desirable_weight, undesirable_weight=options.undesirable_weight
        )
    return DPOConfig(**common, loss_type=["sigmoid"])


class _StepRecorder(TrainerCallback):
    """Records every logged training step, shows a progress bar, stops on a non-finite loss."""

    def __init__(self, run_name: str, progress: bool) -> None:
        self.run_name = run_name
        self.progress = progress
        self.steps: list[dict[str, Any]] = []
        self.bar: tqdm | None = None
        self.start = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001 - Trainer's signature
        self.start = time.perf_counter()
        self.bar = tqdm(total=state.max_steps, desc=f"preference {self.run_name}", unit="step",
                        file=sys.stderr, disable=not self.progress, mininterval=1.0)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        if not logs or "loss" not in logs:
            return
        record = {"step": int(state.global_step)}
        record.update({k: float(v) for k, v in logs.items() if isinstance(v, int | float) and k != "step"})
        # Wall seconds since training began, at the end of this step (as in the causal-LM log).
        record["seconds"] = time.perf_counter() - self.start
        loss, grad_norm = record["loss"], record.get("grad_norm", 0.0)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            raise TrainingError(
                f"non-finite loss {loss} (gradient norm {grad_norm}) at step {state.global_step}/"
                f"{state.max_steps} of preference run '{self.run_name}'"
            )
        self.steps.append(record)
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        log.debug("%s step %d loss %.5f", self.run_name, state.global_step, loss)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self.close()

    def close(self) -> None:
        """Close the progress bar (also after a failed run, where on_train_end never comes)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Silence per-map dataset bars, a deprecation warning TRL triggers every step, and telemetry.

    TRL's trainers ping the hub's telemetry endpoint from a thread at start-up;
    runs here are offline by design, so the ping is switched off for the
    duration (huggingface_hub reads the flag at call time).
    """
    import datasets
    from huggingface_hub import constants as hub_constants

    bars_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    telemetry_off = hub_constants.HF_HUB_DISABLE_TELEMETRY
    hub_constants.HF_HUB_DISABLE_TELEMETRY = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
            yield
    finally:
        hub_constants.HF_HUB_DISABLE_TELEMETRY = telemetry_off
        if bars_on:
            datasets.enable_progress_bars()


def _row_counts(rows: list[dict[str, Any]], objective: str) -> dict[str, int]:
    if objective == "kto":
        desirable = sum(r["label"] for r in rows)
        return {"desirable": desirable, "undesirable": len(rows) - desirable}
    return {"pairs": len(rows)}


# --------------------------------------------------------------------------- training


class _BaseState:
    """What a LoRA run changes on the base it borrows, captured before and put back after.

    peft injects adapter layers into the base's module tree in place and
    freezes its weights; TRL sets the pad id on its configs, zeroes its dropout,
    tags it, switches it to train mode and patches its ``forward``. Weights
    themselves are never written (peft's base layers are frozen).
    """

    def __init__(self, base: PreTrainedModel) -> None:
        self.keys = set(base.__dict__)
        self.training = {name: m.training for name, m in base.named_modules()}
        self.grad = {name: p.requires_grad for name, p in base.named_parameters()}
        self.dropout = {name: m.p for name, m in base.named_modules() if isinstance(m, torch.nn.Dropout)}
        self.tags = copy.copy(base.__dict__.get("model_tags"))
        self.pad = base.config.get_text_config().pad_token_id
        gen = getattr(base, "generation_config", None)
        self.gen_pad = None if gen is None else gen.pad_token_id

    def restore(self, base: PreTrainedModel) -> None:
        try:
            from peft.tuners.tuners_utils import BaseTunerLayer
        except ImportError:  # no peft: no adapter can have been injected
            BaseTunerLayer = ()  # noqa: N806
        for name, module in list(base.named_modules()):
            if BaseTunerLayer and isinstance(module, BaseTunerLayer):
                parent_name, _, child = name.rpartition(".")
                setattr(base.get_submodule(parent_name) if parent_name else base, child, module.get_base_layer())
        for key in set(base.__dict__) - self.keys:  # TRL's forward patch, peft's peft_config
            del base.__dict__[key]
        modules = dict(base.named_modules())
        params = dict(base.named_parameters())
        if set(modules) != set(self.training) or set(params) != set(self.grad):
            raise TrainingError("a LoRA run left the base's modules changed; it cannot be reused")
        for name, flag in self.training.items():
            modules[name].training = flag
        for name, flag in self.grad.items():
            params[name].requires_grad_(flag)
        for name, p in self.dropout.items():
            modules[name].p = p
        if "model_tags" in self.keys:  # an instance attribute before: its value back (else deleted above)
            base.model_tags = self.tags
        base.config.get_text_config().pad_token_id = self.pad
        if self.gen_pad is not None or getattr(base, "generation_config", None) is not None:
            base.generation_config.pad_token_id = self.gen_pad


@contextlib.contextmanager
def lent_base(base: PreTrainedModel) -> Iterator[PreTrainedModel]:
    """Lend ``base`` to a LoRA run (or a trained adapter) in place; restore it on exit, failure included.

    On exit every adapter layer is replaced by the base layer it wrapped and
    every attribute peft and TRL change is put back (:class:`_BaseState`), so
    the next run of :func:`train_many` starts from the untouched base. The
    weights are the base's own tensors throughout (only their device may
    change: a trainer moves the model to its device).
    """
    state = _BaseState(base)
    try:
        yield base
    finally:
        state.restore(base)


def saved_adapter(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a LoRA run's adapter (peft's ``adapter_config.json``), not a full checkpoint."""
    return (Path(run_dir) / "adapter_config.json").is_file()


@contextlib.contextmanager
def trained_policy(
    run_dir: str | os.PathLike, base: PreTrainedModel | None = None, dtype: str | None = None
) -> Iterator[PreTrainedModel]:
    """The policy a run saved in ``run_dir``, for as long as the ``with`` block lasts.

    A full fine-tune is loaded from its checkpoint (``dtype`` as in
    :func:`datalign.lm.models.load_model`). A LoRA run (``adapter_config.json``)
    is its adapter put on ``base`` in place (loaded from the adapter's
    ``base_model_name_or_path`` when ``base`` is None) with peft's
    ``PeftModel.from_pretrained``; its reference is ``policy.disable_adapter()``,
    and on exit the base is restored (:func:`lent_base`). No copy of the model
    is made.
    """
    run_dir = Path(run_dir)
    if not saved_adapter(run_dir):
        model = load_model(run_dir, dtype=dtype)
        try:
            yield model
        finally:
            del model
        return
    from peft import PeftModel

    if base is None:
        base_path = json.loads((run_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base_path:
            raise ConfigError(f"{run_dir}: a LoRA adapter without base_model_name_or_path needs its base given")
        base = load_model(base_path, dtype=dtype)
    with lent_base(base):
        with warnings.catch_warnings():  # peft reads a property transformers 5.24 deprecates
            warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)
            model = PeftModel.from_pretrained(base, str(run_dir))
        model.eval()
        yield model


def _set_adapter_dropout(model: torch.nn.Module, p: float) -> None:
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            for drop in module.lora_dropout.values():
                if isinstance(drop, torch.nn.Dropout):
                    drop.p = p


def build_trainer(
    base: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping[str, Any]],
    objective: str,
    options: PreferenceOptions,
    seed: int,
    work_dir: str,
    callbacks: Sequence[TrainerCallback] = (),
) -> Any:
    """A ready TRL ``KTOTrainer`` / ``DPOTrainer`` for a fresh copy of ``base`` on checked ``rows``.

    Full fine-tuning (``options.lora`` None): the policy is a deep copy of
    ``base`` and the reference a frozen deep copy (an in-memory model without
    ``ref_model`` makes TRL 1.16 reload the reference from the model's
    ``name_or_path``, which fails for a model built in memory), so ``base``
    itself is never modified. LoRA: ``base`` itself goes to TRL with a
    ``peft_config`` and no ``ref_model``; TRL wraps it with peft (adapters
    injected in place, base weights frozen) and takes the reference as the
    base with the adapters disabled. The caller restores ``base`` after (run
    it inside :func:`lent_base`, as :func:`train_preference` does). KTO rows are shuffled
    once with ``seed`` first: TRL's KTO reads them in order (its KL estimate
    pairs each row with its batch neighbour), so sorted input would give
    batches of one label only; DPO's sampler shuffles with ``seed`` itself.
    ``tokenizer`` should come from :func:`prepare_tokenizer`. ``work_dir`` is
    TRL's output_dir (nothing is saved there).
    """
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOTrainer, KTOTrainer

    rows = [dict(r) for r in rows]
    if objective == "kto":
        if options.batch_size < 2:
            raise ConfigError(
                f"options.batch_size = {options.batch_size}: KTO needs >= 2 rows per batch "
                f"(its KL estimate pairs each prompt with another row's completion)"
            )
        random.Random(seed).shuffle(rows)
    max_length = resolve_max_length(options, base)
    args = trl_config(objective, options, max_length, seed, work_dir)
    dataset = Dataset.from_list(format_rows(rows, tokenizer, options.use_chat_template))
    if options.lora is None:
        policy, reference, peft_config = copy.deepcopy(base), frozen_copy(base), None
    else:
        from accelerate.utils import is_peft_model

        if is_peft_model(base) or getattr(base, "peft_config", None):
            raise ConfigError("options.lora: the base already carries a peft adapter (merge or remove it first)")
        policy, reference, peft_config = base, None, options.lora.peft_config(base)
    policy.train()
    trainer_cls = KTOTrainer if objective == "kto" else DPOTrainer
    trainer = trainer_cls(
        model=policy, ref_model=reference, args=args, train_dataset=dataset,
        processing_class=tokenizer, callbacks=list(callbacks), peft_config=peft_config,
    )
    if options.lora is not None and options.lora.dropout > 0:
        # TRL's disable_dropout zeroed the adapters' dropout with the base's; put the adapters' back.
        _set_adapter_dropout(trainer.model, options.lora.dropout)
    # disable_tqdm=True makes the Trainer print every log dict; the run's own bar replaces both.
    trainer.remove_callback(PrinterCallback)
    return trainer


def _unpatched(model: PreTrainedModel) -> PreTrainedModel:
    # TRL replaces the instance's forward with a fused log-prob head; drop it so the
    # trained policy behaves (generate, plain forward) like a model loaded from disk.
    model.__dict__.pop("forward", None)
    model.eval()
    return model


def _load_base(
    policy: str | os.PathLike, dtype: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    return load_model(policy, dtype=dtype), load_tokenizer(policy)


def train_preference(
    policy: str | os.PathLike | PreTrainedModel,
    rows: Sequence[Mapping[str, Any]],
    objective: str,
    output_dir: str | os.PathLike,
    *,
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike | None = None,
    options: PreferenceOptions | Mapping[str, Any] | None = None,
    seed: int = 0,
    run_name: str | None = None,
    progress: bool = True,
    record: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Align ``policy`` on preference ``rows`` with KTO or DPO (TRL); save it; return the training log.

    ``policy`` is a model directory (the tokenizer is read from it unless
    given) or an in-memory causal LM (``tokenizer`` required); it is never
    modified: a fresh copy is trained against a frozen copy as reference or,
    with ``options.lora``, LoRA adapters are trained on it in place against
    it with the adapters disabled, and removed after the run (failed runs
    included: :func:`lent_base`), its weights never written.
    ``rows`` are KTO rows ``{prompt, completion, label}`` or DPO pairs
    ``{prompt, chosen, rejected}`` (:func:`check_rows`). Losses, per row or
    pair, with r = log pi(y|x) - log pi_ref(y|x) summed over completion tokens:

    * DPO (Rafailov et al. 2023, eq. 7): ``-log sigmoid(beta (r_chosen - r_rejected))``.
    * KTO (Ethayarajh et al. 2024, eqs. 7-8): ``lambda_D (1 - sigmoid(beta (r - z0)))``
      for desirable rows, ``lambda_U (1 - sigmoid(beta (z0 - r)))`` for
      undesirable ones, with ``z0 = max(0, mean_batch(log pi(y'|x) - log pi_ref(y'|x)))``
      over mismatched pairs (each prompt with its batch predecessor's completion),
      detached; the batch loss is the mean over its rows.

    ``output_dir`` receives, atomically, the final policy (safetensors; with
    LoRA the adapter only, which :func:`trained_policy` puts back on the base), its
    tokenizer (pad = eos where it had none) and ``train_log.json``: the returned
    dict, holding ``steps`` (one record per optimizer step: ``loss``,
    ``learning_rate``, ``grad_norm``, TRL's reward metrics and ``seconds``
    since training began), ``summary``
    (final and mean loss, step count, ``load_seconds`` / ``setup_seconds`` /
    ``train_seconds`` / ``save_seconds``), the resolved ``options``, row
    counts and ``record`` (caller's extra keys). The same ``seed`` gives the
    same policy. Bad rows are a :class:`DataError`, bad options a
    :class:`ConfigError`, a non-finite loss a :class:`TrainingError`.
    """
    name = run_name or Path(output_dir).name
    opts = options if isinstance(options, PreferenceOptions) else PreferenceOptions.from_dict(options)
    base, tok, load_seconds = _resolve_base(policy, tokenizer, name, opts.dtype)
    return _train_loaded(base, tok, rows, objective, output_dir, opts, seed, name, progress, record,
                         load_seconds)


def _resolve_base(
    policy: str | os.PathLike | PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike | None,
    name: str,
    dtype: str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, float]:
    """(base model, prepared tokenizer, seconds spent loading) of a policy path or in-memory model.

    ``dtype`` casts a base loaded from a path; an in-memory base keeps its own.
    """
    load_seconds = 0.0
    if isinstance(policy, PreTrainedModel):
        if tokenizer is None:
            raise ConfigError(f"preference run '{name}': an in-memory policy needs its tokenizer")
        base = policy
    else:
        with Timer() as t_load:
            base, loaded_tok = _load_base(policy, dtype)
        load_seconds = t_load.seconds
        tokenizer = tokenizer if tokenizer is not None else loaded_tok
    if not isinstance(tokenizer, PreTrainedTokenizerBase):
        tokenizer = load_tokenizer(tokenizer)
    return base, prepare_tokenizer(tokenizer), load_seconds


_LOG_KEYS = {"run_name", "objective", "seed", "options", "rows", "rows_used", "desirable", "undesirable",
             "trainable_parameters",
             "pairs", "chat_template", "device", "bf16", "total_steps", "summary", "steps", "provenance"}


def _train_loaded(
    base: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping[str, Any]],
    objective: str,
    output_dir: str | os.PathLike,
    options: PreferenceOptions | Mapping[str, Any] | None,
    seed: int,
    name: str,
    progress: bool,
    record: Mapping[str, Any] | None,
    load_seconds: float,
) -> dict[str, Any]:
    """:func:`train_preference` once the base and its tokenizer are in memory."""
    opts = options if isinstance(options, PreferenceOptions) else PreferenceOptions.from_dict(options)
    opts.validate()
    clean = check_rows(rows, objective, name=f"preference run '{name}' rows")
    clash = sorted(set(record or {}) & _LOG_KEYS)
    if clash:
        raise ConfigError(f"preference run '{name}': record key(s) {clash} would overwrite the training log's own")
    recorder = _StepRecorder(name, progress)
    # LoRA trains adapters on the base itself: lend it, and restore it even when the run fails.
    lent = lent_base(base) if opts.lora is not None else contextlib.nullcontext()
    with lent, tempfile.TemporaryDirectory(prefix="datalign-preference-") as work, _quiet_libraries():
        with Timer() as t_setup:
            try:
                trainer = build_trainer(base, tokenizer, clean, objective, opts, seed, work, [recorder])
            except ValueError as exc:  # TRL / transformers / peft refusing a setting
                raise ConfigError(f"preference run '{name}': {str(exc).splitlines()[0]}") from None
        rows_used = len(trainer.train_dataset)
        if rows_used == 0:
            raise DataError(
                f"preference run '{name}': every prompt fills max_length = {trainer.args.max_length} tokens; "
                f"no row is left to train on"
            )
        log.info("preference %s: %s on %d of %d rows, %s, seed %d%s", name, objective.upper(), rows_used,
                 len(clean), trainer.args.device, seed, "" if opts.lora is None else f", LoRA r={opts.lora.r}")
        try:
            with Timer() as t_train:
                result = trainer.train()
        finally:
            recorder.close()
        model = _unpatched(trainer.accelerator.unwrap_model(trainer.model))
        total_steps = int(trainer.state.max_steps)
        device = str(trainer.args.device)
        bf16 = bool(trainer.args.bf16)
        max_length = int(trainer.args.max_length)
        is_main = bool(trainer.accelerator.is_main_process)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        del trainer
        if len(recorder.steps) != total_steps:
            raise TrainingError(
                f"preference run '{name}' logged {len(recorder.steps)} steps, {total_steps} expected"
            )
        losses = [s["loss"] for s in recorder.steps]
        train_log: dict[str, Any] = {
            "run_name": name,
            "objective": objective,
            "seed": int(seed),
            "options": {**opts.to_json(), "max_length": max_length},
            "rows": len(clean),
            "rows_used": rows_used,
            **_row_counts(clean, objective),
            "chat_template": bool(opts.use_chat_template and has_chat_template(tokenizer)),
            "device": device,
            "bf16": bf16,
            "total_steps": total_steps,
            "trainable_parameters": int(trainable),
            "summary": {
                "final_loss": losses[-1],
                "mean_loss": float(sum(losses) / len(losses)),
                "train_loss": float(result.training_loss),
                "steps": total_steps,
                "load_seconds": load_seconds,
                "setup_seconds": t_setup.seconds,
                "train_seconds": t_train.seconds,
            },
            "steps": recorder.steps,
            "provenance": provenance(seed=seed, **_versions()),
            **dict(record or {}),
        }
        with Timer() as t_save:
            # The objectives' contract: only the main process writes (one process here unless launched).
            # A LoRA policy saves its adapter only (adapter_config.json, adapter_model.safetensors).
            if is_main:
                save_checkpoint(model, tokenizer, output_dir, extra_files={"train_log.json": train_log})
        train_log["summary"]["save_seconds"] = t_save.seconds
        if is_main:
            # The log on disk was written before the save time was known; keep the two the same.
            write_json(Path(output_dir) / "train_log.json", train_log)
        # The trainer, its optimizer state and the reference copy sit in reference cycles; free
        # them now, before the next run of train_many builds its own.
        del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    log.info("preference %s: final loss %.4f after %d steps, %.1fs training", name, losses[-1],
             total_steps, t_train.seconds)
    return train_log


def _versions() -> dict[str, str]:
    import transformers
    import trl

    return {"trl_version": trl.__version__, "transformers_version": transformers.__version__}


@dataclass(frozen=True)
class PreferenceRun:
    """One run of :func:`train_many`: its rows, objective, output directory, options and seed."""

    rows: Sequence[Mapping[str, Any]]
    objective: str
    output_dir: str | os.PathLike
    options: Mapping[str, Any] | PreferenceOptions | None = None
    seed: int = 0
    run_name: str | None = None
    record: Mapping[str, Any] = field(default_factory=dict)


def train_many(
    policy: str | os.PathLike | PreTrainedModel,
    runs: Sequence[PreferenceRun],
    *,
    tokenizer: PreTrainedTokenizerBase | str | os.PathLike | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run several preference runs from the same base, one after another, in this process.

    The base (and its tokenizer) is loaded once; each run trains a fresh copy
    of it, or LoRA adapters on it that are removed after the run
    (:func:`train_preference` never leaves its input modified), so every run's
    policy and log are those of a separate :func:`train_preference` call with
    the same arguments. This saves the per-run start-up (interpreter, torch /
    transformers / TRL imports, model load: several seconds each) that 80
    separate processes would pay. Returns the runs' training logs in order;
    the first failing run raises (the runs before it are saved).
    """
    if not runs:
        raise ConfigError("train_many: no runs given")
    first_name = runs[0].run_name or Path(runs[0].output_dir).name
    dtypes = {(run.options if isinstance(run.options, PreferenceOptions)
               else PreferenceOptions.from_dict(run.options)).dtype for run in runs}
    if len(dtypes) > 1:
        raise ConfigError(f"train_many: the runs share one base but ask for dtypes {sorted(map(str, dtypes))}")
    base, tok, load_seconds = _resolve_base(policy, tokenizer, first_name, dtypes.pop())
    logs = []
    for i, run in enumerate(tqdm(runs, desc="preference runs", unit="run", file=sys.stderr,
                                 disable=not progress or len(runs) < 2)):
        logs.append(_train_loaded(
            base, tok, run.rows, run.objective, run.output_dir, run.options, run.seed,
            run.run_name or Path(run.output_dir).name, progress, run.record,
            # The one load is booked to the first run.
            load_seconds if i == 0 else 0.0,
        ))
    return logs


# --------------------------------------------------------------------------- jobs


def read_rows(rows: str | os.PathLike | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows given inline (a list of dicts) or as a JSON Lines file (one row per line)."""
    if isinstance(rows, str | os.PathLike):
        path = Path(rows)
        if not path.is_file():
            raise DataError(f"preference rows file not found: {path}")
        out = []
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{n}: not a JSON row ({exc.msg})") from None
        return out
    return [dict(r) for r in rows]


_JOB_KEYS = {"base", "tokenizer", "rows", "objective", "options", "seed", "run_name", "record"}


def _job_run(spec: Mapping[str, Any], output_dir: str | os.PathLike) -> PreferenceRun:
    unknown = sorted(set(spec) - _JOB_KEYS)
    if unknown:
        raise ConfigError(f"preference job: unknown key(s) {unknown}; known: {sorted(_JOB_KEYS)}")
    for key in ("base", "rows", "objective"):
        if key not in spec:
            raise ConfigError(f"preference job: missing key '{key}'")
    return PreferenceRun(
        rows=read_rows(spec["rows"]), objective=spec["objective"], output_dir=output_dir,
        options=spec.get("options"), seed=int(spec.get("seed", 0)), run_name=spec.get("run_name"),
        record=spec.get("record") or {},
    )


def run_preference_job(spec: Mapping[str, Any], output_dir: str | os.PathLike) -> dict[str, Any]:
    """One preference run from a plain JSON-able spec; returns its training log.

    ``spec`` keys: ``base`` (model directory), ``rows`` (a JSONL path or a list
    of row dicts), ``objective`` ("kto" / "dpo"); optional ``tokenizer``
    (directory; default: the base's), ``options`` (:class:`PreferenceOptions`
    keys), ``seed`` (0), ``run_name`` (the output directory's name) and
    ``record`` (extra keys copied into the log). Unknown keys are a
    :class:`ConfigError`. The policy and ``train_log.json`` go to ``output_dir``.
    """
    run = _job_run(spec, output_dir)
    return train_many(spec["base"], [run], tokenizer=spec.get("tokenizer"))[0]


def run_preference_jobs(jobs: Sequence[tuple[Mapping[str, Any], str | os.PathLike]]) -> list[dict[str, Any]]:
    """Several ``(spec, output_dir)`` jobs in this process, each base loaded once (see :func:`train_many`).

    Jobs sharing ``base`` and ``tokenizer`` run together, in their given order
    within the group; the logs come back in the order of ``jobs``.
    """
    groups: dict[tuple[str, str | None], list[int]] = {}
    runs = []
    for i, (spec, out) in enumerate(jobs):
        runs.append(_job_run(spec, out))
        key = (str(spec["base"]), None if spec.get("tokenizer") is None else str(spec["tokenizer"]))
        groups.setdefault(key, []).append(i)
    logs: list[dict[str, Any] | None] = [None] * len(runs)
    for (base, tok), idx in groups.items():
        for i, train_log in zip(idx, train_many(base, [runs[i] for i in idx], tokenizer=tok), strict=True):
            logs[i] = train_log
    return [lg for lg in logs if lg is not None]


# The training seam (datalign.training.objectives): a job spec naming "kto" or "dpo" runs here.
from datalign.training.objectives import register_objective  # noqa: E402

for _objective in OBJECTIVES:
    register_objective(_objective, run_preference_job)


__all__ = [
    "OBJECTIVES",
    "LoraOptions",
    "PreferenceOptions",
    "PreferenceRun",
    "build_trainer",
    "check_rows",
    "encode_prompt_completion",
    "format_rows",
    "frozen_copy",
    "has_chat_template",
    "lent_base",
    "prepare_tokenizer",
    "read_rows",
    "resolve_max_length",
    "run_preference_job",
    "run_preference_jobs",
    "saved_adapter",
    "train_many",
    "train_preference",
    "trained_policy",
    "trl_config",
]
