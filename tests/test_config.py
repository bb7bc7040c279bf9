"""Config validation: defaults filled, bad keys and values named in one line."""

from __future__ import annotations

import copy

import pytest
import yaml

from datalign.core.errors import ConfigError
from datalign.studies import load_config, validate_study_config

from .conftest import REPO

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _with(path: tuple, value):
    cfg = copy.deepcopy(DEFAULT)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return cfg


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_validate(name):
    path = REPO / "config" / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    cfg = load_config(path)
    assert cfg["task2vec"]["distance"] in {"normalized_cosine", "cosine"}


def test_tiny_test_config_validates():
    cfg = load_config(REPO / "tests" / "configs" / "tiny.yaml")
    # defaults come from the schema
    assert cfg["experiments"]["finetune"]["base"] == "probe"
    assert cfg["experiments"]["pretrain"]["weight_decay"] == 0.01
    assert cfg["task2vec"]["head_lr"] == 5e-5
    assert cfg["alignment"]["confidence"] == 0.95


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("task2vec", "batch_size"), 0, "task2vec.batch_size"),
        (("task2vec", "estimator"), "slow", "task2vec.estimator"),
        (("tokenizer", "vocab_sise"), 300, "tokenizer.vocab_sise"),
        (("experiments", "finetune", "token_budgett"), 10, "experiments.finetune.token_budgett"),
        (("experiments", "finetune", "lr"), -1.0, "experiments.finetune.lr"),
        (("datasets", "bbc_news", "source"), "web", "datasets.bbc_news.source"),
        (("bogus",), 1, "'bogus'"),
    ],
)
def test_bad_key_or_value_is_named(path, value, expected):
    with pytest.raises(ConfigError) as err:
        validate_study_config(_with(path, value))
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_unregistered_dataset_is_named():
    cfg = _with(("experiments", "finetune", "train_sets"), ["py_code", "not_a_dataset"])
    with pytest.raises(ConfigError, match=r"experiments\.finetune\.train_sets\[1\].*not_a_dataset.*not registered"):
        validate_study_config(cfg)


def test_mixture_shares_must_sum_to_one():
    cfg = _with(("datasets", "news_docstrings_25", "components"), {"py_docstrings": 0.5, "bbc_news": 0.25})
    with pytest.raises(ConfigError, match=r"datasets\.news_docstrings_25\.components: shares sum to 0.75"):
        validate_study_config(cfg)


def test_mixture_component_must_be_registered():
    cfg = _with(("datasets", "news_docstrings_25", "components"), {"nope": 1.0})
    with pytest.raises(ConfigError, match="nope"):
        validate_study_config(cfg)


def test_too_few_points_for_the_correlation_fail_at_start():
    """Known from the config: 2 (alignment, loss) points cannot give a correlation, so no
    model is trained before the error (it used to come from `correlate`, after all of them)."""
    cfg = copy.deepcopy(DEFAULT)
    cfg["experiments"]["pretrain"]["train_sets"] = ["py_code", "bbc_news"]
    cfg["experiments"]["pretrain"]["eval_sets"] = ["py_code"]
    with pytest.raises(ConfigError, match=r"experiments.pretrain.*give 2 \(alignment, loss\) points; the correlation needs at least 3"):
        validate_study_config(cfg)


def test_study_sets_names_the_sets_the_study_compares():
    """`study_sets` = every text set trained or evaluated on, mixtures by their components."""
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["datasets"]["proofs"] = {"source": "local", "path": "proofs.jsonl"}
    config["experiments"]["finetune"]["eval_sets"] = ["py_docstrings", "proofs"]
    config["tokenizer"]["train_on"] = "study_sets"
    config["probe"]["pretrain"]["datasets"] = "study_sets"
    validate_study_config(config)
    expect = ["py_docstrings", "py_code", "bbc_news", "proofs"]  # registry order; no mixture
    assert config["tokenizer"]["train_on"] == expect
    assert config["probe"]["pretrain"]["datasets"] == expect


def test_study_sets_with_nothing_to_name_is_an_error():
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["studies"] = ["spectral_imbalance"]
    config["spectral_imbalance"] = {"datasets": ["d"], "encoders": {"raw": {"kind": "raw"}}}
    config["labelled_datasets"] = {"d": {"source": "sklearn_digits"}}
    config["tokenizer"]["train_on"] = "study_sets"
    with pytest.raises(ConfigError, match="tokenizer.train_on': study_sets names no dataset"):
        validate_study_config(config)


def test_length_keys_on_a_mixture_are_refused_not_ignored():
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["datasets"]["news_docstrings_50"]["min_chars"] = 100
    with pytest.raises(ConfigError, match="news_docstrings_50.min_chars: unknown key for source mixture"):
        validate_study_config(config)


def test_interventions_name_a_mixed_in_dataset_and_an_evaluation_set():
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["interventions"] = {"py_code": ["py_docstrings"]}
    with pytest.raises(ConfigError, match="interventions.py_code': 'py_code' is not a component of any mixture"):
        validate_study_config(copy.deepcopy(config))
    config["interventions"] = {"py_docstrings": ["pydoc"]}
    with pytest.raises(ConfigError, match="'pydoc' is not an evaluation set"):
        validate_study_config(config)
