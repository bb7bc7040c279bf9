"""Diversity, cross-diversity, alignment and the alignment matrix, on cases done by hand."""

from __future__ import annotations

import numpy as np
import pytest

from datalign.core.errors import DataError
from datalign.task2vec.coefficients import alignment, alignment_matrix, cross_diversity, diversity

R = 1 - 1 / np.sqrt(2)  # cosine distance between (1, 0) and (1, 1)


def test_hand_computed_diversity_cross_diversity_alignment():
    E = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # pairs: d01 = 1, d02 = R, d12 = R
    div = diversity(E, kind="cosine", bootstrap=0)
    assert div.value == pytest.approx((1 + 2 * R) / 3)
    assert div.std == pytest.approx(np.std([1, R, R]))
    assert div.n_pairs == 3 and div.n_boot == 0 and np.isnan(div.ci_low)

    E1, E2 = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    cross = cross_diversity(E1, E2, kind="cosine", bootstrap=0)
    assert cross.value == pytest.approx((1 + R) / 2)
    assert cross.std == pytest.approx((1 - R) / 2)
    assert cross.n_pairs == 2
    al = alignment(E1, E2, kind="cosine", bootstrap=0)
    assert al.value == pytest.approx(1 - (1 + R) / 2) and al.std == cross.std

    # Normalized cosine: (1,1) vs (1,3) is 1 - (7/16)/sqrt(5/16 * 13/16) (see the distance tests).
    d = 1 - (7 / 16) / np.sqrt(5 / 16 * 13 / 16)
    assert diversity(np.array([[1.0, 1.0], [1.0, 3.0]]), bootstrap=0).value == pytest.approx(d, abs=1e-7)


def test_diversity_bootstrap_never_pairs_a_batch_with_itself():
    # Two batches: every usable resample holds both, so the interval is exactly d01;
    # pairing copies would have pulled it towards 0.
    E = np.array([[1.0, 0.0], [0.0, 1.0]])
    div = diversity(E, kind="cosine", bootstrap=400, seed=0)
    assert div.ci_low == pytest.approx(1.0) and div.ci_high == pytest.approx(1.0)
    assert 150 < div.n_boot < 250  # half the resamples are one batch twice: dropped
    # Three batches: every resampled mean averages real pairs, so stays within [min, max] pair.
    E = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    div = diversity(E, kind="cosine", bootstrap=500, seed=0)
    assert R - 1e-12 <= div.ci_low <= div.value <= div.ci_high <= 1 + 1e-12


def embeddings(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, size=50) + shift
    return base * rng.gamma(5.0, 0.2, size=(n, 50))


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_more_batches():
    widths = {}
    for n in (6, 60):
        E1, E2 = embeddings(n, 1), embeddings(n, 2)
        for name, coef in {
            "div": diversity(E1, bootstrap=500, seed=3),
            "cross": cross_diversity(E1, E2, bootstrap=500, seed=3),
            "align": alignment(E1, E2, bootstrap=500, seed=3),
        }.items():
            assert coef.ci_low <= coef.value <= coef.ci_high, (name, n, coef)
            assert coef.n_boot > 450 and coef.confidence == 0.95
            # The std of pairwise distances is its own number, not the interval's half-width.
            assert coef.std > 0 and coef.std != pytest.approx((coef.ci_high - coef.ci_low) / 2)
            widths[name, n] = coef.ci_high - coef.ci_low
    for name in ("div", "cross", "align"):
        assert widths[name, 60] < 0.5 * widths[name, 6], name
    # A narrower confidence level gives a narrower interval from the same resamples.
    E1 = embeddings(20, 1)
    c95, c50 = diversity(E1, bootstrap=500, seed=3), diversity(E1, bootstrap=500, seed=3, confidence=0.5)
    assert c95.ci_low < c50.ci_low <= c50.ci_high < c95.ci_high


def test_alignment_mirrors_cross_diversity_interval():
    E1, E2 = embeddings(8, 1), embeddings(8, 2)
    c = cross_diversity(E1, E2, bootstrap=200, seed=4)
    a = alignment(E1, E2, bootstrap=200, seed=4)
    assert a.value == pytest.approx(1 - c.value)
    assert (a.ci_low, a.ci_high) == pytest.approx((1 - c.ci_high, 1 - c.ci_low))


def test_alignment_matrix_long_format():
    emb = {"a": embeddings(5, 1), "b": embeddings(5, 2, shift=3.0), "c": embeddings(4, 3)}
    table = alignment_matrix(emb, rows=["a", "b", "c"], cols=["a", "c"], bootstrap=100, seed=0)
    assert list(table.columns[:6]) == ["row", "col", "alignment", "std", "ci_low", "ci_high"]
    assert len(table) == 6
    assert list(zip(table.row, table.col, strict=True))[:2] == [("a", "a"), ("a", "c")]
    cell = table[(table.row == "b") & (table.col == "c")].iloc[0]
    assert cell.alignment == pytest.approx(alignment(emb["b"], emb["c"], bootstrap=0).value)
    assert cell.n_pairs == 20
    diag = table[(table.row == "a") & (table.col == "a")].iloc[0]
    assert diag.alignment == pytest.approx(1 - diversity(emb["a"], bootstrap=0).value)
    assert diag.n_pairs == 10 and bool(diag.self)
    assert (table.ci_low <= table.alignment).all() and (table.alignment <= table.ci_high).all()
    again = alignment_matrix(emb, rows=["a", "b", "c"], cols=["a", "c"], bootstrap=100, seed=0)
    assert table.equals(again)
    with pytest.raises(DataError, match="no embeddings for z"):
        alignment_matrix(emb, rows=["a"], cols=["z"])


def test_too_few_batches_is_a_data_error():
    with pytest.raises(DataError, match="2 batches"):
        diversity(np.ones((1, 3)))
