"""The torch_checkpoint encoder: torchvision ResNet and timm / MoCo v3 ViT state dicts on transformers' models.

The checkpoints are written here by hand from small architecture specs in the
publishers' own key names (torchvision, timm with MoCo v3's training wrapper),
not through the encoder's mapping, and loaded back through it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from datalign.core.errors import ConfigError
from datalign.data.labelled import LabelledData
from datalign.studies.spectral_imbalance.encoders import (
    build_encoder,
    encode_splits,
    validate_encoder_spec,
)
from datalign.studies.spectral_imbalance.encoders import checkpoint as ck

# A small torchvision-layout bottleneck ResNet: stem width, per-stage bottleneck widths and depths.
STEM, PLANES, DEPTHS, N_CLASSES = 8, (4, 8, 8, 16), (2, 1, 1, 1), 5
# A tiny ViT at 224 / 16: 196 patches + CLS.
WIDTH, LAYERS, HEADS, MLP, TOKENS = 32, 2, 2, 64, 197


def _bn(gen: torch.Generator, prefix: str, n: int, counter: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}.weight": torch.rand(n, generator=gen) + 0.5,
        f"{prefix}.bias": torch.randn(n, generator=gen) * 0.1,
        f"{prefix}.running_mean": torch.randn(n, generator=gen) * 0.1,
        f"{prefix}.running_var": torch.rand(n, generator=gen) + 0.5,
        f"{prefix}.num_batches_tracked": torch.tensor(counter),
    }


def torchvision_resnet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision ``resnet.ResNet(Bottleneck, DEPTHS)`` names and shapes at widths STEM / PLANES, with an fc head."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {"conv1.weight": torch.randn(STEM, 3, 7, 7, generator=gen) * 0.1}
    sd.update(_bn(gen, "bn1", STEM, 1))
    inplanes = STEM
    for stage, (planes, depth) in enumerate(zip(PLANES, DEPTHS, strict=True), start=1):
        for block in range(depth):
            p = f"layer{stage}.{block}"
            sd[f"{p}.conv1.weight"] = torch.randn(planes, inplanes, 1, 1, generator=gen) * 0.2
            sd.update(_bn(gen, f"{p}.bn1", planes, 10 * stage + block))
            sd[f"{p}.conv2.weight"] = torch.randn(planes, planes, 3, 3, generator=gen) * 0.2
            sd.update(_bn(gen, f"{p}.bn2", planes, 10 * stage + block + 100))
            sd[f"{p}.conv3.weight"] = torch.randn(4 * planes, planes, 1, 1, generator=gen) * 0.2
            sd.update(_bn(gen, f"{p}.bn3", 4 * planes, 10 * stage + block + 200))
            if block == 0:  # torchvision adds the projection shortcut where channels or stride change
                sd[f"{p}.downsample.0.weight"] = torch.randn(4 * planes, inplanes, 1, 1, generator=gen) * 0.2
                sd.update(_bn(gen, f"{p}.downsample.1", 4 * planes, 10 * stage + 300))
            inplanes = 4 * planes
    sd["fc.weight"] = torch.randn(N_CLASSES, inplanes, generator=gen)
    sd["fc.bias"] = torch.randn(N_CLASSES, generator=gen)
    return sd


def timm_vit_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """timm ``VisionTransformer`` names and shapes (patch 16, WIDTH, LAYERS blocks), with a MoCo projection head."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * 0.1

    sd = {
        "cls_token": r(1, 1, WIDTH), "pos_embed": r(1, TOKENS, WIDTH),
        "patch_embed.proj.weight": r(WIDTH, 3, 16, 16), "patch_embed.proj.bias": r(WIDTH),
        "norm.weight": 1 + r(WIDTH), "norm.bias": r(WIDTH),
        "head.0.weight": r(64, WIDTH), "head.1.weight": 1 + r(64), "head.3.weight": r(16, 64),
    }
    for i in range(LAYERS):
        b = f"blocks.{i}"
        sd.update({
            f"{b}.norm1.weight": 1 + r(WIDTH), f"{b}.norm1.bias": r(WIDTH),
            f"{b}.attn.qkv.weight": r(3 * WIDTH, WIDTH), f"{b}.attn.qkv.bias": r(3 * WIDTH),
            f"{b}.attn.proj.weight": r(WIDTH, WIDTH), f"{b}.attn.proj.bias": r(WIDTH),
            f"{b}.norm2.weight": 1 + r(WIDTH), f"{b}.norm2.bias": r(WIDTH),
            f"{b}.mlp.fc1.weight": r(MLP, WIDTH), f"{b}.mlp.fc1.bias": r(MLP),
            f"{b}.mlp.fc2.weight": r(WIDTH, MLP), f"{b}.mlp.fc2.bias": r(WIDTH),
        })
    return sd


