"""Data augmentations for the trained CNN encoder, in plain torch (no torchvision).

Each acts on a batch ``(n, C, H, W)`` of float pixels in [0, 1] with a seeded
``torch.Generator``, so a training run is reproducible:

- ``rotation``: each image rotated by an angle drawn uniformly from
  ``[-rotation_degrees, rotation_degrees]`` about its centre (bilinear, zero
  fill), with the aspect ratio accounted for so non-square images rotate
  rigidly;
- ``noise``: Gaussian pixel noise of standard deviation ``noise_std``, clipped
  back to [0, 1];
- ``crop``: random crop after zero-padding by ``crop_pad`` pixels on each side,
  i.e. a random shift of up to ``crop_pad`` pixels in each direction (the
  padding-and-crop augmentation of CIFAR training);
- ``none``: the identity.

A strategy is a list of names applied in the given order (``[rotation,
noise]`` rotates, then adds noise); the spectral-imbalance paper compares
such strategies through the class spectra they produce.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional

from datalign.studies.spectral_imbalance.encoders.specs import AUGMENTATIONS, parse_strategy  # noqa: F401 (re-exported)

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def rotate(x: torch.Tensor, max_degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image of ``x`` ``(n, C, H, W)`` by a uniform angle in [-max, max] degrees."""
    angles = (torch.rand(x.shape[0], generator=generator) * 2 - 1) * math.radians(max_degrees)
    return rotate_by(x, angles)


def rotate_by(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate image i of ``x`` ``(n, C, H, W)`` by ``angles[i]`` radians about its centre.

    A positive angle turns the picture counter-clockwise as displayed (rows
    down, columns right): at 90 degrees it equals ``torch.rot90(x, 1, (2, 3))``
    for square images. Bilinear sampling, zeros outside the image.
    """
    _, _, h, w = x.shape
    n = x.shape[0]
    angles = torch.as_tensor(angles, dtype=torch.float32).reshape(n)
    cos, sin = torch.cos(angles), torch.sin(angles)
    # affine_grid works in coordinates normalised by width and height; the
    # h/w factors turn a pixel-space rotation into that frame.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    grid = functional.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def add_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """``x`` plus Gaussian noise of standard deviation ``std``, clipped to [0, 1]."""
    noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    return (x + std * noise).clamp_(0.0, 1.0)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad ``x`` by ``pad`` pixels and crop each image back to ``H x W`` at a random offset."""
    if pad == 0:
        return x
    n, c, h, w = x.shape
    padded = functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def make_augment(
    strategy: Sequence[str], rotation_degrees: float = 15.0, noise_std: float = 0.1, crop_pad: int = 2
) -> Augment:
    """The composition of the named augmentations, in order (see the module docstring)."""
    steps: list[Augment] = []
    for name in strategy:
        if name == "rotation":
            steps.append(lambda x, g: rotate(x, rotation_degrees, g))
        elif name == "noise":
            steps.append(lambda x, g: add_noise(x, noise_std, g))
        elif name == "crop":
            steps.append(lambda x, g: random_crop(x, crop_pad, g))

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for step in steps:
            x = step(x, generator)
        return x

    return apply
