"""The workflow end to end on the tiny config: contents of every artifact family,
resumption after an interrupt, nothing to do after a finished run, one-line errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from .workflow_helpers import TINY, run_snakemake, temp_leftovers

pytestmark = pytest.mark.integration


def test_interrupted_run_resumes_without_recomputing(study):
    workdir, interrupted = study
    assert interrupted["leftovers"] == [], "an interrupted run left half-written artifacts"
    probe = workdir / "results" / "probe" / "model.safetensors"
    assert probe.stat().st_mtime_ns == interrupted["probe_mtime"], "the probe was recomputed"


def test_nothing_to_do_after_a_finished_run(study):
    workdir, _ = study
    proc = run_snakemake(workdir, "-n", "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_prepared_data_splits_by_group(study):
    workdir, _ = study
    root = workdir / "results" / "data" / "py_docstrings"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["name"] == "py_docstrings"
    groups = {}
    for split in ("train", "validation", "test"):
        rows = [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()]
        assert rows, split
        assert all(r["text"].startswith("informal: ") and "\nformal: " in r["text"] for r in rows)
        groups[split] = {r["group"] for r in rows}
    assert not groups["train"] & groups["test"], "a module is in both train and test"


def test_embeddings_and_metadata(study):
    workdir, _ = study
    sizes = set()
    for path in sorted((workdir / "results" / "task2vec").glob("*/*.npz")):
        with np.load(path) as z:
            emb = z["embeddings"]
        assert emb.shape[0] == 3
        assert np.isfinite(emb).all() and (emb >= 0).all() and emb.sum() > 0
        sizes.add(emb.shape[1])
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["num_batches"] == 3
        assert meta["provenance"]["config"]["estimator"] == "paper"
    assert len(sizes) == 1
    assert len(list((workdir / "results" / "task2vec").glob("*/*.npz"))) == 7


def test_alignment_tables(study):
    workdir, _ = study
    pairs = pd.read_csv(workdir / "results" / "alignment" / "alignment.csv")
    labels = sorted(set(pairs["row"]))
    assert len(labels) == 7 and len(pairs) == 49
    assert ((pairs["ci_low"] <= pairs["alignment"] + 1e-12) & (pairs["alignment"] <= pairs["ci_high"] + 1e-12)).all()
    assert (pairs["std"] >= 0).all()
    square = pd.read_csv(workdir / "results" / "alignment" / "square.csv", index_col=0)
    assert np.allclose(square.to_numpy(), square.to_numpy().T)
    div = pd.read_csv(workdir / "results" / "alignment" / "diversity.csv")
    diag = np.diag(square.loc[div["set"], div["set"]].to_numpy())
    assert np.allclose(diag, 1 - div["value"].to_numpy())


def test_losses_are_finite_and_consistent(study):
    workdir, _ = study
    files = sorted((workdir / "results" / "losses").glob("*/*/*.json"))
    assert len(files) == 3 + 4
    for f in files:
        loss = json.loads(f.read_text())
        assert math.isfinite(loss["cross_entropy"]) and loss["cross_entropy"] > 0
        assert loss["perplexity"] == pytest.approx(math.exp(loss["cross_entropy"]))


def test_training_logs_follow_the_token_budget(study):
    workdir, _ = study
    log = json.loads((workdir / "results" / "checkpoints" / "finetune" / "bbc_news" / "train_log.json").read_text())
    records = log["steps"]
    assert records[-1]["tokens_seen"] == 4096
    assert all(math.isfinite(r["loss"]) for r in records)


def test_correlation_joins_alignment_with_loss(study):
    workdir, _ = study
    pairs = pd.read_csv(workdir / "results" / "alignment" / "alignment.csv").set_index(["row", "col"])
    for setting, n in (("finetune", 3), ("pretrain", 4)):
        points = pd.read_csv(workdir / "results" / "correlation" / setting / "points.csv")
        stats = json.loads((workdir / "results" / "correlation" / setting / "stats.json").read_text())
        assert len(points) == n and stats["n"] == n
        for _, p in points.iterrows():
            expect = pairs.loc[(f"{p.train_set}/train", f"{p.eval_set}/test"), "alignment"]
            assert p.alignment == pytest.approx(expect, rel=1e-5)
            loss = json.loads((workdir / "results" / "losses" / setting / p.train_set / f"{p.eval_set}.json").read_text())
            assert p.cross_entropy == pytest.approx(loss["cross_entropy"], rel=1e-5)
        assert -1 <= stats["pearson_r"] <= 1
        assert stats["r2"] == pytest.approx(stats["pearson_r"] ** 2)


def test_plots_and_summary(study):
    workdir, _ = study
    results = workdir / "results"
    for png in ["alignment/heatmap.png", "alignment/diversity.png", "correlation/finetune/scatter.png",
                "correlation/pretrain/scatter.png", "plots/loss_curves_finetune.png"]:
        assert (results / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    summary = json.loads((results / "summary.json").read_text())
    assert set(summary["correlation"]) == {"finetune", "pretrain"}
    assert any(i["datasets"] == ["bbc_news", "news_docstrings_50", "py_docstrings"] for i in summary["interventions"])


def test_report_html(study):
    workdir, _ = study
    run_snakemake(workdir, "--report", "report.html", "--cores", "1")
    html = (workdir / "report.html").read_text(errors="replace")
    assert "heatmap.png" in html and "scatter.png" in html


def test_same_seed_same_embeddings(study):
    workdir, _ = study
    target = workdir / "results" / "task2vec" / "bbc_news" / "train.npz"
    with np.load(target) as z:
        before = z["embeddings"].copy()
    target.unlink()
    run_snakemake(workdir, "--cores", "1", str(target.relative_to(workdir)))
    with np.load(target) as z:
        assert np.array_equal(before, z["embeddings"])


def _copy_with_config(study, tmp_path: Path, **finetune) -> tuple[Path, Path]:
    workdir, _ = study
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True)
    cfg = yaml.safe_load(TINY.read_text())
    cfg["experiments"]["finetune"].update(finetune)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return copy, path


def test_nan_loss_is_one_line_and_leaves_no_checkpoint(study, tmp_path):
    copy, cfg = _copy_with_config(study, tmp_path, lr=1.0e30)
    proc = run_snakemake(copy, "--cores", "1", configfile=cfg, check=False)
    assert proc.returncode != 0
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("datalign error")]
    assert lines and "NaN loss" in lines[0] and "finetune/" in lines[0], proc.stderr[-3000:]
    assert temp_leftovers(copy / "results") == []
    ckpts = list((copy / "results" / "checkpoints" / "finetune").glob("*/model.safetensors"))
    assert len(ckpts) < 3, "a failed training left its checkpoint behind"


def test_too_small_dataset_is_one_line(study, tmp_path):
    copy, cfg = _copy_with_config(study, tmp_path, token_budget=10**9)
    proc = run_snakemake(copy, "--cores", "1", configfile=cfg, check=False)
    assert proc.returncode != 0
    assert "is too small for a token budget of 1000000000" in proc.stdout + proc.stderr


def test_bad_config_fails_at_start_naming_the_key(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["task2vec"]["num_batchez"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, "-n", "--cores", "1", configfile=path, check=False)
    assert proc.returncode != 0
    assert "task2vec.num_batchez" in proc.stdout + proc.stderr
