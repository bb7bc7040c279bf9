"""The ``paper`` Task2Vec estimator: the authors' procedure, with its defects fixed.

For one batch of sequences (PAPERS.md part 1):

1. a fresh copy of the probe (the caller's model is never touched);
2. fine-tune the output head on the batch: AdamW (lr ``head_lr``, eps
   ``adam_eps``, weight decay ``weight_decay``), mini-batches of
   ``head_minibatch`` sequences reshuffled every epoch, ``head_epochs`` epochs,
   next-token cross-entropy over real (unpadded) targets;
3. Monte Carlo Fisher: for each mini-batch ``b`` of ``head_minibatch``
   sequences (in order), sample a label ``y[i,t] ~ softmax(logits[i,t])`` at
   every real position, take ``L_b = mean_{real (i,t)} -log softmax(logits[i,t])[y[i,t]]``,
   back-propagate, and accumulate ``grad(L_b)^2``; the estimate is
   ``F = (1/B) sum_b grad(L_b)^2`` over the ``B`` mini-batches (the gradient of
   a mini-batch mean is squared, as the authors do, not per-example gradients).

Defects of the authors' code fixed here:

- **off by one**: they fed the sampled labels to the model's shifted LM loss,
  so the label sampled from the softmax at position t+1 was scored against the
  logits at t. Here the label sampled at t is scored against the logits at t,
  which is what the Fisher ``E_{y~p_t}[grad log p_t(y)^2]`` needs;
- **padding**: padded positions (``attention_mask == 0``) are neither sampled,
  scored, nor used as fine-tuning targets;
- **dropout**: the probe runs in eval mode (dropout off) for fine-tuning and
  the Fisher, so the Fisher is that of the deterministic network;
- **fresh probe per batch**: each batch starts from the caller's probe, not
  from the previous batch's fine-tuned head;
- **distinct batches**: their batches were all drawn with the same shuffle
  seed, i.e. the same batch N times. Drawing distinct batches is the caller's
  job (``datalign.lm.tokens.sample_segment_batches`` deals disjoint segments);
- **"95% CI"**: what they reported as a 95% confidence interval was the
  standard deviation of the pairwise distances; ``datalign.task2vec.coefficients``
  reports both, and a real bootstrap interval.

Kept as the authors had it, on purpose: GPT-2 ties ``lm_head`` to the input
embedding ``wte``, so "head-only" fine-tuning trains that shared matrix,
which moves the input embeddings too (its gradient has both the output and
the input path), and the shared matrix is part of the embedding under the
name ``transformer.wte.weight``.

Randomness (the epoch shuffles and the sampled labels) comes only from
``seed``: the same probe, batch and seed give the same Fisher.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from datalign.core.errors import DataError, TrainingError
from datalign.task2vec.lm import (
    forward_logits,
    minibatch_slices,
    model_device,
    next_token_loss,
    sub_seed,
    upcast,
    weighted_mean,
)
from datalign.task2vec.parameters import embedding_parameters, head_parameters
from datalign.task2vec.registry import BatchFisher

if TYPE_CHECKING:
    from datalign.lm.tokens import SequenceBatch
    from datalign.task2vec.config import Task2VecConfig


def finetune_head(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    cfg: Task2VecConfig,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Fine-tune ``model``'s output head in place on one batch (step 2 above).

    Only the head's parameters (for tied GPT-2: the shared ``wte`` matrix) are
    trained; every other parameter is frozen. ``generator`` (CPU) orders the
    mini-batches of each epoch. Returns the token-weighted mean training loss of
    the first and last epochs and the number of optimizer steps.
    """
    params = head_parameters(model)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(
        params, lr=cfg.head_lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay
    )
    n = input_ids.shape[0]
    epoch_losses: list[float] = []
    steps = 0
    for _ in range(cfg.head_epochs):
        order = torch.randperm(n, generator=generator).to(input_ids.device)
        losses: list[float] = []
        counts: list[int] = []
        for sl in minibatch_slices(n, cfg.head_minibatch):
            rows = order[sl]
            loss, count = next_token_loss(model, input_ids[rows], attention_mask[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            losses.append(float(loss.detach()))
            counts.append(count)
        epoch_losses.append(weighted_mean(losses, counts))
    for p in params:
        p.requires_grad_(False)
    return {
        "head_loss_first_epoch": epoch_losses[0] if epoch_losses else None,
        "head_loss_last_epoch": epoch_losses[-1] if epoch_losses else None,
        "head_steps": steps,
    }


def monte_carlo_fisher(
    model: nn.Module,
    params: list[tuple[str, nn.Parameter]],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    minibatch: int,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of ``params`` by sampling labels from the model (step 3 above).

    ``F = (1/B) sum_b (d L_b / d theta)^2`` with
    ``L_b = mean_{real (i,t) in b} -log p_t(y[i,t])``, ``y[i,t] ~ p_t = softmax(logits[i,t])``
    drawn with ``generator`` (on the model's device). Returns CPU tensors of the
    parameters' shapes. ``model`` must be in the mode wanted (eval: no dropout).
    """
    tensors = [p for _, p in params]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in tensors:
        p.requires_grad_(True)
    acc = [torch.zeros_like(p, dtype=torch.promote_types(p.dtype, torch.float32)) for p in tensors]
    slices = minibatch_slices(input_ids.shape[0], minibatch)
    for k, sl in enumerate(slices):
        ids, mask = input_ids[sl], attention_mask[sl]
        real = mask.bool()
        if not real.any():
            raise DataError(f"Task2Vec Fisher: mini-batch {k} has no real (unpadded) token")
        logits = forward_logits(model, ids, mask)
        # Only real positions are selected, so pads never enter the sampling or the loss.
        log_probs = torch.log_softmax(upcast(logits[real]), dim=-1)
        with torch.no_grad():
            labels = torch.multinomial(log_probs.exp(), 1, generator=generator)
        loss = -log_probs.gather(1, labels).mean()
        if not torch.isfinite(loss):
            raise TrainingError(f"Task2Vec Fisher: non-finite loss {float(loss)} in mini-batch {k}")
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for a, g in zip(acc, grads, strict=True):
            if g is not None:
                a.add_(g.detach().to(a.dtype).square())
    for p in tensors:
        p.requires_grad_(False)
    return {name: (a / len(slices)).cpu() for (name, _), a in zip(params, acc, strict=True)}


class PaperEstimator:
    """The authors' procedure, defects fixed (no options of its own)."""

    name = "paper"

    def estimate(
        self, probe: nn.Module, batch: SequenceBatch, cfg: Task2VecConfig, seed: int
    ) -> BatchFisher:
        """Head fine-tuning then Monte Carlo Fisher on a fresh copy of ``probe``."""
        model = copy.deepcopy(probe)
        model.eval()
        device = model_device(model)
        ids = batch.input_ids.to(device)
        mask = batch.attention_mask.to(device)
        shuffle = torch.Generator().manual_seed(sub_seed(seed, "shuffle"))
        sampler = torch.Generator(device=device).manual_seed(sub_seed(seed, "labels"))
        info = finetune_head(model, ids, mask, cfg, shuffle)
        params = embedding_parameters(model, cfg)
        fisher = monte_carlo_fisher(model, params, ids, mask, cfg.head_minibatch, sampler)
        info["num_tokens"] = int(mask.sum())
        info["fisher_minibatches"] = len(minibatch_slices(ids.shape[0], cfg.head_minibatch))
        del model
        return BatchFisher(fisher=fisher, info=info)
