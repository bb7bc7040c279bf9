"""Distances between Task2Vec embeddings, against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from datalign.core.errors import DataError
from datalign.task2vec import cosine, normalized_cosine, pairwise_distances


def test_hand_computed_cases():
    # a = (1, 1), b = (1, 3): a+b = (2, 4), u = (1/2, 1/4), v = (1/2, 3/4),
    # <u,v> = 1/4 + 3/16 = 7/16, |u|^2 = 5/16, |v|^2 = 13/16.
    a, b = np.array([1.0, 1.0]), np.array([1.0, 3.0])
    assert normalized_cosine(a, b) == pytest.approx(1 - (7 / 16) / np.sqrt(5 / 16 * 13 / 16), abs=1e-7)
    # plain cosine: <a,b> = 4, |a| = sqrt 2, |b| = sqrt 10.
    assert cosine(a, b) == pytest.approx(1 - 4 / np.sqrt(20), abs=1e-12)
    # Disjoint supports are orthogonal under both.
    assert normalized_cosine([1.0, 0.0], [0.0, 5.0]) == pytest.approx(1.0, abs=1e-12)
    assert cosine([1.0, 0.0], [0.0, 5.0]) == pytest.approx(1.0, abs=1e-12)
    # The normalized cosine sees every coordinate on the same scale; plain cosine does not:
    # a = (100, 1), b = (100, 2): cosine ~ 0, normalized cosine clearly > 0.
    a, b = np.array([100.0, 1.0]), np.array([100.0, 2.0])
    u, v = a / (a + b), b / (a + b)
    assert normalized_cosine(a, b) == pytest.approx(1 - u @ v / np.linalg.norm(u) / np.linalg.norm(v), abs=1e-7)
    assert normalized_cosine(a, b) > 20 * cosine(a, b)


def test_normalized_cosine_is_symmetric_zero_on_identical_and_scale_free():
    rng = np.random.default_rng(0)
    a, b = rng.gamma(0.5, size=(2, 300))
    assert normalized_cosine(a, b) == pytest.approx(normalized_cosine(b, a), abs=1e-14)
    assert normalized_cosine(a, a) == pytest.approx(0.0, abs=1e-12)
    # Scale-free without eps; with the absolute eps = 1e-8 only approximately.
    assert normalized_cosine(3 * a, 3 * b, eps=0) == pytest.approx(normalized_cosine(a, b, eps=0), abs=1e-12)
    assert normalized_cosine(3 * a, 3 * b) == pytest.approx(normalized_cosine(a, b), abs=1e-6)
    assert 0.0 < normalized_cosine(a, b) <= 1.0  # non-negative inputs: u, v >= 0


def test_eps_dominates_fisher_values_far_below_1e_8():
    # The authors' eps is absolute: for tiny embeddings a/(a+b+eps) ~ a/eps, and the
    # normalized cosine becomes the plain cosine (worth knowing for probes whose Fisher is tiny).
    rng = np.random.default_rng(2)
    a, b = rng.gamma(0.5, size=(2, 300))
    tiny_a, tiny_b = 1e-12 * a, 1e-12 * b
    assert normalized_cosine(tiny_a, tiny_b) == pytest.approx(cosine(a, b), abs=1e-3)
    assert abs(normalized_cosine(a, b) - cosine(a, b)) > 0.03


def test_pairwise_matches_elementwise_and_scipy():
    rng = np.random.default_rng(1)
    A, B = rng.gamma(0.5, size=(5, 40)), rng.gamma(0.5, size=(3, 40))
    D = pairwise_distances(A, B, "normalized_cosine", chunk_elements=50)  # forces chunking
    assert D.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            s = A[i] + B[j] + 1e-8
            expected = cdist((A[i] / s)[None], (B[j] / s)[None], "cosine")[0, 0]
            assert D[i, j] == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(pairwise_distances(A, B, "cosine"), cdist(A, B, "cosine"), atol=1e-12)


def test_bad_inputs_are_data_errors():
    with pytest.raises(DataError, match="non-negative"):
        normalized_cosine([1.0, -1.0], [1.0, 1.0])
    with pytest.raises(DataError, match="all zeros"):
        cosine([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(DataError, match="different lengths"):
        cosine([1.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(DataError, match="NaN"):
        cosine([np.nan, 0.0], [1.0, 1.0])
    with pytest.raises(DataError, match="unknown distance"):
        pairwise_distances(np.ones((1, 2)), np.ones((1, 2)), "l2")
