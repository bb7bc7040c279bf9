"""Image encoders from bare PyTorch checkpoints, mapped onto transformers' own architectures.

For paper encoders published as a state dict rather than a transformers model
(shared/HUB.md, "Models"):

=================================================  ============  ===================================
model (file)                                       architecture  feature
=================================================  ============  ===================================
lightly-ai/simclrv1-imagenet1k-resnet50-1x         ``resnet50``  global average pool, 2048
(torchvision ResNet-50 names)                                    (``transformers.ResNetModel``)
nyu-visionx/moco-v3-vit-b (timm ViT-B/16 names)    ``vit_b16``   CLS token after the final norm, 768
                                                                 (``transformers.ViTModel``)
=================================================  ============  ===================================

The checkpoint (``file`` in a hub repo ``model``, or in a local directory
``model``) is read with ``torch.load(weights_only=True)`` or safetensors;
wrappers are unwrapped (``state_dict`` / ``model`` entries, ``module.`` /
``base_encoder.`` / ``encoder.`` prefixes: a MoCo v3 training checkpoint keeps
its backbone under ``module.base_encoder.``, and keys outside the chosen
prefix, e.g. its momentum encoder and predictor, are dropped and logged). A
classification or projection head (``fc.`` for ResNet, ``head.`` for ViT) is
dropped and logged; any other key left unmapped, and any weight of the model
that the checkpoint lacks, is a one-line ConfigError.

Images go through :func:`.hf_image.hf_image_features` with an image processor
that resizes to 224 x 224 and normalises with the ImageNet mean and std
(``normalize: false`` keeps pixels in [0, 1]).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from datalign.core.errors import ConfigError
from datalign.studies.spectral_imbalance.encoders.specs import (
    CHECKPOINT_ARCHITECTURES as ARCHITECTURES,
)

log = logging.getLogger(__name__)

#: The pooling of each architecture's feature (see :func:`.hf_image.hf_image_features`).
POOLING = {"resnet50": "pooler", "vit_b16": "cls"}
#: Wrapper entries and key prefixes unwrapped, in this order.
WRAPPER_ENTRIES = ("state_dict", "model")
PREFIXES = ("module.", "base_encoder.", "encoder.")
#: Head prefixes dropped (with a log line) for each architecture.
HEADS = {"resnet50": ("fc.",), "vit_b16": ("head.",)}
IMAGE_SIZE = 224


def resnet50_config() -> Any:
    """transformers' ResNet-50 (torchvision layout: stride in the 3x3 conv)."""
    from transformers import ResNetConfig

    return ResNetConfig(
        num_channels=3, embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
        layer_type="bottleneck", hidden_act="relu", downsample_in_first_stage=False, downsample_in_bottleneck=False,
    )


def vit_b16_config() -> Any:
    """transformers' ViT-B/16 at 224 with timm's LayerNorm epsilon (1e-6) and qkv bias."""
    from transformers import ViTConfig

    return ViTConfig(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
        image_size=IMAGE_SIZE, patch_size=16, num_channels=3, qkv_bias=True, layer_norm_eps=1e-6,
    )


#: The transformers config built for each architecture (tests put smaller ones here).
CONFIGS: dict[str, Callable[[], Any]] = {"resnet50": resnet50_config, "vit_b16": vit_b16_config}


def checkpoint_path(model: str | os.PathLike, file: str, revision: str | None = None) -> Path:
    """``model/file`` when ``model`` is a local directory, else ``file`` of hub repo ``model`` (downloaded)."""
    local = Path(model)
    if local.is_dir():
        path = local / file
        if not path.is_file():
            raise ConfigError(f"encoder torch_checkpoint: no file {file} in directory {local}")
        return path
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id=str(model), filename=file, revision=revision))
    except (OSError, ValueError, EntryNotFoundError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"encoder torch_checkpoint: cannot fetch {file} from {model}: {first}") from None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file or a torch checkpoint (weights only), wrappers unwrapped."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: Any = load_file(str(path), device="cpu")
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"encoder torch_checkpoint: cannot read checkpoint {path}: {first}") from None
    return unwrap_state_dict(raw, str(path))


