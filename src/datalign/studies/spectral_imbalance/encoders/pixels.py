"""Pixel encoders: raw pixels, and PCA of raw pixels fitted on the train split.

``raw``: every image flattened to ``H * W * C`` values in [0, 1] (uint8 / 255).
``pca``: scikit-learn's ``PCA`` fitted on the raw train pixels only (so the
test split never shapes the basis), then applied to every split.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from datalign.core.errors import ConfigError
from datalign.data.labelled import unit_pixels


def raw_features(X: np.ndarray) -> np.ndarray:
    """Images ``(n, H, W[, C])`` as float32 ``(n, H*W*C)`` in [0, 1]."""
    return unit_pixels(X).reshape(len(X), -1)


def fit_pca(X_train: np.ndarray, n_components: int, seed: int, whiten: bool = False, encoder: str = "pca") -> PCA:
    """``sklearn.decomposition.PCA`` fitted on the raw pixels of the train images ``(n, H, W[, C])``.

    ``seed`` drives the randomized SVD that scikit-learn picks for large
    inputs. Raises ConfigError naming the encoder when ``n_components``
    exceeds ``min(n_train, pixels)``.
    """
    flat = raw_features(X_train)
    limit = min(flat.shape)
    if not 1 <= n_components <= limit:
        raise ConfigError(
            f"encoder {encoder}: n_components = {n_components} must lie in 1..{limit} "
            f"(min of {flat.shape[0]} train images and {flat.shape[1]} pixels)"
        )
    return PCA(n_components=n_components, whiten=whiten, random_state=seed % 2**32).fit(flat)


def pca_features(pca: PCA, X: np.ndarray) -> np.ndarray:
    """Images ``(n, H, W[, C])`` projected on a fitted PCA: float32 ``(n, n_components)``."""
    return pca.transform(raw_features(X)).astype(np.float32)
