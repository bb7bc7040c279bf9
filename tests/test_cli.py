"""The command line: validation, plan, and coefficients from embedding files."""

from __future__ import annotations

import json

import numpy as np

from datalign.cli import main
from datalign.task2vec.coefficients import alignment

from .conftest import REPO


def test_validate_and_plan(capsys):
    assert main(["validate", str(REPO / "config" / "config.yaml")]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["plan", str(REPO / "config" / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "pretrain: 4 models x 4 evaluation sets = 16 points" in out


def test_bad_config_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config" / "config.yaml").read_text().replace("seed: 1234", "seed: x"))
    assert main(["validate", str(bad)]) == 2  # bad input
    err = capsys.readouterr().err.strip()
    assert err.startswith("datalign: config key 'seed'") and "\n" not in err


def test_align_matches_the_library(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a, b = rng.random((4, 10)), rng.random((5, 10))
    np.savez(tmp_path / "a.npz", embeddings=a)
    np.savez(tmp_path / "b.npz", embeddings=b)
    assert main(["align", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--bootstrap", "20"]) == 0
    value = json.loads(capsys.readouterr().out)["align"]["value"]
    assert value == alignment(a, b, kind="normalized_cosine", bootstrap=20, confidence=0.95, seed=0).value
    assert main(["diversity", str(tmp_path / "missing.npz")]) == 2  # bad input
