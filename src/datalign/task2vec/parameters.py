"""Which probe parameters make up a Task2Vec embedding, and how a Fisher becomes a vector."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from datalign.core.errors import ConfigError

if TYPE_CHECKING:
    from datalign.task2vec.config import Task2VecConfig


def head_module(model: nn.Module) -> nn.Module:
    """The output head (``lm_head``) of a causal LM: ``model.get_output_embeddings()``."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is None:
        raise ConfigError(f"probe {type(model).__name__} has no output head (get_output_embeddings)")
    return head


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The head's parameters, the ones head fine-tuning trains.

    With GPT-2's tied ``lm_head``/``wte`` this is the input embedding matrix too.
    """
    return list(head_module(model).parameters())


def decoder_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The transformer blocks of a causal LM as (qualified name, ModuleList).

    Found as the ``nn.ModuleList`` whose length is ``config.num_hidden_layers``
    (``transformer.h`` for GPT-2, ``model.layers`` for Llama-like models).
    """
    n_layer = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layer and n_layer:
            return name, module
    raise ConfigError(
        f"probe {type(model).__name__}: cannot find its list of {n_layer} transformer blocks "
        "(needed by task2vec.parameters: last_k_blocks)"
    )


def embedding_parameters(model: nn.Module, cfg: Task2VecConfig) -> list[tuple[str, nn.Parameter]]:
    """The parameters whose Fisher makes up the embedding, as (name, parameter), in module order.

    ``all_but_head`` (the authors' choice): the ``weight`` of every module except
    the head module (weights only, no biases). A tensor shared by several
    modules is listed once, under its first module's name; so with GPT-2's tied
    head the shared matrix appears as ``transformer.wte.weight`` and *is*
    included (134,993 numbers for GPT-2 124M, 50,257 of them from it).

    ``last_k_blocks``: the same rule restricted to the modules inside the last
    ``cfg.last_k`` transformer blocks (no embeddings, no final layer norm).
    """
    head = head_module(model)
    head_names = {name for name, m in model.named_modules() if m is head}
    prefixes: tuple[str, ...] | None = None
    if cfg.parameters == "last_k_blocks":
        blocks_name, blocks = decoder_blocks(model)
        if cfg.last_k > len(blocks):
            raise ConfigError(
                f"task2vec.last_k: {cfg.last_k} blocks asked, the probe has {len(blocks)}"
            )
        prefixes = tuple(f"{blocks_name}.{i}." for i in range(len(blocks) - cfg.last_k, len(blocks)))

    seen: set[int] = set()
    selected: list[tuple[str, nn.Parameter]] = []
    for name, module in model.named_modules():
        if any(name == h or name.startswith(h + ".") for h in head_names):
            continue
        if prefixes is not None and not (name + ".").startswith(prefixes):
            continue
        weight = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        if not isinstance(weight, nn.Parameter) or id(weight) in seen:
            continue
        seen.add(id(weight))
        selected.append((f"{name}.weight" if name else "weight", weight))
    if not selected:
        raise ConfigError(f"task2vec.parameters={cfg.parameters}: no parameters selected in the probe")
    return selected


def reduce_fisher(fisher: torch.Tensor) -> torch.Tensor:
    """A parameter's diagonal Fisher as its embedding slice: mean over all axes but the first.

    For a weight of shape (n0, n1, ...) the slice has n0 numbers,
    ``e[i] = mean_{j, ...} F[i, j, ...]``, in float64; a 1-D weight is kept as is.
    (GPT-2's Conv1D weights are (in, out), so their slices have ``in`` numbers.)
    The means are taken in the Fisher's own precision, at least float32 (torch's
    pairwise summation: relative error ~1e-7, below the float32 the embedding is
    stored in), not on a float64 copy: for a 124M-parameter probe that copy
    alone is a gigabyte written and read per batch.
    """
    work = fisher.to(torch.promote_types(fisher.dtype, torch.float32))
    if work.dim() <= 1:
        return work.reshape(-1).to(torch.float64)
    return work.reshape(work.shape[0], -1).mean(dim=1).to(torch.float64)


def embedding_size(model: nn.Module, cfg: Task2VecConfig) -> int:
    """The length P of the embedding vector for this probe and parameter choice."""
    return sum(int(p.shape[0]) if p.dim() else 1 for _, p in embedding_parameters(model, cfg))