def moco_training_checkpoint(seed: int = 0) -> dict:
    """Shaped like MoCo v3's ``main_moco.py`` save: the backbone under ``module.base_encoder.``."""
    base = timm_vit_state(seed)
    state = {f"module.base_encoder.{k}": v for k, v in base.items()}
    state.update({f"module.momentum_encoder.{k}": v.clone() for k, v in base.items()})
    state["module.predictor.0.weight"] = torch.zeros(16, 16)
    return {"epoch": 300, "arch": "vit_base", "state_dict": state, "optimizer": {"state": {}}}


@pytest.fixture
def small_archs(monkeypatch):
    from transformers import ResNetConfig, ViTConfig

    monkeypatch.setitem(ck.CONFIGS, "resnet50", lambda: ResNetConfig(
        embedding_size=STEM, hidden_sizes=[4 * p for p in PLANES], depths=list(DEPTHS), layer_type="bottleneck",
        downsample_in_first_stage=False, downsample_in_bottleneck=False,
    ))
    monkeypatch.setitem(ck.CONFIGS, "vit_b16", lambda: ViTConfig(
        hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=HEADS, intermediate_size=MLP,
        image_size=224, patch_size=16, qkv_bias=True, layer_norm_eps=1e-6,
    ))


def _images(n: int, seed: int = 0) -> LabelledData:
    rng = np.random.default_rng(seed)
    return LabelledData(rng.integers(0, 256, (n, 20, 20, 3), dtype=np.uint8), np.arange(n) % 2, ("a", "b"),
                        [f"r{i}" for i in range(n)], "images")


def _all_landed(model: torch.nn.Module, checkpoint: dict[str, torch.Tensor], head: str) -> None:
    """Every model tensor equals exactly one checkpoint tensor, and each checkpoint tensor (no head) is used once.

    A fused qkv tensor counts as its three row blocks (query, key, value).
    """
    body = []
    for k, v in checkpoint.items():
        if not k.startswith(head):
            body.extend(v.chunk(3) if ".attn.qkv." in k else [v])
    target = model.state_dict()
    used: set[int] = set()
    for name, tensor in target.items():
        hits = [i for i, v in enumerate(body) if v.shape == tensor.shape and torch.equal(v.to(tensor.dtype), tensor)]
        assert len(hits) == 1, name
        used.add(hits[0])
    assert len(used) == len(body) == len(target)


def test_torchvision_resnet_lands_and_encodes(tmp_path, small_archs):
    sd = torchvision_resnet_state()
    torch.save({"state_dict": sd}, tmp_path / "resnet50-1x.pth")
    model, processor, pooling = ck.load_checkpoint_encoder(tmp_path, "resnet50-1x.pth", "resnet50")
    assert pooling == "pooler"
    _all_landed(model, sd, "fc.")
    got = model.state_dict()
    assert torch.equal(got["embedder.embedder.convolution.weight"], sd["conv1.weight"])
    assert torch.equal(got["encoder.stages.0.layers.1.layer.1.normalization.running_var"], sd["layer1.1.bn2.running_var"])
    assert torch.equal(got["encoder.stages.2.layers.0.shortcut.convolution.weight"], sd["layer3.0.downsample.0.weight"])
    assert torch.equal(got["encoder.stages.3.layers.0.layer.2.normalization.bias"], sd["layer4.0.bn3.bias"])
    # through the registry: validated spec, features (n, 4 * last width), deterministic
    spec = {"kind": "torch_checkpoint", "model": str(tmp_path), "file": "resnet50-1x.pth",
            "architecture": "resnet50", "device": "cpu", "batch_size": 3}
    splits = {"train": _images(2), "test": _images(5, seed=1)}
    feats, info = encode_splits("simclr", spec, splits, seed=0, progress=False)
    assert feats["test"].features.shape == (5, 4 * PLANES[-1]) and info["dim"] == 4 * PLANES[-1]
    assert info["fit"]["architecture"] == "resnet50" and np.isfinite(feats["test"].features).all()
    again, _ = encode_splits("simclr", spec, splits, seed=0, progress=False)
    np.testing.assert_array_equal(again["test"].features, feats["test"].features)


def test_resnet_renamed_or_missing_key_is_one_line(tmp_path, small_archs):
    sd = torchvision_resnet_state()
    sd["layer2.0.bn9.weight"] = sd.pop("layer2.0.bn2.weight")
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(ConfigError) as err:
        ck.load_checkpoint_encoder(tmp_path, "bad.pth", "resnet50")
    text = str(err.value)
    assert "layer2.0.bn9.weight" in text and "bad.pth" in text and "\n" not in text
    sd = torchvision_resnet_state()
    del sd["layer4.0.conv2.weight"]
    torch.save(sd, tmp_path / "short.pth")
    with pytest.raises(ConfigError) as err:
        ck.load_checkpoint_encoder(tmp_path, "short.pth", "resnet50")
    text = str(err.value)
    assert "encoder.stages.3.layers.0.layer.1.convolution.weight" in text and "short.pth" in text and "\n" not in text


