"""IDX files (the MNIST / Fashion-MNIST format) and the Debian Fashion-MNIST source.

IDX layout (LeCun et al., http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"):
two zero bytes, one type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), one byte giving the number of dimensions, then
each dimension as a big-endian uint32, then the values in C order, big-endian.

Debian's ``dataset-fashion-mnist`` package (Expat licence) installs the four
gzipped IDX files of Fashion-MNIST (Xiao et al. 2017) under
``/usr/share/datasets/fashion-mnist/``: 60,000 train and 10,000 test images,
28x28, 6,000 / 1,000 per class. Its own train/test split is kept.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.data.labelled.source import Source, memory_part

IDX_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# Label order of the Fashion-MNIST README (zalandoresearch/fashion-mnist, "Labels").
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped when its name ends in ``.gz``) into a native-endian array.

    Returns an array of the file's shape and type (uint8 images ``(n, 28, 28)``,
    uint8 labels ``(n,)``). Raises DataError naming the file for a bad magic
    number, an unknown type code or a size that does not match the header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'})")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header says {ndim} dimensions but the file ends at byte {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX shape {shape} needs {expected} bytes of data, the file has {len(raw) - header}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def load_fashion_mnist(name: str, spec: Mapping[str, Any]) -> Source:
    """Fashion-MNIST from its IDX files under ``spec['root']`` (default the Debian path).

    Parts ``train`` (60,000) and ``test`` (10,000); images uint8 ``(n, 28, 28)``.
    Raises DataError naming the missing file and the Debian package.
    """
    root = Path(spec.get("root") or FASHION_MNIST_ROOT)
    parts = {}
    for split, (images_file, labels_file) in FASHION_MNIST_FILES.items():
        paths = [root / images_file, root / labels_file]
        for p in paths:
            if not p.is_file():
                raise DataError(
                    f"dataset {name}: {p} not found (apt-get install dataset-fashion-mnist, or set root)"
                )
        X, y = read_idx(paths[0]), read_idx(paths[1])
        if X.ndim != 3 or y.ndim != 1 or len(X) != len(y):
            raise DataError(
                f"dataset {name}: {paths[0].name} {X.shape} and {paths[1].name} {y.shape} do not pair up"
            )
        ids = np.array([f"{split}:{i}" for i in range(len(y))])
        parts[split] = memory_part(X.astype(np.uint8), y, ids, f"{split} files of {root}")
    return Source(parts, list(FASHION_MNIST_CLASSES), "image", {"root": str(root)})
