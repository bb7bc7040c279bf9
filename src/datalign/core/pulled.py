"""Artifacts that came from ``dvc pull``: dated so that Snakemake takes them as given.

DVC keeps no timestamps: ``dvc pull`` (or ``dvc checkout``) writes every file
with a new modification time, in no particular order, so an input often looks
newer than the output computed from it, and Snakemake, which compares times,
would recompute it. DVC, on the other hand, knows exactly which artifacts are
the ones it recorded for the current code and parameters: ``dvc status``
reports every stage whose code, parameters or outputs differ from ``dvc.lock``.

:func:`date_pulled_artifacts` therefore asks DVC, and gives every file of every
stage that DVC reports unchanged a modification time in the stages' order,
just after the newest code file of the repository. Snakemake then sees a
consistent tree: nothing recorded and current reruns, while a changed script,
config key or missing artifact still reruns what it changes (DVC reports that
stage as changed, its files keep their times, and Snakemake's own triggers
apply). No rule has to mark its inputs, and it works for any results directory
``dvc.yaml`` names. A stage whose upstream artifacts were not pulled (a partial
pull) counts as unchanged when its own code, parameters and outputs are.

The times are a pure function of the code files' times and the stage order,
so dating twice changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

#: Set in the environment once dated, so jobs started by that Snakemake (which
#: parse the workflow again, locally or on a cluster node) do not date again.
DONE_ENV = "DATALIGN_PULLED_DATED"
#: The step between consecutive stages' times (nanoseconds).
STEP_NS = 1_000_000


def _stage_outputs(repo: Path) -> list[tuple[str, list[str]]]:
    """(stage, output paths) in ``dvc.lock`` order (which is ``dvc.yaml``'s, upstream first)."""
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text()) or {}
    stages = lock.get("stages", {}) or {}
    return [(name, [o["path"] for o in stage.get("outs", [])]) for name, stage in stages.items()]


def _changed_stages(repo: Path) -> dict[str, list]:
    """``dvc status --json`` as a dict (stage -> what changed); raises on a DVC failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"], cwd=repo, capture_output=True,
        text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dvc status failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    text = proc.stdout.strip()
    return json.loads(text[text.index("{"):]) if "{" in text else {}


def _unchanged(entries: list) -> bool:
    """A stage is as recorded when only missing upstream artifacts (a partial pull) differ."""
    for entry in entries:
        if not isinstance(entry, dict):
            return False
        for kind, changes in entry.items():
            if kind != "changed deps" or not isinstance(changes, dict):
                return False
            if any(state != "deleted" for state in changes.values()):
                return False
    return True


def _newest_mtime_ns(paths: Iterable[Path]) -> int:
    newest = 0
    for root in paths:
        if root.is_file():
            newest = max(newest, root.stat().st_mtime_ns)
        elif root.is_dir():
            for p in root.rglob("*"):
                if p.is_file() and "__pycache__" not in p.parts:
                    newest = max(newest, p.stat().st_mtime_ns)
    return newest


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []


def date_pulled_artifacts(repo: str | os.PathLike, code: Iterable[str | os.PathLike]) -> dict[str, int]:
    """Date the files of every stage DVC reports as recorded; returns {stage: files dated}.

    ``repo`` holds ``dvc.yaml`` and ``dvc.lock``; ``code`` lists the files and
    folders whose newest modification time the artifacts are dated after
    (the Snakefile, the rules and scripts, the library). Does nothing (returns
    ``{}``) where nothing is recorded (no ``dvc.lock`` or no ``.dvc``), inside a
    stage that DVC runs (``DVC_STAGE`` set), or when :data:`DONE_ENV` is set. Raises ``RuntimeError`` when ``dvc status`` fails.
    """
    repo = Path(repo)
    if os.environ.get(DONE_ENV) or not (repo / "dvc.lock").is_file() or not (repo / ".dvc").is_dir():
        return {}
    # Inside a stage DVC runs (`dvc repro`), DVC holds its lock and has just deleted the
    # stage's outputs; the stage's --allowed-rules keep Snakemake to that family.
    if os.environ.get("DVC_STAGE"):
        return {}
    changed = _changed_stages(repo)
    base = _newest_mtime_ns(Path(c) for c in code) + STEP_NS
    dated: dict[str, int] = {}
    for rank, (stage, outs) in enumerate(_stage_outputs(repo)):
        if not _unchanged(changed.get(stage, [])):
            continue
        stamp = base + rank * STEP_NS
        count = 0
        for out in outs:
            for f in _files(repo / out):
                st = f.stat()
                if st.st_mtime_ns != stamp:
                    os.utime(f, ns=(st.st_atime_ns, stamp), follow_symlinks=not f.is_symlink())
                count += 1
        dated[stage] = count
    os.environ[DONE_ENV] = "1"
    return dated
