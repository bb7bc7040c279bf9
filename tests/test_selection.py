"""Selection methods of the efficient-alignment study against closed forms, brute force and sklearn/scipy."""

from __future__ import annotations

import itertools
import json
import sys
import textwrap

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.mixture import GaussianMixture

from datalign.core.errors import ConfigError, DataError
from datalign.studies.efficient_alignment.selection import (
    SelectionResult,
    available_methods,
    method_needs,
    register_method,
    registry,
    resolve_budget,
    select,
)
from datalign.studies.efficient_alignment.selection.density import log_density
from datalign.studies.efficient_alignment.selection.isa import (
    delta_literal,
    delta_normalised,
    delta_resubstitution,
    min_max_scale,
)
from datalign.studies.efficient_alignment.selection.sampling import gumbel_keys


def two_clusters(n_dense: int = 450, n_sparse: int = 50, d: int = 4, seed: int = 0) -> np.ndarray:
    """A dense cluster at 0 and a sparse one at 8 (unit spread): row i >= n_dense is sparse."""
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0.0, 1.0, (n_dense, d)), rng.normal(8.0, 1.0, (n_sparse, d))])


# ---------------------------------------------------------------- budget


@pytest.mark.parametrize(("budget", "n", "k"), [
    (0.5, 5, 3),      # half up, not banker's rounding (round(2.5) == 2)
    (0.1, 1000, 100),
    (0.25, 10, 3),    # 2.5 -> 3
    (0.24, 10, 2),
    (1.0, 7, 7),
    (1, 7, 1),        # an int is a count, even 1
    (7, 7, 7),
    (np.int64(4), 9, 4),
])
def test_resolve_budget(budget, n, k):
    assert resolve_budget(budget, n, "isa") == k


@pytest.mark.parametrize(("budget", "message"), [
    (0.001, r"selection 'isa': budget fraction 0.001 of n = 100 rows rounds to 0 rows"),
    (101, r"selection 'isa': budget of 101 rows is outside \[1, n = 100\]"),
    (0, r"budget of 0 rows"),
    (1.5, r"fraction 1.5 is outside \(0, 1\] \(n = 100"),
    (-0.1, r"outside \(0, 1\]"),
    (float("nan"), r"outside \(0, 1\]"),
    (True, r"fraction \(float\) or a count \(int\)"),
    ("10%", r"fraction \(float\) or a count \(int\)"),
])
def test_resolve_budget_rejects(budget, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve_budget(budget, 100, "isa")
    assert "\n" not in str(info.value)


def test_select_budget_errors_name_the_method():
    with pytest.raises(ConfigError, match="selection 'density': budget of 600 rows is outside"):
        select("density", two_clusters(), 600, seed=0)


# ---------------------------------------------------------------- registry


@pytest.fixture
def toy_method():
    """A method registered from the test with the public decorator, removed afterwards."""

    @register_method("toy_largest_first", needs="embeddings")
    def toy(data: np.ndarray, k: int, seed: int, *, column: int = 0) -> SelectionResult:
        scores = data[:, column]
        return SelectionResult("toy_largest_first", registry.top_k(scores, k), scores)

    yield toy
    registry._REGISTRY.pop("toy_largest_first")


def test_registry_runs_a_method_registered_from_outside(toy_method):
    assert "toy_largest_first" in available_methods()
    assert method_needs("toy_largest_first") == "embeddings"
    data = np.array([[3.0, 0.0], [9.0, 1.0], [1.0, 5.0], [9.0, 2.0]])
    out = select("toy_largest_first", data, 3, seed=0)
    # Ties (two 9s) go to the lower index; the order is by score.
    assert out.indices.tolist() == [1, 3, 0]
    assert out.info == {"budget": 3, "n": 4, "k": 3, "seed": 0}
    assert select("toy_largest_first", data, 0.5, seed=0, column=1).indices.tolist() == [2, 3]
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['colum'\] \(allowed: \['column'\]\)"):
        select("toy_largest_first", data, 2, seed=0, colum=1)


def test_registry_rejects_duplicates_and_unknown_names(toy_method):
    with pytest.raises(ConfigError, match="'toy_largest_first' is already registered"):
        @register_method("toy_largest_first")
        def other(data, k, seed):  # pragma: no cover - never called
            raise AssertionError
    with pytest.raises(ConfigError, match=r"unknown selection method 'nope' \(known: density, isa, "):
        select("nope", np.zeros((3, 2)), 1, seed=0)
    with pytest.raises(ConfigError, match="needs must be one of"):
        register_method("x", needs="images")


def test_registry_checks_what_methods_return():
    @register_method("toy_broken", needs="any")
    def broken(data: np.ndarray, k: int, seed: int) -> SelectionResult:
        return SelectionResult("toy_broken", np.zeros(k, dtype=np.int64), np.zeros(data.shape[0]))

    try:
        with pytest.raises(TypeError, match="repeated or out-of-range indices"):
            select("toy_broken", np.zeros(5), 2, seed=0)
    finally:
        registry._REGISTRY.pop("toy_broken")


def test_discovery_imports_every_module_of_a_package(tmp_path, monkeypatch):
    # A package outside the tree: a new module is found by pkgutil, with no other edit.
    pkg = tmp_path / "toy_selection_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "smallest.py").write_text(textwrap.dedent("""
        import numpy as np
        from datalign.studies.efficient_alignment.selection.registry import (
            SelectionResult, register_method, top_k)

        @register_method("toy_smallest", needs="scores")
        def smallest(data, k, seed):
            return SelectionResult("toy_smallest", top_k(-data, k), -data)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert registry.discover("toy_selection_pkg") == ["smallest"]
        assert registry.discover("toy_selection_pkg") == []  # once only
        assert select("toy_smallest", np.array([5.0, 1.0, 3.0]), 2, seed=0).indices.tolist() == [1, 2]
    finally:
        registry._REGISTRY.pop("toy_smallest", None)
        registry._DISCOVERED.discard("toy_selection_pkg")
        sys.modules.pop("toy_selection_pkg.smallest", None)
        sys.modules.pop("toy_selection_pkg", None)


def test_builtin_methods_are_discovered():
    assert {"random", "isa", "density", "quality"} <= set(available_methods())
    assert method_needs("quality") == "scores"
    assert method_needs("random") == "any"


@pytest.mark.parametrize(("method", "data", "message"), [
    ("isa", np.zeros(5), r"needs an \(n, d\) embedding array, got shape \(5,\)"),
    ("quality", np.zeros((5, 2)), r"needs an \(n,\) score array, got shape \(5, 2\)"),
    ("isa", np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, np.inf]]), r"2 non-finite value\(s\) in the input, first in row 1"),
    ("random", np.zeros((0, 3)), "empty"),
])
def test_select_rejects_bad_input(method, data, message):
    with pytest.raises(DataError, match=message):
        select(method, data, 1, seed=0)


