"""Encoder specs without the encoders: options, defaults and their validation.

Light (imports no torch, transformers or scikit-learn): the study's config
check runs it while Snakemake plans, before any job. The encoders themselves
are in :mod:`.registry`, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datalign.core.errors import ConfigError
from datalign.data.specs import check_source_and_keys

#: Augmentation names of the cnn encoder (implemented in :mod:`.augment`).
AUGMENTATIONS = ("none", "rotation", "noise", "crop")
#: Poolings of the hf_image encoder (implemented in :mod:`.hf_image`).
POOLINGS = ("auto", "cls", "mean", "pooler")
#: Architectures of the torch_checkpoint encoder (implemented in :mod:`.checkpoint`).
CHECKPOINT_ARCHITECTURES = ("resnet50", "vit_b16")

REQUIRED = object()  # marks an option without a default

#: Options of each kind and their defaults (REQUIRED: must be given).
OPTIONS: dict[str, dict[str, Any]] = {
    "raw": {},
    "pca": {"n_components": 50, "whiten": False},
    "random_conv": {"channels": [32, 64], "kernel_size": 3, "pool_size": 4, "batch_size": 256},
    "cnn": {
        "augment": [], "epochs": 3, "batch_size": 64, "lr": 3e-3, "weight_decay": 0.0,
        "width": 16, "feature_dim": 128, "rotation_degrees": 15.0, "noise_std": 0.1, "crop_pad": 2,
    },
    "minilm": {"model": None, "batch_size": 64, "max_length": None},
    "causal_lm": {"checkpoint": REQUIRED, "batch_size": 16, "max_length": 128, "layer": -1},
    "hf_image": {"model": REQUIRED, "revision": None, "pooling": "auto", "batch_size": 32},
    "torch_checkpoint": {
        "model": REQUIRED, "file": REQUIRED, "architecture": REQUIRED, "revision": None,
        "normalize": True, "batch_size": 32,
    },
}
INPUT_KIND = {
    "raw": "image", "pca": "image", "random_conv": "image", "cnn": "image",
    "minilm": "text", "causal_lm": "text", "hf_image": "image",
    "torch_checkpoint": "image",
}
COMMON_KEYS = ("kind", "device", "description")
KINDS = tuple(OPTIONS)

_POSITIVE_INT = {"n_components", "kernel_size", "pool_size", "batch_size", "epochs", "width", "feature_dim", "max_length"}
_NONNEG_FLOAT = {"weight_decay", "rotation_degrees", "noise_std"}


def _check_option(where: str, key: str, value: Any) -> None:
    """One option's type and range; ConfigError naming ``where.key`` and the value."""
    if value is None and key in {"model", "revision", "max_length"}:
        return
    if key in _POSITIVE_INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if key == "kernel_size":
            ok = ok and value % 2 == 1  # odd, so padding k // 2 keeps the image size
        expect = "an odd positive integer" if key == "kernel_size" else "a positive integer"
    elif key in _NONNEG_FLOAT:
        ok, expect = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0, "a number >= 0"
    elif key == "lr":
        ok, expect = isinstance(value, int | float) and not isinstance(value, bool) and value > 0, "a number > 0"
    elif key == "crop_pad":
        ok, expect = isinstance(value, int) and not isinstance(value, bool) and value >= 0, "an integer >= 0"
    elif key == "layer":
        ok, expect = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif key in ("whiten", "normalize"):
        ok, expect = isinstance(value, bool), "true or false"
    elif key == "channels":
        ok = isinstance(value, list) and bool(value) and all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in value
        )
        expect = "a non-empty list of positive integers"
    elif key == "augment":
        ok = isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)
        expect = f"a name or a list of names of {list(AUGMENTATIONS)}"
        if ok:
            parse_strategy(value, f"{where}.augment")
    elif key == "pooling":
        ok, expect = value in POOLINGS, f"one of {list(POOLINGS)}"
    elif key == "architecture":
        ok, expect = value in CHECKPOINT_ARCHITECTURES, f"one of {list(CHECKPOINT_ARCHITECTURES)}"
    else:  # model, file, checkpoint, revision, description, device
        ok, expect = isinstance(value, str) and bool(value), "a non-empty string"
    if not ok:
        raise ConfigError(f"{where}.{key}: expected {expect}, got {value!r}")


def validate_encoder_spec(name: str, spec: Any, section: str = "encoders") -> None:
    """Check encoder spec ``name`` without loading anything.

    Raises ConfigError naming ``<section>.<name>.<key>`` for a non-mapping
    spec, an unknown kind or key, a missing required option, or a value of the
    wrong type or range.
    """
    where = f"{section}.{name}"
    kind = check_source_and_keys(where, spec, KINDS, COMMON_KEYS, OPTIONS, field="kind")
    for key, default in OPTIONS[kind].items():
        if default is REQUIRED and spec.get(key) is None:
            raise ConfigError(f"{where}.{key}: required for kind {kind}")
    for key, value in spec.items():
        if key != "kind" and not (key == "device" and value is None):
            _check_option(where, key, value)


def resolved_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a validated spec with defaults filled in (no ``kind``/``description``)."""
    options = {k: v for k, v in OPTIONS[spec["kind"]].items()}
    options.update({k: v for k, v in spec.items() if k not in ("kind", "description")})
    options.setdefault("device", "auto")
    return options


def parse_strategy(augment: str | Sequence[str] | None, where: str) -> list[str]:
    """A strategy as a list of names (``none``, ``[]`` and None mean no augmentation).

    Raises ConfigError naming ``where`` for an unknown or repeated name.
    """
    names = [augment] if isinstance(augment, str) else list(augment or [])
    for name in names:
        if name not in AUGMENTATIONS:
            raise ConfigError(f"{where}: unknown augmentation {name!r} (allowed: {list(AUGMENTATIONS)})")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: augmentation repeated in {names}")
    return [n for n in names if n != "none"]
