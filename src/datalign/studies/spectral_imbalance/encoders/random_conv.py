"""A fixed random convolutional network as a feature map (nothing is trained).

Random convolutional features are a classic baseline between raw pixels and
trained networks (Jarrett et al., "What is the best multi-stage architecture
for object recognition?", ICCV 2009; Saxe et al., "On random weights and
unsupervised feature learning", ICML 2011). Here: for each width in
``channels`` a ``kernel_size`` convolution (He-normal weights drawn with the
seed, zero bias) and a ReLU, a 2x2 max-pool between layers, and an adaptive
average pool to ``pool_size x pool_size`` after the last, flattened: features
of dimension ``channels[-1] * pool_size**2`` (1,024 with the defaults).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from datalign.studies.spectral_imbalance.encoders.runtime import (
    batch_slices,
    channels_of,
    image_tensor,
)


class RandomConvNet(nn.Module):
    """Convolutions of random fixed weights (see the module docstring); ``forward`` gives ``(n, d)``."""

    def __init__(self, in_channels: int, channels: list[int], kernel_size: int, pool_size: int, seed: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for i, width in enumerate(channels):
            if i:
                # ceil_mode keeps at least one pixel, so 8x8 digits survive several layers.
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            layers += [nn.Conv2d(previous, width, kernel_size, padding=kernel_size // 2), nn.ReLU()]
            previous = width
        layers += [nn.AdaptiveAvgPool2d(pool_size), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        generator = torch.Generator().manual_seed(seed % 2**63)
        for module in self.net:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(module.bias)
        self.requires_grad_(False)
        self.eval()

    @property
    def dim(self) -> int:
        """Output dimension: last width times ``pool_size**2``."""
        conv = [m for m in self.net if isinstance(m, nn.Conv2d)][-1]
        pool = [m for m in self.net if isinstance(m, nn.AdaptiveAvgPool2d)][0]
        size = pool.output_size if isinstance(pool.output_size, int) else pool.output_size[0]
        return conv.out_channels * size * size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def random_conv_features(
    X: np.ndarray,
    seed: int,
    channels: list[int] | tuple[int, ...] = (32, 64),
    kernel_size: int = 3,
    pool_size: int = 4,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "random_conv",
) -> np.ndarray:
    """Random-conv features of images ``(n, H, W[, C])``: float32 ``(n, channels[-1] * pool_size**2)``.

    The same ``seed`` (and input channels) always gives the same network, so
    train and test splits encoded in separate calls share one feature map.
    """
    net = RandomConvNet(channels_of(X), list(channels), kernel_size, pool_size, seed).to(device)
    out = np.empty((len(X), net.dim), dtype=np.float32)
    with torch.inference_mode():
        for sl in batch_slices(len(X), batch_size, desc, progress):
            out[sl] = net(image_tensor(X[sl]).to(device)).float().cpu().numpy()
    return out
