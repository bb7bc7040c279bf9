"""The alignment measures in the workflow (tiny config): every measure's table, the
comparison with Task2Vec against the losses, and reruns limited to the edited measure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datalign.studies import load_config
from datalign.studies.alignment import plan
from datalign.studies.alignment.paths import AlignmentPaths

from .workflow_helpers import TINY, edited_config, planned_jobs

pytestmark = pytest.mark.integration


def _paths(workdir) -> AlignmentPaths:
    return AlignmentPaths(str(workdir / "results"))


def test_every_measure_table_covers_the_task2vec_sets(study):
    workdir, _ = study
    config = load_config(TINY)
    p = _paths(workdir)
    labels = [es.label for es in plan.embedding_sets(config)]
    targets = sorted({plan.eval_key(e) for s in plan.settings(config) for e in plan.eval_sets(config, s)})
    for measure in config["measures"]["run"]:
        table = pd.read_csv(p.measure_table(measure))
        assert list(zip(table["set"], table["target"], strict=True)) == [(s, t) for s in labels for t in targets]
        assert np.isfinite(table[["alignment", "ci_low", "ci_high", "seconds"]].to_numpy()).all(), measure
        assert (table["ci_low"] <= table["alignment"]).all() and (table["alignment"] <= table["ci_high"]).all()
        assert (table["seconds"] > 0).all()
        meta = json.loads(Path(p.measure_meta(measure)).read_text())
        assert meta["measure"] == measure and meta["bootstrap"] == config["measures"]["bootstrap"]
        # a set is at least as aligned with itself as any other set is with it
        for target in targets:
            part = table[table["target"] == target].set_index("set")["alignment"]
            assert part[target] == part.max(), (measure, target)


def test_comparison_has_every_measure_and_valid_statistics(study):
    workdir, _ = study
    config = load_config(TINY)
    p = _paths(workdir)
    df = pd.read_csv(p.measures_comparison())
    measures = {f"task2vec_{config['task2vec']['estimator']}", *config["measures"]["run"]}
    for setting in plan.settings(config):
        part = df[df["setting"] == setting]
        assert set(part["measure"]) == measures, setting
        assert (part["n"] == len(plan.evaluation_pairs(config, setting))).all()
    assert df["pearson_r"].between(-1, 1).all() and df["spearman_rho"].between(-1, 1).all()
    assert np.allclose(df["r2"], df["pearson_r"] ** 2)
    for lo, hi in (("r_ci_low", "r_ci_high"), ("r2_ci_low", "r2_ci_high"), ("rho_ci_low", "rho_ci_high")):
        ok = df[[lo, hi]].notna().all(axis=1)
        assert ok.any(), lo
        assert (df.loc[ok, lo] <= df.loc[ok, hi]).all(), (lo, hi)
        assert df.loc[ok, [lo, hi]].stack().between(-1, 1).all()
    assert (df.loc[df["measure"].isin(config["measures"]["run"]), "seconds_per_pair"] > 0).all()
    # Task2Vec's cost: the benchmarks of its jobs in a workflow run
    t2v = df[df["measure"].str.startswith("task2vec")]
    assert (t2v["cost"] == "job benchmark").all() and (t2v["seconds_per_pair"] > 0).all()
    # the points are the ones the correlation used: Task2Vec's r is the setting's own
    for setting in plan.settings(config):
        stats = json.loads(Path(p.correlation_stats(setting)).read_text())
        row = t2v[t2v["setting"] == setting].iloc[0]
        # (points.csv keeps 6 significant digits of the losses the statistics used)
        assert row["pearson_r"] == pytest.approx(stats["pearson_r"], abs=1e-3)
    markdown = Path(p.measures_comparison_markdown()).read_text()
    assert all(m in markdown for m in measures) and "Spearman" in markdown
    assert Path(p.measures_comparison_plot()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_editing_one_measure_reruns_that_measure_and_the_comparison_only(study, tmp_path):
    workdir, _ = study

    def gzip_pairs(config):
        config.setdefault("measures", {})["gzip"] = {"max_pairs": 123}

    # (study_config and summary record the whole resolved config, so any edit reruns them)
    always = {"study_config": 1, "summary": 1, "all": 1}
    jobs = planned_jobs(workdir, configfile=edited_config(TINY, tmp_path, gzip_pairs))
    assert jobs == {"measure_alignment": 1, "measure_comparison": 1, **always, "total": 5}, jobs

    def drop_one(config):
        config["measures"] = {"run": ["gzip", "ngram"]}

    jobs = planned_jobs(workdir, configfile=edited_config(TINY, tmp_path, drop_one))
    # fewer measures: the comparison only, no measure recomputed
    assert jobs == {"measure_comparison": 1, **always, "total": 4}, jobs


def test_an_unknown_measure_option_stops_the_workflow_at_start(study, tmp_path):
    from .workflow_helpers import run_snakemake

    workdir, _ = study

    def bad(config):
        config["measures"] = {"gzip": {"max_pair": 3}}

    proc = run_snakemake(workdir, "-n", configfile=edited_config(TINY, tmp_path, bad), check=False)
    assert proc.returncode != 0
    assert "measures.gzip.max_pair" in proc.stdout + proc.stderr
