"""Training objectives: a job names one, the registry finds it, the launcher dispatches to it."""

from __future__ import annotations

import json

import pytest
import torch

from datalign.core.errors import ConfigError
from datalign.lm import devices
from datalign.training import launch, objectives
from datalign.training.causal_lm import run_causal_lm
from datalign.training.launch import TrainJob, launch_train_job, run_train_job
from datalign.training.objectives import (
    objective_names,
    objective_runner,
    register_objective,
    run_objective,
)

BASE = {"run_name": "r", "tokens": "t.npz", "tokenizer": "k", "out_dir": "o", "seq_len": 8,
        "token_budget": 64, "batch_size": 2, "lr": 1e-3, "seed": 0, "base": "gpt2"}


@pytest.fixture
def registry(monkeypatch):
    """The registry as it is, restored after the test (objectives registered here vanish)."""
    monkeypatch.setattr(objectives, "_RUNNERS", dict(objectives._RUNNERS))
    return objectives._RUNNERS


def test_causal_lm_is_the_default_and_is_found_by_name():
    job = TrainJob(**BASE)
    assert job.objective == "causal_lm" and job.options == {}
    assert objective_runner("causal_lm") is run_causal_lm
    assert "causal_lm" in objective_names()


def test_job_json_carries_objective_and_options():
    job = TrainJob(**BASE, objective="kto", options={"beta": 0.1})
    back = TrainJob.from_json(json.loads(json.dumps(job.to_json())))
    assert back == job and back.objective == "kto" and back.options == {"beta": 0.1}
    # A job written before objectives existed still reads back, as causal LM.
    old = {k: v for k, v in TrainJob(**BASE).to_json().items() if k not in ("objective", "options")}
    assert TrainJob.from_json(old).objective == "causal_lm"
    with pytest.raises(ConfigError, match="objective must be a name"):
        TrainJob(**BASE, objective="")
    with pytest.raises(ConfigError, match="options must be a mapping"):
        TrainJob(**BASE, options=[("beta", 0.1)])


def test_a_registered_objective_receives_the_plain_spec_and_out_dir(registry, tmp_path):
    calls = []

    @register_objective("toy-objective")
    def toy(spec, out_dir):
        calls.append((spec, out_dir))
        return {"loss": 1.0, **spec["record"]}

    job = TrainJob(**{**BASE, "out_dir": str(tmp_path)}, objective="toy-objective",
                   options={"beta": 0.5}, record={"note": "x"})
    assert run_train_job(job) == {"loss": 1.0, "note": "x"}
    (spec, out_dir), = calls
    assert out_dir == str(tmp_path)
    assert spec == json.loads(json.dumps(spec)) == job.to_json()  # plain JSON values
    assert spec["options"] == {"beta": 0.5}
    assert "toy-objective" in objective_names()


def test_run_objective_dispatches_a_plain_spec(registry, tmp_path):
    seen = []
    register_objective("plain", lambda spec, out_dir: seen.append((spec, out_dir)) or {"ok": 1})
    spec = {"objective": "plain", "rows": "r.jsonl", "options": {"beta": 0.1}}
    assert run_objective(spec, tmp_path) == {"ok": 1}
    assert seen == [(spec, str(tmp_path))]
    with pytest.raises(ConfigError, match="names no objective"):
        run_objective({"rows": "r.jsonl"}, tmp_path)


def test_registering_twice(registry):
    def one(spec, out_dir):
        return {}

    def other(spec, out_dir):
        return {}

    assert register_objective("twice", one) is one
    assert register_objective("twice", one) is one  # a module imported again: no-op
    with pytest.raises(ConfigError, match="'twice' is already registered by .*one"):
        register_objective("twice", other)
    assert objective_runner("twice") is one


def test_unknown_objective_is_a_config_error_naming_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown training objective 'nope'; known: .*causal_lm"):
        objective_runner("nope")
    job = TrainJob(**{**BASE, "out_dir": str(tmp_path / "out")}, objective="nope")
    with pytest.raises(ConfigError, match="unknown training objective 'nope'"):
        run_train_job(job)
    # Before any process is launched, so it is fast and leaves nothing behind.
    with pytest.raises(ConfigError, match="unknown training objective 'nope'"):
        launch_train_job(job, num_processes=2, on_cpu=True)
    assert not (tmp_path / "out").exists()


def test_causal_lm_takes_no_options(tmp_path):
    job = TrainJob(**{**BASE, "out_dir": str(tmp_path)}, options={"beta": 0.1})
    with pytest.raises(ConfigError, match=r"causal_lm objective takes no options, got \['beta'\]"):
        run_train_job(job)


def test_devices_have_their_own_module():
    expected = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    assert devices.inference_device() == expected
    assert devices.cuda_devices() == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    # Their one home: the launcher does not define them again.
    assert "inference_device" not in launch.__all__ and "cuda_devices" not in launch.__all__

