"""The ``fast`` Task2Vec estimator: the ``paper`` quantity for about one forward+backward pass.

``paper`` (:mod:`datalign.task2vec.paper`) costs about six forward+backward
passes over the batch per embedding: ``head_epochs`` epochs of head
fine-tuning, each a full forward and a backward down to the (tied) input
embeddings, then the Fisher pass. Here the same Fisher is computed with one
body forward that serves both the head fit and the Fisher pass:

1. **One body forward, cached.** The body (every weight but the head) is
   frozen during head fine-tuning, so its final hidden states ``h`` do not
   change: they are computed once, per Fisher mini-batch of ``head_minibatch``
   sequences, and the autograd graph of each mini-batch is kept for step 3
   (``retain_graph: false`` drops it and re-runs the forward in step 3,
   one extra forward, for batches whose activations do not fit in memory).
2. **Head fit on the cached states, untied.** The head is a separate copy
   ``W'`` of the probe's ``lm_head`` (weight and bias, float32), trained with
   the same AdamW (the fused kernel where the device has it) (``head_lr``, ``adam_eps``, ``weight_decay``), the same
   mini-batches of ``head_minibatch`` sequences and ``head_epochs`` epochs on
   the next-token loss ``mean -log softmax(h_t W'^T + b')[x_{t+1}]`` over real
   targets, with the gradient in closed form,
   ``dL/dW' = (softmax(Z) - onehot(x_{t+1}))^T h / n`` (no autograd, no pass
   through the body). Two schedules (``head_fit``):

   - ``frozen`` (default): the batch is split once into mini-batches (the
     first epoch's shuffle, as ``paper`` draws it); each mini-batch's gradient
     is evaluated once, at the probe's head, and AdamW is replayed on these
     gradients, the mini-batch order reshuffled every epoch. Cost: one head
     forward and one head gradient over the batch, whatever ``head_epochs``.
     What it drops is the change of each gradient along the (short) AdamW path,
     a term of order ``head_lr * steps``; with the paper's learning rate the
     head moves by at most ``head_lr`` per coordinate and step;
   - ``exact``: AdamW as ``paper`` runs it (a fresh shuffle of sequences every
     epoch, each gradient at the current head): ``head_epochs`` head forwards
     and gradients.

3. **Fisher pass from the kept graphs.** Per mini-batch ``b`` of
   ``head_minibatch`` sequences (in order, as ``paper``): logits
   ``Z = h W'^T + b'`` at every real position, labels ``y ~ softmax(Z)`` drawn
   by inverse CDF (one uniform per position, a cumulative sum and a binary
   search: the same distribution as ``torch.multinomial``, an order of
   magnitude cheaper over a 50k vocabulary), the closed-form gradient of
   ``L_b = mean -log softmax(Z)[y]`` with respect to the logits,
   ``G = (softmax(Z) - onehot(y)) / n_b``, pushed into the body by one
   backward from ``dL/dh = G W'`` through the kept graph, and
   ``F = (1/B) sum_b grad(L_b)^2`` as in ``paper`` (the gradient of a
   mini-batch mean is squared, not per-example gradients).

What differs from ``paper``, and why it measures the same thing:

- **Untied head.** ``paper`` trains GPT-2's tied ``lm_head``/``wte`` matrix, so
  its "head-only" fine-tuning also moves the input embeddings (and with them
  every hidden state), and the head is pushed by gradients from the input
  path as well. Here the body, input embeddings included, stays at the probe's
  weights and only the head copy ``W'`` is fitted: the Task2Vec intent (a
  fixed probe with a head fitted to the task) without the side effect. For a
  probe whose head is not tied, ``exact`` is ``paper``'s fine-tuning itself.
- **The tied matrix's Fisher.** For a tied probe, ``paper``'s entry
  ``transformer.wte.weight`` is the squared gradient of the shared tensor,
  i.e. of its input-side use plus its output-side use, summed before squaring.
  The analogue here is the same sum at the untied point:
  ``(dL_b/dwte + dL_b/dW')^2`` with ``dL_b/dW' = G^T h``, the gradient the
  shared tensor would get if it held ``wte`` on the input side and ``W'`` on
  the output side. Same layout, same meaning; at ``head_epochs = 0`` the two
  points coincide and the two estimators have the same expectation.
- **Head fit schedule** (``frozen`` only): see step 2.
- **Randomness.** The same seeds (``sub_seed(seed, "shuffle")`` and
  ``sub_seed(seed, "labels")``) drive the shuffles and the labels, but the
  label sampler is inverse CDF, not ``torch.multinomial``, so the Monte Carlo
  draws differ: the two agree in distribution, not draw by draw.
- **Precision.** ``precision: auto`` uses bfloat16 matrix products on a
  CUDA device that has them (the body under autocast, the head's products
  with bfloat16 operands) and float32 elsewhere; ``bfloat16`` asks for them
  on any device (a CPU with AVX512-BF16 or AMX runs them several times faster).
  The head weights, AdamW's state, the softmax and the Fisher sums stay in
  float32 (float64 for a float64 probe). ``paper`` runs in the probe's dtype.

Cost, in passes over the batch (one pass = the forward or the backward of the
body or of the head): the floor, a plain forward+backward, is ``3 body +
3 head``; this estimator is ``3 body + 5 head`` (``frozen``; the fit adds one
head forward and one head gradient; with ``retain_graph: false`` one body
forward more) or ``3 body + (3 + 2 head_epochs) head`` (``exact``); ``paper``
is about ``head_epochs`` times ``2 body + 3 head`` plus the floor, plus an
AdamW step over the whole (V, d) matrix per mini-batch.

How good is ``frozen``: on the default study's probe and batches (20 AdamW
steps at lr 5e-5) its fitted head differs from ``exact``'s by about 4% of the
head's displacement, less than ``exact`` differs from itself under another
shuffle seed (7%), and its logits by 0.001 (the fit moves them by 0.06, rms).
The approximation grows with ``head_lr`` times the number of steps: at 20x
the learning rate the difference was 15% against 7%. For long fits (the
paper's 512-sequence batches make 320 steps) check it against ``exact`` (the
benchmark does) or use ``exact``.

Options (:class:`FastOptions`, the config's ``task2vec.fast`` mapping):
``head_fit``, ``precision`` and ``retain_graph``, as above.

Padding is excluded as in ``paper``: padded positions are neither fit
targets, inputs to a counted prediction, sampled nor scored. The probe is left
as it was (mode and ``requires_grad`` flags are restored; no weight is written).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.task2vec.estimators.fast import HEAD_FITS, PRECISIONS, FastOptions  # noqa: F401
from datalign.task2vec.lm import minibatch_slices, model_device, sub_seed
from datalign.task2vec.parameters import embedding_parameters, head_module
from datalign.task2vec.registry import BatchFisher

if TYPE_CHECKING:
    from datalign.lm.tokens import SequenceBatch
    from datalign.task2vec.config import Task2VecConfig


# Bytes of frozen head gradients (mini-batches x vocabulary x width, float32)
# held at once; above it the vocabulary is fitted in row blocks (one extra
# head forward over the batch for the log-normalisers).
FROZEN_FIT_BYTES = 1 << 30
_TINY = torch.finfo(torch.float32).tiny


# ---------------------------------------------------------------- pieces


def compute_dtype(device: torch.device, precision: str) -> torch.dtype:
    """The dtype of the estimator's matrix products on ``device`` (``task2vec.fast.precision``).

    ``auto``: bfloat16 on a CUDA device that supports it (the device's best
    precision), float32 elsewhere; ``bfloat16`` / ``float32``: as named.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"task2vec.fast.precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def body_autocast(device: torch.device, dtype: torch.dtype) -> AbstractContextManager[Any]:
    """Autocast to ``dtype`` for the body's forward (nothing for float32)."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def sample_labels(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One label per row of ``probs`` (rows sum to 1), drawn by inverse CDF.

    ``y = min{v : c_v > u * c_{V-1}}`` with ``c = cumsum(probs)`` and ``u`` uniform
    on [0, 1) from ``generator``: ``P(y = v) = probs[v] / sum(probs)``, the
    distribution of ``torch.multinomial(probs, 1)``.
    """
    cdf = probs.cumsum(dim=1)
    u = torch.rand((probs.shape[0], 1), generator=generator, device=probs.device, dtype=cdf.dtype)
    labels = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
    return labels.clamp_(max=probs.shape[1] - 1).squeeze(1)