# ---------------------------------------------------------------- random and weighted sampling


def test_random_is_seeded_nested_and_uniform():
    n, k = 10, 3
    a = select("random", np.zeros(n), k, seed=4)
    assert a.indices.tolist() == select("random", np.zeros(n), k, seed=4).indices.tolist()
    assert select("random", np.zeros(n), 6, seed=4).indices[:k].tolist() == a.indices.tolist()
    counts = np.zeros(n)
    draws = 3000
    for seed in range(draws):
        counts[select("random", np.zeros((n, 2)), k, seed=seed).indices] += 1
    # Each row is kept with probability k / n: a chi-square test of the counts.
    expected = draws * k / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert sps.chi2.sf(chi2 * (1 - k / n) ** -1, n - 1) > 1e-3


def _exact_inclusion(weights: np.ndarray, k: int) -> np.ndarray:
    """P(row i among the first k successive draws, each proportional to weight), by enumeration."""
    n = weights.size
    incl = np.zeros(n)
    for order in itertools.permutations(range(n), k):
        prob, left = 1.0, weights.sum()
        for i in order:
            prob *= weights[i] / left
            left -= weights[i]
        incl[list(order)] += prob
    return incl


def test_gumbel_keys_are_successive_weighted_sampling():
    weights = np.array([1.0, 2.0, 3.0, 10.0])
    k, draws = 2, 20000
    counts = np.zeros(weights.size)
    for seed in range(draws):
        counts[np.argsort(-gumbel_keys(np.log(weights), seed))[:k]] += 1
    exact = _exact_inclusion(weights, k)
    se = np.sqrt(exact * (1 - exact) / draws)
    assert np.all(np.abs(counts / draws - exact) < 4 * se + 1e-3), (counts / draws, exact)


# ---------------------------------------------------------------- ISA


def _reference_loglik(x: np.ndarray, seed: int, **kw) -> np.ndarray:
    return GaussianMixture(n_components=2, random_state=seed, **kw).fit(x).score_samples(x)


