"""``quality``: keep the rows a causal LM finds most likely (lowest completion perplexity).

Khera et al. 2024 compare ISA with an LLM yes/no quality filter. Without an
LLM judge offline, the filter here is a perplexity probe: score each row by
the mean negative log-likelihood of its completion given its prompt under a
causal LM (:func:`completion_nll`) and keep the k lowest. The selection method
takes those per-row scores precomputed, so the (slow) scoring is cached as an
artifact and the selection is instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from datalign.core.errors import ConfigError, DataError
from datalign.studies.efficient_alignment.selection.registry import (
    SelectionResult,
    register_method,
    top_k,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class CompletionNLL(NamedTuple):
    """Per-row completion scores: mean NLL (nats/token), scored token count, truncation flag; each (n,)."""

    mean_nll: np.ndarray
    n_tokens: np.ndarray
    truncated: np.ndarray


def _row_ids(
    prompt: list[int], completion: list[int], max_length: int | None
) -> tuple[list[int], int, bool]:
    """prompt + completion ids cut to ``max_length``; the index of the first completion token.

    The prompt loses tokens from its start first (the completion is what is
    scored), keeping one token when it has any, to predict the first completion
    token; only then does the completion lose tokens from its end.
    """
    if max_length is None or len(prompt) + len(completion) <= max_length:
        return prompt + completion, len(prompt), False
    keep_prompt = max(min(len(prompt), 1), max_length - len(completion))
    prompt = prompt[len(prompt) - keep_prompt :]
    completion = completion[: max_length - len(prompt)]
    return prompt + completion, len(prompt), True


def completion_nll(
    prompts: Sequence[str],
    completions: Sequence[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 8,
    max_length: int | None = None,
    append_eos: bool = False,
    progress: bool = True,
) -> CompletionNLL:
    """Mean token NLL of each completion given its prompt under a causal LM.

    For row i with prompt tokens p and completion tokens c (each text encoded
    on its own: ``tokenizer(prompt)`` with the tokenizer's special tokens, e.g.
    a BOS, and ``tokenizer(completion)`` without, plus EOS when ``append_eos``,
    then concatenated, so the prompt/completion boundary is exact):

        mean_nll_i = -(1 / |c|) sum_t log P(c_t | p, c_<t)

    in nats per token, accumulated in float64. Only completion tokens are
    scored; a first completion token with no prompt token before it cannot be
    predicted and is not scored. Rows longer than ``max_length`` (default:
    the model's context) lose prompt tokens from the start first, then
    completion tokens from the end (``truncated``). Returns
    :class:`CompletionNLL` of (n,) arrays. Mismatched lengths, or a row with no
    scorable token, is a :class:`DataError` naming the row.
    """
    # torch and the LM helpers are imported here, not at module level: the
    # registry imports every method module, and ISA or density selection needs neither.
    import torch
    from tqdm.auto import tqdm

    from datalign.studies.efficient_alignment.embedders import context_length, length_sorted_batches

    n = len(prompts)
    if n != len(completions):
        raise DataError(f"completion_nll: {n} prompts but {len(completions)} completions")
    if n == 0:
        raise DataError("completion_nll: no rows to score")
    if batch_size < 1:
        raise ConfigError(f"completion_nll: batch_size must be >= 1, got {batch_size}")
    limit = max_length if max_length is not None else context_length(model, tokenizer)
    if limit is not None and limit < 2:
        raise ConfigError(f"completion_nll: max_length must be >= 2 tokens, got {limit}")
    prompt_ids = tokenizer(list(prompts), add_special_tokens=True, verbose=False)["input_ids"]
    completion_ids = tokenizer(list(completions), add_special_tokens=False, verbose=False)["input_ids"]
    if append_eos:
        if tokenizer.eos_token_id is None:
            raise ConfigError("completion_nll: append_eos needs a tokenizer with an EOS token")
        completion_ids = [c + [tokenizer.eos_token_id] for c in completion_ids]
    rows: list[list[int]] = []
    starts = np.empty(n, dtype=np.int64)
    truncated = np.zeros(n, dtype=bool)
    for i, (p, c) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        ids, start, cut = _row_ids(list(p), list(c), limit)
        # Position 0 has no context: a completion starting there loses its first token.
        start = max(start, 1)
        if start >= len(ids):
            raise DataError(f"completion_nll: row {i} has no completion token to score "
                            f"(prompt {len(p)} tokens, completion {len(c)} tokens)")
        rows.append(ids)
        starts[i] = start
        truncated[i] = cut

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    totals = np.zeros(n, dtype=np.float64)
    counts = np.array([len(r) - s for r, s in zip(rows, starts, strict=True)], dtype=np.int64)
    was_training = model.training
    model.eval()
    try:
        batches = list(length_sorted_batches([len(r) for r in rows], batch_size))
        with torch.no_grad():
            for idx in tqdm(batches, desc="completion NLL", unit="batch", disable=not progress):
                width = max(len(rows[i]) for i in idx)
                input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                labels = torch.full((len(idx), width), -100, dtype=torch.long)
                for j, i in enumerate(idx):
                    # Right padding: positions 0..len-1 are the model's default ones.
                    seq = torch.tensor(rows[i], dtype=torch.long)
                    input_ids[j, : len(seq)] = seq
                    mask[j, : len(seq)] = 1
                    labels[j, starts[i] : len(seq)] = seq[starts[i] :]
                logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
                # Token t + 1 is predicted by the logits at t.
                nll = torch.nn.functional.cross_entropy(
                    logits[:, :-1].float().transpose(1, 2), labels[:, 1:].to(device),
                    ignore_index=-100, reduction="none",
                )
                totals[idx] = nll.double().sum(dim=1).cpu().numpy()
    finally:
        model.train(was_training)
    mean = totals / counts
    if not np.isfinite(mean).all():
        bad = int(np.flatnonzero(~np.isfinite(mean))[0])
        raise DataError(f"completion_nll: non-finite NLL at row {bad}")
    return CompletionNLL(mean, counts, truncated)


@register_method("quality", needs="scores")
def quality(data: np.ndarray, k: int, seed: int) -> SelectionResult:
    """Keep the k rows of lowest per-row score (mean completion NLL from :func:`completion_nll`).

    ``data``: (n,) NLL in nats per token, lower is better. ``scores`` =
    -NLL so that the kept rows come first; ties go to the lower row index.
    ``seed`` is unused (the filter is deterministic). The perplexity probe
    stands in for the LLM yes/no quality filter of Khera et al. 2024's baselines.
    """
    scores = -np.asarray(data, dtype=np.float64)
    return SelectionResult("quality", top_k(scores, k), scores, {"nll": np.asarray(data, float)})