def unwrap_state_dict(raw: Any, where: str) -> dict[str, torch.Tensor]:
    """The tensors of ``raw`` after taking ``state_dict`` / ``model`` entries and stripping :data:`PREFIXES`.

    For each prefix in turn, when some key starts with it, the keys that do
    are kept (stripped) and the others dropped with a log line.
    """
    for _ in range(len(WRAPPER_ENTRIES) + 1):
        if not isinstance(raw, Mapping):
            break
        entry = next((e for e in WRAPPER_ENTRIES if isinstance(raw.get(e), Mapping)), None)
        if entry is None:
            break
        raw = raw[entry]
    if not isinstance(raw, Mapping):
        raise ConfigError(f"encoder torch_checkpoint: checkpoint {where} holds a {type(raw).__name__}, not a state dict")
    state = {str(k): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ConfigError(f"encoder torch_checkpoint: checkpoint {where} holds no tensors (keys {list(raw)[:5]})")
    for prefix in PREFIXES:
        inside = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if inside:
            dropped = sorted(k for k in state if not k.startswith(prefix))
            if dropped:
                log.info("checkpoint %s: kept %d keys under %r, dropped %d others (%s ...)",
                         where, len(inside), prefix, len(dropped), ", ".join(dropped[:3]))
            state = inside
    return state


_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_STAGE = r"layer(\d+)\.(\d+)\."  # torchvision's layer1..4 = transformers' stages 0..3


def _block(g: tuple[str, ...]) -> str:
    return f"encoder.stages.{int(g[0]) - 1}.layers.{g[1]}"


_RESNET_RULES: tuple[tuple[re.Pattern[str], Callable[[tuple[str, ...]], str]], ...] = (
    (re.compile(r"conv1\.weight"), lambda g: "embedder.embedder.convolution.weight"),
    (re.compile(rf"bn1\.{_BN}"), lambda g: f"embedder.embedder.normalization.{g[0]}"),
    (re.compile(rf"{_STAGE}conv(\d+)\.weight"), lambda g: f"{_block(g)}.layer.{int(g[2]) - 1}.convolution.weight"),
    (re.compile(rf"{_STAGE}bn(\d+)\.{_BN}"), lambda g: f"{_block(g)}.layer.{int(g[2]) - 1}.normalization.{g[3]}"),
    (re.compile(rf"{_STAGE}downsample\.0\.weight"), lambda g: f"{_block(g)}.shortcut.convolution.weight"),
    (re.compile(rf"{_STAGE}downsample\.1\.{_BN}"), lambda g: f"{_block(g)}.shortcut.normalization.{g[2]}"),
)


def map_resnet(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, tuple[str, torch.Tensor]], list[str]]:
    """torchvision ResNet names -> ``transformers.ResNetModel`` names.

    Returns ``{model key: (checkpoint key, tensor)}`` and the unmapped checkpoint keys.
    """
    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    unmapped: list[str] = []
    for key, value in state.items():
        for pattern, target in _RESNET_RULES:
            m = pattern.fullmatch(key)
            if m:
                mapped[target(m.groups())] = (key, value)
                break
        else:
            unmapped.append(key)
    return mapped, unmapped


_VIT_DIRECT = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
_VIT_BLOCK = {
    "norm1": "layernorm_before",
    "attn.proj": "attention.o_proj",
    "norm2": "layernorm_after",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_VIT_BLOCK_KEY = re.compile(r"blocks\.(\d+)\.(.+)\.(weight|bias)")


def map_vit(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, tuple[str, torch.Tensor]], list[str]]:
    """timm / MoCo v3 ViT names -> ``transformers.ViTModel`` names, qkv split in query, key, value (rows).

    Returns ``{model key: (checkpoint key, tensor)}`` and the unmapped checkpoint keys.
    """
    mapped: dict[str, tuple[str, torch.Tensor]] = {}
    unmapped: list[str] = []
    for key, value in state.items():
        if key in _VIT_DIRECT:
            mapped[_VIT_DIRECT[key]] = (key, value)
            continue
        m = _VIT_BLOCK_KEY.fullmatch(key)
        if m is None:
            unmapped.append(key)
            continue
        block, module, param = m.groups()
        if module == "attn.qkv":
            if value.shape[0] % 3:
                unmapped.append(key)
                continue
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                mapped[f"layers.{block}.attention.{name}.{param}"] = (key, part)
        elif module in _VIT_BLOCK:
            mapped[f"layers.{block}.{_VIT_BLOCK[module]}.{param}"] = (key, value)
        else:
            unmapped.append(key)
    return mapped, unmapped


