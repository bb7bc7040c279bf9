"""The tiny study through the SLURM profile on a real single-node cluster equals a local run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .slurm_cluster import slurm_cluster, snakemake_slurm_args  # noqa: F401
from .workflow_helpers import snakemake_cmd

pytestmark = [pytest.mark.slurm, pytest.mark.integration]


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_tiny_study_on_slurm_equals_local_run(study, slurm_cluster, tmp_path):  # noqa: F811
    local = study[0] / "results"
    env = dict(slurm_cluster.env)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    # What the comparison below reads, not `all`: the cheap measures, summary and plots would
    # add a dozen sbatch round trips and test nothing SLURM-specific; nor the pre-train setting,
    # whose jobs are the same rules (baseline, train, evaluate, correlate) as fine-tuning's:
    # 26 jobs, not 35. Each job is two Snakemake start-ups and a script, CPU-bound, so the job
    # count sets this test's time.
    targets = ["results/alignment/alignment.csv", "results/correlation/finetune/points.csv"]
    # A job takes 8-10 s here: status polls 12 s after a submission or a finished job catch most
    # jobs on the first poll (at 8 s, they were all caught only by the next, 18 s later).
    cmd = snakemake_cmd(tmp_path, *snakemake_slurm_args(slurm_cluster, jobs=4, status_check_s=12))
    # targets right after --snakefile's one value: --configfile and --default-resources take lists
    at = cmd.index("--snakefile") + 2
    cmd[at:at] = targets
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    remote = tmp_path / "results"

    # every job ran as a SLURM job: the executor keeps one log folder per rule
    slurm_logs = tmp_path / ".snakemake" / "slurm_logs"
    ran = {p.name.removeprefix("rule_") for p in slurm_logs.iterdir()} if slurm_logs.exists() else set()
    assert {"prepare_data", "probe", "task2vec", "train", "evaluate", "correlate"} <= ran, ran

    # prepared text and token ids: byte for byte
    for rel in ["data/py_docstrings/train.jsonl", "data/news_docstrings_50/test.jsonl",
                "tokenizer/tokenizer.json"]:
        assert (remote / rel).read_bytes() == (local / rel).read_bytes(), rel
    for path in sorted(local.glob("tokens/*/*.npz")) + sorted(local.glob("task2vec/*/*.npz")):
        rel = path.relative_to(local)
        a, b = _npz(path), _npz(remote / rel)
        assert a.keys() == b.keys(), rel
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=str(rel))
    # numbers downstream of training: same seeds and one thread per job give the same values
    for path in sorted(local.glob("losses/finetune/*/*.json")):
        rel = path.relative_to(local)
        ce_local = json.loads(path.read_text())["cross_entropy"]
        ce_slurm = json.loads((remote / rel).read_text())["cross_entropy"]
        assert ce_slurm == pytest.approx(ce_local, rel=1e-6), rel
    pd.testing.assert_frame_equal(pd.read_csv(remote / "alignment" / "alignment.csv"),
                                  pd.read_csv(local / "alignment" / "alignment.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(remote / "correlation" / "finetune" / "points.csv"),
                                  pd.read_csv(local / "correlation" / "finetune" / "points.csv"))
    assert not (remote / "correlation" / "pretrain").exists()  # only what was asked for ran
