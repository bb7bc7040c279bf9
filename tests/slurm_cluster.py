"""A private single-node SLURM cluster for tests, and the snakemake arguments that use it.

Import the fixture into a test module and ask for it::

    from .slurm_cluster import slurm_cluster, snakemake_slurm_args  # noqa: F401

    @pytest.mark.slurm
    def test_x(slurm_cluster, tmp_path):
        cmd = ["snakemake", *snakemake_slurm_args(slurm_cluster), ...]
        subprocess.run(cmd, env=slurm_cluster.env, cwd=tmp_path, check=True)

The cluster is started by ``.ci/slurm-up.sh`` in a temporary folder and stopped by
``.ci/slurm-down.sh`` (by process id) when the session ends. The daemons need
root; a non-root user with passwordless sudo (a CI runner) gets them through sudo.
Where the cluster cannot be had (no root or sudo, SLURM not installed and no
apt-get), the tests are skipped, except on CI (``CI=true``), where that is a
failure: CI must run them.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SLURM_UP = REPO / ".ci" / "slurm-up.sh"
SLURM_DOWN = REPO / ".ci" / "slurm-down.sh"
PROFILE = REPO / "profiles" / "slurm"
PARTITION = "debug"

# slurm-up.sh exits with this when the binaries are missing and cannot be installed.
_UNAVAILABLE = 2
# apt-get may have to install slurm-wlm first.
_UP_TIMEOUT_S = 900
_DOWN_TIMEOUT_S = 120
# The munge socket lives in the state folder; unix socket paths are short.
_MAX_STATE_DIR_CHARS = 60


@dataclass(frozen=True)
class SlurmCluster:
    """A running single-node cluster: its state folder, config and default partition."""

    state_dir: Path
    conf: Path
    partition: str = PARTITION

    @property
    def env(self) -> dict[str, str]:
        """The current environment plus SLURM_CONF, for sbatch/squeue/snakemake subprocesses.

        PATH starts with the state folder's ``bin``, whose srun restores SLURM_CONF
        inside jobs (the slurm-jobstep plugin strips it before its nested srun).
        """
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join([str(self.state_dir / "bin"), env.get("PATH", os.defpath)])
        # SLURM variables of an enclosing job would leak into the jobs we submit.
        for key in [k for k in env if k.startswith("SLURM_") and k != "SLURM_CONF"]:
            del env[key]
        return env

    def squeue_states(self) -> dict[str, str]:
        """Map job id -> state of every job slurmctld still knows (MinJobAge keeps finished ones)."""
        out = subprocess.run(
            ["squeue", "--states=all", "--noheader", "--format=%i|%T"],
            env=self.env, capture_output=True, text=True, check=True, timeout=30,
        ).stdout
        return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


def snakemake_slurm_args(
    cluster: SlurmCluster, *, jobs: int = 4, status_check_s: int = 8, mem_mb: int = 1000
) -> list[str]:
    """Snakemake options that run a workflow through the SLURM profile on ``cluster``.

    The repository profile plus what a one-node cluster without accounting needs:

    - status by squeue: the plugin defaults to sacct whenever the binary exists,
      and with accounting disabled every sacct query fails, so snakemake never
      sees a job finish and hangs (SIGTERM included);
    - ``status_check_s``: the plugin polls that many seconds after a submission or
      a finished job, and 10 s later for every poll that finds nothing finished, so
      it should just exceed a job's run time (a test job takes 4-7 s here, most of
      it two snakemake start-ups); the default 40 s would dominate a test. Keep
      it under MinJobAge / 3 (200 s), or the plugin falls back to sacct;
    - no account (``--slurm-no-account`` is accepted but not read by plugin 2.8,
      which then warns "Unable to guess SLURM account" and submits without -A);
    - no retries (a failure must fail the test), a short latency wait (one local
      file system), SLURM logs kept for post-mortems, and small default resources
      on the cluster's partition. ``--default-resources`` replaces the profile's
      list as a whole, so every default is restated here.
    """
    return [
        "--profile", str(PROFILE),
        "--executor", "slurm",
        "--jobs", str(jobs),
        "--retries", "0",
        "--latency-wait", "5",
        "--slurm-status-command", "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", str(status_check_s),
        "--seconds-between-status-checks", "1",
        "--slurm-keep-successful-logs",
        "--default-resources",
        f"slurm_partition={cluster.partition}", f"mem_mb={mem_mb}", "runtime=30",
    ]


def _unavailable(reason: str) -> None:
    """Skip locally, fail on CI: a CI run must not silently lose the cluster tests."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"SLURM cluster unavailable on CI: {reason}", pytrace=False)
    pytest.skip(f"SLURM cluster unavailable: {reason}")


def start_cluster(state_dir: Path) -> SlurmCluster:
    """Start (or find already running) the cluster of ``state_dir`` with slurm-up.sh.

    Skips/fails through pytest where SLURM cannot be had; fails with the script's
    output (daemon log tails) when the daemons do not come up.
    """
    try:
        proc = subprocess.run(
            ["bash", str(SLURM_UP), str(state_dir)],
            capture_output=True, text=True, timeout=_UP_TIMEOUT_S,
        )
    except FileNotFoundError:
        _unavailable("bash is not installed")
    except subprocess.TimeoutExpired:
        pytest.fail(f"{SLURM_UP} {state_dir} did not finish in {_UP_TIMEOUT_S} s", pytrace=False)
    if proc.returncode == _UNAVAILABLE:
        _unavailable(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "slurm-up.sh exit 2")
    if proc.returncode != 0:
        stop_cluster(state_dir)  # whatever did start must not outlive the test
        pytest.fail(
            f"{SLURM_UP} {state_dir} exited {proc.returncode}:\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    return SlurmCluster(state_dir=state_dir, conf=state_dir / "slurm.conf")


def stop_cluster(state_dir: Path) -> None:
    """Stop the daemons of ``state_dir`` by their process ids (slurm-down.sh)."""
    subprocess.run(
        ["bash", str(SLURM_DOWN), str(state_dir)],
        capture_output=True, text=True, timeout=_DOWN_TIMEOUT_S, check=False,
    )


# One cluster per process: the fixture may be imported into several test modules,
# and pytest then holds one session fixture per module.
_running: SlurmCluster | None = None
_users = 0


def _stop_running() -> None:
    global _running, _users
    if _running is not None:
        stop_cluster(_running.state_dir)
    _running, _users = None, 0


atexit.register(_stop_running)  # also when the session is interrupted


def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slurm")
    if len(str(path)) > _MAX_STATE_DIR_CHARS:
        path = Path(tempfile.mkdtemp(prefix="slurm-"))
    return path


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running single-node SLURM cluster for the session; stopped at its end."""
    global _running, _users
    if _running is None:
        _running = start_cluster(_state_dir(tmp_path_factory))
    _users += 1
    try:
        yield _running
    finally:
        _users -= 1
        if _users == 0:
            _stop_running()
