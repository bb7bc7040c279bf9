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


def test_reference_losses_are_artifacts_in_points_plot_and_summary(study):
    """The untuned base (finetune) and the unigram reference (pretrain), as a user meets them."""
    from PIL import Image

    from datalign.lm.evaluate import evaluate_causal_lm
    from datalign.lm.models import load_model
    from datalign.lm.tokens import TokenizedSplit, evaluation_chunks

    workdir, _ = study
    results = workdir / "results"
    base = json.loads((results / "baselines" / "finetune" / "py_docstrings.json").read_text())
    assert base["reference"] == "base_model"
    # independently: the probe, untouched, on the same held-out chunks
    split = TokenizedSplit.load(results / "tokens" / "py_docstrings" / "test.npz")
    chunks = evaluation_chunks(split, 32, 1024)
    expect = evaluate_causal_lm(load_model(results / "probe"), chunks)["cross_entropy"]
    assert base["cross_entropy"] == pytest.approx(expect, rel=1e-6)
    for eval_set in ("py_code", "bbc_news"):
        ref = json.loads((results / "baselines" / "pretrain" / f"{eval_set}.json").read_text())
        assert ref["reference"] == "unigram" and 0 < ref["cross_entropy"] < math.log(400) + 1e-9
    for setting in ("finetune", "pretrain"):
        points = pd.read_csv(results / "correlation" / setting / "points.csv")
        for _, p in points.iterrows():
            ref = json.loads((results / "baselines" / setting / f"{p.eval_set}.json").read_text())
            assert p.reference_cross_entropy == pytest.approx(ref["cross_entropy"], rel=1e-5)
            assert p.loss_change == pytest.approx(p.cross_entropy - ref["cross_entropy"], abs=1e-5)
    legend = json.loads(Image.open(results / "correlation" / "finetune" / "scatter.png").text["Legend"])
    assert "py_docstrings" in legend and "untuned base: py_docstrings" in legend
    legend = json.loads(Image.open(results / "correlation" / "pretrain" / "scatter.png").text["Legend"])
    assert {"py_code", "bbc_news", "unigram reference: py_code", "unigram reference: bbc_news"} <= set(legend)
    summary = json.loads((results / "summary.json").read_text())
    assert summary["reference"]["finetune"]["py_docstrings"]["models"] == 3
    text = (results / "summary.md").read_text()
    assert "against the untuned base" in text and "against its unigram reference" in text
    assert "Leaving one point out" in text


def test_mixture_trend_only_against_its_targets(study):
    """A mixture of py_docstrings and bbc_news beside an unrelated evaluation set (py_code):
    the trend is reported against the components that are evaluation sets, never py_code."""
    workdir, _ = study
    summary = json.loads((workdir / "results" / "summary.json").read_text())
    assert {(i["eval_set"], i["aligned_component"]) for i in summary["interventions"]} == {
        ("py_docstrings", "py_docstrings"), ("bbc_news", "bbc_news")}
    text = (workdir / "results" / "summary.md").read_text()
    section = text.split("## Mixture interventions")[1]
    assert "py_code" not in section and "**bbc_news**" in section
    [item] = [i for i in summary["interventions"] if i["eval_set"] == "py_docstrings"]
    assert len(item["losses"]["finetune"]) == len(item["datasets"])


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
