"""Which devices a job sees and which one a single-process job should use.

``torch`` is imported inside the functions, so that importing this module (for
instance from the launcher, which only counts GPUs) stays cheap.
"""

from __future__ import annotations

from typing import Any


def cuda_devices() -> int:
    """Number of CUDA devices this process sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def inference_device() -> Any:
    """The device a single-process job (evaluation, Task2Vec) should use: the first
    visible GPU (``cuda:0``, i.e. the one SLURM or ``CUDA_VISIBLE_DEVICES`` gave the
    job), else the CPU."""
    import torch

    return torch.device("cuda:0") if cuda_devices() else torch.device("cpu")
