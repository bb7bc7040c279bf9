"""Registers the ``fast`` estimator and declares its options (``task2vec.fast``).

The implementation is :mod:`datalign.task2vec.fast`, imported (with torch) only
when the estimator is first used: planning a study validates these options
without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from datalign.task2vec.options import Options, option
from datalign.task2vec.registry import register_lazy_estimator

HEAD_FITS = ("frozen", "exact")
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class FastOptions(Options):
    """The ``fast`` estimator's own keys (``task2vec.fast``): see the module docstring."""

    head_fit: str = option(
        "frozen",
        "frozen: AdamW replayed on mini-batch head gradients taken once at the probe's head (two head passes "
        "whatever head_epochs; at paper's noise ceiling on trained and pretrained probes); exact: every step's "
        "gradient at the current head, as paper (use it for long fits, e.g. the paper's 512-sequence batches, where "
        "frozen drifts; on a random GPT-2 the two agree with paper alike, README 'Agreement')",
        enum=HEAD_FITS,
    )
    precision: str = option(
        "auto",
        "matrix products in bfloat16 or float32 (auto: the output head's products in bfloat16 wherever the "
        "device has native bfloat16, a CUDA GPU or a CPU with AVX512-BF16/AMX; the body in bfloat16 on such a "
        "GPU, float32 on a CPU); accumulation, softmax, head weights and Fisher sums stay float32",
        enum=PRECISIONS,
    )
    retain_graph: bool = option(
        True,
        "keep the body's autograd graph from its one forward for the Fisher pass; false re-runs the forward "
        "per mini-batch (one more forward, the memory of one mini-batch)",
    )


register_lazy_estimator(
    "fast",
    "datalign.task2vec.fast:FastEstimator",
    options=FastOptions,
    summary="The same quantity as paper for about one forward+backward pass (its options: task2vec.fast).",
)
