"""The command line on a user's own files, run as a user runs it (a subprocess of
``python -m datalign.cli``): embed, align, diversity, rank, predict, their files, their
exit codes, and one check that the CLI, the library and the workflow's alignment script
give the same coefficients on the same embeddings."""

from __future__ import annotations

import inspect
import json
import os
import pydoc_data.topics
import runpy
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datalign.cli import main
from datalign.task2vec import api, load_result
from datalign.task2vec.coefficients import alignment_matrix

from .conftest import REPO

# Small Task2Vec settings and a tiny default probe: every run takes seconds.
T2V = ["--batch-size", "4", "--seq-len", "32", "--num-batches", "3", "--head-epochs", "1", "--quiet"]
PROBE = ["--probe-tokens", "3000"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "datalign.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _jsonl(path: Path, texts: list[str], field: str = "text") -> None:
    path.write_text("".join(json.dumps({field: t, "id": i}) + "\n" for i, t in enumerate(texts)))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Standard-library code and English documentation prose, as .jsonl, .txt and .parquet."""
    d = tmp_path_factory.mktemp("files")
    topics = list(pydoc_data.topics.topics.values())
    _jsonl(d / "target.jsonl", [inspect.getsource(m) for m in (json, textwrap)])
    _jsonl(d / "code.jsonl", [inspect.getsource(m) for m in (inspect,)])
    _jsonl(d / "prose.jsonl", topics[:25])
    (d / "docs.txt").write_text("\n\n".join(topics[25:45]))
    pd.DataFrame({"body": topics[45:70]}).to_parquet(d / "more.parquet")
    return d


@pytest.fixture(scope="module")
def embedded(files) -> Path:
    """``datalign embed`` of every file with one trained probe, saved for the other commands."""
    out = run("embed", "target.jsonl", "code.jsonl", "prose.jsonl", "docs.txt", "-o", "embs",
              "--save-probe", "probe", *T2V, *PROBE, cwd=files)
    assert out.returncode == 0, out.stderr
    assert "training a tiny probe on 4 file(s)" in out.stderr
    assert out.stdout.count("3 embeddings x") == 4
    return files


def test_embed_writes_embeddings_and_sidecars(embedded):
    res = load_result(embedded / "embs" / "code.npz")
    assert res.embeddings.shape[0] == 3
    meta = res.metadata
    assert meta["source_file"] == "code.jsonl" and meta["set"] == "code.jsonl"
    assert meta["config"]["batch_size"] == 4 and meta["probe"]["source"] == "trained"
    assert meta["probe"]["fingerprint"] == api.load_probe(embedded / "probe").fingerprint
    # one file, one .npz; with the saved probe the same embeddings come back
    out = run("embed", "code.jsonl", "-o", "again.npz", "--probe", "probe", *T2V, cwd=embedded)
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(load_result(embedded / "again.npz").embeddings, res.embeddings)


def test_rank_table_csv_json(embedded):
    out = run("rank", "--target", "target.jsonl", "code.jsonl", "prose.jsonl", "docs.txt", "--probe", "probe",
              "--bootstrap", "200", "--csv", "rank.csv", "--json", "rank.json", *T2V, cwd=embedded)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("3 candidate(s) ranked by task2vec alignment with target.jsonl (95% bootstrap CI")
    assert lines[1].split() == ["#", "candidate", "alignment", "95%", "CI"]
    assert [ln.split()[1] for ln in lines[2:]] == list(pd.read_csv(embedded / "rank.csv")["candidate"])
    table = pd.read_csv(embedded / "rank.csv")
    assert list(table.columns[:6]) == ["rank", "candidate", "file", "alignment", "ci_low", "ci_high"]
    assert table["alignment"].is_monotonic_decreasing and (table["ci_low"] <= table["alignment"]).all()
    assert table.loc[0, "candidate"] == "code"  # code is closest to code
    doc = json.loads((embedded / "rank.json").read_text())
    assert doc["measure"] == "task2vec" and [r["candidate"] for r in doc["rows"]] == list(table["candidate"])
    # the same ranking from the embedding files
    out2 = run("rank", "--target", "embs/target.npz", "embs/code.npz", "embs/prose.npz", "embs/docs.npz",
               "--bootstrap", "200", "--csv", "rank2.csv", cwd=embedded)
    assert out2.returncode == 0, out2.stderr
    pd.testing.assert_frame_equal(pd.read_csv(embedded / "rank2.csv").drop(columns="file"),
                                  table.drop(columns="file"))


def test_cli_library_and_workflow_script_agree(embedded, tmp_path, monkeypatch):
    """Same embeddings and settings: ``datalign align``, the library and workflow/scripts/alignment/alignment.py."""
    out = run("align", "embs/code.npz", "embs/target.npz", "--bootstrap", "100", "--seed", "3", cwd=embedded)
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)["align"]
    code, target = (load_result(embedded / "embs" / f"{n}.npz") for n in ("code", "target"))
    lib = api.alignment(code, target, bootstrap=100, seed=3)
    assert cli == lib.as_dict()
    # text files with the saved probe and the embeddings' seed (0): the same value
    out = run("align", "code.jsonl", "target.jsonl", "--probe", "probe", "--bootstrap", "0", *T2V, cwd=embedded)
    assert json.loads(out.stdout)["align"]["value"] == lib.value
    # the workflow's script (run as Snakemake runs it) on the same embeddings
    labels = ["code", "target"]
    outputs = {k: str(tmp_path / f"{k}.{ext}") for k, ext in (
        ("diversity", "csv"), ("pairs", "csv"), ("square", "csv"), ("heatmap", "png"), ("diversity_plot", "png"))}
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(embeddings=[str(embedded / "embs" / f"{n}.npz") for n in labels]),
        output=types.SimpleNamespace(**outputs), log=[], wildcards={}, rule="alignment", threads=1,
        params=types.SimpleNamespace(labels=labels, alignment={"bootstrap": 100, "confidence": 0.95},
                                     distance="normalized_cosine", seed=3))
    # run_step sets OMP_NUM_THREADS for the job's process: here the test session's, for every
    # later subprocess (it made the SLURM tests' cluster count 1 CPU); monkeypatch undoes it
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    runpy.run_path(str(REPO / "workflow/scripts/alignment/alignment.py"), init_globals={"snakemake": smk})
    pairs = pd.read_csv(outputs["pairs"])
    value = pairs.set_index(["row", "col"]).loc[("code", "target"), "alignment"]
    assert value == pytest.approx(lib.value, rel=1e-5)  # the CSV keeps 6 significant digits
    library_pairs = alignment_matrix({"code": code.embeddings, "target": target.embeddings}, labels, labels,
                                     bootstrap=100, seed=3)
    assert library_pairs.set_index(["row", "col"]).loc[("code", "target"), "alignment"] == lib.value
    # the square file is the pivot of the long table, as before to_square existed
    expected = library_pairs.pivot(index="row", columns="col", values="alignment").loc[labels, labels]
    assert Path(outputs["square"]).read_text() == expected.to_csv(float_format="%.6g")


def test_diversity_of_parquet_and_help(embedded):
    out = run("diversity", "more.parquet", "--text-field", "body", "--probe", "probe", "--bootstrap", "50",
              *T2V, cwd=embedded)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)["diversity"]
    assert 0 < d["value"] < 1 and d["n_pairs"] == 3 and d["n_boot"] > 0
    help_out = run("rank", "--help", cwd=embedded)
    assert help_out.returncode == 0 and "datalign rank --target target.jsonl" in help_out.stdout
    assert "exit codes:" in help_out.stdout and "2  usage error or bad input" in help_out.stdout


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("datalign:")]
    assert lines, err
    return lines[-1]


def test_bad_inputs_are_one_line_and_exit_2(embedded, capsys, monkeypatch):
    d = embedded
    monkeypatch.chdir(d)
    (d / "empty.jsonl").write_text("")
    _jsonl(d / "body.jsonl", ["some text"] * 3, field="body")
    _jsonl(d / "small.jsonl", [list(pydoc_data.topics.topics.values())[0][:300]])
    # as a user runs them
    out = run("diversity", "missing.jsonl", *T2V, cwd=d)
    assert out.returncode == 2 and _one_line(out.stderr) == "datalign: missing.jsonl: no such file"
    out = run("rank", "--target", "target.jsonl", "code.jsonl", "--probe", "gpt2", *T2V, cwd=d)
    assert out.returncode == 2
    assert "probe 'gpt2'" in out.stderr and "unreachable (offline)" in out.stderr and "local directory" in out.stderr
    out = run("align", "code.jsonl", cwd=d)  # usage
    assert out.returncode == 2 and "required: b" in out.stderr
    # the other cases in-process (the same main(), faster)
    cases = {
        ("diversity", "empty.jsonl"): "datalign: empty.jsonl: empty file",
        ("diversity", "body.jsonl"): "datalign: body.jsonl, line 1: no field 'text' (fields: body, id)",
        ("diversity", "small.jsonl", "--probe", "probe"): "datalign: small.jsonl: too small for Task2Vec: 3 batches x 4",
        ("diversity", "small.jsonl", *PROBE): "datalign: small.jsonl: too small for Task2Vec",
        ("align", "code.jsonl", "embs/target.npz"): "datalign: mixing embedding files and text files needs --probe",
        ("rank", "--target", "target.jsonl", "code.jsonl", "--measure", "nope"): "datalign: --measure nope: unknown",
        ("predict", "--study", "nowhere", "--from-rank", "rank.csv"): "datalign: --study nowhere: no such directory",
    }
    for args, start in cases.items():
        assert main([*args, *T2V]) == 2, args
        err = capsys.readouterr().err
        line = _one_line(err)
        assert line.startswith(start), (args, line)


def test_predict_from_a_study(embedded, tmp_path):
    study = tmp_path / "results"
    setting = study / "alignment" / "correlation" / "finetune"
    setting.mkdir(parents=True)
    x = np.array([0.52, 0.55, 0.58, 0.60, 0.62])
    y = 9.0 - 6.0 * x + np.array([0.01, -0.02, 0.015, -0.01, 0.005])
    pd.DataFrame({"train_set": list("abcde"), "eval_set": "t", "alignment": x, "cross_entropy": y}).to_csv(
        setting / "points.csv", index=False)
    (setting / "stats.json").write_text(json.dumps({"pearson": {"r": -0.99}}))
    rank = tmp_path / "rank.csv"
    pd.DataFrame({"candidate": ["in", "out"], "alignment": [0.57, 0.70]}).to_csv(rank, index=False)
    out = run("predict", "--study", str(study), "--from-rank", str(rank), "--json", str(tmp_path / "p.json"),
              cwd=embedded)
    assert out.returncode == 0, out.stderr
    assert "fit on 5 points of setting 'finetune'" in out.stderr
    rows = json.loads((tmp_path / "p.json").read_text())["rows"]
    by = {r["candidate"]: r for r in rows}
    from scipy import stats

    fit = stats.linregress(x, y)
    s = np.sqrt(((y - fit.intercept - fit.slope * x) ** 2).sum() / 3)
    half = stats.t.ppf(0.975, 3) * s * np.sqrt(1 + 1 / 5 + (0.57 - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum())
    assert by["in"]["predicted_loss"] == pytest.approx(fit.intercept + fit.slope * 0.57)
    assert by["in"]["loss_high"] - by["in"]["predicted_loss"] == pytest.approx(half)
    assert not by["in"]["outside_range"] and by["out"]["outside_range"]
    assert "outside fitted range" in out.stdout.splitlines()[2]  # sorted by predicted loss: "out" first
