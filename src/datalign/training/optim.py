"""The optimiser and learning-rate schedule shared by the training objectives.

AdamW (betas 0.9/0.95, eps 1e-8) with weight decay on matrices and embeddings
only, and a linear warmup followed by a cosine decay, set by hand before each
step (:func:`set_lr`) so that the schedule is a plain function of the step.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def lr_at(step: int, total_steps: int, peak_lr: float, warmup_steps: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based) out of ``total_steps``.

    Linear warmup, ``lr = peak * (step + 1) / warmup_steps`` for
    ``step < warmup_steps``; then cosine decay towards zero,
    ``lr = peak * 0.5 * (1 + cos(pi * (step - W) / (total_steps - W)))``.
    No step has a zero learning rate.
    """
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups: matrices and embeddings decayed, biases and LayerNorm gains not."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters (:func:`decay_groups`), betas 0.9/0.95."""
    return torch.optim.AdamW(decay_groups(model, weight_decay), lr=lr, betas=(0.9, 0.95), eps=1e-8)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group of ``optimizer`` the learning rate ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