def test_moco_vit_unwraps_splits_qkv_and_encodes(tmp_path, small_archs):
    torch.save(moco_training_checkpoint(), tmp_path / "checkpoint_0299.pth.tar")
    model, _, pooling = ck.load_checkpoint_encoder(tmp_path, "checkpoint_0299.pth.tar", "vit_b16")
    assert pooling == "cls"
    base = timm_vit_state()
    _all_landed(model, base, "head.")
    got = model.state_dict()
    for i in range(LAYERS):
        qkv_w, qkv_b = base[f"blocks.{i}.attn.qkv.weight"], base[f"blocks.{i}.attn.qkv.bias"]
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            assert torch.equal(got[f"layers.{i}.attention.{name}.weight"], qkv_w[j * WIDTH:(j + 1) * WIDTH])
            assert torch.equal(got[f"layers.{i}.attention.{name}.bias"], qkv_b[j * WIDTH:(j + 1) * WIDTH])
    assert torch.equal(got["embeddings.position_embeddings"], base["pos_embed"])
    assert torch.equal(got["layernorm.weight"], base["norm.weight"])
    spec = {"kind": "torch_checkpoint", "model": str(tmp_path), "file": "checkpoint_0299.pth.tar",
            "architecture": "vit_b16", "device": "cpu"}
    splits = {"train": _images(2), "test": _images(3, seed=2)}
    feats, _ = encode_splits("mocov3", spec, splits, seed=0, progress=False)
    assert feats["test"].features.shape == (3, WIDTH)
    # the feature is the CLS token after the final LayerNorm
    images = [Image.fromarray(x) for x in splits["test"].X]
    pixels = ck.checkpoint_processor()(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        hidden = model(pixel_values=pixels).last_hidden_state
    np.testing.assert_allclose(feats["test"].features, hidden[:, 0].numpy(), rtol=1e-5, atol=1e-5)
    again, _ = encode_splits("mocov3", spec, splits, seed=0, progress=False)
    np.testing.assert_array_equal(again["test"].features, feats["test"].features)


def test_vit_renamed_key_is_one_line(tmp_path, small_archs):
    ckpt = moco_training_checkpoint()
    state = ckpt["state_dict"]
    state["module.base_encoder.blocks.1.attn.qkv_renamed.weight"] = state.pop("module.base_encoder.blocks.1.attn.qkv.weight")
    torch.save(ckpt, tmp_path / "moco.pth")
    with pytest.raises(ConfigError) as err:
        ck.load_checkpoint_encoder(tmp_path, "moco.pth", "vit_b16")
    text = str(err.value)
    assert "blocks.1.attn.qkv_renamed.weight" in text and "moco.pth" in text and "\n" not in text


def test_hub_file_is_downloaded_and_safetensors_read(tmp_path, small_archs, monkeypatch):
    """A hub repo id goes through hf_hub_download; a timm-style model.safetensors (no wrapper) loads."""
    import huggingface_hub
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in timm_vit_state().items()}, str(tmp_path / "model.safetensors"))
    calls = []

    def fake_download(repo_id, filename, revision=None, **kwargs):
        calls.append((repo_id, filename, revision))
        return str(tmp_path / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    model, _, _ = ck.load_checkpoint_encoder("nyu-visionx/moco-v3-vit-b", "model.safetensors", "vit_b16")
    assert calls == [("nyu-visionx/moco-v3-vit-b", "model.safetensors", None)]
    assert torch.equal(model.state_dict()["embeddings.cls_token"], timm_vit_state()["cls_token"])

    def failing_download(repo_id, filename, revision=None, **kwargs):
        raise huggingface_hub.errors.EntryNotFoundError(f"404 Client Error.\nEntry not found {filename}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing_download)
    with pytest.raises(ConfigError) as err:
        ck.load_checkpoint_encoder("someone/repo", "weights.pth", "resnet50")
    text = str(err.value)
    assert "someone/repo" in text and "weights.pth" in text and "\n" not in text


def test_spec_validation_and_default_architectures():
    good = {"kind": "torch_checkpoint", "model": "m", "file": "f.pth", "architecture": "vit_b16"}
    validate_encoder_spec("ok", good)
    for bad, key in (({**good, "architecture": "vit_l16"}, "architecture"), ({**good, "normalize": "yes"}, "normalize"),
                     ({k: v for k, v in good.items() if k != "file"}, "file")):
        with pytest.raises(ConfigError, match=rf"encoders\.x\.{key}"):
            validate_encoder_spec("x", bad)
    assert build_encoder("x", good, 0).options["normalize"] is True
    # the real configs: ResNet-50 (2048-d pool) and ViT-B/16 (768, timm's eps)
    r50, vit = ck.CONFIGS["resnet50"](), ck.CONFIGS["vit_b16"]()
    assert r50.hidden_sizes[-1] == 2048 and list(r50.depths) == [3, 4, 6, 3] and r50.embedding_size == 64
    assert vit.hidden_size == 768 and vit.num_hidden_layers == 12 and vit.layer_norm_eps == 1e-6
