"""Running the real workflow from tests: a tiny config in a temporary directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml

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


def planned_jobs(workdir: Path, *args: str, configfile: Path = TINY) -> Counter:
    """Jobs per rule that `snakemake -n` plans (its Job stats table, `total` included);
    empty when there is nothing to be done."""
    proc = run_snakemake(workdir, "-n", *args, configfile=configfile)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return Counter()
    stats = out[out.index("Job stats:"):]
    return Counter({m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)})


def edited_config(base: Path, tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    """A copy of the config file ``base`` in ``tmp_path`` with ``edit(config)`` applied."""
    config = yaml.safe_load(base.read_text())
    edit(config)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
