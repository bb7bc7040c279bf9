"""The study plan derived from a config."""

from __future__ import annotations

from datalign.studies import load_config
from datalign.studies.alignment import plan as study

from .conftest import REPO


def test_default_study_plan_matches_the_issue():
    cfg = load_config(REPO / "config" / "config.yaml")
    ft = study.train_sets(cfg, "finetune")
    assert len(ft) >= 7
    mixtures = [d for d in ft if cfg["datasets"][d]["source"] == "mixture"]
    assert len(mixtures) >= 3
    assert len(study.train_sets(cfg, "pretrain")) >= 4
    assert len(study.eval_sets(cfg, "pretrain")) >= 4
    sets = {es.label for es in study.embedding_sets(cfg)}
    assert "py_docstrings/test" in sets and "bbc_news/train" in sets
    assert len(study.evaluation_pairs(cfg, "pretrain")) == 16


def test_datasets_used_include_mixture_components():
    cfg = load_config(REPO / "tests" / "configs" / "tiny.yaml")
    cfg["experiments"]["finetune"]["train_sets"] = ["news_docstrings_50"]
    cfg["tokenizer"]["train_on"] = ["py_code"]
    cfg["probe"]["pretrain"]["datasets"] = ["py_code"]
    cfg["experiments"]["pretrain"]["train_sets"] = ["py_code"]
    cfg["experiments"]["pretrain"]["eval_sets"] = ["py_code"]
    cfg["experiments"]["finetune"]["eval_sets"] = ["py_code"]
    assert study.datasets_used(cfg) == ["bbc_news", "news_docstrings_50", "py_code", "py_docstrings"]


def test_derived_seeds_are_stable_and_distinct():
    cfg = {"seed": 3}
    assert study.derived_seed(cfg, "task2vec", "a", "train") == study.derived_seed(cfg, "task2vec", "a", "train")
    assert study.derived_seed(cfg, "task2vec", "a", "train") != study.derived_seed(cfg, "task2vec", "b", "train")
    assert study.derived_seed({"seed": 4}, "probe") != study.derived_seed(cfg, "probe")
