"""Training launched through ``accelerate`` on 2 CPU processes (gloo) matches 1 process.

Both runs see the same chunks in the same order with the same global batch of
8 sequences; the 2-process run gives each process 4 of them and averages the
two gradients. The per-step losses and the final weights must agree up to
float32 rounding (tolerances below), which the test shows to be far smaller
than what training itself changes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from datalign.core.errors import ConfigError, TrainingError
from datalign.lm.models import build_gpt2
from datalign.lm.tokenizer import load_tokenizer, train_bpe
from datalign.lm.tokens import TokenizedSplit
from datalign.training.launch import (
    TrainJob,
    launch_command,
    launch_env,
    launch_train_job,
    run_train_job,
)

SEQ = 16
BATCH = 8  # global batch: 4 per process with 2 processes
STEPS = 12
ARCH = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": SEQ}
SEED = 11
# Tolerances. The two runs differ only in the order float32 sums are taken
# (a loss/gradient over 8 rows, vs two means over 4 rows averaged by an
# all-reduce), about 1e-7 relative per operation. Over 12 AdamW steps at
# lr 1e-2 this was measured at ~1e-6 on the losses and ~2e-5 on the weights;
# the bounds leave a margin of ~10x and are still >= 100x below what training
# changes in the weights (asserted too), so a run that trained differently fails.
# One exception: GPT-2's attention key bias has an exactly zero gradient (adding
# q.b_k to every score of a query leaves its softmax unchanged), so its float
# gradient is pure rounding noise, which AdamW turns into steps of ~lr * |g| / eps,
# a different random walk in each run. Those weights are compared by that bound only.
LOSS_ATOL = 1e-4
WEIGHT_ATOL = 2e-4


@pytest.fixture(scope="module")
def job_inputs(tmp_path_factory):
    """A tiny tokenizer and a tokenized split of a learnable stream (t+1 = t + step mod V)."""
    root = tmp_path_factory.mktemp("mp")
    words = ["alpha", "beta", "gamma", "delta", "theta", "kappa", "sigma", "omega"]
    texts = [" ".join(words[(i + k) % 8] for k in range(30)) for i in range(40)]
    train_bpe(texts, vocab_size=300, out_dir=root / "tok")
    vocab = len(load_tokenizer(str(root / "tok")))
    rng = np.random.default_rng(0)
    docs = []
    for _ in range(STEPS * BATCH):
        start, step = int(rng.integers(0, 40)), int(rng.choice([1, 3]))
        docs.append([(start + step * t) % 40 for t in range(SEQ - 1)])
    split = TokenizedSplit.from_documents(docs, eos_id=0, name="toy")
    split.save(root / "train.npz")
    assert vocab > 40
    return root


def _job(root, out: str, threads: int = 1) -> TrainJob:
    return TrainJob(
        run_name=f"toy-{out}", tokens=str(root / "train.npz"), tokenizer=str(root / "tok"),
        out_dir=str(root / out), seq_len=SEQ, token_budget=STEPS * BATCH * SEQ,
        batch_size=BATCH, lr=1e-2, seed=SEED, architecture=ARCH, warmup_frac=0.1,
        threads=threads, record={"provenance": {"note": out}},
    )


def test_two_processes_match_one(job_inputs):
    root = job_inputs
    one = run_train_job(_job(root, "one"))
    two = launch_train_job(_job(root, "two", threads=2), num_processes=2, on_cpu=True)

    assert one["num_processes"] == 1 and two["num_processes"] == 2
    assert two["device"].startswith("cpu")
    assert two["provenance"] == {"note": "two"}  # the job's record reaches the saved log
    assert one["total_steps"] == two["total_steps"] == STEPS
    assert [s["tokens_seen"] for s in one["steps"]] == [s["tokens_seen"] for s in two["steps"]]
    assert [s["lr"] for s in one["steps"]] == [s["lr"] for s in two["steps"]]
    loss1 = np.array([s["loss"] for s in one["steps"]])
    loss2 = np.array([s["loss"] for s in two["steps"]])
    assert loss1[-3:].mean() < 0.8 * loss1[:3].mean(), "the toy run did not train"
    loss_gap = float(np.abs(loss1 - loss2).max())
    assert loss_gap < LOSS_ATOL, f"per-step losses differ by {loss_gap:.2e}"

    w1 = load_file(str(root / "one" / "model.safetensors"))
    w2 = load_file(str(root / "two" / "model.safetensors"))
    assert w1.keys() == w2.keys()
    init = {k: v.detach().numpy() for k, v in build_gpt2(ARCH, len(load_tokenizer(str(root / "tok"))), 0,
                                                         seed=SEED).state_dict().items()}
    gaps, moved = {}, 0.0
    for k in w1:
        diff, change = np.abs(w1[k] - w2[k]), np.abs(w1[k] - init[k])
        if k.endswith("attn.c_attn.bias"):  # [query | key | value] biases
            n = ARCH["n_embd"]
            key_gap = float(diff[n : 2 * n].max())
            assert key_gap < STEPS * 1e-2 * 0.05, f"{k} key bias differs by {key_gap:.2e}"
            diff, change = np.delete(diff, np.s_[n : 2 * n]), np.delete(change, np.s_[n : 2 * n])
        gaps[k] = float(diff.max())
        moved = max(moved, float(change.max()))
    weight_gap = max(gaps.values())
    assert weight_gap < WEIGHT_ATOL, f"final weights differ by {weight_gap:.2e}"
    assert moved > 100 * weight_gap, f"training moved weights by {moved:.2e} only"
    saved = json.loads((root / "two" / "train_log.json").read_text())
    assert saved["steps"] == two["steps"]
    print(f"loss gap {loss_gap:.2e}, weight gap {weight_gap:.2e}, weights moved {moved:.2e}")


def test_failed_launch_is_one_line_error(job_inputs, tmp_path):
    root = job_inputs
    bad = TrainJob(**{**_job(root, "bad").to_json(), "tokens": str(tmp_path / "missing.npz"),
                      "out_dir": str(tmp_path / "bad")})
    with pytest.raises(TrainingError, match=r"training 'toy-bad' on 2 processes failed .*tokenized split not found"):
        launch_train_job(bad, num_processes=2, on_cpu=True)
    assert not (tmp_path / "bad").exists()


def test_launch_command_and_env():
    cmd = launch_command("/x/job.json", 4, "bf16")
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "4"
    assert cmd[cmd.index("--mixed_precision") + 1] == "bf16"
    assert cmd[-3:] == ["--module", "datalign.training.launch", "/x/job.json"]
    env = launch_env(4, threads=8, on_cpu=True)
    assert env["ACCELERATE_USE_CPU"] == "1" and env["OMP_NUM_THREADS"] == "2"
    assert "ACCELERATE_USE_CPU" not in launch_env(2, threads=1, on_cpu=False)
    with pytest.raises(ConfigError, match="num_processes >= 2"):
        launch_command("/x/job.json", 1)


def test_job_validation():
    base = {"run_name": "r", "tokens": "t", "tokenizer": "k", "out_dir": "o", "seq_len": 8,
            "token_budget": 64, "batch_size": 2, "lr": 1e-3, "seed": 0}
    with pytest.raises(ConfigError, match="base model or an architecture"):
        TrainJob(**base)
    with pytest.raises(ConfigError, match="base model or an architecture"):
        TrainJob(**base, base="gpt2", architecture=ARCH)
    with pytest.raises(ConfigError, match="unknown key"):
        TrainJob.from_json({**base, "base": "gpt2", "epochs": 3})
    job = TrainJob(**base, base="gpt2")
    assert TrainJob.from_json(json.loads(json.dumps(job.to_json()))) == job
    if torch.cuda.device_count() < 2:
        with pytest.raises(ConfigError, match="only .* GPU"):
            launch_train_job(job, num_processes=2, on_cpu=False)
