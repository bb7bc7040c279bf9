"""A custom results_dir: git ignores it, and the logs of its jobs live inside it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from datalign.core.paths import RESULTS_GITIGNORE, SharedPaths, keep_results_out_of_git

from .workflow_helpers import TINY, edited_config, run_snakemake

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _repo(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/results/\n")
    return tmp_path


def _untracked(repo):
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout
    return [line[3:] for line in out.splitlines()]


@needs_git
def test_a_results_dir_git_does_not_ignore_gets_its_own_gitignore(tmp_path):
    repo = _repo(tmp_path)
    assert keep_results_out_of_git(repo / "results") is None  # covered by the repo's .gitignore
    assert not (repo / "results" / ".gitignore").exists()
    written = keep_results_out_of_git(repo / "studies" / "proofs")
    assert written == repo / "studies" / "proofs" / ".gitignore"
    assert written.read_text() == RESULTS_GITIGNORE
    (repo / "studies" / "proofs" / "summary.json").write_text("{}")
    assert _untracked(repo) == [".gitignore"]
    assert keep_results_out_of_git(repo / "studies" / "proofs") is None  # now ignored: idempotent


def test_outside_a_work_tree_nothing_is_written(tmp_path):
    assert keep_results_out_of_git(tmp_path / "out") is None
    assert list((tmp_path / "out").iterdir()) == []


def test_logs_and_benchmarks_live_under_results_dir():
    p = SharedPaths("studies/proofs")
    assert p.log("train/{setting}_{train_set}") == "studies/proofs/logs/train/{setting}_{train_set}.log"
    assert p.benchmark("probe") == "studies/proofs/logs/benchmarks/probe.tsv"


@needs_git
@pytest.mark.integration
def test_workflow_run_with_a_custom_results_dir(tmp_path):
    """One cheap job of the real workflow: its log lands under the custom results_dir,
    which git then ignores; nothing is written to a shared logs/ folder."""
    repo = _repo(tmp_path / "work")
    config = edited_config(TINY, tmp_path, lambda c: c.update(results_dir="studies/proofs"))
    run_snakemake(repo, "--cores", "1", "studies/proofs/study.yaml", configfile=config)
    assert (repo / "studies" / "proofs" / "study.yaml").exists()
    assert (repo / "studies" / "proofs" / "logs" / "study_config.log").exists()
    assert not (repo / "logs").exists()
    assert [p for p in _untracked(repo) if not p.startswith(".snakemake")] == [".gitignore"]
