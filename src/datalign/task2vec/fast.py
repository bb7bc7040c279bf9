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
     forward and one head gradient over the batch, whatever ``head_epochs``,
     plus ``head_epochs x`` mini-batches element-wise AdamW steps over (V, d).
     The softmax gradients of the whole batch are held (up to
     ``FROZEN_FIT_BYTES``; above it the normalisers come first and the logits
     are recomputed per block of rows, one head forward more), and the replay
     runs in place on cache-sized blocks of vocabulary rows
     (``REPLAY_BLOCK_BYTES``, buffers reused from block to block), so no
     (V, d) gradient per mini-batch and no (V, d) AdamW state is ever whole,
     and each block's steps read and write the cache, not memory.
     These two products (logits at the probe's head, gradients) take bfloat16
     operands where the device multiplies them natively (CUDA; a CPU with
     AVX512-BF16 or AMX), float32 accumulation (:func:`head_dtype`): they only
     steer AdamW, which divides each coordinate's step by the root of its own
     second moment, and the fitted head moved by them differs from the float32
     fit by under 2% of its displacement (tests/test_task2vec_fast_paths.py),
     less than ``frozen`` differs from ``exact``;
     What it drops is the change of each gradient along the (short) AdamW path,
     a term of order ``head_lr * steps``; with the paper's learning rate the
     head moves by at most ``head_lr`` per coordinate and step;
   - ``exact``: AdamW as ``paper`` runs it (a fresh shuffle of sequences every
     epoch, each gradient at the current head): ``head_epochs`` head forwards
     and gradients.

3. **Fisher pass from the kept graphs.** Per mini-batch ``b`` of
   ``head_minibatch`` sequences (in order, as ``paper``): logits
   ``Z = h W'^T + b'`` at every real position, labels ``y ~ softmax(Z)`` drawn
   by inverse CDF (one uniform per position and a binary search: the same
   distribution as ``torch.multinomial``, an order of magnitude cheaper over a
   50k vocabulary; two-level, block totals then one block's cumulative sum,
   so nothing the size of the softmax is written a second time), the
   closed-form gradient of ``L_b = mean -log softmax(Z)[y]`` with respect to
   the logits, ``G = (softmax(Z) - onehot(y)) / n_b``, pushed into the body by
   one backward from ``dL/dh = G W'`` through the kept graph, and
   ``F = (1/B) sum_b grad(L_b)^2`` as in ``paper`` (the gradient of a
   mini-batch mean is squared, not per-example gradients). The head's
   row-wise products (logits, softmax, labels, ``G W'``) are taken for
   several mini-batches at once (up to ``FISHER_CHUNK_BYTES`` of
   probabilities), the softmax is turned into ``G`` in place and the factors
   ``1/n_b`` and ``1/sqrt(B)`` ride on ``h`` and ``dL/dh`` rather than on the
   (n, V) matrix. The input embedding's gradient is gathered from the
   gradient of its output into the rows of the tokens seen (autograd would
   write a dense (V, d) matrix per mini-batch), then added to the output
   side's ``G^T h`` for a tied matrix.

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
- **Precision.** ``precision: auto`` (:func:`pass_dtypes`): every product
  with the (V, d) head (the fit's two, and the Fisher pass's logits, ``G W'``
  and ``G^T h``) takes bfloat16 operands wherever the device multiplies them
  natively (CUDA; a CPU with AVX512-BF16 or AMX, where they run 2-4x faster
  than float32), with float32 accumulation; the body runs under bfloat16
  autocast on such a CUDA device and in float32 on a CPU. ``bfloat16`` asks
  for all of them on any device; ``float32`` for none. The head weights,
  AdamW's state, the softmax and the Fisher sums stay in float32 (float64 for
  a float64 probe). On the test probe the bfloat16 head products move an
  embedding by 3% of what another Monte Carlo seed moves it
  (tests/test_task2vec_fast_paths.py). ``paper`` runs in the probe's dtype.

Cost, in passes over the batch (one pass = the forward or the backward of the
body or of the head): the floor, a plain forward+backward, is ``3 body +
3 head``; this estimator is ``3 body + 5 head`` (``frozen``; the fit adds one
head forward and one head gradient, in bfloat16 where that is native, about a
third of a float32 pass each on a CPU with AVX512-BF16; with ``retain_graph:
false`` one body forward more), plus the AdamW replay (``head_epochs x B``
element-wise steps over the (V, d) head), or ``3 body + (3 + 2 head_epochs)
head`` (``exact``); ``paper`` is about ``head_epochs`` times ``2 body + 3 head``
plus the floor, plus an AdamW step over the whole (V, d) matrix per mini-batch.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.optim.adamw import adamw as _adamw_step

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.task2vec.estimators.fast import HEAD_FITS, PRECISIONS, FastOptions  # noqa: F401
from datalign.task2vec.lm import minibatch_slices, model_device, sub_seed
from datalign.task2vec.parameters import embedding_parameters, head_module
from datalign.task2vec.registry import BatchFisher

if TYPE_CHECKING:
    from datalign.lm.tokens import SequenceBatch
    from datalign.task2vec.config import Task2VecConfig


# Bytes of the head fit's (tokens x vocabulary) softmax gradients of the whole
# batch held at once; above it the fit recomputes its logits per block of
# vocabulary rows (one head forward more).
FROZEN_FIT_BYTES = 1 << 30
# Bytes of probabilities the Fisher pass holds at once: it takes as many
# mini-batches together (at least one) as fit, for larger, faster products.
FISHER_CHUNK_BYTES = 64 << 20
# Bytes of the working set of one block of vocabulary rows in the replayed
# AdamW (weights, two moments, one gradient per mini-batch). Sized for the last
# level cache: each block's ``head_epochs x B`` fused steps then read and write
# cache, not memory (GPT-2's 38.6M head coefficients, 10 steps, 2 threads: 0.10 s
# against 0.27 s for 256 MiB blocks; 1 MiB blocks pay the thread pool's wake-up
# per call and were slower again).
REPLAY_BLOCK_BYTES = 8 << 20
# Vocabulary entries per block of the two-level inverse-CDF label sampler, used
# above TWO_LEVEL_BLOCKS blocks (below, one cumulative sum over the row is cheaper).
# torch's row-wise cumsum is the slow part; 256-entry blocks keep it short: 2048 x 50257
# probabilities 18 ms against 40 ms with 1024-entry blocks, 2048 x 2048 2.3 ms against 2.6 ms
# for one cumulative sum over the row (2 threads).
SAMPLE_BLOCK = 256
TWO_LEVEL_BLOCKS = 2
_TINY = torch.finfo(torch.float32).tiny


# ---------------------------------------------------------------- pieces


def compute_dtype(device: torch.device, precision: str) -> torch.dtype:
    """The dtype of the body's forward and backward on ``device`` (``task2vec.fast.precision``).

    ``auto``: bfloat16 on a CUDA device that supports it, float32 elsewhere;
    ``bfloat16`` / ``float32``: as named.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"task2vec.fast.precision: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (float32 accumulation), faster than float32.

    CUDA: ``torch.cuda.is_bf16_supported()``; CPU: AVX512-BF16 or AMX (not the
    emulation oneDNN falls back to on other AVX-512 CPUs).
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        return any(bool(check()) for check in checks if callable(check))
    return False


def head_dtype(device: torch.device, precision: str, master: torch.dtype) -> torch.dtype:
    """The operand dtype of every product with the (V, d) head: the fit's and the Fisher pass's.

    bfloat16 where the device has native bfloat16 products (``precision: auto``)
    or when asked (``bfloat16``); the head's own dtype for ``float32`` and for
    float64 heads. Accumulation is in float32 either way, and the head's
    weights, AdamW's state, the softmax and the Fisher sums stay in float32.
    The fit's gradients only steer AdamW, which divides each coordinate's step
    by the root of its own second moment, so their bfloat16 rounding
    (relative 2^-9) hardly moves the fitted head (see the tests); in the Fisher
    pass it perturbs the logits by about 2^-9 of their size, against a
    Monte Carlo label per position. The body keeps :func:`compute_dtype`.
    """
    if master != torch.float32 or precision == "float32":
        return master
    if precision == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if native_bfloat16(device) else master


def pass_dtypes(device: torch.device, precision: str, master: torch.dtype = torch.float32) -> tuple[torch.dtype, torch.dtype]:
    """``(body, head)``: the dtype of the body's forward/backward and the operand dtype of the head's products.

    :func:`compute_dtype` and :func:`head_dtype` for a head held in ``master``;
    the benchmark's floor pass runs in the same pair.
    """
    return compute_dtype(device, precision), head_dtype(device, precision, master)


def body_autocast(device: torch.device, dtype: torch.dtype) -> AbstractContextManager[Any]:
    """Autocast to ``dtype`` for the body's forward (nothing for float32)."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def sample_labels(probs: torch.Tensor, generator: torch.Generator, block: int = SAMPLE_BLOCK) -> torch.Tensor:
    """One label per row of ``probs`` (non-negative weights, rows not all zero), drawn by inverse CDF.

    ``y = min{v : c_v > u * c_{V-1}}`` with ``c = cumsum(probs)`` and ``u`` uniform
    on [0, 1) from ``generator``: ``P(y = v) = probs[v] / sum(probs)``, the
    distribution of ``torch.multinomial(probs, 1)``. Over a large vocabulary
    (more than ``TWO_LEVEL_BLOCKS`` blocks) the cumulative sum is never formed
    over the whole row: the row is cut into blocks of ``block`` entries, the
    block is found from the cumulative sum of the block totals, and the label
    inside it from the cumulative sum of that block alone (one read of
    ``probs``, nothing of its size written). Given the same uniforms both ways
    draw the same labels, up to rounding at a boundary.
    """
    n, V = probs.shape
    u = torch.rand((n, 1), generator=generator, device=probs.device, dtype=torch.float64)
    acc = torch.promote_types(probs.dtype, torch.float64 if probs.dtype == torch.float64 else torch.float32)
    nblk = -(-V // block)
    if nblk <= TWO_LEVEL_BLOCKS:
        cdf = probs.to(acc).cumsum(dim=1)
        target = (u * cdf[:, -1:].double()).to(acc)
        return torch.searchsorted(cdf, target, right=True).clamp_(max=V - 1).squeeze(1)
    full = (V // block) * block
    totals = torch.empty((n, nblk), dtype=acc, device=probs.device)
    totals[:, : V // block] = probs[:, :full].reshape(n, V // block, block).sum(dim=2, dtype=acc)
    if full < V:
        totals[:, -1] = probs[:, full:].sum(dim=1, dtype=acc)
    ctot = totals.cumsum(dim=1)
    target = (u * ctot[:, -1:].double()).to(acc)
    b = torch.searchsorted(ctot, target, right=True).clamp_(max=nblk - 1)
    # the mass before the chosen block, then the position inside it
    before = torch.where(b > 0, ctot.gather(1, (b - 1).clamp_(min=0)), torch.zeros_like(target))
    cols = b * block + torch.arange(block, device=probs.device)
    if full < V:  # the short last block: entries past the vocabulary weigh nothing
        outside = cols >= V
        part = probs.gather(1, cols.clamp_(max=V - 1)).to(acc).masked_fill_(outside, 0.0)
    else:
        part = probs.gather(1, cols).to(acc)
    cdf = part.cumsum(dim=1)
    offset = torch.searchsorted(cdf, target - before, right=True).clamp_(max=block - 1)
    # Only rounding (target - before at or past the block's total) can land on a zero
    # weight: those rows take the block's last entry of positive weight.
    bad = (part.gather(1, offset) <= 0).squeeze(1)
    if bool(bad.any()):
        rows = bad.nonzero().squeeze(1)
        positive = (part[rows] > 0).flip(1).to(torch.uint8)
        offset[rows, 0] = block - 1 - positive.argmax(dim=1)
    return (b * block + offset).squeeze(1)


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


def _mm(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, out_dtype: torch.dtype) -> torch.Tensor:
    """``a @ b`` with operands in ``dtype`` (float32 accumulation), the result in ``out_dtype``."""
    return (a.to(dtype) @ b.to(dtype)).to(out_dtype)


@dataclass
class LinearHead:
    """An untied copy of a linear output head: ``logits = h @ weight.T + bias``.

    ``weight``/``bias`` are held in at least float32 (float64 stays float64);
    ``dtype`` is the operand dtype of its matrix products (bfloat16 for
    ``precision: bfloat16``), whose results come back in the weight's dtype.
    The weight in ``dtype`` is made once and kept (:meth:`operand`) until the
    weight changes.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    dtype: torch.dtype
    _cast: tuple[tuple[int, int], torch.Tensor] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def copy_of(cls, module: nn.Module, dtype: torch.dtype = torch.float32, copy: bool = True) -> LinearHead:
        """A copy of ``module``'s weight (V, d) and bias (V,), sharing nothing with it.

        ``dtype`` float32 means full precision: the copy's own dtype.
        ``copy=False`` leaves the weight uninitialised (the caller fills it).
        """
        weight = getattr(module, "weight", None)
        if not isinstance(module, nn.Linear) or not isinstance(weight, torch.Tensor):
            raise ConfigError(
                f"task2vec.estimator=fast needs a linear output head, the probe has {type(module).__name__} "
                "(use estimator: paper)"
            )
        master = torch.promote_types(weight.dtype, torch.float32)
        bias = module.bias.detach().to(master).clone() if module.bias is not None else None
        w = weight.detach().to(master).clone() if copy else torch.empty_like(weight, dtype=master)
        return cls(w, bias, master if dtype == torch.float32 else dtype)

    def tensors(self) -> list[torch.Tensor]:
        """The trainable tensors: weight, and bias if any."""
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def operand(self) -> torch.Tensor:
        """The weight in the products' dtype (the weight itself at full precision), cached.

        The cache is keyed on the weight's storage and version counter, and
        dropped by :meth:`modified`: the fused AdamW kernel writes the weight
        without bumping its version, so whoever steps it must say so.
        """
        if self.dtype == self.weight.dtype:
            return self.weight
        key = (self.weight.data_ptr(), self.weight._version)
        if self._cast is None or self._cast[0] != key:
            self._cast = (key, self.weight.to(self.dtype))
        return self._cast[1]

    def modified(self) -> None:
        """Drop the cached cast: the weight was changed in place (e.g. by a fused optimizer step)."""
        self._cast = None

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``a @ b`` with operands in ``dtype``, the result in the weight's dtype."""
        return _mm(a, b, self.dtype, self.weight.dtype)

    def logits(self, h: torch.Tensor, rows: slice | None = None) -> torch.Tensor:
        """``h @ W[rows].T + b[rows]`` (n, V) for a block of vocabulary rows (all by default)."""
        w = self.operand() if rows is None else self.weight[rows]
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
            head.modified()  # the fused step does not bump the weight's version: recast at the next step
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


class _AdamWReplay:
    """AdamW steps on given gradients (``torch.optim.adamw.adamw``: the fused kernel where it runs)."""

    def __init__(self, cfg: Task2VecConfig, like: torch.Tensor) -> None:
        self.kwargs = {"amsgrad": False, "beta1": 0.9, "beta2": 0.999, "lr": cfg.head_lr,
                       "weight_decay": cfg.weight_decay, "eps": cfg.adam_eps, "maximize": False}
        self.fused = True
        try:  # a device or dtype without the fused kernel takes the plain one
            probe = torch.zeros(2, dtype=like.dtype, device=like.device)
            self._step([probe], [probe.clone()], [probe.clone()], [probe.clone()], [self._zero(probe)])
        except (RuntimeError, ValueError, NotImplementedError):
            self.fused = False

    @staticmethod
    def _zero(like: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=torch.float32, device=like.device)

    def _step(self, params: list[torch.Tensor], grads: list[torch.Tensor], m: list[torch.Tensor],
              v: list[torch.Tensor], steps: list[torch.Tensor]) -> None:
        _adamw_step(params, grads, m, v, [], steps, fused=self.fused or None,
                    foreach=False if not self.fused else None, **self.kwargs)

    def run(self, params: list[torch.Tensor], grads: Sequence[list[torch.Tensor]], schedule: Sequence[int],
            state: tuple[list[torch.Tensor], list[torch.Tensor]]) -> None:
        """Step ``params`` in place with ``grads[b]`` for every ``b`` of ``schedule``, from fresh moments.

        ``state``: buffers of the params' shapes for the two moments, zeroed
        here and reused (no new memory per block of a replay).
        """
        m, v = state
        for t in (*m, *v):
            t.zero_()
        steps = [self._zero(p) for p in params]
        for b in schedule:
            self._step(params, grads[b], m, v, steps)


def fit_head_frozen(
    head: LinearHead,
    groups: Sequence[tuple[torch.Tensor, torch.Tensor]],
    schedule: Sequence[int],
    cfg: Task2VecConfig,
    max_bytes: int | None = None,
    dtype: torch.dtype | None = None,
    source: LinearHead | None = None,
    block_bytes: int = REPLAY_BLOCK_BYTES,
) -> dict[str, Any]:
    """Fine-tune ``head`` in place by AdamW replayed on gradients frozen at the start.

    ``groups[b] = (X_b, y_b)``: the features and targets of mini-batch b. Its
    gradient ``g_b = (softmax(X_b W0^T + b0) - onehot(y_b))^T X_b / n_b`` is taken
    once, at the initial head ``W0`` (``source``'s weights, or ``head``'s own),
    with operands in ``dtype`` (default ``head.dtype``); AdamW then steps with
    ``g_{schedule[k]}`` at step k. AdamW acts element by element, so the work is
    done per block of vocabulary rows small enough (``block_bytes``) to stay in
    the cache through all of its steps: each block's gradients are taken from
    the softmax gradients ``softmax(Z0_b) - onehot(y_b)`` of the whole batch,
    held at once when they take at most ``max_bytes``; above that the softmax
    normalisers are computed first and each block's logits again (one head
    forward more). The result is written to ``head`` (rows copied from
    ``source`` first). Returns the initial mean loss over the batch and the
    number of steps.
    """
    source = head if source is None else source
    V, d = source.weight.shape
    master = head.weight.dtype
    fdt = head.dtype if dtype is None else dtype
    for X, _ in groups:
        _check_group(X, "head fine-tuning")
    ns = [X.shape[0] for X, _ in groups]
    n_sum = sum(ns)
    scaled = [(X / n).to(fdt) for (X, _), n in zip(groups, ns, strict=True)]  # the 1/n_b of each mean
    w0 = source.weight if fdt == source.weight.dtype else _operand(source, fdt)
    b0 = None if source.bias is None else source.bias.to(fdt)
    elsize = torch.empty((), dtype=fdt).element_size()
    hold = n_sum * V * elsize <= (FROZEN_FIT_BYTES if max_bytes is None else max_bytes)
    loss_sum = 0.0
    softmax_grads: list[torch.Tensor] = []
    lses: list[torch.Tensor] = []
    if hold:
        # One product for every mini-batch's logits (the softmax is row-wise): a (n_sum, d) x
        # (d, V) product is faster than B products of n_b rows each (76 ms -> ~50 ms for two
        # 120-row mini-batches on the 124M head, bfloat16, 2 threads). The softmax is written
        # back over the logits one mini-batch at a time, so what is held at once stays the
        # softmax gradients plus one mini-batch's, as FROZEN_FIT_BYTES budgets.
        p_all = torch.cat([X.to(fdt) for X, _ in groups]) @ w0.T
        if b0 is not None:
            p_all += b0
        for z in p_all.split(ns):
            z.copy_(torch.softmax(z, dim=1))
        y_all = torch.cat([y for _, y in groups])
        rows = torch.arange(n_sum, device=p_all.device)
        loss_sum -= float(p_all[rows, y_all].to(master).clamp_min(_TINY).log().sum())
        p_all[rows, y_all] -= 1.0
        softmax_grads = list(p_all.split(ns))  # row views: the block loop reads their columns
    else:
        for X, y in groups:
            z = X.to(fdt) @ w0.T
            if b0 is not None:
                z += b0  # as the block loop below adds it, so the normalisers match its logits
            zf = z.to(master)
            del z
            rows = torch.arange(len(y), device=zf.device)
            lses.append(torch.logsumexp(zf, dim=1))
            loss_sum += float((lses[-1] - zf[rows, y]).sum())
            del zf
    has_bias = head.bias is not None
    per_row = head.weight.element_size() * (d + has_bias) * (3 + len(groups))
    block = max(1, min(V, block_bytes // max(1, per_row)))
    replay = _AdamWReplay(cfg, head.weight)
    # One set of buffers for every block: the moments and each mini-batch's gradient.
    shapes = [(block, d)] + ([(block,)] if has_bias else [])
    state = ([torch.empty(s, dtype=master, device=head.weight.device) for s in shapes],
             [torch.empty(s, dtype=master, device=head.weight.device) for s in shapes])
    grad_bufs = [[torch.empty(s, dtype=master, device=head.weight.device) for s in shapes] for _ in groups]
    for first in range(0, V, block):
        r = slice(first, min(V, first + block))
        rows = r.stop - r.start
        # The head's own rows, stepped in place (contiguous row blocks: the fused kernel's fast path).
        params = [head.weight[r]] + ([head.bias[r]] if has_bias else [])  # type: ignore[index]
        if source is not head:
            params[0].copy_(source.weight[r])
            if has_bias:
                params[1].copy_(source.bias[r])  # type: ignore[index]
        grads: list[list[torch.Tensor]] = []
        for b, (X, y) in enumerate(groups):
            if hold:
                gz = softmax_grads[b][:, r]
            else:
                z = X.to(fdt) @ w0[r].T
                if b0 is not None:
                    z += b0[r]
                gz = z.to(master).sub_(lses[b][:, None]).exp_()
                inside = (y >= r.start) & (y < r.stop)
                gz[inside.nonzero().squeeze(1), y[inside] - r.start] -= 1.0
                gz = gz.to(fdt)
            g = grad_bufs[b][0][:rows]
            g.copy_(gz.T.to(fdt) @ scaled[b])
            if has_bias:
                torch.sum(gz, dim=0, dtype=master, out=grad_bufs[b][1][:rows]).div_(ns[b])
            grads.append([t[:rows] for t in grad_bufs[b]])
        replay.run(params, grads, schedule, ([t[:rows] for t in state[0]], [t[:rows] for t in state[1]]))
    head.modified()
    return {"head_loss_initial": loss_sum / n_sum, "head_steps": len(schedule)}


def _operand(head: LinearHead, dtype: torch.dtype) -> torch.Tensor:
    """``head``'s weight in ``dtype``, through its cache when that is its products' dtype."""
    if dtype == head.dtype:
        return head.operand()
    return head.weight.to(dtype)


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
    # The input embedding whose gradient is gathered from its output's gradient
    # (rows of the tokens seen) instead of a dense (V, d) autograd gradient; None: autograd.
    embedding: nn.Embedding | None = None
    embedding_name: str | None = None
    sources: dict[torch.dtype, LinearHead] = field(default_factory=dict)

    def source(self, dtype: torch.dtype) -> LinearHead:
        """The probe's head, read in place where its dtype allows, with its cast to ``dtype`` cached."""
        # Keyed on the probe head's version: enough, as a plan lives in one estimator instance
        # and embed_batches makes a fresh one per call, over batches of an unchanging probe (a
        # fused optimizer step on the probe would not bump the version).
        w = self.head.weight.detach()
        master = torch.promote_types(w.dtype, torch.float32)
        kept = self.sources.get(dtype)
        key = (w.data_ptr(), w._version)
        if kept is None or getattr(kept, "_key", None) != key:
            bias = self.head.bias
            kept = LinearHead(w if w.dtype == master else w.to(master),
                              None if bias is None else bias.detach().to(master),
                              master if dtype == torch.float32 else dtype)
            kept._key = key  # type: ignore[attr-defined]
            self.sources[dtype] = kept
        return kept


def _input_embedding(model: nn.Module, params: list[tuple[str, nn.Parameter]]) -> tuple[nn.Embedding | None, str | None]:
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    if not isinstance(emb, nn.Embedding) or emb.max_norm is not None or emb.scale_grad_by_freq or emb.sparse:
        return None, None
    names = [n for n, p in params if p is emb.weight]
    return (emb, names[0]) if names else (None, None)


def _plan(model: nn.Module, cfg: Task2VecConfig) -> _ProbePlan:
    head = head_module(model)
    body = getattr(model, "base_model", None)
    if not isinstance(body, nn.Module) or body is model:
        raise ConfigError(
            f"task2vec.estimator=fast: probe {type(model).__name__} has no separate base model "
            "(use estimator: paper)"
        )
    LinearHead.copy_of(head, copy=False)  # fails early on a non-linear head
    params = embedding_parameters(model, cfg)
    tied = [n for n, p in params if p is head.weight]
    embedding, embedding_name = _input_embedding(model, params)
    # The estimator computes logits as head(last hidden state): check that this
    # is what the model does (no logit scaling or soft-capping), on two tokens;
    # and that the body looks its input embedding up exactly once.
    device = model_device(model)
    ids = torch.zeros((1, 2), dtype=torch.long, device=device)
    ones = torch.ones_like(ids)
    training = model.training
    calls: list[int] = []
    hook = embedding.register_forward_hook(lambda *_: calls.append(1)) if embedding is not None else None
    try:
        model.eval()  # dropout off, as in the estimate
        with torch.no_grad():
            full = model(input_ids=ids, attention_mask=ones, use_cache=False).logits.float()
            calls.clear()
            mine = head(body(input_ids=ids, attention_mask=ones, use_cache=False).last_hidden_state).float()
    finally:
        model.train(training)
        if hook is not None:
            hook.remove()
    if not torch.allclose(full, mine, rtol=1e-4, atol=1e-4 * float(full.abs().max())):
        raise ConfigError(
            f"task2vec.estimator=fast: probe {type(model).__name__}'s logits are not lm_head(last hidden "
            "state) (use estimator: paper)"
        )
    if len(calls) != 1:
        embedding, embedding_name = None, None
    return _ProbePlan(body=body, head=head, params=params, tied_name=tied[0] if tied else None,
                      embedding=embedding, embedding_name=embedding_name)


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
        master = torch.promote_types(plan.head.weight.dtype, torch.float32)
        dtype, fdt = pass_dtypes(device, opts.precision, master)  # the benchmark's floor runs in the same pair

        def body_states(sl: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
            seen: list[torch.Tensor] = []
            hook = None
            if plan.embedding is not None and torch.is_grad_enabled():
                hook = plan.embedding.register_forward_hook(lambda _m, _i, out: seen.append(out))
            try:
                with body_autocast(device, dtype):
                    out = plan.body(input_ids=ids[sl], attention_mask=mask[sl], use_cache=False)
            finally:
                if hook is not None:
                    hook.remove()
            return out.last_hidden_state, (seen[0] if seen else None)

        with probe_for_fisher(probe, [p for _, p in plan.params]):
            # 1. one body forward per Fisher mini-batch, graphs kept for step 3
            with torch.set_grad_enabled(opts.retain_graph):
                forward = [body_states(sl) for sl in slices]
            states = [h for h, _ in forward]
            embeds = [e for _, e in forward]
            del forward
            # 2. head fit on the cached states
            hidden = torch.cat([h.detach() for h in states]).to(master)
            valid = real[:, 1:] & real[:, :-1]
            per_seq = [(hidden[i, :-1][valid[i]], ids[i, 1:][valid[i]]) for i in range(ids.shape[0])]
            if opts.head_fit == "exact" or cfg.head_epochs == 0:
                head = LinearHead.copy_of(plan.head, fdt)
                info = fit_head_exact(head, per_seq, cfg, shuffle)
            else:
                first = torch.randperm(len(per_seq), generator=shuffle).tolist()
                groups = []
                for sl in minibatch_slices(len(per_seq), cfg.head_minibatch):
                    members = [per_seq[i] for i in first[sl]]
                    groups.append((torch.cat([x for x, _ in members]), torch.cat([y for _, y in members])))
                schedule = frozen_schedule(len(groups), cfg.head_epochs, shuffle)
                head = LinearHead.copy_of(plan.head, fdt, copy=False)
                info = fit_head_frozen(head, groups, schedule, cfg, dtype=fdt, source=plan.source(fdt))
            del hidden, per_seq

            # 3. Fisher pass through the kept graphs
            fisher, final_loss = _fisher_pass(plan, head, states, embeds, slices, ids, real, sampler, body_states)
        info.update({
            "head_loss_final": final_loss,
            "num_tokens": int(mask.sum()),
            "fisher_minibatches": len(slices),
            "head_fit": opts.head_fit,
            "precision": str(dtype).removeprefix("torch."),
            # the operands of every product with the (V, d) head, the fit's and the Fisher pass's
            "head_precision": str(fdt).removeprefix("torch."),
        })
        return BatchFisher(fisher=fisher, info=info)


def _chunks(sizes: Sequence[int], per_item: int, max_bytes: int, together: bool) -> list[list[int]]:
    """Consecutive groups of indices whose ``sum(sizes) * per_item`` stays within ``max_bytes`` (>= 1 each)."""
    out: list[list[int]] = []
    total = 0
    for k, n in enumerate(sizes):
        if out and together and (total + n) * per_item <= max_bytes:
            out[-1].append(k)
            total += n
        else:
            out.append([k])
            total = n
    return out


def _fisher_pass(
    plan: _ProbePlan,
    head: LinearHead,
    states: list[torch.Tensor],
    embeds: list[torch.Tensor | None],
    slices: list[slice],
    ids: torch.Tensor,
    real: torch.Tensor,
    sampler: torch.Generator,
    body_states: Callable[[slice], tuple[torch.Tensor, torch.Tensor | None]],
    max_bytes: int | None = None,
) -> tuple[dict[str, torch.Tensor], float]:
    """Step 3: ``F = (1/B) sum_b grad(L_b)^2`` from each mini-batch's kept graph (or a new forward).

    Mini-batches are taken together (up to ``max_bytes`` of probabilities,
    default ``FISHER_CHUNK_BYTES``) for the head's products, which act row by
    row: the logits, one softmax, the sampled labels and ``dL/dh = G W'``; then
    one backward per mini-batch. The
    factor ``1/(n_b sqrt(B))`` is applied to ``dL/dh`` and to ``h`` (not to the
    (n, V) gradient), so the squares come out divided by ``B``. The input
    embedding's gradient (:attr:`_ProbePlan.embedding`) is gathered from its
    output's gradient into the rows of the mini-batch's tokens. Also returns
    the fitted head's mean next-token loss over the batch's real targets, read
    off the same softmax.
    """
    names = [n for n, _ in plan.params]
    tensors = [p for _, p in plan.params]
    tied = names.index(plan.tied_name) if plan.tied_name is not None else None
    emb = names.index(plan.embedding_name) if plan.embedding_name is not None else None
    inputs = [i for i in range(len(tensors)) if i != emb]
    acc: list[torch.Tensor | None] = [None] * len(tensors)
    if emb is not None and emb != tied:  # sparse rows are added into it
        acc[emb] = torch.zeros_like(tensors[emb], dtype=torch.promote_types(tensors[emb].dtype, torch.float32))
    master, dtype = head.weight.dtype, head.dtype
    w_op = head.operand()
    scale_all = 1.0 / math.sqrt(len(slices))
    pad_row = plan.embedding.padding_idx if plan.embedding is not None else None
    sizes = [int(real[sl].sum()) for sl in slices]
    kept = all(h.requires_grad for h in states)
    fit_loss, fit_count = 0.0, 0

    def add_square(i: int, g: torch.Tensor, own: bool = False) -> None:
        g = g.to(torch.promote_types(g.dtype, torch.float32))
        a = acc[i]
        if a is None:
            acc[i] = g.mul_(g) if own else g.square()
        else:
            a.addcmul_(g, g)

    budget = FISHER_CHUNK_BYTES if max_bytes is None else max_bytes
    for chunk in _chunks(sizes, head.weight.shape[0] * head.weight.element_size(), budget, together=kept):
        feats: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        at: list[torch.Tensor] = []
        for k in chunk:
            h = states[k]
            if not h.requires_grad:  # graph not kept: run this mini-batch's forward again
                with torch.enable_grad():
                    h, embeds[k] = body_states(slices[k])
                states[k] = h
            m = real[slices[k]]
            feats.append(h[m].to(master))
            has_next = torch.zeros_like(m)
            has_next[:, :-1] = m[:, 1:]
            at.append(has_next[m])
            targets.append(ids[slices[k]][:, 1:][m[:, :-1] & m[:, 1:]])
        with torch.no_grad():
            Xd = torch.cat([X.detach() for X in feats])
            probs = torch.softmax(head.logits(Xd), dim=1)
            rows = torch.arange(probs.shape[0], device=probs.device)
            fit_rows = rows[torch.cat(at)]
            fit_targets = torch.cat(targets)
            fit_loss -= float(probs[fit_rows, fit_targets].clamp_min(_TINY).log().sum())
            fit_count += int(fit_targets.numel())
            labels = sample_labels(probs, sampler)
            nll = -probs[rows, labels].clamp_min(_TINY).log()
            grad_z = probs  # in place: softmax(z) - onehot(y); the 1/n_b comes with h and dL/dh
            grad_z[rows, labels] -= 1.0
            del probs
            g_op = grad_z.to(dtype)
            grad_x = _mm(g_op, w_op, dtype, master)
        start = 0
        for k, X in zip(chunk, feats, strict=True):
            n = X.shape[0]
            part = slice(start, start + n)
            start += n
            loss = nll[part].mean()
            if not torch.isfinite(loss):
                raise TrainingError(f"Task2Vec Fisher: non-finite loss {float(loss)} in mini-batch {k}")
            c = scale_all / n
            wanted = [tensors[i] for i in inputs] + ([embeds[k]] if emb is not None else [])
            grads = list(torch.autograd.grad(X, wanted, grad_outputs=grad_x[part] * c, allow_unused=True))
            d_emb = grads.pop() if emb is not None else None
            states[k] = states[k].detach()  # frees this mini-batch's graph
            embeds[k] = None
            with torch.no_grad():
                for i, g in zip(inputs, grads, strict=True):
                    if i == tied:  # no input-side trick: the shared matrix's autograd gradient plus the output side
                        g_out = _mm(g_op[part].T, Xd[part] * c, dtype, master)
                        add_square(i, g_out if g is None else g_out.add_(g), own=True)
                    elif g is not None:  # autograd's gradient is ours alone: squared in place
                        add_square(i, g, own=True)
                if emb is not None:
                    tokens = ids[slices[k]].reshape(-1)
                    rows_grad = d_emb.reshape(tokens.shape[0], -1).to(master) if d_emb is not None else None
                    if rows_grad is not None and pad_row is not None:
                        keep = tokens != pad_row
                        tokens, rows_grad = tokens[keep], rows_grad[keep]
                    if emb == tied:  # input side (rows of the tokens seen) plus output side
                        g_out = _mm(g_op[part].T, Xd[part] * c, dtype, master)
                        if rows_grad is not None:
                            # index_put_ (accumulating), not index_add_: the latter is ~100x slower
                            # with more than one CPU thread on a small matrix
                            g_out.index_put_((tokens,), rows_grad, accumulate=True)
                        add_square(emb, g_out, own=True)
                    elif rows_grad is not None:
                        uniq, inverse = torch.unique(tokens, return_inverse=True)
                        summed = torch.zeros((len(uniq), rows_grad.shape[1]), dtype=master, device=rows_grad.device)
                        summed.index_put_((inverse,), rows_grad, accumulate=True)
                        acc[emb].index_put_((uniq,), summed.square_(), accumulate=True)  # type: ignore[union-attr]
            del grads, d_emb
        del grad_z, g_op, grad_x, feats, Xd
    fisher = {}
    for n, p, a in zip(names, tensors, acc, strict=True):
        fisher[n] = (torch.zeros_like(p, dtype=torch.promote_types(p.dtype, torch.float32)) if a is None else a).cpu()
    return fisher, (fit_loss / fit_count if fit_count else math.nan)
