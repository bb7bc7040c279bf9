"""The spectral-imbalance study on text through the real workflow (tests/configs/tiny_spectral_text.yaml):
BBC news (5 classes) encoded by the packaged all-MiniLM-L6-v2 and by the mean-pooled hidden states of
the shared tiny probe (``checkpoint: probe``: the BPE tokenizer and the probe are trained first, as
inputs of that encoder's job). Checks the contents of every artifact, that editing the probe reruns
that encoder only, and that a config without such an encoder trains neither tokenizer nor probe."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import yaml

from datalign.core.errors import ConfigError
from datalign.studies import load_config, validate_study_config

from .workflow_helpers import REPO, edited_config, planned_jobs, run_snakemake, temp_leftovers

pytestmark = pytest.mark.integration

TINY_TEXT = REPO / "tests" / "configs" / "tiny_spectral_text.yaml"
ENCODERS = ["minilm", "probe_lm"]
DIMS = {"minilm": 384, "probe_lm": 32}  # all-MiniLM-L6-v2; the tiny probe's n_embd
CLASSES = ["business", "entertainment", "politics", "sports", "tech"]
PER_SPLIT = 20  # per_class 40, test_fraction 0.5
PROBE_RULES = {"train_tokenizer", "tokenize", "prepare_data", "probe"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("si_text")
    run_snakemake(workdir, "--cores", "2", configfile=TINY_TEXT)
    return workdir, workdir / "results" / "spectral_imbalance", load_config(TINY_TEXT)


def test_texts_are_balanced_and_both_encoders_cache_features(study):
    workdir, root, _ = study
    manifest = json.loads((root / "data" / "bbc" / "manifest.json").read_text())
    assert manifest["kind"] == "text" and manifest["class_names"] == CLASSES
    for split in ("train", "test"):
        assert manifest["balance"]["after"][split] == {c: PER_SPLIT for c in CLASSES} or \
            set(manifest["balance"]["after"][split].values()) == {PER_SPLIT}
    for enc in ENCODERS:
        for split in ("train", "test"):
            with np.load(root / "features" / "bbc" / enc / f"{split}.npz") as npz:
                assert npz["features"].shape == (5 * PER_SPLIT, DIMS[enc])
                assert np.isfinite(npz["features"]).all() and npz["features"].std(axis=0).max() > 0
                assert np.bincount(npz["y"]).tolist() == [PER_SPLIT] * 5
                assert list(npz["class_names"]) == CLASSES
        info = json.loads((root / "features" / "bbc" / enc / "info.json").read_text())
        assert info["encoder"] == enc and info["dim"] == DIMS[enc]
        assert info["rows"] == {"train": 5 * PER_SPLIT, "test": 5 * PER_SPLIT}
    # the causal LM is the study's shared probe (trained here on the tiny settings), not a hub model
    info = json.loads((root / "features" / "bbc" / "probe_lm" / "info.json").read_text())
    assert info["kind"] == "causal_lm" and info["fit"]["checkpoint"] == "results/probe"
    assert info["fit"]["hidden_size"] == 32
    assert (workdir / "results" / "probe" / "model.safetensors").is_file()
    assert (workdir / "results" / "tokenizer" / "tokenizer.json").is_file()
    assert json.loads((root / "features" / "bbc" / "minilm" / "info.json").read_text())["kind"] == "minilm"
    assert temp_leftovers(workdir / "results") == []


def test_per_class_spectra_and_accuracies_of_each_encoder(study):
    _, root, _ = study
    for enc in ENCODERS:
        folder = root / "analysis" / "bbc" / enc
        classes = pd.read_csv(folder / "classes.csv")
        # the per-class spectra: one row of spectral metrics for each of the 5 classes
        assert list(classes["class"]) == list(range(5)) and list(classes["class_name"]) == CLASSES
        assert (classes["n_samples"] == PER_SPLIT).all() and (classes["dim"] == DIMS[enc]).all()
        assert (classes["trace"] > 0).all()
        assert (classes["effective_rank"] >= 1).all() and (classes["effective_rank"] <= DIMS[enc]).all()
        assert classes["top_k_share"].between(0, 1).all()
        # per-class probe accuracies in [0, 1], each with an ordered interval around its mean
        assert classes["accuracy_mean"].between(0, 1).all() and classes["predicted_error"].between(0, 1).all()
        assert np.allclose(classes["accuracy_mean"] + classes["error_mean"], 1)
        lo, mean, hi = classes["error_ci_low"], classes["error_mean"], classes["error_ci_high"]
        assert not (lo.isna() | hi.isna()).any()
        assert ((lo <= mean + 1e-9) & (mean <= hi + 1e-9)).all()
        probe = json.loads((folder / "probe.json").read_text())
        assert probe["class_names"] == CLASSES and probe["dim"] == DIMS[enc]
        assert 0 <= probe["overall_accuracy"] <= 1
        assert probe["overall_accuracy_ci_low"] <= probe["overall_accuracy"] <= probe["overall_accuracy_ci_high"]
        acc = classes["accuracy_mean"]
        assert math.isclose(probe["class_gap"], acc.max() - acc.min(), abs_tol=1e-5)
        # the predicted-vs-measured Spearman, recomputed from the class table
        corr = pd.read_csv(folder / "correlations.csv").set_index("predictor")
        assert "predicted_error" in corr.index and corr.at["predicted_error", "n"] == 5
        rho = corr.at["predicted_error", "rho"]
        if not math.isnan(rho):  # NaN only when every class has the same measured error
            assert math.isclose(rho, classes["predicted_error"].corr(classes["error_mean"], method="spearman"),
                                abs_tol=1e-5)
            assert corr.at["predicted_error", "ci_low"] - 1e-9 <= rho <= corr.at["predicted_error", "ci_high"] + 1e-9
        else:
            assert classes["error_mean"].nunique() == 1
        for name in ("spectra", "metrics_vs_error", "predicted_vs_measured"):
            assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # MiniLM separates BBC topics far better than chance (0.2) even at 20 articles per class
    assert json.loads((root / "analysis/bbc/minilm/probe.json").read_text())["overall_accuracy"] > 0.6


def test_comparison_and_summary_name_both_encoders(study):
    _, root, _ = study
    table = pd.read_csv(root / "compare" / "bbc" / "encoders.csv").set_index("encoder")
    assert list(table.index) == ENCODERS and table.loc[ENCODERS, "dim"].tolist() == [DIMS[e] for e in ENCODERS]
    sel = pd.read_csv(root / "compare" / "bbc" / "selection.csv")
    assert list(sel["candidate"]) == ENCODERS and sel["chosen"].sum() >= 1
    summary = json.loads((root / "summary.json").read_text())
    rec = summary["datasets"]["bbc"]
    assert rec["n_classes"] == 5 and rec["class_names"] == CLASSES and list(rec["encoders"]) == ENCODERS
    for enc, r in rec["encoders"].items():
        assert r["dim"] == DIMS[enc]
        rho, lo, hi = r["spearman"]["predicted_error"]
        if not math.isnan(rho):
            assert math.isclose(rho, table.at[enc, "rho_predicted_error"], abs_tol=1e-5)
            assert lo <= rho <= hi
    md = (root / "summary.md").read_text()
    assert "## bbc (5 classes" in md and "| minilm | 384 |" in md and "| probe_lm | 32 |" in md
    assert "Gaussian prediction" in md


def test_editing_the_probe_reruns_the_probe_encoder_only(study, tmp_path):
    workdir, _, _ = study
    assert planned_jobs(workdir, "--cores", "2", configfile=TINY_TEXT) == Counter()
    edited = edited_config(TINY_TEXT, tmp_path, lambda c: c["probe"]["pretrain"].update(lr=1.0e-3))
    plan = planned_jobs(workdir, "--cores", "2", configfile=edited)
    assert plan["probe"] == 1 and plan["si_encode"] == 1 and plan["si_analyse"] == 1
    assert set(plan) == {"probe", "si_encode", "si_analyse", "si_compare", "si_summary", "study_config", "all",
                         "total"}


def test_without_a_probe_encoder_no_tokenizer_or_probe_is_trained(tmp_path):
    edited = edited_config(TINY_TEXT, tmp_path, lambda c: c["spectral_imbalance"]["encoders"].pop("probe_lm"))
    plan = planned_jobs(tmp_path / "fresh", "--cores", "2", configfile=edited)
    assert plan["si_encode"] == 1 and not PROBE_RULES & set(plan)
    assert planned_jobs(tmp_path / "fresh2", "--cores", "2", configfile=TINY_TEXT).keys() >= PROBE_RULES


def test_probe_encoder_without_a_probe_is_one_line():
    config = yaml.safe_load(TINY_TEXT.read_text())
    del config["probe"]
    with pytest.raises(ConfigError) as err:
        validate_study_config(config)
    text = str(err.value)
    assert "'probe'" in text and "probe_lm" in text and "checkpoint: probe" in text and "\n" not in text


def test_text_dataset_needs_a_text_encoder():
    config = yaml.safe_load(TINY_TEXT.read_text())
    config["spectral_imbalance"]["encoders"] = {"pca": {"kind": "pca", "n_components": 8}}
    with pytest.raises(ConfigError) as err:
        validate_study_config(config)
    assert "no encoder encodes the texts of labelled dataset 'bbc'" in str(err.value)

