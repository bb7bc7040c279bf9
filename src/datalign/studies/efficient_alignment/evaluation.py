"""Evaluation of an aligned policy on held-out preference pairs ``{prompt, chosen, rejected}``.

Two kinds of measure, both from plain lists of dicts to plain dicts:

* **Implicit-reward measures** (no judge needed; :func:`evaluate_preferences`):
  the DPO implicit reward ``r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x))``
  (Rafailov et al. 2023, "Direct Preference Optimization", eq. 5, up to the
  prompt-only term beta log Z(x), which cancels between two completions of one
  prompt), the **preference accuracy** (share of pairs with r(chosen) >
  r(rejected), ties half), the **mean reward margin** r(chosen) - r(rejected)
  with a percentile-bootstrap CI, and the policy's **NLL per token of the
  chosen completions** (does alignment keep the good answers likely?).
* **Judged win rate** (:func:`judge_win_rate`; the ISA paper's metric, with a
  reward model in place of its GPT-4o judge): the policy's greedy completion
  of each prompt against the dataset's reference completion (``chosen``, the
  SFT target), both scored by a sequence-classification reward model; win
  when the policy's score is higher, ties half.

Log-probabilities are those TRL trains on: the sum over the completion tokens
(EOS included) of log pi(token | everything before), the row tokenized by
:func:`datalign.training.preference.encode_prompt_completion` (chat template
when the tokenizer has one, plain ``prompt + completion + eos`` otherwise)
and cut at ``max_length`` tokens keeping the start, as TRL's collators do.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.training.preference import (
    PreferenceOptions,
    as_messages,
    encode_prompt_completion,
    has_chat_template,
    resolve_max_length,
)

log = logging.getLogger(__name__)

PAIR_KEYS = ("prompt", "chosen", "rejected")


# --------------------------------------------------------------------------- statistics


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of ``values`` (n,) (Efron & Tibshirani 1993, ch. 13).

    Resamples the n values with replacement ``n_boot`` times (seeded) and
    returns the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of the resampled means. One value gives (v, v). Empty input or a
    confidence outside (0, 1) is a :class:`ConfigError` / :class:`DataError`.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise DataError(f"bootstrap CI needs a non-empty 1-D array of values, got shape {x.shape}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"bootstrap confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ConfigError(f"bootstrap n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def pairwise_outcomes(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> np.ndarray:
    """(n,) outcome of ``a[i]`` against ``b[i]``: 1 win, 0.5 tie, 0 loss (float64).

    Mismatched shapes or non-finite scores are a :class:`DataError`.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"pairwise comparison needs two 1-D arrays of one length, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DataError("pairwise comparison: a score is NaN or infinite")
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


def preference_accuracy(r_chosen: Sequence[float] | np.ndarray, r_rejected: Sequence[float] | np.ndarray) -> float:
    """Share of pairs whose chosen completion has the higher implicit reward, ties counting half.

    ``acc = (1/n) sum_i [1(r_c,i > r_r,i) + 0.5 * 1(r_c,i = r_r,i)]``; TRL logs
    the same quantity as ``rewards/accuracies`` (without the half for ties).
    """
    outcomes = pairwise_outcomes(r_chosen, r_rejected)
    if outcomes.size == 0:
        raise DataError("preference accuracy of zero pairs")
    return float(outcomes.mean())


# --------------------------------------------------------------------------- log-probabilities


def check_pairs(pairs: Sequence[Mapping[str, Any]], keys: Sequence[str] = PAIR_KEYS, name: str = "pairs") -> None:
    """Raise a one-line :class:`DataError` for an empty list or a row without the needed text keys."""
    if not pairs:
        raise DataError(f"{name}: no held-out pairs to evaluate")
    for i, row in enumerate(pairs):
        if not isinstance(row, Mapping):
            raise DataError(f"{name}[{i}]: a pair must be a dict, got {type(row).__name__}")
        missing = [k for k in keys if k not in row]
        if missing:
            raise DataError(f"{name}[{i}]: missing key(s) {missing} (has {sorted(row)})")
        for key in keys:
            value = row[key]
            if not (isinstance(value, str) or isinstance(value, list) and value):
                raise DataError(f"{name}[{i}]: '{key}' must be a string or a message list, got {type(value).__name__}")