def softmax_xent_grad(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form gradient of the mean cross-entropy with respect to the logits.

    For ``L = (1/n) sum_t -log softmax(z_t)[y_t]``: ``dL/dz_t = (softmax(z_t) - e_{y_t}) / n``.
    Returns ``(dL/dz, L)``.
    """
    n = logits.shape[0]
    rows = torch.arange(n, device=logits.device)
    grad = torch.softmax(logits, dim=1)
    loss = -grad[rows, labels].clamp_min(_TINY).log().mean()
    grad[rows, labels] -= 1.0
    return grad.div_(n), loss


@dataclass
class LinearHead:
    """An untied copy of a linear output head: ``logits = h @ weight.T + bias``.

    ``weight``/``bias`` are held in at least float32 (float64 stays float64);
    ``dtype`` is the operand dtype of its matrix products (bfloat16 for
    ``precision: bfloat16``), whose results come back in the weight's dtype.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    dtype: torch.dtype

    @classmethod
    def copy_of(cls, module: nn.Module, dtype: torch.dtype = torch.float32) -> LinearHead:
        """A copy of ``module``'s weight (V, d) and bias (V,), sharing nothing with it.

        ``dtype`` float32 means full precision: the copy's own dtype.
        """
        weight = getattr(module, "weight", None)
        if not isinstance(module, nn.Linear) or not isinstance(weight, torch.Tensor):
            raise ConfigError(
                f"task2vec.estimator=fast needs a linear output head, the probe has {type(module).__name__} "
                "(use estimator: paper)"
            )
        master = torch.promote_types(weight.dtype, torch.float32)
        bias = module.bias.detach().to(master).clone() if module.bias is not None else None
        return cls(weight.detach().to(master).clone(), bias, master if dtype == torch.float32 else dtype)

    def tensors(self) -> list[torch.Tensor]:
        """The trainable tensors: weight, and bias if any."""
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a @ b`` with operands in ``dtype``, the result in the weight's dtype."""
        out = a.to(self.dtype) @ b.to(self.dtype)
        return out.to(self.weight.dtype)

    def logits(self, h: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """``h @ W[rows].T + b[rows]`` (n, V) for a block of vocabulary rows (all by default)."""
        w = self.weight if rows is None else self.weight[rows]
        z = self.matmul(h, w.T)
        if self.bias is not None:
            z += self.bias if rows is None else self.bias[rows]
        return z

    def set_grads(self, grad_logits: torch.Tensor, h: torch.Tensor) -> None:
        """Store ``dL/dW = G^T h`` and ``dL/db = sum_t G_t`` for ``G = dL/dlogits`` as ``.grad``."""
        self.weight.grad = self.matmul(grad_logits.T, h)
        if self.bias is not None:
            self.bias.grad = grad_logits.sum(dim=0)


def _check_group(X: torch.Tensor, where: str) -> None:
    if X.shape[0] == 0:
        raise DataError(f"Task2Vec {where}: a mini-batch has no real next-token target (every sequence < 2 tokens)")


def _adamw(head: LinearHead, cfg: Task2VecConfig) -> torch.optim.AdamW:
    # The fused kernel makes one pass over the (V, d) matrix instead of six; same update.
    kwargs = {"lr": cfg.head_lr, "eps": cfg.adam_eps, "weight_decay": cfg.weight_decay}
    try:
        return torch.optim.AdamW(head.tensors(), fused=True, **kwargs)
    except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(head.tensors(), **kwargs)


def fit_head_exact(
    head: LinearHead,
    features: Sequence[tuple[torch.Tensor, torch.Tensor]],
    cfg: Task2VecConfig,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Fine-tune ``head`` in place on per-sequence features, exactly as ``paper`` schedules it.

    ``features[i] = (X_i, y_i)``: sequence i's hidden states at its real targets
    (n_i, d) and the targets (n_i,). Each of ``cfg.head_epochs`` epochs draws
    ``randperm(N, generator)`` and takes AdamW steps on consecutive mini-batches
    of ``cfg.head_minibatch`` sequences with the gradient of the mini-batch's mean
    cross-entropy at the current head. Returns the token-weighted mean loss of
    the first and last epochs and the number of steps (as ``paper`` reports them).
    """
    opt = _adamw(head, cfg)
    epoch_losses: list[float] = []
    steps = 0
    for _ in range(cfg.head_epochs):
        order = torch.randperm(len(features), generator=generator).tolist()
        total, count = 0.0, 0
        for sl in minibatch_slices(len(features), cfg.head_minibatch):
            X = torch.cat([features[i][0] for i in order[sl]])
            y = torch.cat([features[i][1] for i in order[sl]])
            _check_group(X, "head fine-tuning")
            grad, loss = softmax_xent_grad(head.logits(X), y)
            head.set_grads(grad, X)
            opt.step()
            steps += 1
            total += float(loss) * X.shape[0]
            count += X.shape[0]
        epoch_losses.append(total / count)
    return {
        "head_loss_first_epoch": epoch_losses[0] if epoch_losses else None,
        "head_loss_last_epoch": epoch_losses[-1] if epoch_losses else None,
        "head_steps": steps,
    }


def frozen_schedule(num_groups: int, epochs: int, generator: torch.Generator) -> list[int]:
    """The mini-batch index of every AdamW step: epoch 1 in order, later epochs reshuffled."""
    order: list[int] = []
    for epoch in range(epochs):
        order += list(range(num_groups)) if epoch == 0 else torch.randperm(num_groups, generator=generator).tolist()
    return order


def fit_head_frozen(
    head: LinearHead,
    groups: Sequence[tuple[torch.Tensor, torch.Tensor]],
    schedule: Sequence[int],
    cfg: Task2VecConfig,
    max_bytes: int = FROZEN_FIT_BYTES,
) -> dict[str, Any]:
    """Fine-tune ``head`` in place by AdamW replayed on gradients frozen at the start.

    ``groups[b] = (X_b, y_b)``: the features and targets of mini-batch b. Its
    gradient ``g_b = (softmax(X_b W0^T + b0) - onehot(y_b))^T X_b / n_b`` is taken
    once, at the initial head ``W0``; AdamW then steps with ``g_{schedule[k]}`` at
    step k. AdamW acts element by element, so the vocabulary is processed in
    blocks of rows holding at most ``max_bytes`` of gradients (the softmax
    normalisers are computed first, over the whole vocabulary, when there is
    more than one block). Returns the initial mean loss over the batch and the
    number of steps.
    """
    V, d = head.weight.shape
    per_row = head.weight.element_size() * len(groups) * (d + (head.bias is not None))
    block = max(1, min(V, max_bytes // max(1, per_row)))
    for X, _ in groups:
        _check_group(X, "head fine-tuning")
    loss_sum, n_sum = 0.0, 0
    lses: list[torch.Tensor] | None = None
    if block < V:  # the normalisers (and the initial loss) first, while the head is untouched
        lses = []
        for X, y in groups:
            z = head.logits(X)
            lses.append(torch.logsumexp(z, dim=1))
            loss_sum += float((lses[-1] - z[torch.arange(len(y), device=z.device), y]).sum())
            n_sum += X.shape[0]
    for first in range(0, V, block):
        rows = slice(first, min(V, first + block))
        # Every gradient of a block is taken before its first step, so the head's
        # rows still hold W0 while they are computed; one block works in place.
        part = head if block >= V else LinearHead(
            head.weight[rows].clone(), None if head.bias is None else head.bias[rows].clone(), head.dtype)
        grads: list[list[torch.Tensor]] = []
        for b, (X, y) in enumerate(groups):
            z = head.logits(X, rows)
            if lses is None:  # one block: the whole softmax is here
                grad, loss = softmax_xent_grad(z, y)
                loss_sum += float(loss) * X.shape[0]
                n_sum += X.shape[0]
            else:
                grad = z.sub_(lses[b][:, None]).exp_()
                inside = (y >= rows.start) & (y < rows.stop)
                grad[inside.nonzero().squeeze(1), y[inside] - rows.start] -= 1.0
                grad /= X.shape[0]
            part.set_grads(grad, X)
            grads.append([t.grad for t in part.tensors()])
        opt = _adamw(part, cfg)
        for b in schedule:
            for t, g in zip(part.tensors(), grads[b], strict=True):
                t.grad = g
            opt.step()
        for t in part.tensors():
            t.grad = None
        if part is not head:
            for whole, t in zip(head.tensors(), part.tensors(), strict=True):
                whole[rows] = t
        del grads, opt
    return {"head_loss_initial": loss_sum / n_sum, "head_steps": len(schedule)}


@contextmanager
def probe_for_fisher(model: nn.Module, tensors: Sequence[torch.Tensor]) -> Iterator[None]:
    """Eval mode and ``requires_grad`` on ``tensors`` only, both restored on exit."""
    training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        for p in tensors:
            p.requires_grad_(True)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)


# ---------------------------------------------------------------- the estimator


@dataclass
class _ProbePlan:
    """What the estimator needs to know about a probe, worked out once per probe."""

    body: nn.Module
    head: nn.Module
    params: list[tuple[str, nn.Parameter]]
    tied_name: str | None  # embedding name of the tensor the head shares, if it is embedded


def _plan(model: nn.Module, cfg: Task2VecConfig) -> _ProbePlan:
    head = head_module(model)
    body = getattr(model, "base_model", None)
    if not isinstance(body, nn.Module) or body is model:
        raise ConfigError(
            f"task2vec.estimator=fast: probe {type(model).__name__} has no separate base model "
            "(use estimator: paper)"
        )
    LinearHead.copy_of(head)  # fails early on a non-linear head
    params = embedding_parameters(model, cfg)
    tied = [n for n, p in params if p is head.weight]
    # The estimator computes logits as head(last hidden state): check that this
    # is what the model does (no logit scaling or soft-capping), on two tokens.
    device = model_device(model)
    ids = torch.zeros((1, 2), dtype=torch.long, device=device)
    ones = torch.ones_like(ids)
    training = model.training
    try:
        model.eval()  # dropout off, as in the estimate
        with torch.no_grad():
            full = model(input_ids=ids, attention_mask=ones, use_cache=False).logits.float()
            mine = head(body(input_ids=ids, attention_mask=ones, use_cache=False).last_hidden_state).float()
    finally:
        model.train(training)
    if not torch.allclose(full, mine, rtol=1e-4, atol=1e-4 * float(full.abs().max())):
        raise ConfigError(
            f"task2vec.estimator=fast: probe {type(model).__name__}'s logits are not lm_head(last hidden "
            "state) (use estimator: paper)"
        )
    return _ProbePlan(body=body, head=head, params=params, tied_name=tied[0] if tied else None)


class FastEstimator:
    """The same quantity as paper for about one forward+backward pass (its options: task2vec.fast)."""

    name = "fast"

    def __init__(self) -> None:
        self._plans: dict[tuple[int, str, int], _ProbePlan] = {}

    def _plan_for(self, probe: nn.Module, cfg: Task2VecConfig) -> _ProbePlan:
        key = (id(probe), cfg.parameters, cfg.last_k)
        plan = self._plans.get(key)
        if plan is None or plan.head is not head_module(probe):
            plan = self._plans[key] = _plan(probe, cfg)
        return plan

    def estimate(
        self, probe: nn.Module, batch: SequenceBatch, cfg: Task2VecConfig, seed: int
    ) -> BatchFisher:
        """Diagonal Fisher of the embedding parameters on one batch (module docstring, steps 1-3)."""
        plan = self._plan_for(probe, cfg)
        device = model_device(probe)
        ids = batch.input_ids.to(device)
        mask = batch.attention_mask.to(device)
        real = mask.bool()
        slices = minibatch_slices(ids.shape[0], cfg.head_minibatch)
        for k, sl in enumerate(slices):
            if not real[sl].any():
                raise DataError(f"Task2Vec Fisher: mini-batch {k} has no real (unpadded) token")
        shuffle = torch.Generator().manual_seed(sub_seed(seed, "shuffle"))
        sampler = torch.Generator(device=device).manual_seed(sub_seed(seed, "labels"))
        opts: FastOptions = cfg.options_for("fast")
        dtype = compute_dtype(device, opts.precision)

        def body_states(sl: slice) -> torch.Tensor:
            with body_autocast(device, dtype):
                out = plan.body(input_ids=ids[sl], attention_mask=mask[sl], use_cache=False)
            return out.last_hidden_state

        with probe_for_fisher(probe, [p for _, p in plan.params]):
            # 1. one body forward per Fisher mini-batch, graphs kept for step 3
            with torch.set_grad_enabled(opts.retain_graph):
                states = [body_states(sl) for sl in slices]
            # 2. head fit on the cached states
            head = LinearHead.copy_of(plan.head, dtype)
            hidden = torch.cat([h.detach() for h in states]).to(head.weight.dtype)
            valid = real[:, 1:] & real[:, :-1]
            per_seq = [(hidden[i, :-1][valid[i]], ids[i, 1:][valid[i]]) for i in range(ids.shape[0])]
            if opts.head_fit == "exact" or cfg.head_epochs == 0:
                info = fit_head_exact(head, per_seq, cfg, shuffle)
            else:
                first = torch.randperm(len(per_seq), generator=shuffle).tolist()
                groups = []
                for sl in minibatch_slices(len(per_seq), cfg.head_minibatch):
                    members = [per_seq[i] for i in first[sl]]
                    groups.append((torch.cat([x for x, _ in members]), torch.cat([y for _, y in members])))
                schedule = frozen_schedule(len(groups), cfg.head_epochs, shuffle)
                info = fit_head_frozen(head, groups, schedule, cfg)
            del hidden, per_seq

            # 3. Fisher pass through the kept graphs
            fisher, final_loss = _fisher_pass(plan, head, states, slices, ids, real, sampler, body_states)
        info.update({
            "head_loss_final": final_loss,
            "num_tokens": int(mask.sum()),
            "fisher_minibatches": len(slices),
            "head_fit": opts.head_fit,
            "precision": str(dtype).removeprefix("torch."),
        })
        return BatchFisher(fisher=fisher, info=info)


def _fisher_pass(
    plan: _ProbePlan,
    head: LinearHead,
    states: list[torch.Tensor],
    slices: list[slice],
    ids: torch.Tensor,
    real: torch.Tensor,
    sampler: torch.Generator,
    body_states: Callable[[slice], torch.Tensor],
) -> tuple[dict[str, torch.Tensor], float]:
    """Step 3: ``F = (1/B) sum_b grad(L_b)^2`` from each mini-batch's kept graph (or a new forward).

    Also returns the fitted head's mean next-token loss over the batch's real
    targets, read off the same softmax.
    """
    names = [n for n, _ in plan.params]
    tensors = [p for _, p in plan.params]
    acc = [torch.zeros_like(p, dtype=torch.promote_types(p.dtype, torch.float32)) for p in tensors]
    tied = names.index(plan.tied_name) if plan.tied_name is not None else None
    fit_loss, fit_count = 0.0, 0
    for k, sl in enumerate(slices):
        h = states[k]
        if not h.requires_grad:  # graph not kept: run this mini-batch's forward again
            with torch.enable_grad():
                h = body_states(sl)
        m = real[sl]
        X = h[m].to(head.weight.dtype)
        with torch.no_grad():
            Xd = X.detach()
            probs = torch.softmax(head.logits(Xd), dim=1)
            rows = torch.arange(probs.shape[0], device=probs.device)
            has_next = torch.zeros_like(m)
            has_next[:, :-1] = m[:, 1:]
            at = has_next[m]
            targets = ids[sl][:, 1:][m[:, :-1] & m[:, 1:]]
            fit_loss -= float(probs[rows[at], targets].clamp_min(_TINY).log().sum())
            fit_count += int(targets.numel())
            labels = sample_labels(probs, sampler)
            loss = -probs[rows, labels].clamp_min(_TINY).log().mean()
            if not torch.isfinite(loss):
                raise TrainingError(f"Task2Vec Fisher: non-finite loss {float(loss)} in mini-batch {k}")
            grad_z = probs  # in place: dL_b/dz = (softmax(z) - onehot(y)) / n_b
            grad_z[rows, labels] -= 1.0
            grad_z /= grad_z.shape[0]
            grad_x = head.matmul(grad_z, head.weight)
        grads = torch.autograd.grad(X, tensors, grad_outputs=grad_x, allow_unused=True)
        states[k] = h.detach()  # frees this mini-batch's graph
        with torch.no_grad():
            for i, (a, g) in enumerate(zip(acc, grads, strict=True)):
                if i == tied:  # the shared matrix: input-side plus output-side gradient, then squared
                    g_out = head.matmul(grad_z.T, Xd)
                    g = g_out if g is None else g_out.add_(g)
                if g is not None:
                    g = g.to(a.dtype)
                    a.addcmul_(g, g)
        del grads, grad_z, grad_x, X, h
    fisher = {n: a.div_(len(slices)).cpu() for n, a in zip(names, acc, strict=True)}
    return fisher, (fit_loss / fit_count if fit_count else math.nan)
