"""resources.task2vec.sets_per_job: several embedding sets per Task2Vec job is a resource
choice. Real tiny runs with one set per job and three per job give the same arrays."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from datalign.studies import validate_study_config
from datalign.studies.alignment import plan

from .workflow_helpers import TINY, planned_jobs, run_snakemake

pytestmark = pytest.mark.integration

#: sidecar keys that record how long and where a run took, not what it computed
RUN_KEYS = {"seconds_per_batch", "provenance"}


def _config(tmp_path: Path, sets_per_job) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config.setdefault("resources", {})["task2vec"] = {"sets_per_job": sets_per_job}
    path = tmp_path / f"tiny_{sets_per_job}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _sets() -> list[plan.EmbeddingSet]:
    config = yaml.safe_load(TINY.read_text())
    validate_study_config(config)
    return plan.embedding_sets(config)


def _targets() -> list[str]:
    return [f"results/task2vec/{s.dataset}/{s.split}.npz" for s in _sets()]


def _meta(path: Path) -> dict:
    meta = json.loads(path.with_suffix(".json").read_text())
    return {k: v for k, v in meta.items() if k not in RUN_KEYS and "seconds" not in k}


@pytest.fixture(scope="module")
def one_per_job(tmp_path_factory):
    """The tiny study's embeddings, one set per job (the default): upstream and Task2Vec only."""
    workdir = tmp_path_factory.mktemp("one_per_job")
    run_snakemake(workdir, "--cores", "2", *_targets())
    return workdir


def test_three_sets_per_job_embed_the_same_arrays(one_per_job, tmp_path):
    sets = _sets()
    assert len(sets) == 7
    grouped = tmp_path / "grouped"
    shutil.copytree(one_per_job, grouped, symlinks=True)
    shutil.rmtree(grouped / "results" / "task2vec")
    config = _config(tmp_path, 3)
    # 7 sets in 3 processes (3 + 3 + 1), each set copied to its usual path; nothing upstream
    jobs = planned_jobs(grouped, *_targets(), configfile=config)
    assert jobs == {"task2vec_group": math.ceil(7 / 3), "task2vec": 7, "total": 10}, jobs
    run_snakemake(grouped, "--cores", "2", *_targets(), configfile=config)
    benchmarks = sorted(p.name for p in (grouped / "results" / "logs" / "benchmarks" / "task2vec").glob("group_*"))
    assert benchmarks == ["group_0.tsv", "group_1.tsv", "group_2.tsv"]
    for target in _targets():
        with np.load(one_per_job / target) as a, np.load(grouped / target) as b:
            assert a.files == b.files == ["embeddings"]
            x, y = a["embeddings"], b["embeddings"]
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), target
        assert _meta(one_per_job / target) == _meta(grouped / target), target
    # a finished grouped run is finished: no group reruns for its own folder's timestamps
    assert planned_jobs(grouped, *_targets(), configfile=config) == {}
    # back to one set per job: the Task2Vec jobs rerun (other params), nothing upstream
    assert planned_jobs(grouped, *_targets()) == {"task2vec": 7, "total": 7}


def test_one_set_per_job_is_todays_rule(one_per_job, tmp_path):
    """sets_per_job: 1 written out plans nothing new over a run that never named it."""
    assert planned_jobs(one_per_job, *_targets(), configfile=_config(tmp_path, 1)) == {}


def test_sets_per_job_plans_ceil_of_sets_over_n_jobs(tmp_path):
    for n, groups in ((2, 4), (7, 1), (100, 1)):
        jobs = planned_jobs(tmp_path, *_targets(), configfile=_config(tmp_path, n))
        assert jobs["task2vec_group"] == groups and jobs["task2vec"] == 7, (n, jobs)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True])
def test_a_bad_sets_per_job_fails_before_any_job_naming_the_key(tmp_path, bad):
    proc = run_snakemake(tmp_path, "-n", *_targets(), configfile=_config(tmp_path, bad), check=False)
    assert proc.returncode != 0
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "resources.task2vec.sets_per_job" in ln]
    assert len(lines) == 1 and lines[0].startswith("invalid config: config key"), proc.stderr[-2000:]
    assert not (tmp_path / "results").exists()