def _as_chat(text: Any, role: str, chat: bool) -> Any:
    return as_messages(text, role) if chat else text


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode_rows(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    max_length: int,
    use_chat_template: bool = True,
) -> list[tuple[list[int], int]]:
    """Per row: (token ids of prompt + completion cut at ``max_length``, number of prompt tokens kept).

    The split is :func:`encode_prompt_completion`'s (TRL's); the cut keeps the
    start, as TRL's collators do, so a long completion loses its end and a
    prompt of ``max_length`` tokens or more leaves no completion token.
    """
    if len(prompts) != len(completions):
        raise DataError(f"{len(prompts)} prompts but {len(completions)} completions")
    chat = use_chat_template and has_chat_template(tokenizer)
    out = []
    for prompt, completion in zip(prompts, completions, strict=True):
        p_ids, c_ids = encode_prompt_completion(
            tokenizer, _as_chat(prompt, "user", chat), _as_chat(completion, "assistant", chat)
        )
        ids = (p_ids + c_ids)[:max_length]
        out.append((ids, min(len(p_ids), len(ids))))
    return out


@torch.no_grad()
def completion_logps(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    *,
    max_length: int | None = None,
    batch_size: int = 8,
    use_chat_template: bool = True,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed completion log-probabilities ``log pi(y|x)`` (n,) float64 nats, and completion token counts (n,).

    ``log pi(y|x) = sum_{t in completion} log softmax(logits[t-1])[ids[t]]``
    over the completion tokens of each row (EOS included), as TRL's KTO/DPO
    trainers compute it, with rows encoded by :func:`encode_rows`
    (``max_length`` None: the policy's context length capped at 512, the
    training default). Rows are right-padded in batches of ``batch_size`` and
    scored without gradients in eval mode on the model's device (the model's
    train/eval mode is restored); log-softmax runs in float32, sums in float64.
    A row left with no completion token scores 0 with count 0. A non-finite
    log-probability is a :class:`TrainingError`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if max_length is None:
        max_length = resolve_max_length(PreferenceOptions(), model)
    encoded = encode_rows(tokenizer, prompts, completions, max_length, use_chat_template)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = _model_device(model)
    was_training = model.training
    model.eval()
    logps = np.zeros(len(encoded), dtype=np.float64)
    counts = np.zeros(len(encoded), dtype=np.int64)
    try:
        starts = range(0, len(encoded), batch_size)
        for start in tqdm(starts, desc="log-probs", unit="batch", file=sys.stderr, disable=not progress):
            chunk = encoded[start : start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            target = torch.zeros((len(chunk), width), dtype=torch.bool)
            for j, (ids, n_prompt) in enumerate(chunk):
                input_ids[j, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention[j, : len(ids)] = 1
                target[j, n_prompt : len(ids)] = True
            input_ids, attention = input_ids.to(device), attention.to(device)
            logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()
            # Token t is predicted by the logits at t-1; a completion's first token by the prompt's last.
            # logit - logsumexp is log-softmax without a second (batch, length, vocab) tensor.
            token_logps = logits.gather(-1, input_ids[:, 1:, None])[..., 0] - torch.logsumexp(logits, dim=-1)
            del logits
            mask = target[:, 1:].to(device)
            sums = (token_logps.double() * mask).sum(dim=1)
            logps[start : start + len(chunk)] = sums.cpu().numpy()
            counts[start : start + len(chunk)] = mask.sum(dim=1).cpu().numpy()
    finally:
        model.train(was_training)
    if not np.isfinite(logps).all():
        bad = int(np.flatnonzero(~np.isfinite(logps))[0])
        raise TrainingError(f"log-probability of row {bad} is not finite ({logps[bad]})")
    return logps, counts


def _reference_logps(
    policy: PreTrainedModel, reference: PreTrainedModel | None, *args: Any, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`completion_logps` of the reference: ``reference``, or (None) ``policy`` with its adapters disabled."""
    if reference is not None:
        return completion_logps(reference, *args, **kwargs)
    if not callable(getattr(policy, "disable_adapter", None)) or not hasattr(policy, "peft_config"):
        raise ConfigError("reference None means the policy's base with its LoRA adapters disabled; "
                          f"{type(policy).__name__} is not a peft model")
    with policy.disable_adapter():
        return completion_logps(policy, *args, **kwargs)


def implicit_rewards(
    policy: PreTrainedModel,
    reference: PreTrainedModel | None,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[Mapping[str, Any]],
    *,
    beta: float = 0.1,
    max_length: int | None = None,
    batch_size: int = 8,
    use_chat_template: bool = True,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Implicit rewards ``r = beta (log pi(y|x) - log pi_ref(y|x))`` of every pair's two completions.

    DPO paper (Rafailov et al. 2023) eq. 5, the reward the policy implicitly
    optimises (KTO uses the same log-ratio, Ethayarajh et al. 2024 eq. 7).
    Returns (n,) arrays: ``chosen`` and ``rejected`` rewards, the policy's
    ``chosen_logps`` and the token counts ``chosen_tokens`` /
    ``rejected_tokens`` (0: the prompt filled ``max_length``). ``reference``
    None: ``policy`` is a LoRA policy (a peft model) and pi_ref is its base
    with the adapters disabled, as in its training (no copy of the model).
    """
    check_pairs(pairs)
    if not (beta > 0 and math.isfinite(beta)):
        raise ConfigError(f"beta must be a positive number, got {beta}")
    prompts = [p["prompt"] for p in pairs]
    kwargs = {"max_length": max_length, "batch_size": batch_size, "use_chat_template": use_chat_template,
              "progress": progress}
    out: dict[str, np.ndarray] = {}
    for key in ("chosen", "rejected"):
        texts = [p[key] for p in pairs]
        pi, n_tok = completion_logps(policy, tokenizer, prompts, texts, **kwargs)
        ref, _ = _reference_logps(policy, reference, tokenizer, prompts, texts, **kwargs)
        out[key] = beta * (pi - ref)
        out[f"{key}_logps"] = pi
        out[f"{key}_tokens"] = n_tok
    return out


def evaluate_preferences(
    policy: PreTrainedModel,
    reference: PreTrainedModel | None,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[Mapping[str, Any]],
    *,
    beta: float = 0.1,
    max_length: int | None = None,
    batch_size: int = 8,
    use_chat_template: bool = True,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Implicit-reward evaluation of ``policy`` against ``reference`` on held-out ``pairs``.

    Returns a JSON-able dict: ``pairs`` (evaluated), ``pairs_dropped`` (a
    completion had no token within ``max_length``), ``beta``,
    ``preference_accuracy`` (:func:`preference_accuracy`), ``reward_margin``
    (mean over pairs of r(chosen) - r(rejected), nats x beta) with
    ``reward_margin_ci`` ([low, high], percentile bootstrap over pairs,
    ``confidence``, ``n_boot`` resamples, ``seed``), ``reward_chosen`` and
    ``reward_rejected`` (means), ``chosen_nll_per_token`` (total NLL of the
    chosen completions under the policy / their total token count, nats) and
    ``chosen_tokens``. No pair left to evaluate is a :class:`DataError`.
    ``reference`` None: a LoRA policy against its adapter-disabled base
    (:func:`implicit_rewards`).
    """
    rewards = implicit_rewards(policy, reference, tokenizer, pairs, beta=beta, max_length=max_length,
                               batch_size=batch_size, use_chat_template=use_chat_template, progress=progress)
    keep = (rewards["chosen_tokens"] > 0) & (rewards["rejected_tokens"] > 0)
    if not keep.any():
        raise DataError(f"all {len(pairs)} pairs have a prompt that fills max_length: nothing to evaluate")
    r_c, r_r = rewards["chosen"][keep], rewards["rejected"][keep]
    margins = r_c - r_r
    low, high = bootstrap_mean_ci(margins, confidence=confidence, n_boot=n_boot, seed=seed)
    tokens = int(rewards["chosen_tokens"][keep].sum())
    return {
        "pairs": int(keep.sum()),
        "pairs_dropped": int((~keep).sum()),
        "beta": float(beta),
        "preference_accuracy": preference_accuracy(r_c, r_r),
        "reward_margin": float(margins.mean()),
        "reward_margin_ci": [low, high],
        "confidence": confidence,
        "reward_chosen": float(r_c.mean()),
        "reward_rejected": float(r_r.mean()),
        "chosen_nll_per_token": float(-rewards["chosen_logps"][keep].sum() / tokens),
        "chosen_tokens": tokens,
    }


def evaluate_policy_dir(
    policy_dir: str | os.PathLike,
    reference_dir: str | os.PathLike,
    pairs: Sequence[Mapping[str, Any]],
    *,
    beta: float | None = None,
    batch_size: int = 8,
    n_boot: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """:func:`evaluate_preferences` of a policy saved by ``train_preference`` against its base.

    Loads both checkpoints (:func:`datalign.lm.models.load_model`, float32, on
    the first GPU if any) and the policy's tokenizer; a LoRA run's adapter is
    put on the reference itself and the reference log-probs are its base's
    with the adapter disabled (one model in memory, not two); ``beta``, ``max_length``
    and the chat-template choice default to those of the policy's
    ``train_log.json``, so the implicit reward is the one the run optimised.
    Adds ``policy`` and ``reference`` (the directories) to the result.
    """
    from datalign.core.io import read_json
    from datalign.lm.models import load_model
    from datalign.lm.tokenizer import load_tokenizer
    from datalign.training.preference import saved_adapter, trained_policy

    log_file = Path(policy_dir) / "train_log.json"
    options = read_json(log_file).get("options", {}) if log_file.is_file() else {}
    if beta is None:
        beta = float(options.get("beta", PreferenceOptions().beta))
    device = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    reference = load_model(reference_dir).to(device)
    tokenizer = load_tokenizer(policy_dir)
    lora = saved_adapter(policy_dir)
    with trained_policy(policy_dir, base=reference) as policy:
        result = evaluate_preferences(
            policy.to(device), None if lora else reference, tokenizer, pairs, beta=beta,
            max_length=options.get("max_length"), batch_size=batch_size,
            use_chat_template=bool(options.get("use_chat_template", True)), n_boot=n_boot, seed=seed,
            progress=progress,
        )
    return {"policy": str(policy_dir), "reference": str(reference_dir), **result}


# --------------------------------------------------------------------------- judged win rate


def load_reward_model(
    name_or_path: str | os.PathLike, device: torch.device | str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A sequence-classification reward model with one output and its tokenizer, in eval mode.

    Loads ``AutoModelForSequenceClassification`` and ``AutoTokenizer`` from a
    directory or a hub name (float32, on ``device``; default: the first GPU if
    any, else the CPU). A model with ``num_labels != 1`` is not a scalar reward
    model: :class:`ConfigError`. Without a pad token, pad = eos, mirrored into
    the model config (the classifier reads the score at the last non-pad token).
    A model that cannot be loaded is a :class:`TrainingError` naming it.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    name = str(name_or_path)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot load reward model '{name}': {str(exc).splitlines()[0]}") from None
    if model.config.num_labels != 1:
        raise ConfigError(
            f"reward model '{name}' has {model.config.num_labels} outputs; a scalar reward model has 1"
        )
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ConfigError(f"reward model '{name}': its tokenizer has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if device is None:
        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    model.to(device)
    model.eval()
    return model, tokenizer


def _reward_text(tokenizer: PreTrainedTokenizerBase, prompt: Any, completion: Any) -> list[int]:
    if has_chat_template(tokenizer):
        messages = as_messages(prompt, "user") + as_messages(completion, "assistant")
        return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    if not (isinstance(prompt, str) and isinstance(completion, str)):
        raise DataError("a message list needs a reward-model tokenizer with a chat template")
    return list(tokenizer(text=prompt + completion)["input_ids"])


@torch.no_grad()
def reward_scores(
    reward_model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    completions: Sequence[Any],
    *,
    batch_size: int = 8,
    max_length: int = 512,
    progress: bool = False,
) -> np.ndarray:
    """Scalar reward-model scores (n,) float64 of each (prompt, completion).

    The pair is rendered with the reward model's chat template when it has one
    (user prompt, assistant completion), else as ``prompt + completion``;
    sequences longer than ``max_length`` keep their last ``max_length`` tokens
    (the completion is what is judged). Right-padded batches; the score is the
    model's single logit (read at the last non-pad token by the classifier).
    """
    if len(prompts) != len(completions):
        raise DataError(f"{len(prompts)} prompts but {len(completions)} completions to score")
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ConfigError("reward tokenizer has no pad token; load it with load_reward_model")
    device = _model_device(reward_model)
    scores = np.zeros(len(prompts), dtype=np.float64)
    encoded = [_reward_text(tokenizer, p, c)[-max_length:] for p, c in zip(prompts, completions, strict=True)]
    for start in tqdm(range(0, len(encoded), batch_size), desc="reward model", unit="batch", file=sys.stderr,
                      disable=not progress):
        chunk = encoded[start : start + batch_size]
        width = max(len(ids) for ids in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, ids in enumerate(chunk):
            input_ids[j, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[j, : len(ids)] = 1
        logits = reward_model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
        scores[start : start + len(chunk)] = logits[:, 0].float().cpu().numpy()
    return scores


@torch.no_grad()
def generate_completions(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    use_chat_template: bool = True,
    progress: bool = False,
) -> list[str]:
    """The policy's greedy completion (decoded text, special tokens removed) of each prompt.

    Prompts are encoded as in training (:func:`encode_prompt_completion`'s
    prompt part: the chat template's generation prompt, or the plain text),
    left-padded, and cut from the left so that prompt + ``max_new_tokens``
    fits the policy's context. Greedy decoding (``do_sample=False``) stops at
    EOS or after ``max_new_tokens``. The model's train/eval mode is restored.
    """
    from transformers import GenerationConfig

    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    chat = use_chat_template and has_chat_template(tokenizer)
    n_pos = getattr(policy.config, "n_positions", None) or getattr(policy.config, "max_position_embeddings", None)
    keep = (n_pos - max_new_tokens) if n_pos else None
    if keep is not None and keep < 1:
        raise ConfigError(f"max_new_tokens = {max_new_tokens} leaves no room for a prompt in {n_pos} positions")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = []
    for prompt in prompts:
        if chat:
            ids = tokenizer.apply_chat_template(as_messages(prompt, "user"), tokenize=True, return_dict=True,
                                                add_generation_prompt=True)["input_ids"]
        elif isinstance(prompt, str):
            ids = tokenizer(text=prompt)["input_ids"]
        else:
            raise DataError("a message-list prompt needs a tokenizer with a chat template")
        ids = list(ids)[-keep:] if keep else list(ids)
        if not ids:
            # An empty plain prompt: start from EOS, the document separator the model knows.
            ids = [tokenizer.eos_token_id]
        encoded.append(ids)
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id,
                              eos_token_id=tokenizer.eos_token_id)
    device = _model_device(policy)
    was_training = policy.training
    policy.eval()
    texts: list[str] = []
    try:
        for start in tqdm(range(0, len(encoded), batch_size), desc="generate", unit="batch", file=sys.stderr,
                          disable=not progress):
            chunk = encoded[start : start + batch_size]
            width = max(len(ids) for ids in chunk)
            # Left padding: every prompt ends at the last column, where generation continues.
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, ids in enumerate(chunk):
                input_ids[j, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
                attention[j, width - len(ids):] = 1
            out = policy.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                  generation_config=config)
            texts += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    finally:
        policy.train(was_training)
    return texts


def judge_win_rate(
    policy: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    reward_model: PreTrainedModel,
    reward_tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[Mapping[str, Any]],
    *,
    reference_key: str = "chosen",
    max_new_tokens: int = 64,
    batch_size: int = 8,
    use_chat_template: bool = True,
    max_length: int = 512,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Win rate of the policy's greedy completions against each row's reference completion.

    The ISA paper's metric (Khera et al. 2024: GPT-4o-judged win rate against
    the dataset's SFT target), judged here by a scalar reward model: for every
    row, the policy's greedy completion (:func:`generate_completions`) and
    ``row[reference_key]`` are scored by :func:`reward_scores`; the outcome is
    1 when the policy's score is higher, 0.5 on a tie, 0 otherwise.
    Returns ``win_rate`` (mean outcome, in [0, 1]) with ``win_rate_ci``
    (percentile bootstrap over rows), ``wins`` / ``ties`` / ``losses``, ``n``,
    the mean scores ``policy_score`` / ``reference_score``, and
    ``completions`` (the generated texts, in row order).
    """
    check_pairs(pairs, keys=("prompt", reference_key))
    prompts = [p["prompt"] for p in pairs]
    references = [p[reference_key] for p in pairs]
    generated = generate_completions(policy, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                     batch_size=batch_size, use_chat_template=use_chat_template,
                                     progress=progress)
    s_policy = reward_scores(reward_model, reward_tokenizer, prompts, generated, batch_size=batch_size,
                             max_length=max_length, progress=progress)
    s_ref = reward_scores(reward_model, reward_tokenizer, prompts, references, batch_size=batch_size,
                          max_length=max_length, progress=progress)
    outcomes = pairwise_outcomes(s_policy, s_ref)
    low, high = bootstrap_mean_ci(outcomes, confidence=confidence, n_boot=n_boot, seed=seed)
    return {
        "n": int(outcomes.size),
        "win_rate": float(outcomes.mean()),
        "win_rate_ci": [low, high],
        "confidence": confidence,
        "wins": int((outcomes == 1.0).sum()),
        "ties": int((outcomes == 0.5).sum()),
        "losses": int((outcomes == 0.0).sum()),
        "policy_score": float(s_policy.mean()),
        "reference_score": float(s_ref.mean()),
        "reference_key": reference_key,
        "completions": list(generated),
    }


__all__ = [
    "bootstrap_mean_ci",
    "check_pairs",
    "completion_logps",
    "encode_rows",
    "evaluate_policy_dir",
    "evaluate_preferences",
    "generate_completions",
    "implicit_rewards",
    "judge_win_rate",
    "load_reward_model",
    "pairwise_outcomes",
    "preference_accuracy",
    "reward_scores",
]
