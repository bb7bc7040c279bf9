"""``isa``: Information Sampling for Alignment (Khera, Ghosh & Dutta 2024, arXiv 2411.10545).

The paper's recipe (PAPERS.md part 2): fit a 2-component Gaussian mixture to
the row embeddings; per-row log-likelihood l(x); min-max scale it to
l'(x) in [0, 1]; p(x) = exp(l'(x)); H(X) = -sum_x p(x) log p(x); score each row
by Delta(x) = H(X) - H(X without x); keep the k rows of largest Delta.

The paper does not say whether p is normalised before the entropy, and the two
readings rank rows differently, so the reading is an option:

``literal`` (default)
    p as written. H is a plain sum, so Delta(x) = -p(x) log p(x)
    = -l'(x) exp(l'(x)), which falls as l'(x) rises: ISA keeps the k
    *lowest*-likelihood rows (the rarest under the mixture).
``normalised``
    q(x) = p(x) / S over the set, S = sum p; H(X) = -sum q log q, and
    H(X without x) renormalises over the n - 1 other rows. With
    T = sum p log p, H = log S - T / S exactly, so the leave-one-out entropy is
    log(S - p_x) - (T - p_x log p_x) / (S - p_x), computed for all rows at once
    (no loop). d Delta / d p_x = (T - S log p_x) / (S - p_x)^2: Delta peaks at
    l'(x) = T / S, the p-weighted mean of l'. This reading keeps the rows whose
    likelihood is nearest that typical level, dropping the rare tail first
    (and the most typical rows last): roughly, not exactly, the reverse of
    ``literal``.
``resubstitution``
    our further reading, where H is the differential entropy of the data under
    the fitted mixture, estimated by resubstitution, H_hat(X) = -(1/n) sum l(x)
    on the unscaled log-likelihood, and the mixture is not refitted without x
    (refitting n times is what the paper's wording would cost). Then
    Delta(x) = (mean l - l(x)) / (n - 1) in nats: the same ranking as
    ``literal`` on an interpretable scale, which supports ``literal`` as the
    reading that matches the method's name (keep the most informative, i.e.
    least likely, rows).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from datalign.core.errors import ConfigError, DataError
from datalign.studies.efficient_alignment.selection.registry import (
    SelectionResult,
    register_method,
    top_k,
)

VARIANTS = ("literal", "normalised", "resubstitution")
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def min_max_scale(values: np.ndarray, what: str = "log-likelihood") -> np.ndarray:
    """(v - min v) / (max v - min v), an (n,) array in [0, 1].

    Constant ``values`` (max == min) cannot be scaled: a :class:`DataError`
    naming ``what`` and the value.
    """
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    if hi == lo:
        raise DataError(f"isa: the {what} is the same for all {v.size} rows ({lo:g}); "
                        "min-max scaling is undefined")
    return (v - lo) / (hi - lo)


def delta_literal(p: np.ndarray) -> np.ndarray:
    """Delta(x) = H(X) - H(X without x) for H = -sum p log p unnormalised: -p(x) log p(x).

    ``p``: (n,) positive; returns (n,) float64. PAPERS.md part 2 (ISA), read literally.
    """
    p = np.asarray(p, dtype=np.float64)
    return -p * np.log(p)


def delta_normalised(p: np.ndarray) -> np.ndarray:
    """Exact leave-one-out entropy drop with p renormalised to sum to 1 over the set.

    ``p``: (n,) positive, n >= 2; returns (n,) float64 Delta(x) = H(q) - H(q_{-x})
    where q = p / sum(p) and q_{-x} renormalises over the other n - 1 rows.
    Uses H = log S - T / S (S = sum p, T = sum p log p), so each leave-one-out
    entropy needs only S - p_x and T - p_x log p_x: O(n) for all rows.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.size < 2:
        raise DataError(f"isa (normalised): leave-one-out entropy needs at least 2 rows, got {p.size}")
    plogp = p * np.log(p)
    s, t = p.sum(), plogp.sum()
    entropy = np.log(s) - t / s
    s_out = s - p
    entropy_out = np.log(s_out) - (t - plogp) / s_out
    return entropy - entropy_out


def delta_resubstitution(log_likelihood: np.ndarray) -> np.ndarray:
    """Delta(x) = H_hat(X) - H_hat(X without x), H_hat = -mean log-likelihood (nats), no refit.

    ``log_likelihood``: (n,) unscaled l(x), n >= 2; returns (n,) float64
    (mean l - l(x)) / (n - 1), the closed form of the leave-one-out difference.
    """
    ll = np.asarray(log_likelihood, dtype=np.float64)
    if ll.size < 2:
        raise DataError(f"isa (resubstitution): needs at least 2 rows, got {ll.size}")
    return (ll.mean() - ll) / (ll.size - 1)


