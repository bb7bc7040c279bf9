"""Training: the loss falls on a learnable stream, runs are seeded, NaNs stop the run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.lm.evaluate import evaluate_causal_lm
from datalign.lm.models import build_gpt2
from datalign.training.causal_lm import TrainLog, causal_lm_loss, lr_at, train_causal_lm

torch.set_num_threads(1)

V = 16
SEQ = 16
ARCH = {"n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": SEQ}


def toy_chunks(n: int, seed: int = 0) -> np.ndarray:
    """Chunks of a learnable stream: token t+1 = (token t + step) mod V, step 1 or 3 per chunk.

    After two tokens everything is determined, so a model can push the loss
    far below log(V) = 2.77 nats.
    """
    rng = np.random.default_rng(seed)
    start = rng.integers(0, V, size=n)
    step = rng.choice([1, 3], size=n)
    return ((start[:, None] + step[:, None] * np.arange(SEQ)[None, :]) % V).astype(np.int64)


def test_training_lowers_the_loss():
    chunks = toy_chunks(640)
    held_out = toy_chunks(32, seed=1)
    model = build_gpt2(ARCH, V, 0, seed=0)
    before = evaluate_causal_lm(model, held_out)["cross_entropy"]
    log = train_causal_lm(model, chunks, batch_size=8, lr=1e-2, seed=0, run_name="toy",
                          progress=False)
    after = evaluate_causal_lm(model, held_out)["cross_entropy"]
    assert before > 0.9 * math.log(V)  # an untrained model is near uniform
    # Only the first prediction of a chunk is uncertain (step 1 or 3): the floor is
    # log(2) / (SEQ - 1) = 0.05 nats; a model that learned the rule gets close to it.
    assert after < 0.25 * before
    first = np.mean([r.loss for r in log.records[:5]])
    assert log.tail_loss < 0.25 * first
    assert not model.training  # handed back in eval mode


def test_log_records_every_step():
    n, batch = 203, 8  # 25 full steps and a last step of 3 chunks
    model = build_gpt2(ARCH, V, 0, seed=0)
    log = train_causal_lm(model, toy_chunks(n), batch_size=batch, lr=1e-3, seed=0,
                          warmup_frac=0.1, run_name="toy", progress=False)
    steps = math.ceil(n / batch)
    assert log.total_steps == len(log.records) == steps
    assert [r.step for r in log.records] == list(range(1, steps + 1))
    for r in log.records[:-1]:
        assert r.tokens_seen == r.step * batch * SEQ
    assert log.records[-1].tokens_seen == n * SEQ == log.tokens
    assert log.warmup_steps == round(0.1 * steps)
    assert [r.lr for r in log.records] == [lr_at(k, steps, 1e-3, log.warmup_steps)
                                           for k in range(steps)]
    seconds = [r.seconds for r in log.records]
    assert seconds == sorted(seconds) and log.wall_seconds >= seconds[-1]
    assert all(math.isfinite(r.loss) for r in log.records)

    as_json = json.loads(json.dumps(log.to_json()))
    assert as_json["summary"]["steps"] == steps
    assert as_json["summary"]["tokens"] == n * SEQ
    assert as_json["summary"]["final_loss"] == log.records[-1].loss
    assert len(as_json["steps"]) == steps
    assert TrainLog.from_json(as_json).records == log.records


def test_lr_schedule():
    peak, total, warm = 1.0, 100, 10
    lrs = [lr_at(k, total, peak, warm) for k in range(total)]
    assert lrs[:warm] == pytest.approx([(k + 1) / warm for k in range(warm)])
    assert lrs[warm] == pytest.approx(peak)
    # Cosine: half the peak halfway through the decay, decreasing, never zero.
    assert lr_at(warm + (total - warm) // 2, total, peak, warm) == pytest.approx(0.5)
    assert all(a > b for a, b in zip(lrs[warm:], lrs[warm + 1 :], strict=False))
    assert min(lrs) > 0
    assert lr_at(0, 10, 2.0, 0) == pytest.approx(2.0)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_weights():
    # Dropout on, so the seed matters beyond the (identical) initial weights.
    arch = {**ARCH, "dropout": 0.1}
    chunks = toy_chunks(64)
    runs = []
    for seed in (5, 5, 6):
        model = build_gpt2(arch, V, 0, seed=0)
        log = train_causal_lm(model, chunks, batch_size=8, lr=3e-3, seed=seed, progress=False)
        runs.append((_state(model), [r.loss for r in log.records]))
    (s1, l1), (s2, l2), (s3, l3) = runs
    assert l1 == l2
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert l1 != l3
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_huge_lr_raises_nan_error_with_step():
    model = build_gpt2(ARCH, V, 0, seed=0)
    with pytest.raises(TrainingError, match=r"NaN loss at step \d+/8 while training blowup \(lr="):
        train_causal_lm(model, toy_chunks(64), batch_size=8, lr=1e30, warmup_frac=0.0,
                        seed=0, run_name="blowup", progress=False)


def test_nan_from_forward_hook_names_the_step():
    model = build_gpt2(ARCH, V, 0, seed=0)
    calls = {"n": 0}

    def poison(module, inputs, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] == 3 else output

    model.transformer.ln_f.register_forward_hook(poison)
    with pytest.raises(TrainingError, match=r"NaN loss at step 3/8 while training hooked"):
        train_causal_lm(model, toy_chunks(64), batch_size=8, lr=1e-3, seed=0,
                        run_name="hooked", progress=False)


def test_rejects_bad_inputs():
    model = build_gpt2(ARCH, V, 0, seed=0)
    with pytest.raises(DataError, match=r"token ids span \[1, 16\].*16 entries"):
        train_causal_lm(model, toy_chunks(8) + 1, batch_size=4, lr=1e-3, seed=0, progress=False)
    with pytest.raises(ConfigError, match="seq_len 32 exceeds the model's 16 positions"):
        train_causal_lm(model, np.zeros((4, 32), dtype=np.int64), batch_size=4, lr=1e-3,
                        seed=0, progress=False)
    with pytest.raises(DataError, match="shape"):
        train_causal_lm(model, np.zeros((0, SEQ), dtype=np.int64), batch_size=4, lr=1e-3,
                        seed=0, progress=False)
    with pytest.raises(ConfigError, match="lr must be"):
        train_causal_lm(model, toy_chunks(8), batch_size=4, lr=float("nan"), seed=0,
                        progress=False)


def test_mixed_precision_run_hands_back_an_unpatched_model():
    chunks = toy_chunks(32)
    ref = build_gpt2(ARCH, V, 0, seed=0)
    ref_log = train_causal_lm(ref, chunks, batch_size=8, lr=3e-3, seed=0, progress=False)
    model = build_gpt2(ARCH, V, 0, seed=0)
    log = train_causal_lm(model, chunks, batch_size=8, lr=3e-3, seed=0, progress=False,
                          mixed_precision="bf16")
    assert log.mixed_precision == "bf16"
    assert "forward" not in model.__dict__  # accelerate's autocast wrapper is gone
    assert "_original_forward" not in model.__dict__
    assert not getattr(model, "_is_accelerate_prepared", False)  # it can be prepared again
    assert model.transformer.wte.weight.dtype == torch.float32
    assert log.final_loss == pytest.approx(ref_log.final_loss, rel=0.05)
    # A later full-precision run in the same process still works.
    again = train_causal_lm(build_gpt2(ARCH, V, 0, seed=0), chunks, batch_size=8, lr=3e-3,
                            seed=0, progress=False)
    assert [r.loss for r in again.records] == [r.loss for r in ref_log.records]


def test_a_trained_model_trains_again_with_its_new_precision():
    # accelerate marks what it prepared; were the model itself marked, a second run
    # on it would skip preparation (no autocast): bf16 would then equal float32.
    chunks = toy_chunks(32)
    first, second = toy_chunks(32, seed=2), {}
    for precision in ("no", "bf16"):
        model = build_gpt2(ARCH, V, 0, seed=0)
        train_causal_lm(model, chunks, batch_size=8, lr=3e-3, seed=0, progress=False)
        log = train_causal_lm(model, first, batch_size=8, lr=3e-3, seed=0, progress=False,
                              mixed_precision=precision)
        assert log.mixed_precision == precision
        assert "forward" not in model.__dict__
        second[precision] = [r.loss for r in log.records]
    assert second["no"] != second["bf16"]
    assert second["bf16"] == pytest.approx(second["no"], rel=0.05)


def test_causal_lm_loss_is_the_mean_shifted_cross_entropy():
    logits = torch.randn(3, 5, V, dtype=torch.bfloat16)
    ids = torch.randint(0, V, (3, 5))
    loss = causal_lm_loss(logits, ids)
    assert loss.dtype == torch.float32 and loss.ndim == 0
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, V),
                                                 ids[:, 1:].reshape(-1))
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