def _build(architecture: str, config: Any) -> Any:
    from transformers import ResNetModel, ViTModel

    if architecture == "resnet50":
        return ResNetModel(config)
    return ViTModel(config, add_pooling_layer=False)


def load_checkpoint_model(
    state: Mapping[str, torch.Tensor], architecture: str, where: str, config: Any = None
) -> Any:
    """A transformers model of ``architecture`` (eval mode, CPU) holding the weights of ``state``.

    ``config`` defaults to ``CONFIGS[architecture]()``. Raises ConfigError
    (one line, naming ``where`` and the first few keys) for keys the model
    lacks, weights the checkpoint lacks, or a shape mismatch.
    """
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"encoder torch_checkpoint: architecture {architecture!r} not in {list(ARCHITECTURES)}")
    heads = HEADS[architecture]
    head = sorted(k for k in state if k.startswith(heads))
    if head:
        log.info("checkpoint %s: dropped the head (%d keys: %s ...)", where, len(head), ", ".join(head[:3]))
    body = {k: v for k, v in state.items() if not k.startswith(heads)}
    mapped, unexpected = (map_resnet if architecture == "resnet50" else map_vit)(body)
    net = _build(architecture, config if config is not None else CONFIGS[architecture]())
    target = net.state_dict()
    unexpected += sorted(f"{src} (as {k})" for k, (src, _) in mapped.items() if k not in target)
    if unexpected:
        raise ConfigError(
            f"encoder torch_checkpoint: checkpoint {where} has {len(unexpected)} keys that {architecture} lacks: "
            f"{', '.join(unexpected[:5])}"
        )
    # BatchNorm's batch counter plays no part in eval mode: a checkpoint may leave it out.
    missing = sorted(k for k in target if k not in mapped and not k.endswith("num_batches_tracked"))
    if missing:
        raise ConfigError(
            f"encoder torch_checkpoint: checkpoint {where} misses {len(missing)} weights of {architecture}: "
            f"{', '.join(missing[:5])}"
        )
    wrong = [
        f"{src} {tuple(v.shape)} != {tuple(target[k].shape)}" for k, (src, v) in mapped.items() if v.shape != target[k].shape
    ]
    if wrong:
        raise ConfigError(
            f"encoder torch_checkpoint: checkpoint {where} has {len(wrong)} tensors of the wrong shape for "
            f"{architecture}: {'; '.join(wrong[:3])}"
        )
    net.load_state_dict({k: v.to(target[k].dtype) for k, (_, v) in mapped.items()}, strict=False)
    return net.eval()


def checkpoint_processor(normalize: bool = True) -> Any:
    """An image processor resizing to 224 x 224, rescaling to [0, 1] and (``normalize``) ImageNet-normalising."""
    try:
        from transformers import (
            ViTImageProcessorPil as Processor,  # without torchvision, no fallback warning
        )
    except ImportError:  # transformers without the PIL-backend class
        from transformers import ViTImageProcessor as Processor
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    return Processor(
        do_resize=True, size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_rescale=True,
        do_normalize=normalize, image_mean=list(IMAGENET_DEFAULT_MEAN), image_std=list(IMAGENET_DEFAULT_STD),
    )


def load_checkpoint_encoder(
    model: str | os.PathLike,
    file: str,
    architecture: str,
    device: torch.device | str = "cpu",
    revision: str | None = None,
    normalize: bool = True,
) -> tuple[Any, Any, str]:
    """Model (eval mode, on ``device``), image processor and pooling of checkpoint ``file`` of ``model``."""
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"encoder torch_checkpoint: architecture {architecture!r} not in {list(ARCHITECTURES)}")
    path = checkpoint_path(model, file, revision)
    net = load_checkpoint_model(read_state_dict(path), architecture, f"{model}/{file}")
    return net.to(device), checkpoint_processor(normalize), POOLING[architecture]