def isa_scores(
    embeddings: np.ndarray,
    seed: int,
    variant: str = "literal",
    n_components: int = 2,
    covariance_type: str = "full",
    pca_components: int | None = None,
    reg_covar: float = 1e-6,
    max_iter: int = 100,
    n_init: int = 1,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
    """ISA's per-row Delta(x) for (n, d) ``embeddings``: (Delta (n,), per-row arrays, info).

    Optionally projects onto the first ``pca_components`` principal components
    (sklearn PCA, seeded), fits ``GaussianMixture(n_components,
    covariance_type, random_state=seed)``, takes l(x) = ``score_samples`` (nats
    per row), l' = min-max scaled l, p = exp(l'), and Delta by ``variant``
    (module docstring). Per-row arrays: ``log_likelihood``, ``scaled_log_likelihood``,
    ``p``. Raises :class:`ConfigError` for a bad option and :class:`DataError`
    when the mixture cannot be fitted (fewer rows than components) or l is constant.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"isa: unknown variant '{variant}' (known: {', '.join(VARIANTS)})")
    if covariance_type not in _COVARIANCE_TYPES:
        raise ConfigError(f"isa: covariance_type must be one of {_COVARIANCE_TYPES}, "
                          f"got {covariance_type!r}")
    n, d = embeddings.shape
    if not isinstance(n_components, numbers.Integral) or n_components < 1:
        raise ConfigError(f"isa: n_components must be a positive integer, got {n_components!r}")
    if n < max(2, n_components):
        raise DataError(f"isa: {n} row(s) cannot fit a {n_components}-component mixture "
                        "(need at least max(2, n_components))")
    x = embeddings
    info: dict[str, Any] = {"variant": variant, "n_components": n_components,
                            "covariance_type": covariance_type, "dim_in": d}
    if pca_components is not None:
        if not isinstance(pca_components, numbers.Integral) or not 1 <= pca_components <= min(n, d):
            raise ConfigError(f"isa: pca_components must be an integer in [1, min(n, d) = "
                              f"{min(n, d)}], got {pca_components!r}")
        pca = PCA(n_components=pca_components, random_state=seed)
        x = pca.fit_transform(x)
        info["pca_components"] = pca_components
        info["pca_explained_variance"] = float(pca.explained_variance_ratio_.sum())
    gmm = GaussianMixture(n_components=n_components, covariance_type=covariance_type,
                          reg_covar=reg_covar, max_iter=max_iter, n_init=n_init, random_state=seed)
    try:
        gmm.fit(x)
    except ValueError as exc:
        raise DataError(f"isa: Gaussian mixture fit failed on {n} x {x.shape[1]} embeddings: "
                        f"{str(exc).splitlines()[0]}") from None
    log_likelihood = gmm.score_samples(x)
    scaled = min_max_scale(log_likelihood)
    p = np.exp(scaled)
    if variant == "literal":
        delta = delta_literal(p)
    elif variant == "normalised":
        delta = delta_normalised(p)
    else:
        delta = delta_resubstitution(log_likelihood)
    info.update(converged=bool(gmm.converged_), n_iter=int(gmm.n_iter_),
                mixture_weights=gmm.weights_.tolist(),
                log_likelihood_min=float(log_likelihood.min()),
                log_likelihood_max=float(log_likelihood.max()))
    per_row = {"log_likelihood": log_likelihood, "scaled_log_likelihood": scaled, "p": p}
    return delta, per_row, info


@register_method("isa", needs="embeddings")
def isa(
    data: np.ndarray,
    k: int,
    seed: int,
    *,
    variant: str = "literal",
    n_components: int = 2,
    covariance_type: str = "full",
    pca_components: int | None = None,
    reg_covar: float = 1e-6,
    max_iter: int = 100,
    n_init: int = 1,
) -> SelectionResult:
    """Keep the k rows of largest ISA Delta(x) (see :func:`isa_scores` and the module docstring).

    ``data``: (n, d) embeddings. ``scores`` = Delta (nats for
    ``resubstitution``, entropy units of the scaled p otherwise); ``per_row``
    holds l, l' and p. Khera et al. 2024, Sec. 3 (ISA), as stated in PAPERS.md part 2.
    """
    delta, per_row, info = isa_scores(
        data, seed, variant=variant, n_components=n_components, covariance_type=covariance_type,
        pca_components=pca_components, reg_covar=reg_covar, max_iter=max_iter, n_init=n_init)
    return SelectionResult("isa", top_k(delta, k), delta, per_row, info)
