"""An edit reruns exactly what it changes: no stale results, no wasted compute (`snakemake -n`)."""

from __future__ import annotations

import json

import pytest
import yaml

from .workflow_helpers import TINY, edited_config, planned_jobs, run_snakemake

pytestmark = pytest.mark.integration


def test_evaluation_sets_change_no_model(study, tmp_path):
    workdir, _ = study

    def more(config):
        config["experiments"]["pretrain"]["eval_sets"] = ["py_code", "bbc_news", "py_docstrings"]

    jobs = planned_jobs(workdir, configfile=edited_config(TINY, tmp_path, more))
    # one evaluation set more: the two pre-trained models evaluated on it, and what reads
    # the losses; no model is trained again (py_docstrings/test is embedded already)
    assert "train" not in jobs and "probe" not in jobs and "task2vec" not in jobs, jobs
    assert jobs.get("evaluate") == 2, jobs


def test_a_new_training_set_trains_only_the_new_model(study, tmp_path):
    workdir, _ = study

    def swap(config):
        # one evaluation set dropped, one training set added (3 x 1 points)
        config["experiments"]["pretrain"]["eval_sets"] = ["py_code"]
        config["experiments"]["pretrain"]["train_sets"] = ["py_code", "bbc_news", "py_docstrings"]

    jobs = planned_jobs(workdir, configfile=edited_config(TINY, tmp_path, swap))
    assert jobs.get("train") == 1, jobs  # only the new model is trained
    assert jobs.get("evaluate") == 1, jobs  # and evaluated; the others keep their losses


def test_a_changed_training_key_retrains_its_setting_only(study, tmp_path):
    workdir, _ = study

    def lr(config):
        config["experiments"]["finetune"]["lr"] = 2.0e-3

    jobs = planned_jobs(workdir, configfile=edited_config(TINY, tmp_path, lr))
    assert jobs.get("train") == 3, jobs  # the three fine-tuned models, not the pre-trained ones
    assert "task2vec" not in jobs and "alignment" not in jobs, jobs


def test_an_edited_local_file_reruns_its_dataset(tmp_path):
    data = tmp_path / "qa.jsonl"
    rows = [{"question": f"What is {i}+{i}?", "answer": str(2 * i)} for i in range(60)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = yaml.safe_load(TINY.read_text())
    config["datasets"]["qa"] = {"source": "local", "path": str(data),
                                "template": "Q: {question}\nA: {answer}", "split": {"validation": 0.1, "test": 0.3}}
    config["experiments"]["finetune"]["train_sets"].append("qa")
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    workdir = tmp_path / "work"
    workdir.mkdir()
    manifest = "results/data/qa/manifest.json"
    study = "results/study.yaml"
    run_snakemake(workdir, "--cores", "1", manifest, study, configfile=path)
    assert "Nothing to be done" in run_snakemake(workdir, "-n", manifest, configfile=path).stdout
    recorded = yaml.safe_load((workdir / study).read_text())["plan"]["source_files"]["qa"]
    assert list(recorded) == [str(data)]
    # every answer corrected: the dataset is prepared again
    data.write_text("".join(json.dumps({**r, "answer": r["answer"] + "!"}) + "\n" for r in rows))
    assert planned_jobs(workdir, manifest, configfile=path) == {"prepare_data": 1, "total": 1}
    run_snakemake(workdir, "--cores", "1", manifest, study, configfile=path)
    text = (workdir / "results" / "data" / "qa" / "train.jsonl").read_text()
    # DVC sees it too: the data stage's parameter plan.source_files holds the file's new hash
    now = yaml.safe_load((workdir / study).read_text())["plan"]["source_files"]["qa"]
    assert now[str(data)] != recorded[str(data)]
    assert "!" in text and "A: 2\\n" not in text


def test_study_sets_for_the_same_sets_reruns_nothing_and_a_new_domain_retrains_the_lm(study, tmp_path):
    """`study_sets` is expanded before any rule sees it: naming the same sets changes no
    artifact; a new domain among the study's sets retrains the tokenizer and the probe."""
    workdir, _ = study

    def switch(config):
        config["tokenizer"]["train_on"] = "study_sets"
        config["probe"]["pretrain"]["datasets"] = "study_sets"

    assert planned_jobs(workdir, configfile=edited_config(TINY, tmp_path, switch)) == {}

    def new_domain(config):
        switch(config)
        config["experiments"]["pretrain"]["eval_sets"] = ["py_code", "bbc_news"]
        config["datasets"]["pydoc_topics"] = {"source": "package", "package": "pydoc_data",
                                              "module": "pydoc_data.topics", "attribute": "topics",
                                              "split": {"validation": 0.05, "test": 0.3}}
        config["experiments"]["pretrain"]["train_sets"] = ["py_code", "bbc_news", "pydoc_topics"]

    jobs = planned_jobs(workdir, configfile=edited_config(TINY, tmp_path, new_domain))
    assert jobs.get("train_tokenizer") == 1 and jobs.get("probe") == 1, jobs
