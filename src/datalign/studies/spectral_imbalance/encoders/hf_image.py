"""Pretrained image encoders through transformers ``AutoModel`` / ``AutoImageProcessor``.

The paper-scale encoders (shared/HUB.md, "Models") and the feature each gives
with ``pooling: auto``:

=====================================  ==============  =========================
model (config.model_type)              pooling         feature
=====================================  ==============  =========================
microsoft/resnet-50 (resnet)           ``pooler``      global average pool, 2048
google/vit-base-patch16-224 (vit)      ``cls``         final CLS token, 768
facebook/dino-vitb16 (vit)             ``cls``         final CLS token, 768
facebook/dinov2-base (dinov2)          ``cls``         layer-normed CLS, 768
openai/clip-vit-base-patch32 (clip)    ``pooler``      vision tower's
                                                       post-layernorm CLS, 768
facebook/vit-mae-base (vit_mae)        ``cls``         CLS token, mask_ratio 0
=====================================  ==============  =========================

``pooling`` may also be ``mean`` (the mean of the patch tokens without the CLS
token for transformers, the spatial mean for convolutional maps). MAE is
loaded with ``mask_ratio = 0`` so that every patch is seen; its random patch
shuffle then changes neither the CLS output nor the mean, so features are
deterministic. For CLIP only the vision tower is loaded
(``CLIPVisionModel``). Grey images are repeated to three channels when the
model expects three.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from datalign.core.errors import ConfigError, DataError
from datalign.studies.spectral_imbalance.encoders.runtime import batch_slices
from datalign.studies.spectral_imbalance.encoders.specs import POOLINGS

AUTO_POOLING: dict[str, str] = {
    "resnet": "pooler",
    "convnext": "pooler",
    "vit": "cls",
    "deit": "cls",
    "dinov2": "cls",
    "vit_mae": "cls",
    "clip": "pooler",
    "clip_vision_model": "pooler",
}


def load_hf_image_encoder(
    model: str | os.PathLike, device: torch.device | str = "cpu", revision: str | None = None
) -> tuple[Any, Any, str]:
    """Model (eval mode, on ``device``), image processor and ``config.model_type`` of ``model``.

    ``model`` is a hub id or a local directory holding a config, weights and
    a ``preprocessor_config.json``. Raises ConfigError naming the model when
    any of them cannot be loaded.
    """
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, CLIPVisionModel
    from transformers.utils import logging as hf_logging

    name = str(model)
    kwargs = {"revision": revision} if revision else {}
    try:
        config = AutoConfig.from_pretrained(name, **kwargs)
        family = config.model_type
        if family == "clip":
            # The text tower's weights are skipped on purpose: silence the report listing them.
            verbosity = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
            try:
                net = CLIPVisionModel.from_pretrained(name, **kwargs)
            finally:
                hf_logging.set_verbosity(verbosity)
        elif family == "vit_mae":
            net = AutoModel.from_pretrained(name, mask_ratio=0.0, **kwargs)
        else:
            net = AutoModel.from_pretrained(name, **kwargs)
        processor = AutoImageProcessor.from_pretrained(name, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"encoder hf_image: cannot load {name}: {str(exc).splitlines()[0]}") from None
    net.to(device).eval()
    return net, processor, family


def resolve_pooling(pooling: str, family: str, model: str) -> str:
    """The pooling for ``family`` (see the module table) when ``pooling`` is ``auto``.

    Raises ConfigError naming the model for an unknown pooling, and for
    ``auto`` with a family outside the table.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"encoder hf_image ({model}): pooling {pooling!r} not in {list(POOLINGS)}")
    if pooling != "auto":
        return pooling
    if family not in AUTO_POOLING:
        raise ConfigError(
            f"encoder hf_image ({model}): no default pooling for model type {family!r}; set pooling: cls, mean or pooler"
        )
    return AUTO_POOLING[family]


def _pool(output: Any, pooling: str, model: str) -> torch.Tensor:
    if pooling == "pooler":
        pooled = getattr(output, "pooler_output", None)
        if pooled is None:
            raise ConfigError(f"encoder hf_image ({model}): the model has no pooler output; set pooling: cls or mean")
        return pooled.flatten(1)
    hidden = output.last_hidden_state
    if hidden.ndim == 4:  # a convolutional map (n, C, h, w)
        if pooling == "cls":
            raise ConfigError(f"encoder hf_image ({model}): a convolutional model has no CLS token; use pooler or mean")
        return hidden.mean(dim=(2, 3))
    return hidden[:, 0] if pooling == "cls" else hidden[:, 1:].mean(1)


def _pil_images(X: np.ndarray, channels: int) -> list[Any]:
    from PIL import Image

    pixels = X if X.dtype == np.uint8 else np.rint(X * 255).astype(np.uint8)
    images = []
    for img in pixels:
        pil = Image.fromarray(img if img.ndim == 2 or img.shape[2] > 1 else img[:, :, 0])
        images.append(pil.convert("RGB" if channels == 3 else "L"))
    return images


def hf_image_features(
    X: np.ndarray,
    model: Any,
    processor: Any,
    pooling: str,
    batch_size: int = 32,
    progress: bool = True,
    desc: str = "hf_image",
    name: str = "hf_image",
) -> np.ndarray:
    """Features of images ``(n, H, W[, C])`` through a loaded model: float32 ``(n, d)``.

    Each batch goes through ``processor`` (its own resize, crop and
    normalisation) and the model; ``pooling`` is ``cls``, ``mean`` or
    ``pooler`` (resolve ``auto`` with :func:`resolve_pooling`).
    """
    device = next(model.parameters()).device
    channels = int(getattr(model.config, "num_channels", 3))
    out: np.ndarray | None = None
    with torch.inference_mode():
        for sl in batch_slices(len(X), batch_size, desc, progress):
            inputs = processor(images=_pil_images(X[sl], channels), return_tensors="pt")
            output = model(pixel_values=inputs["pixel_values"].to(device))
            feats = _pool(output, pooling, name).float().cpu().numpy()
            if out is None:
                out = np.empty((len(X), feats.shape[1]), dtype=np.float32)
            out[sl] = feats
    if out is None:
        raise DataError(f"encoder {name}: no images to encode")
    return out
