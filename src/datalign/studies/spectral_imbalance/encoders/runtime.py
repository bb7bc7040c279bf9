"""What every torch encoder shares: the device, images as tensors, batches with a progress bar."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from datalign.core.errors import ConfigError
from datalign.data.labelled import unit_pixels


def select_device(device: str | None = "auto") -> torch.device:
    """``"auto"`` (or None): CUDA when available, else CPU; otherwise the named device.

    Raises ConfigError for an unparsable name, and for a CUDA device on a
    machine without CUDA.
    """
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {device!r}") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked but CUDA is not available on this machine")
    return chosen


def image_tensor(X: np.ndarray) -> torch.Tensor:
    """Images ``(n, H, W)`` or ``(n, H, W, C)`` (uint8 or float32 in [0, 1]) as float32 ``(n, C, H, W)`` in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(unit_pixels(X)))
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def channels_of(X: np.ndarray) -> int:
    """Channels of an image array: 1 for ``(n, H, W)``, C for ``(n, H, W, C)``."""
    return 1 if X.ndim == 3 else int(X.shape[3])


def batch_slices(n: int, batch_size: int, desc: str, progress: bool = True) -> Iterator[slice]:
    """Consecutive slices of ``batch_size`` rows covering ``0..n``, with a tqdm bar named ``desc``."""
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False):
        yield slice(start, min(start + batch_size, n))
