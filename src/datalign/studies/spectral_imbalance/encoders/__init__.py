"""Feature encoders of the spectral-imbalance study: labelled data -> float32 features ``(n, d)``.

Offline: ``raw`` pixels, ``pca`` (fitted on train), a fixed ``random_conv``
network, small ``cnn`` s trained here with augmentation strategies, and for
texts ``minilm`` (packaged all-MiniLM-L6-v2) and ``causal_lm`` (a datalign
checkpoint). Paper scale: ``hf_image`` (ResNet-50, ViT, DINO, DINOv2, CLIP,
MAE through transformers) and ``torch_checkpoint`` (SimCLR ResNet-50, MoCo v3
ViT-B/16 state dicts mapped onto transformers' models). :func:`encode_splits` fits on train and encodes
every split; :func:`save_features` / :func:`load_features` store the result
with ids and labels.

The names below are loaded on first use (PEP 562): importing the package, or
its light :mod:`.specs` / :mod:`.features`, does not import torch (the
workflow plans with :mod:`.specs` and the analysis reads features without torch).
"""

from __future__ import annotations

from datalign.core.lazy import lazy_exports

_EXPORTS = {
    "features": ("FeatureSet", "check_features", "load_features", "save_features"),
    "registry": ("ENCODERS", "build_encoder", "encode_splits"),
    "runtime": ("select_device",),
    "specs": ("KINDS", "OPTIONS", "resolved_options", "validate_encoder_spec"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, globals())