def test_isa_literal_closed_form_and_lowest_likelihoods():
    x = two_clusters()
    k = 40
    out = select("isa", x, k, seed=3)
    ll = _reference_loglik(x, 3)
    scaled = (ll - ll.min()) / (ll.max() - ll.min())
    np.testing.assert_allclose(out.per_row["log_likelihood"], ll, rtol=1e-10)
    np.testing.assert_allclose(out.scores, -np.exp(scaled) * scaled, rtol=1e-10, atol=1e-12)
    # Literal ISA keeps exactly the k lowest-likelihood rows, rarest first.
    assert out.indices.tolist() == np.argsort(ll, kind="stable")[:k].tolist()
    assert out.info["variant"] == "literal" and out.info["converged"]


def test_delta_literal_is_the_unnormalised_leave_one_out_entropy_drop():
    p = np.exp(np.random.default_rng(0).uniform(0, 1, 7))
    entropy = -np.sum(p * np.log(p))
    brute = [entropy - (-np.sum(np.delete(p, i) * np.log(np.delete(p, i)))) for i in range(p.size)]
    np.testing.assert_allclose(delta_literal(p), brute, rtol=1e-12)


def test_delta_normalised_matches_brute_force_renormalisation():
    p = np.exp(np.random.default_rng(1).uniform(0, 1, 25))
    full = sps.entropy(p / p.sum())
    brute = np.array([full - sps.entropy(np.delete(p, i) / np.delete(p, i).sum())
                      for i in range(p.size)])
    np.testing.assert_allclose(delta_normalised(p), brute, rtol=1e-9, atol=1e-14)


def test_delta_normalised_peaks_at_the_weighted_mean_log_p():
    # d Delta / d p_x = (T - S log p_x) / (S - p_x)^2: unimodal in l' with the peak at T / S.
    scaled = np.sort(np.random.default_rng(2).beta(5, 1.5, 400))
    p = np.exp(scaled)
    delta = delta_normalised(p)
    peak = np.sum(p * scaled) / np.sum(p)
    below, above = scaled < peak, scaled > peak
    assert np.all(np.diff(delta[below]) > 0)
    assert np.all(np.diff(delta[above]) < 0)
    assert abs(scaled[np.argmax(delta)] - peak) <= np.max(np.diff(scaled)) + 1e-12


def test_isa_normalised_drops_the_rare_tail_first():
    x = two_clusters()
    lit = select("isa", x, 40, seed=3)
    norm = select("isa", x, 40, seed=3, variant="normalised")
    ll = norm.per_row["log_likelihood"]
    np.testing.assert_allclose(norm.scores, delta_normalised(norm.per_row["p"]))
    assert set(lit.indices.tolist()).isdisjoint(norm.indices.tolist())
    assert ll[norm.indices].min() > ll[lit.indices].max()


def test_delta_resubstitution_matches_loop_and_ranks_like_literal():
    ll = np.random.default_rng(3).normal(-10, 2, 30)
    brute = [-ll.mean() - (-np.delete(ll, i).mean()) for i in range(ll.size)]
    np.testing.assert_allclose(delta_resubstitution(ll), brute, rtol=1e-10, atol=1e-13)
    x = two_clusters(seed=5)
    a = select("isa", x, 0.1, seed=0)
    b = select("isa", x, 0.1, seed=0, variant="resubstitution")
    assert a.indices.tolist() == b.indices.tolist()


def test_isa_options_pca_and_covariance():
    x = two_clusters(d=6)
    out = select("isa", x, 25, seed=1, pca_components=2, covariance_type="diag")
    from sklearn.decomposition import PCA

    z = PCA(n_components=2, random_state=1).fit_transform(x)
    ll = _reference_loglik(z, 1, covariance_type="diag")
    np.testing.assert_allclose(out.per_row["log_likelihood"], ll, rtol=1e-8)
    assert out.info["pca_components"] == 2 and 0 < out.info["pca_explained_variance"] <= 1


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"variant": "reversed"}, ConfigError, "isa: unknown variant 'reversed'"),
    ({"covariance_type": "dense"}, ConfigError, "covariance_type must be one of"),
    ({"pca_components": 9}, ConfigError, r"pca_components must be an integer in \[1, min\(n, d\) = 4\]"),
])
def test_isa_rejects_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        select("isa", two_clusters(), 5, seed=0, **options)


