"""Running the real workflow from tests: a tiny config in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
TINY = REPO / "tests" / "configs" / "tiny.yaml"


def snakemake_cmd(workdir: Path, *args: str, configfile: Path = TINY) -> list[str]:
    """The command line of a workflow run in ``workdir`` (results land in workdir/results)."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(SNAKEFILE),
        "--directory", str(workdir),
        "--configfile", str(configfile),
        *args,
    ]


def workflow_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    return env


def run_snakemake(workdir: Path, *args: str, configfile: Path = TINY, check: bool = True,
                  timeout: int = 900) -> subprocess.CompletedProcess:
    """Run snakemake; on an unexpected failure, show its output in the assertion."""
    proc = subprocess.run(snakemake_cmd(workdir, *args, configfile=configfile), capture_output=True,
                          text=True, env=workflow_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def temp_leftovers(root: Path) -> list[Path]:
    """Files or folders an atomic write left behind (there must be none)."""
    return [p for p in root.rglob("*") if ".tmp-" in p.name]
