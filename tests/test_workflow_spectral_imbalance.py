"""The spectral-imbalance study through the real workflow (tiny config): the contents of
every artifact, what an edit reruns, one-line errors for bad configs and bad data, and the
paper config planned offline without heavy imports."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from datalign.core.errors import ConfigError, DataError
from datalign.studies import load_config, validate_study_config

from .test_paper_config import plan_offline
from .workflow_helpers import REPO, edited_config, planned_jobs, run_snakemake, temp_leftovers

pytestmark = pytest.mark.integration

TINY_SI = REPO / "tests" / "configs" / "tiny_spectral_imbalance.yaml"
PAPER_SI = REPO / "config" / "paper_spectral_imbalance.yaml"
HEAVY = ("torch", "transformers", "datasets", "sklearn", "huggingface_hub")
ENCODERS = ["pca", "cnn", "cnn_noise"]
PREDICTORS = ["predicted_error", "effective_rank", "trace", "top_k_share", "participation_ratio",
              "power_law_alpha"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("si_study")
    run_snakemake(workdir, "--cores", "2", configfile=TINY_SI)
    return workdir, workdir / "results" / "spectral_imbalance", load_config(TINY_SI)


def test_data_is_balanced_and_features_are_cached_per_split(study):
    workdir, root, _ = study
    manifest = json.loads((root / "data" / "digits" / "manifest.json").read_text())
    assert manifest["balance"]["after"]["train"] == {str(c): 40 for c in range(10)} or \
        set(manifest["balance"]["after"]["train"].values()) == {40}
    assert set(manifest["balance"]["after"]["test"].values()) == {60}
    dims = {"pca": 16, "cnn": 16, "cnn_noise": 16}
    for enc in ENCODERS:
        for split, n in (("train", 400), ("test", 600)):
            with np.load(root / "features" / "digits" / enc / f"{split}.npz") as npz:
                assert npz["features"].shape == (n, dims[enc]) and np.isfinite(npz["features"]).all()
                assert np.bincount(npz["y"]).tolist() == [n // 10] * 10
        info = json.loads((root / "features" / "digits" / enc / "info.json").read_text())
        assert info["encoder"] == enc and info["dim"] == dims[enc]
    # the noise CNN was trained with its augmentation, the plain one without
    assert json.loads((root / "features/digits/cnn_noise/info.json").read_text())["fit"]["augment"] == ["noise"]
    assert json.loads((root / "features/digits/cnn/info.json").read_text())["fit"]["augment"] == []
    assert temp_leftovers(workdir / "results") == []


def test_per_encoder_analysis_tables_and_plots(study):
    _, root, _ = study
    for enc in ENCODERS:
        folder = root / "analysis" / "digits" / enc
        classes = pd.read_csv(folder / "classes.csv")
        assert list(classes["class"]) == list(range(10)) and (classes["n_samples"] == 60).all()
        assert classes["error_mean"].between(0, 1).all() and classes["predicted_error"].between(0, 1).all()
        assert np.allclose(classes["accuracy_mean"] + classes["error_mean"], 1)
        assert (classes["effective_rank"] >= 1).all() and (classes["effective_rank"] <= 16).all()
        assert (classes["trace"] > 0).all()
        probe = json.loads((folder / "probe.json").read_text())
        acc = classes["accuracy_mean"]
        assert math.isclose(probe["class_gap"], acc.max() - acc.min(), abs_tol=1e-5)  # CSV: 6 digits
        assert math.isclose(probe["worst_class_accuracy"], acc.min(), abs_tol=1e-5)
        assert math.isclose(probe["predicted_gap"],
                            classes["predicted_error"].max() - classes["predicted_error"].min(), abs_tol=1e-5)
        corr = pd.read_csv(folder / "correlations.csv").set_index("predictor")
        assert set(PREDICTORS) <= set(corr.index)
        for p in PREDICTORS:
            rho = corr.at[p, "rho"]
            if not math.isnan(rho):
                # the Spearman recomputed from the class table
                assert math.isclose(rho, classes[p].corr(classes["error_mean"], method="spearman"), abs_tol=1e-5)
                assert corr.at[p, "ci_low"] - 1e-9 <= rho <= corr.at[p, "ci_high"] + 1e-9
        imb = pd.read_csv(folder / "imbalance.csv").set_index("metric")
        assert math.isclose(imb.at["effective_rank", "std"], classes["effective_rank"].std(ddof=0), rel_tol=1e-5)
        for name in ("spectra", "metrics_vs_error", "predicted_vs_measured"):
            _assert_drawn(folder / f"{name}.png")


def _assert_drawn(path: Path) -> None:
    """A real PNG with a drawing on it (not a blank canvas)."""
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)[..., :3]
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert (pixels < 0.9).mean() > 0.01  # lines, points and text, not only white
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # colours (the accuracy colour scale)


def test_comparison_augmentation_and_choice_by_predicted_gap(study):
    _, root, _ = study
    compare = root / "compare" / "digits"
    table = pd.read_csv(compare / "encoders.csv").set_index("encoder")
    assert list(table.index) == ENCODERS
    for enc in ENCODERS:
        probe = json.loads((root / "analysis" / "digits" / enc / "probe.json").read_text())
        assert math.isclose(table.at[enc, "class_gap"], probe["class_gap"], abs_tol=1e-5)
    assert table["gap_rank"].tolist() == pd.Series(-table["class_gap"]).rank().tolist()
    aug = pd.read_csv(compare / "augmentation.csv")
    assert set(aug["strategy"]) == {"cnn", "cnn_noise"}
    base = aug[aug["strategy"] == "cnn"]
    assert (base["delta_gap"] == 0).all()
    noise = aug[(aug["strategy"] == "cnn_noise")].iloc[0]
    assert math.isclose(noise["delta_gap"], table.at["cnn_noise", "class_gap"] - table.at["cnn", "class_gap"],
                        abs_tol=1e-5)
    sel = pd.read_csv(compare / "selection.csv")
    assert list(sel["candidate"]) == [*ENCODERS, "pca+cnn"]
    chosen = sel[sel["chosen"]]
    assert len(chosen) == 1 and chosen["predicted_gap"].iloc[0] == sel["predicted_gap"].min()
    assert sel["predicted_gap"].between(0, 1).all() and sel["measured_gap"].between(0, 1).all()
    allc = pd.read_csv(compare / "correlations.csv")
    assert sorted(set(allc["encoder"])) == sorted(ENCODERS)
    _assert_drawn(compare / "encoders.png")
    _assert_drawn(compare / "correlations.png")


def test_summary_reports_each_encoder_with_intervals(study):
    _, root, _ = study
    summary = json.loads((root / "summary.json").read_text())
    rec = summary["datasets"]["digits"]
    assert rec["n_classes"] == 10 and list(rec["encoders"]) == ENCODERS
    table = pd.read_csv(root / "compare" / "digits" / "encoders.csv").set_index("encoder")
    for enc, r in rec["encoders"].items():
        rho, lo, hi = r["spearman"]["predicted_error"]
        assert math.isclose(rho, table.at[enc, "rho_predicted_error"], abs_tol=1e-5)
        assert lo <= rho <= hi
    md = (root / "summary.md").read_text()
    assert "| cnn_noise |" in md and "Gaussian prediction" in md and "## Reading" in md
    assert any("bootstrap interval is wide" in n for n in summary["reading"])


def _edited(tmp_path: Path, edit) -> Path:
    return edited_config(TINY_SI, tmp_path, edit)


def _planned(workdir: Path, configfile: Path) -> Counter:
    return planned_jobs(workdir, "--cores", "2", configfile=configfile)


def test_edits_rerun_exactly_what_they_change(study, tmp_path):
    workdir, _, _ = study
    assert _planned(workdir, TINY_SI) == Counter()
    downstream = {"si_compare", "si_summary", "study_config", "all", "total"}
    # a new encoder: its features and its analysis only, then the comparison and the summary
    more = _edited(tmp_path, lambda c: c["spectral_imbalance"]["encoders"].update(raw={"kind": "raw"}))
    plan = _planned(workdir, more)
    assert plan["si_encode"] == 1 and plan["si_analyse"] == 1 and set(plan) == downstream | {"si_encode", "si_analyse"}
    # the probe's repeats: every analysis, no encoder, no data
    reps = _edited(tmp_path, lambda c: c["spectral_imbalance"]["analysis"].update(n_repeats=4))
    plan = _planned(workdir, reps)
    assert plan["si_analyse"] == 3 and set(plan) == downstream | {"si_analyse"}
    # one encoder's option: that encoder only
    epochs = _edited(tmp_path, lambda c: c["spectral_imbalance"]["encoders"]["cnn_noise"].update(epochs=2))
    plan = _planned(workdir, epochs)
    assert plan["si_encode"] == 1 and plan["si_analyse"] == 1 and "si_prepare" not in plan
    # the ensembles: the comparison only
    ens = _edited(tmp_path, lambda c: c["spectral_imbalance"].update(ensembles=[]))
    assert set(_planned(workdir, ens)) == downstream


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["spectral_imbalance"].update(datasets=["nope"]), "'nope' is not in labelled_datasets"),
        (lambda c: c["spectral_imbalance"]["encoders"]["pca"].update(n_components=0),
         "spectral_imbalance.encoders.pca.n_components"),
        (lambda c: c["spectral_imbalance"]["encoders"]["cnn"].update(augment=["blur"]), "unknown augmentation 'blur'"),
        (lambda c: c["spectral_imbalance"].update(encoders={"text": {"kind": "minilm"}}, ensembles=[]),
         "no encoder encodes the images of labelled dataset 'digits'"),
        (lambda c: c["spectral_imbalance"].update(ensembles=[["pca", "nope"]]), "'nope' is not in spectral_imbalance.encoders"),
        (lambda c: c["labelled_datasets"]["digits"].update(per_class=4), "spectral_imbalance.analysis.test_size"),
        (lambda c: c["labelled_datasets"]["digits"].update(classes=[3]), "labelled_datasets"),
    ],
)
def test_bad_config_is_one_line_before_any_job(edit, message):
    config = yaml.safe_load(TINY_SI.read_text())
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate_study_config(config)
    assert message in str(err.value) and "\n" not in str(err.value)


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_bad_data_is_one_line_naming_what_and_where(tmp_path):
    from datalign.data.labelled.prepare import prepare_labelled
    from datalign.studies.spectral_imbalance.workflow_steps import analyse_step

    rng = np.random.default_rng(0)
    # a label column with one class
    one = _npz(tmp_path / "one.npz", X=rng.integers(0, 255, (20, 4, 4)).astype(np.uint8), y=np.zeros(20, int))
    with pytest.raises(DataError) as err:
        prepare_labelled("single", {"source": "local", "path": str(one)}, tmp_path / "o1", seed=0)
    assert "single" in str(err.value) and "\n" not in str(err.value)
    # a class absent from a split: a class too small to reach the test split
    y = np.array([0] * 20 + [1] * 20 + [2])
    few = _npz(tmp_path / "few.npz", X=rng.integers(0, 255, (41, 4, 4)).astype(np.uint8), y=y)
    with pytest.raises(DataError) as err:
        prepare_labelled("few", {"source": "local", "path": str(few), "per_class": 20}, tmp_path / "o2", seed=0)
    assert "few" in str(err.value) and "\n" not in str(err.value)
    # NaN features from an encoder: the analysis names the file, the row and its id
    feats = rng.normal(size=(40, 3)).astype(np.float32)
    feats[7, 1] = np.nan
    bad = _npz(tmp_path / "test.npz", features=feats, y=np.repeat([0, 1], 20), ids=np.array([f"r{i}" for i in range(40)]),
               class_names=np.array(["a", "b"]), encoder=np.array("broken"), info=np.array("{}"))
    with pytest.raises(DataError) as err:
        analyse_step(str(bad), {}, 0, {}, "broken")
    text = str(err.value)
    assert "broken" in text and "row 7" in text and "r7" in text and "\n" not in text


def test_mixed_image_shapes_are_one_line():
    from datalign.data.labelled.hub import decode_images

    rows = [{"img": np.zeros((4, 4), np.uint8)}, {"img": np.zeros((5, 4), np.uint8)}]
    with pytest.raises(DataError) as err:
        decode_images(rows, "img", "dataset mixed train", None, None)
    text = str(err.value)
    assert "dataset mixed train" in text and "row 1" in text and "(5, 4)" in text and "\n" not in text


def test_paper_config_plans_offline_without_heavy_imports(tmp_path):
    config = load_config(PAPER_SI)
    sec = config["spectral_imbalance"]
    assert sec["datasets"] == ["cifar10"] and len(sec["encoders"]) == 13
    assert {s["kind"] for s in sec["encoders"].values()} == {"hf_image", "torch_checkpoint"}
    counts, modules, output = plan_offline(tmp_path, PAPER_SI)
    assert counts == Counter({"si_prepare": 1, "si_encode": 13, "si_analyse": 13, "si_compare": 1,
                              "si_summary": 1, "study_config": 1, "all": 1, "total": 31})
    assert not [m for m in modules if m.split(".")[0] in HEAVY]
    assert "network access during DAG building" not in output
    assert re.search(r"rule si_encode:.*?resources:[^\n]*gpu=1", output, re.S)
