"""The data-efficient alignment study through the real workflow (tiny config): the contents of
every artifact, what an edit reruns, one-line config errors, and the paper config planned offline."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from datalign.core.errors import ConfigError
from datalign.studies import load_config, validate_study_config

from .test_judge import build_monotone_judge
from .test_paper_config import plan_offline
from .workflow_helpers import REPO, edited_config, planned_jobs, run_snakemake, temp_leftovers

pytestmark = pytest.mark.integration

TINY_EA = REPO / "tests" / "configs" / "tiny_efficient_alignment.yaml"
PAPER_EA = REPO / "config" / "paper_efficient_alignment.yaml"
HEAVY = ("torch", "transformers", "datasets", "trl")


@pytest.fixture(scope="module")
def tiny_ea(tmp_path_factory):
    """The tiny config with the judge on (a tiny local reward model)."""
    folder = tmp_path_factory.mktemp("ea_config")
    judge = build_monotone_judge(folder / "judge")

    def edit(c):
        c["efficient_alignment"]["evaluation"]["judge"] = {"model": str(judge), "max_new_tokens": 6,
                                                           "max_prompts": 8, "batch_size": 8}

    return edited_config(TINY_EA, folder, edit)


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_ea):
    workdir = tmp_path_factory.mktemp("ea_study")
    run_snakemake(workdir, "--cores", "2", configfile=tiny_ea)
    config = load_config(tiny_ea)
    return workdir, workdir / "results" / "efficient_alignment", config


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_held_out_pairs_never_reach_selection_or_training(study):
    workdir, root, _ = study
    data = root / "data" / "docstring_code"
    train, test = _rows(data / "train.jsonl"), _rows(data / "test.jsonl")
    assert {r["group"] for r in train}.isdisjoint({r["group"] for r in test})
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["splits"]["train"]["rows"] == len(train) <= 160
    emb = np.load(root / "embeddings" / "docstring_code.npz")
    assert emb["embeddings"].shape == (len(train), 32)  # the probe's width: rows of train only
    assert np.array_equal(emb["row_ids"], np.arange(len(train)))
    nll = np.load(root / "quality" / "docstring_code.npz")["embeddings"][:, 0]
    assert np.isfinite(nll).all() and (nll > 0).all()
    assert temp_leftovers(workdir / "results") == []


def test_selections_keep_the_budget(study):
    _, root, config = study
    n = len(_rows(root / "data" / "docstring_code" / "train.jsonl"))
    nll = np.load(root / "quality" / "docstring_code.npz")["embeddings"][:, 0]
    for budget in ("10", "100"):
        k = min(n, math.floor(float(budget) / 100 * n + 0.5))
        for method in config["efficient_alignment"]["methods"]:
            for seed in (0, 1):
                sel = np.load(root / "selection" / "docstring_code" / budget / f"{method}_seed{seed}.npz")
                assert sel["indices"].shape == (k,) and len(set(sel["indices"].tolist())) == k
                assert str(sel["method"]) == method
    small = root / "selection" / "docstring_code" / "10"
    a, b = (np.load(small / f"random_seed{s}.npz")["indices"] for s in (0, 1))
    assert set(a.tolist()) != set(b.tolist()), "random selections of two seeds are the same"
    quality = np.load(small / "quality_seed0.npz")["indices"]
    assert set(quality.tolist()) == set(np.argsort(nll, kind="stable")[: quality.size].tolist())
    # literal ISA keeps the lowest-likelihood rows under the mixture
    isa = np.load(small / "isa_seed0.npz")
    ll = isa["per_row__log_likelihood"]
    assert ll[isa["indices"]].max() <= np.sort(ll)[isa["indices"].size - 1] + 1e-9


def test_every_run_is_separate_and_evaluated(study):
    _, root, config = study
    full = json.loads((root / "runs" / "docstring_code" / "100.json").read_text())
    small = json.loads((root / "runs" / "docstring_code" / "10.json").read_text())
    methods = list(config["efficient_alignment"]["methods"])
    # the base is its own reference: every pair ties
    assert full["base"]["preference_accuracy"] == 0.5 and full["base"]["reward_margin"] == 0.0
    assert len(small["runs"]) == len(methods) * 2 and small["trained_runs"] >= 2
    # at 100 % every method keeps the same rows: one run per seed, shared
    assert full["trained_runs"] == 2
    assert sum(r["shared_with"] is not None for r in full["runs"]) == len(methods) * 2 - 2
    for record in (full, small):
        for run in record["runs"]:
            m = run["metrics"]
            assert 0.0 <= m["preference_accuracy"] <= 1.0
            assert m["reward_margin_ci"][0] <= m["reward_margin"] <= m["reward_margin_ci"][1]
            # pairs whose prompt fills max_length (64 tokens here) are dropped, and counted
            assert m["pairs"] + m["pairs_dropped"] == record["test_pairs"] <= 24 and m["pairs"] > 0
            assert run["train"]["total_steps"] == math.ceil(run["rows_used"] / 8)
            assert all(math.isfinite(x) for x in run["train"]["loss_curve"])
    trained = [r for r in full["runs"] if r["shared_with"] is None]
    assert trained[0]["metrics"] != trained[1]["metrics"], "two seeds gave the same run"


def test_judged_win_rates_and_cis(study):
    _, root, config = study
    methods = list(config["efficient_alignment"]["methods"])
    for budget in ("10", "100"):
        runs = json.loads((root / "runs" / "docstring_code" / f"{budget}.json").read_text())
        done = json.loads((root / "runs" / "docstring_code" / f"{budget}.completions.json").read_text())
        judged = json.loads((root / "scaling" / "docstring_code" / "judged" / f"{budget}.json").read_text())
        n = min(8, runs["test_pairs"])
        assert done["prompts"] == n and len(done["base"]) == n and done["max_new_tokens"] == 6
        assert set(done["runs"]) == {f"{m}_seed{s}" for m in methods for s in (0, 1)}
        assert "half" in judged["ties"] and judged["reference"] == "chosen"
        for result in (judged["base"], *judged["runs"], *judged["methods"].values()):
            low, high = result["win_rate_ci"]
            assert 0.0 <= low <= result["win_rate"] <= high <= 1.0
        for result in (judged["base"], *judged["runs"]):
            assert result["n"] == n and result["wins"] + result["ties"] + result["losses"] == n
            assert result["win_rate"] == pytest.approx((result["wins"] + 0.5 * result["ties"]) / n)
        assert {(r["method"], r["seed"]) for r in judged["runs"]} == {(m, s) for m in methods for s in (0, 1)}
        for method, pooled in judged["methods"].items():
            mine = [r["win_rate"] for r in judged["runs"] if r["method"] == method]
            assert pooled["seeds"] == 2 and pooled["n"] == 2 * n
            assert pooled["win_rate"] == pytest.approx(np.mean(mine))
        # a run shared by every method at 100 % has one set of completions and one score
        if budget == "100":
            shared = {r["seed"]: r["win_rate"] for r in judged["runs"] if r["shared_with"] is None}
            assert all(r["win_rate"] == shared[r["seed"]] for r in judged["runs"])
    points = pd.read_csv(root / "scaling" / "docstring_code" / "points.csv")
    assert points["win_rate"].between(0, 1).all()
    fits = json.loads((root / "scaling" / "docstring_code" / "fits.json").read_text())
    assert 0 <= fits["base"]["win_rate"] <= 1
    summary = json.loads((root / "summary.json").read_text())
    entry = summary["datasets"]["docstring_code"]["win_rate"]
    assert "half" in entry["ties"]
    assert {(r["percent"], r["method"]) for r in entry["budgets"]} == {(p, m) for p in (10, 100) for m in methods}
    for row in entry["budgets"]:
        assert row["win_rate_ci"][0] <= row["win_rate"] <= row["win_rate_ci"][1]
    assert "Judged win rate against the reference (chosen) completions" in (root / "summary.md").read_text()


def test_scaling_table_plot_and_summary(study):
    _, root, config = study
    scaling = root / "scaling" / "docstring_code"
    fits = json.loads((scaling / "fits.json").read_text())
    methods = list(config["efficient_alignment"]["methods"])
    assert list(fits["methods"]) == methods
    points = pd.read_csv(scaling / "points.csv")
    assert set(points["percent"]) == {0.0, 10.0, 100.0}
    assert len(points) == len(methods) * 2 * 3  # base, 10 %, 100 % per method and seed
    for rep in fits["methods"].values():
        if "error" in rep:  # a flat curve cannot be fitted: said, not hidden
            assert "fit_plateau" in rep["error"]
            continue
        for reading in ("free", "paper"):
            assert rep[reading]["n_points"] == 6 and rep[reading]["r2"] <= 1.0
        assert rep["free"]["n_boot"] == 50
        # 3 distinct x (the base, 10 %, 100 %): the 3-parameter curve cannot be tested, and says so
        assert rep["free"]["n_x"] == 3 and rep["free"]["shape_tested"] is False
    legend = fits["plot"]["legend"]
    for method in methods:
        assert method in legend
    assert any(label.startswith(f"{m} fit (r=") for m in methods for label in legend)
    assert (scaling / "score_vs_fraction.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(scaling / "table.csv")
    assert set(table["method"]) == set(methods) and set(table["percent"]) == {10, 100}
    assert np.allclose(table.loc[table["percent"] == 100, "vs_full"], 0.0)
    summary = json.loads((root / "summary.json").read_text())
    entry = summary["datasets"]["docstring_code"]
    assert {(c["a"], c["b"]) for c in entry["comparisons"]} == {("isa", "random"), ("isa", "density"),
                                                                  ("isa", "quality")}
    for c in entry["comparisons"]:
        assert c["percent"] == 10 and c["seeds"] == 2
        assert c["ci_low"] <= c["difference"] <= c["ci_high"]
    markdown = (root / "summary.md").read_text()
    assert "ISA against the baselines" in markdown and "R²" in markdown
    if any("r2" in p for p in entry["plateau"].values()):
        assert "passes through every budget's mean" in entry["reading"]
        assert "not tested: 3 budgets" in markdown


def _edited(base: Path, tmp_path: Path, edit) -> Path:
    return edited_config(base, tmp_path, edit)


def _planned(workdir: Path, configfile: Path) -> Counter:
    return planned_jobs(workdir, "--cores", "2", configfile=configfile)


def test_edits_rerun_exactly_what_they_change(study, tiny_ea, tmp_path):
    workdir, _, _ = study
    assert _planned(workdir, tiny_ea) == Counter()
    # a new budget: its selections and its runs only, then the fit and the summary
    more = _edited(tiny_ea, tmp_path, lambda c: c["efficient_alignment"].update(budgets=[10, 50, 100]))
    plan = _planned(workdir, more)
    assert plan["ea_select"] == 1 and plan["ea_align"] == 1 and plan["ea_judge"] == 1
    assert set(plan) - {"total"} == {"ea_select", "ea_align", "ea_judge", "ea_scaling", "ea_summary",
                                     "study_config", "all"}
    # the bootstrap of the fit: only the fit and what reads it
    boot = _edited(tiny_ea, tmp_path, lambda c: c["efficient_alignment"]["scaling"].update(bootstrap=60))
    assert set(_planned(workdir, boot)) - {"total"} == {"ea_scaling", "ea_summary", "study_config", "all"}
    # a training option: every run, nothing upstream of the runs
    lr = _edited(tiny_ea, tmp_path, lambda c: c["efficient_alignment"]["training"].update(lr=5.0e-4))
    plan = _planned(workdir, lr)
    assert plan["ea_align"] == 2 and "ea_select" not in plan and "ea_embed" not in plan
    # the judge: a new reward model or its batch / context rescores the completions, no training
    for key, value in (("max_length", 256), ("batch_size", 4)):
        edited = _edited(tiny_ea, tmp_path, lambda c, k=key, v=value: c["efficient_alignment"]["evaluation"]["judge"]
                         .update({k: v}))
        assert set(_planned(workdir, edited)) - {"total"} == {"ea_judge", "ea_scaling", "ea_summary",
                                                              "study_config", "all"}
    other = build_monotone_judge(tmp_path / "other_judge")
    edited = _edited(tiny_ea, tmp_path, lambda c: c["efficient_alignment"]["evaluation"]["judge"]
                     .update(model=str(other)))
    plan = _planned(workdir, edited)
    assert plan["ea_judge"] == 2 and "ea_align" not in plan
    # the fit on the win rate: only the fit and the summary
    win = _edited(tiny_ea, tmp_path, lambda c: c["efficient_alignment"]["scaling"].update(metric="win_rate"))
    assert set(_planned(workdir, win)) - {"total"} == {"ea_scaling", "ea_summary", "study_config", "all"}
    # how the completions are made is the align job's: more new tokens retrain (and rejudge)
    longer = _edited(tiny_ea, tmp_path, lambda c: c["efficient_alignment"]["evaluation"]["judge"]
                     .update(max_new_tokens=8))
    plan = _planned(workdir, longer)
    assert plan["ea_align"] == 2 and plan["ea_judge"] == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["efficient_alignment"].update(budgets=[0.2, 100]),
         "0.2% of dataset docstring_code's at most 160 training rows"),
        (lambda c: c["efficient_alignment"].update(datasets=["nope"]), "'nope' is not in preference_datasets"),
        (lambda c: c["efficient_alignment"]["methods"].update(isa={"varient": "literal"}),
         "efficient_alignment.methods.isa': unknown option(s) ['varient']"),
        (lambda c: c["preference_datasets"]["docstring_code"].update(negative="swap"),
         "preference_datasets.docstring_code.negative"),
        (lambda c: c["efficient_alignment"]["scaling"].update(metric="win_rate"),
         "efficient_alignment.scaling.metric': win_rate needs the judge"),
        (lambda c: c["efficient_alignment"].setdefault("training", {}).update(lora={"r": 0}),
         "config key 'efficient_alignment.training.lora.r': 0 is less than the minimum of 1"),
        (lambda c: c["efficient_alignment"].setdefault("training", {}).update(lora={"rank": 8}),
         "config key 'efficient_alignment.training.lora.rank': unknown key"),
        (lambda c: c["efficient_alignment"].setdefault("training", {}).update(lora={"target_modules": []}),
         "config key 'efficient_alignment.training.lora.target_modules'"),
    ],
)
def test_bad_config_is_one_line_before_any_job(edit, message):
    config = yaml.safe_load(TINY_EA.read_text())
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate_study_config(config)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bad_rows_name_dataset_row_and_field(tmp_path):
    from datalign.core.errors import DataError
    from datalign.data.preference import prepare_preference_dataset

    rows = [{"prompt": f"p{i}", "completion": "c", "label": i % 2 == 0} for i in range(8)]
    rows[5]["label"] = "yes"
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError) as err:
        prepare_preference_dataset("mine", {"source": "local", "path": str(path)}, tmp_path / "out", seed=0)
    text = str(err.value)
    assert "mine" in text and "label" in text and "\n" not in text


def test_paper_config_plans_offline_without_heavy_imports(tmp_path):
    config = load_config(PAPER_EA)
    sec = config["efficient_alignment"]
    assert sec["policy"] == "mistralai/Mistral-7B-v0.1" and sec["objective"] == "kto"
    assert sec["embedding"]["model"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    # LoRA on a bf16 policy: one 80 GB card, no frozen reference copy (README, "The paper's scale")
    assert sec["training"]["dtype"] == "bfloat16"
    assert sec["training"]["lora"] == {"r": 16, "alpha": 32, "dropout": 0.05,
                                       "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
    counts, modules, _ = plan_offline(tmp_path, PAPER_EA)
    n_sets, n_budgets = len(sec["datasets"]), len(sec["budgets"])
    assert sec["evaluation"]["judge"]["model"] == "OpenAssistant/reward-model-deberta-v3-large-v2"
    assert config["resources"]["ea_judge"]["gpu"] == 1
    assert counts == Counter({
        "ea_prepare": n_sets, "ea_embed": n_sets, "ea_select": n_sets * n_budgets,
        "ea_align": n_sets * n_budgets, "ea_judge": n_sets * n_budgets, "ea_scaling": n_sets,
        "ea_summary": 1, "study_config": 1, "all": 1, "total": 3 * n_sets + 3 * n_sets * n_budgets + 3,
    })
    assert not [m for m in modules if m.split(".")[0] in HEAVY]


def test_cached_reference_evaluation_equals_the_library_one(study):
    """The align job scores the reference once per job; the measures are evaluate_preferences' exactly."""
    import copy

    import torch

    from datalign.data.preference import read_preference_split
    from datalign.studies.efficient_alignment.embedders import load_causal_lm
    from datalign.studies.efficient_alignment.evaluation import evaluate_preferences
    from datalign.studies.efficient_alignment.steps import CachedEvaluation
    from datalign.training.preference import prepare_tokenizer

    workdir, root, _ = study
    pairs = read_preference_split(root / "data" / "docstring_code", "test", form="pairs")[:12]
    test = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    base, tok = load_causal_lm(workdir / "results" / "probe")
    tok = prepare_tokenizer(tok)
    policy = copy.deepcopy(base)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    expected = evaluate_preferences(policy, base, tok, test, beta=0.1, batch_size=4, n_boot=200, seed=3)
    cached = CachedEvaluation(base, tok, test, beta=0.1, max_length=None, batch_size=4, use_chat_template=True,
                              confidence=0.95, n_boot=200)
    assert cached(policy, seed=3) == expected
