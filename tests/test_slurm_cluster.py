"""The SLURM profile and a real single-node cluster: a two-rule workflow runs as SLURM jobs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import slurm_cluster as cluster_module
from .slurm_cluster import (  # noqa: F401  (slurm_cluster is the fixture)
    PROFILE,
    SlurmCluster,
    slurm_cluster,
    snakemake_slurm_args,
    start_cluster,
)

NAMES = ["alpha", "beta"]

# Each job records the SLURM job id it ran under; `set -u` (snakemake's bash
# strict mode) makes a job outside SLURM fail instead of writing an empty id.
SNAKEFILE = f"""
NAMES = {NAMES!r}

rule all:
    input: "summary.txt"

rule part:
    output: "parts/{{name}}.txt"
    shell: 'echo "{{wildcards.name}} $SLURM_JOB_ID" > {{output}}'

rule summary:
    input: expand("parts/{{name}}.txt", name=NAMES)
    output: "summary.txt"
    shell: 'cat {{input}} > {{output}} && echo "summary $SLURM_JOB_ID" >> {{output}}'
"""

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _job_id(line: str, label: str) -> str:
    match = re.fullmatch(rf"{label} (\d+)", line.strip())
    assert match, f"expected '{label} <SLURM job id>', got {line!r}"
    return match.group(1)


def test_profile_is_accepted_by_snakemake(tmp_path: Path) -> None:
    """Every key of the profile is a snakemake option (a typo would be 'unrecognized')."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    proc = subprocess.run(
        [*SNAKEMAKE, "--profile", str(PROFILE), "--dry-run"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "part" in proc.stdout and "summary" in proc.stdout


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_cluster_fails_on_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no slurmd here"):
        cluster_module._unavailable("no slurmd here")


@pytest.mark.slurm
def test_second_start_reuses_the_running_cluster(slurm_cluster: SlurmCluster) -> None:  # noqa: F811
    pids = (slurm_cluster.state_dir / "pids").read_text()
    again = start_cluster(slurm_cluster.state_dir)
    assert again == slurm_cluster
    assert (slurm_cluster.state_dir / "pids").read_text() == pids
    assert len(pids.split()) == 6  # munged, slurmctld, slurmd with their pids


@pytest.mark.slurm
def test_the_node_has_every_cpu_of_the_machine(slurm_cluster: SlurmCluster) -> None:  # noqa: F811
    # not what OMP_NUM_THREADS says: GNU nproc obeys it, and a test that ran a workflow
    # script in-process once left it at 1, so the node ran the SLURM tests' jobs one at a time
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], env=slurm_cluster.env, capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stdout.split() == [str(len(os.sched_getaffinity(0)))]


@pytest.mark.slurm
def test_workflow_runs_as_slurm_jobs(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    cmd = [*SNAKEMAKE, *snakemake_slurm_args(slurm_cluster), "--snakefile", "Snakefile"]
    start = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=slurm_cluster.env, capture_output=True, text=True, timeout=300,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, f"snakemake failed after {elapsed:.0f} s:\n{proc.stderr[-5000:]}"

    part_ids = {}
    for name in NAMES:
        lines = (tmp_path / "parts" / f"{name}.txt").read_text().splitlines()
        assert len(lines) == 1, lines
        part_ids[name] = _job_id(lines[0], name)
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    assert summary[:-1] == [f"{name} {part_ids[name]}" for name in NAMES]
    summary_id = _job_id(summary[-1], "summary")

    # Three separate jobs, each one this cluster's slurmctld ran to completion.
    ids = [*part_ids.values(), summary_id]
    assert len(set(ids)) == len(ids), ids
    states = slurm_cluster.squeue_states()
    assert {i: states.get(i) for i in ids} == dict.fromkeys(ids, "COMPLETED")
    print(f"two-rule workflow on SLURM: {elapsed:.1f} s, jobs {ids}")