def test_min_max_scale_of_constant_values_is_an_error():
    with pytest.raises(DataError, match=r"isa: the log-likelihood is the same for all 4 rows \(-2\)"):
        min_max_scale(np.full(4, -2.0))


# ---------------------------------------------------------------- density


def test_log_density_matches_scipy_gaussian_kde_in_one_dimension():
    x = np.random.default_rng(0).normal(size=(200, 1)) * 3.0
    for rule in ("scott", "silverman"):
        ours, info = log_density(x, bandwidth=rule)
        ref = sps.gaussian_kde(x[:, 0], bw_method=rule)
        np.testing.assert_allclose(ours, ref.logpdf(x[:, 0]), rtol=1e-8)
        assert info["bandwidth"] == pytest.approx(ref.factor * x[:, 0].std(ddof=1))


def test_density_weights_are_inverse_density_and_upweight_the_sparse_cluster():
    x = two_clusters()
    share = []
    for seed in range(5):
        out = select("density", x, 50, seed=seed)
        w = out.per_row["inclusion_weight"]
        np.testing.assert_allclose(w * np.exp(out.per_row["log_density"]),
                                   1.0 / np.sum(np.exp(-out.per_row["log_density"])), rtol=1e-8)
        share.append(np.mean(out.indices >= 450))
    # The sparse cluster is 10% of the rows; inverse propensity takes far more of it.
    assert np.mean(share) > 0.3
    uniform = np.mean([np.mean(select("random", x, 50, seed=s).indices >= 450) for s in range(5)])
    assert np.mean(share) > 2 * uniform


def test_density_is_seeded_and_takes_a_fixed_bandwidth():
    x = two_clusters()
    a = select("density", x, 30, seed=2, bandwidth=0.5)
    assert a.info["bandwidth"] == 0.5
    assert a.indices.tolist() == select("density", x, 30, seed=2, bandwidth=0.5).indices.tolist()
    assert a.indices.tolist() != select("density", x, 30, seed=3, bandwidth=0.5).indices.tolist()
    with pytest.raises(ConfigError, match="bandwidth must be a positive number, 'scott' or 'silverman'"):
        select("density", x, 30, seed=2, bandwidth=-1.0)


# ---------------------------------------------------------------- quality


def test_quality_keeps_the_lowest_nll_rows_in_order():
    nll = np.array([2.5, 0.7, 3.1, 0.7, 1.2])
    out = select("quality", nll, 0.6, seed=9)
    assert out.indices.tolist() == [1, 3, 4]
    np.testing.assert_array_equal(out.scores, -nll)
    np.testing.assert_array_equal(out.per_row["nll"], nll)


def test_methods_return_prefix_nested_selections():
    x = two_clusters()
    for method in ("isa", "density", "random"):
        small = select(method, x, 10, seed=7).indices
        large = select(method, x, 60, seed=7).indices
        assert large[:10].tolist() == small.tolist(), method



def test_selection_artifact_round_trip(tmp_path):
    from datalign.studies.efficient_alignment.selection.artifacts import (
        load_selection,
        save_selection,
    )

    x = two_clusters()
    out = select("isa", x, np.int64(20), seed=1)
    ids = np.array([f"row{i}" for i in range(x.shape[0])])
    path = save_selection(tmp_path / "sel.npz", out, ids)
    assert [p.name for p in tmp_path.iterdir()] == ["sel.npz"]
    back, back_ids = load_selection(path)
    assert back.method == "isa" and back.info == json.loads(json.dumps(out.info, default=int))
    np.testing.assert_array_equal(back.indices, out.indices)
    np.testing.assert_array_equal(back.per_row["log_likelihood"], out.per_row["log_likelihood"])
    assert back_ids.tolist() == ids.tolist()
    with np.load(path) as npz:
        assert npz["selected_ids"].tolist() == ids[out.indices].tolist()
    with pytest.raises(DataError, match=r"row_ids must be 500 ints or strings, got shape \(3,\)"):
        save_selection(tmp_path / "bad.npz", out, ["a", "b", "c"])


def test_density_tree_algorithms_agree_exactly():
    x = two_clusters(n_dense=150, n_sparse=30, d=3)
    kd, _ = log_density(x, algorithm="kd_tree")
    ball, _ = log_density(x, algorithm="ball_tree")
    np.testing.assert_allclose(kd, ball, rtol=1e-10)
    with pytest.raises(ConfigError, match="density: algorithm must be 'auto', 'kd_tree' or 'ball_tree'"):
        log_density(x, algorithm="brute")
