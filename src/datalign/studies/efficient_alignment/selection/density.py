"""``density``: kernel-density scores and inverse-propensity sampling.

After Sachdeva et al. 2024, "How to Train Data-Efficient LLMs" (arXiv
2402.09668), the Density sampler: estimate the density of every row's
embedding under a kernel density estimate of the whole set, then sample k rows
without replacement with probability proportional to 1 / density (inverse
propensity), so sparse regions of the embedding space are up-weighted and the
sample covers the set. Their kernel-sum *sketch* (a hashing approximation for
billions of rows) is replaced here by the exact estimate of scikit-learn's
``KernelDensity``, affordable at this study's sizes.

The bandwidth (one isotropic h, as ``KernelDensity`` takes) is a number or a
rule of thumb scaled by the data: ``"scott"`` h = sigma n^(-1/(d+4)) (Scott
1992, "Multivariate Density Estimation", ch. 6), ``"silverman"``
h = sigma (n (d + 2) / 4)^(-1/(d+4)) (Silverman 1986, "Density Estimation for
Statistics and Data Analysis", ch. 4), with sigma the root mean per-dimension
variance (ddof = 1). In one dimension these equal
``scipy.stats.gaussian_kde``'s rules. scikit-learn's own ``"scott"`` string
omits sigma (it assumes standardised data), hence the explicit computation.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KernelDensity

from datalign.core.errors import ConfigError, DataError
from datalign.studies.efficient_alignment.selection.registry import (
    SelectionResult,
    register_method,
    top_k,
)
from datalign.studies.efficient_alignment.selection.sampling import gumbel_keys

_KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine")


def rule_of_thumb_bandwidth(x: np.ndarray, rule: str = "scott") -> float:
    """Isotropic KDE bandwidth for (n, d) data ``x`` by Scott's or Silverman's rule (module docstring).

    Returns h in the units of ``x``. Fewer than 2 rows, or data with zero
    variance, is a :class:`DataError`; an unknown rule a :class:`ConfigError`.
    """
    n, d = x.shape
    if n < 2:
        raise DataError(f"density: a bandwidth rule needs at least 2 rows, got {n}")
    sigma = float(np.sqrt(np.var(x, axis=0, ddof=1).mean()))
    if sigma == 0.0:
        raise DataError(f"density: all {n} embeddings are identical; no bandwidth can be chosen")
    if rule == "scott":
        factor = n ** (-1.0 / (d + 4))
    elif rule == "silverman":
        factor = (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
    else:
        raise ConfigError(f"density: bandwidth must be a positive number, 'scott' or 'silverman', "
                          f"got {rule!r}")
    return sigma * factor


def log_density(
    embeddings: np.ndarray,
    bandwidth: float | str = "scott",
    kernel: str = "gaussian",
    pca_components: int | None = None,
    seed: int = 0,
    algorithm: str = "auto",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Log kernel density of every row under the KDE of all rows: ((n,) float64, info).

    ``embeddings``: (n, d); optionally projected onto ``pca_components``
    principal components first (kernel estimates degrade fast with dimension).
    The estimate includes each row's own kernel, as a density of the set
    evaluated at its members does; it is exact (``KernelDensity`` with
    atol = rtol = 0), O(n^2 d): ``algorithm`` (``"auto"``, ``"kd_tree"``,
    ``"ball_tree"``) only changes the speed, and a ball tree is the faster in
    hundreds of dimensions. ``info`` records the bandwidth and dimension used.
    """
    if algorithm not in ("auto", "kd_tree", "ball_tree"):
        raise ConfigError(f"density: algorithm must be 'auto', 'kd_tree' or 'ball_tree', "
                          f"got {algorithm!r}")
    if kernel not in _KERNELS:
        raise ConfigError(f"density: kernel must be one of {_KERNELS}, got {kernel!r}")
    n, d = embeddings.shape
    x = embeddings
    info: dict[str, Any] = {"kernel": kernel, "dim_in": d}
    if pca_components is not None:
        if not isinstance(pca_components, numbers.Integral) or not 1 <= pca_components <= min(n, d):
            raise ConfigError(f"density: pca_components must be an integer in [1, min(n, d) = "
                              f"{min(n, d)}], got {pca_components!r}")
        x = PCA(n_components=pca_components, random_state=seed).fit_transform(x)
        info["pca_components"] = pca_components
    if isinstance(bandwidth, str):
        h = rule_of_thumb_bandwidth(x, bandwidth)
        info["bandwidth_rule"] = bandwidth
    elif isinstance(bandwidth, numbers.Real) and not isinstance(bandwidth, bool) and bandwidth > 0:
        h = float(bandwidth)
    else:
        raise ConfigError(f"density: bandwidth must be a positive number, 'scott' or 'silverman', "
                          f"got {bandwidth!r}")
    info["bandwidth"] = h
    kde = KernelDensity(bandwidth=h, kernel=kernel, algorithm=algorithm).fit(x)
    return kde.score_samples(x).astype(np.float64), info


@register_method("density", needs="embeddings")
def density(
    data: np.ndarray,
    k: int,
    seed: int,
    *,
    bandwidth: float | str = "scott",
    kernel: str = "gaussian",
    pca_components: int | None = None,
    algorithm: str = "auto",
) -> SelectionResult:
    """Sample k rows without replacement with probability proportional to 1 / KDE density.

    ``data``: (n, d) embeddings. Successive draws, each among the rows left
    with probability proportional to 1 / density (Sachdeva et al. 2024,
    Density sampling with inverse propensity), done as Gumbel-top-k on
    -log density (:mod:`.sampling`). ``scores`` are the keys (draw order);
    ``per_row`` has ``log_density`` and ``inclusion_weight`` (1 / density
    normalised to sum to 1: the first draw's probabilities); ``info`` the
    bandwidth and the effective number of rows 1 / sum(w^2) of those weights.
    """
    logdens, info = log_density(data, bandwidth=bandwidth, kernel=kernel,
                                pca_components=pca_components, seed=seed, algorithm=algorithm)
    if not np.isfinite(logdens).all():
        # A compact kernel gives -inf nowhere at the data (each row has its own
        # kernel), so this only happens on overflow: say so instead of sampling wrongly.
        raise DataError(f"density: non-finite log density for {int((~np.isfinite(logdens)).sum())} "
                        f"of {logdens.size} rows (bandwidth {info['bandwidth']:g})")
    log_w = -logdens
    weights = np.exp(log_w - log_w.max())
    weights /= weights.sum()
    info["effective_rows"] = float(1.0 / np.sum(weights**2))
    keys = gumbel_keys(log_w, seed)
    per_row = {"log_density": logdens, "inclusion_weight": weights}
    return SelectionResult("density", top_k(keys, k), keys, per_row, info)
