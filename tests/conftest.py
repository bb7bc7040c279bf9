"""Shared test set-up: offline hub, one torch thread, repository paths."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .workflow_helpers import run_snakemake, snakemake_cmd, temp_leftovers, workflow_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def _interrupt_once_probe_is_done(workdir: Path) -> None:
    """Start the study, interrupt it (Ctrl-C) once Snakemake reports the probe job finished."""
    console = workdir / "interrupted-run.log"
    with open(console, "w") as out:
        proc = subprocess.Popen(snakemake_cmd(workdir, "--cores", "2"), stdout=out,
                                stderr=subprocess.STDOUT, env=workflow_env(), start_new_session=True)
        deadline = time.time() + 600
        while proc.poll() is None and time.time() < deadline:
            if re.search(r"Finished jobid: \d+ \(Rule: probe\)", console.read_text()):
                break
            time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def study(tmp_path_factory):
    """The tiny study run once per session: interrupted after the probe, then resumed."""
    workdir = tmp_path_factory.mktemp("study")
    _interrupt_once_probe_is_done(workdir)
    probe = workdir / "results" / "probe" / "model.safetensors"
    assert probe.exists(), "the interrupted run never produced the probe"
    interrupted = {
        "probe_mtime": probe.stat().st_mtime_ns,
        "leftovers": temp_leftovers(workdir / "results"),
    }
    run_snakemake(workdir, "--cores", "2")
    return workdir, interrupted
