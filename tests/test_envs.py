"""The environment files: every dependency pinned, torch at 2.13.0, conda YAML in step."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_every_requirement_is_pinned():
    lines = [ln.strip() for ln in (REPO / "envs" / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln and not ln.startswith("#")]
    assert reqs, "empty requirements"
    unpinned = [r for r in reqs if "==" not in r]
    assert not unpinned, f"unpinned: {unpinned}"
    assert "torch==2.13.0" in reqs


def test_conda_yaml_in_step_with_requirements():
    result = subprocess.run([sys.executable, str(REPO / "envs" / "sync_conda.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
