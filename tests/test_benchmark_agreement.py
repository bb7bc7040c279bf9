"""The agreement benchmark's permutation test: valid under the null, powerful against a worse estimator."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from .workflow_helpers import REPO


def _agreement_module():
    spec = importlib.util.spec_from_file_location("task2vec_agreement", REPO / "benchmarks" / "task2vec_agreement.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


agreement = _agreement_module()


def _runs(rng: np.random.Generator, truth: np.ndarray, paper: int, fast: int, fast_noise: float) -> dict:
    values = {f"paper_seed{i}": truth + rng.normal(0, 1.0, truth.shape) for i in range(paper)}
    values.update({f"fast_seed{i}": truth + rng.normal(0, fast_noise, truth.shape) for i in range(fast)})
    return values


def _p_values(fast_noise: float, sims: int = 100, runs: int = 4) -> np.ndarray:
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1.5, 55)  # 55 pairs, as over the default study's 11 sets
    ps = []
    for _ in range(sims):
        values = _runs(rng, truth, runs, runs, fast_noise)
        paper = [f"paper_seed{i}" for i in range(runs)]
        fast = [f"fast_seed{i}" for i in range(runs)]
        ps.append(agreement.exchangeability_test(values, paper, fast)["p"])
    return np.array(ps)


def test_exchangeable_runs_reject_at_most_at_the_nominal_rate():
    # 4 + 4 runs: 70 splits, p <= 0.05 means the 3 lowest: 3/70 = 4.3% under the null
    ps = _p_values(fast_noise=1.0)
    assert (ps <= 0.05).sum() <= 12  # binomial(100, 0.043): P(X >= 13) ~ 3e-4
    assert 0.3 < ps.mean() < 0.7  # about uniform over the splits' ranks


def test_a_noisier_estimator_is_found_below_the_ceiling():
    ps = _p_values(fast_noise=2.0)
    assert (ps <= 0.05).mean() >= 0.8


def test_the_observed_gap_is_the_cross_agreement_minus_the_ceiling():
    rng = np.random.default_rng(1)
    values = _runs(rng, rng.normal(0, 1.5, 55), 3, 3, 1.0)
    paper = [f"paper_seed{i}" for i in range(3)]
    fast = [f"fast_seed{i}" for i in range(3)]
    out = agreement.exchangeability_test(values, paper, fast)
    summary = agreement.summarize(values, 3)
    assert out["gap"] == pytest.approx(summary["fast_vs_paper_mean_spearman"] - summary["noise_ceiling"]["spearman"])
    assert out["splits"] == 20 and out["not_below_ceiling"] is not None
    assert out["null_range"][0] <= out["gap"] <= out["null_range"][1]


def test_two_runs_each_cannot_reject_and_say_so():
    rng = np.random.default_rng(2)
    values = _runs(rng, rng.normal(0, 1.5, 55), 2, 2, 5.0)
    out = agreement.exchangeability_test(values, ["paper_seed0", "paper_seed1"], ["fast_seed0", "fast_seed1"])
    assert out["splits"] == 6 and out["not_below_ceiling"] is None
    with pytest.raises(ValueError, match="needs >= 2 paper runs"):
        agreement.exchangeability_test(values, ["paper_seed0"], ["fast_seed0"])
