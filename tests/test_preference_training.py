"""KTO and DPO through TRL on a tiny GPT-2 with the project's own BPE (no pad token, no chat template).

The losses are checked against their formulas computed here by hand from
summed completion log-probabilities (DPO: Rafailov et al. 2023 eq. 7; KTO:
Ethayarajh et al. 2024 eqs. 7-8 with TRL 1.16's KL estimate z0 from
mismatched prompt/completion pairs), both through TRL's ``compute_loss`` and
the loss it logs for the first step.
"""

from __future__ import annotations

import copy
import json
import math
import random

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.lm.models import build_gpt2, save_checkpoint
from datalign.lm.tokenizer import train_bpe
from datalign.training.preference import (
    PreferenceOptions,
    PreferenceRun,
    build_trainer,
    encode_prompt_completion,
    format_rows,
    prepare_tokenizer,
    run_preference_job,
    run_preference_jobs,
    train_many,
    train_preference,
)

# TRL calls a deprecated transformers property every step; train_preference silences it itself,
# the tests that drive build_trainer directly do it here.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

WORDS = [
    "the", "cat", "dog", "sat", "on", "mat", "a", "good", "bad", "answer", "question", "why", "how",
    "is", "yes", "no", "red", "blue", "code", "list", "sort", "print", "value", "return", "true", "false",
]
ARCH = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64, "initializer_range": 0.2}


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(n)]


def bare_bpe_tokenizer(tmp_path_factory) -> AutoTokenizer:
    """The project's byte-level BPE trained on 300 short texts, saved without pad token or chat template."""
    trained = tmp_path_factory.mktemp("bpe")
    train_bpe(_texts(300, 0), 300, trained)
    tok = AutoTokenizer.from_pretrained(trained)
    tok.pad_token = None
    assert tok.pad_token is None and not tok.chat_template
    return tok


@pytest.fixture(scope="module")
def bare_tokenizer(tmp_path_factory):
    return bare_bpe_tokenizer(tmp_path_factory)


@pytest.fixture(scope="module")
def base(bare_tokenizer):
    return build_gpt2(ARCH, vocab_size=len(bare_tokenizer), eos_id=bare_tokenizer.eos_token_id, seed=0)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, base, bare_tokenizer):
    return save_checkpoint(base, bare_tokenizer, tmp_path_factory.mktemp("base") / "policy")


def kto_rows(n: int, seed: int = 1) -> list[dict]:
    texts = _texts(2 * n, seed)
    # Prompts end with a newline + "A:" and completions start with a space: a token boundary.
    return [{"prompt": f"Q{i}: {texts[i]}\nA:", "completion": " " + texts[n + i], "label": i % 3 != 1}
            for i in range(n)]


def dpo_rows(n: int, seed: int = 2) -> list[dict]:
    texts = _texts(3 * n, seed)
    return [{"prompt": f"Q{i}: {texts[i]}\nA:", "chosen": " " + texts[n + i], "rejected": " " + texts[2 * n + i]}
            for i in range(n)]


def summed_logp(model, tokenizer, prompt: str, completion: str) -> float:
    """log pi(completion + eos | prompt): sum of the completion tokens' log-probabilities, float64."""
    p_ids = tokenizer(prompt)["input_ids"]
    ids = tokenizer(prompt + completion + tokenizer.eos_token)["input_ids"]
    assert ids[: len(p_ids)] == p_ids, "test rows must split on a token boundary"
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0].double()
    token_logps = torch.log_softmax(logits[:-1], dim=-1).gather(1, x[0, 1:, None])[:, 0]
    return float(token_logps[len(p_ids) - 1 :].sum())


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _perturb(trainer, scale: float) -> torch.nn.Module:
    # Scaling the final LayerNorm gain flattens (< 1) or sharpens (> 1) every next-token
    # distribution, so the policy moves away from the reference deterministically.
    policy = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        policy.transformer.ln_f.weight.mul_(scale)
    return policy


@pytest.mark.parametrize(("scale", "z0_positive"), [(0.6, True), (1.4, False)])
def test_kto_loss_matches_the_formula(base, bare_tokenizer, tmp_path, scale, z0_positive):
    rows = kto_rows(6)
    beta, lam_d, lam_u = 0.2, 1.3, 0.8
    opts = PreferenceOptions(batch_size=6, max_steps=1, beta=beta, desirable_weight=lam_d,
                             undesirable_weight=lam_u, warmup_ratio=0.0)
    tok = prepare_tokenizer(bare_tokenizer)
    trainer = build_trainer(base, tok, rows, "kto", opts, seed=3, work_dir=str(tmp_path))
    policy = _perturb(trainer, scale)

    # TRL reads KTO rows in order (after our seeded shuffle); its first batch is all 6 rows.
    by_prompt = {r["prompt"]: r for r in rows}
    seq = [by_prompt[p] for p in trainer.train_dataset["prompt"]]
    assert sorted(r["prompt"] for r in seq) == sorted(by_prompt)
    r = [summed_logp(policy, tok, x["prompt"], x["completion"]) - summed_logp(base, tok, x["prompt"], x["completion"])
         for x in seq]
    # z0: mean log-ratio over mismatched pairs, prompt i with completion i-1 (cyclic), clamped at 0.
    mismatched = [summed_logp(policy, tok, seq[i]["prompt"], seq[i - 1]["completion"])
                  - summed_logp(base, tok, seq[i]["prompt"], seq[i - 1]["completion"]) for i in range(len(seq))]
    z0_raw = sum(mismatched) / len(mismatched)
    assert (z0_raw > 0) == z0_positive
    z0 = max(0.0, z0_raw)
    losses = [lam_d * (1 - sigmoid(beta * (ri - z0))) if x["label"] else lam_u * (1 - sigmoid(beta * (z0 - ri)))
              for ri, x in zip(r, seq, strict=True)]
    expected = sum(losses) / len(losses)
    assert 0.05 < expected < 0.95 * max(lam_d, lam_u), "loss saturated: the test would not discriminate"

    batch = next(iter(trainer.get_train_dataloader()))
    assert torch.equal(batch["label"], torch.tensor([x["label"] for x in seq]))
    assert trainer.compute_loss(trainer.model, batch).item() == pytest.approx(expected, abs=1e-5)
    trainer.train()
    first = trainer.state.log_history[0]
    assert first["loss"] == pytest.approx(expected, abs=1e-5)
    assert first["kl"] == pytest.approx(z0, abs=1e-4)


def test_dpo_loss_matches_the_formula(base, bare_tokenizer, tmp_path):
    rows = dpo_rows(5)
    beta = 0.3
    opts = PreferenceOptions(batch_size=5, max_steps=1, beta=beta, warmup_ratio=0.0)
    tok = prepare_tokenizer(bare_tokenizer)
    trainer = build_trainer(base, tok, rows, "dpo", opts, seed=4, work_dir=str(tmp_path))
    policy = _perturb(trainer, 0.6)

    def log_ratio(x, key):
        return summed_logp(policy, tok, x["prompt"], x[key]) - summed_logp(base, tok, x["prompt"], x[key])

    per_pair = [-math.log(sigmoid(beta * (log_ratio(x, "chosen") - log_ratio(x, "rejected")))) for x in rows]
    expected = sum(per_pair) / len(per_pair)
    assert abs(expected - math.log(2)) > 1e-3, "policy equals reference: the test would not discriminate"

    batch = next(iter(trainer.get_train_dataloader()))  # one batch holds all 5 pairs (order irrelevant)
    assert trainer.compute_loss(trainer.model, batch).item() == pytest.approx(expected, abs=1e-5)
    trainer.train()
    assert trainer.state.log_history[0]["loss"] == pytest.approx(expected, abs=1e-5)


def test_rows_are_tokenized_as_trl_does_with_and_without_chat_template(base, bare_tokenizer, tmp_path):
    chat_tok = prepare_tokenizer(bare_tokenizer)
    chat_tok.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    plain_tok = prepare_tokenizer(bare_tokenizer)
    rows = kto_rows(4)
    for tok, chat in ((plain_tok, False), (chat_tok, True)):
        opts = PreferenceOptions(batch_size=2, max_steps=1)
        trainer = build_trainer(base, tok, rows, "kto", opts, seed=0, work_dir=str(tmp_path / str(chat)))
        data = trainer.train_dataset
        formatted = {json.dumps(r["prompt"]): r for r in format_rows(rows, tok)}
        for i in range(len(data)):
            row = formatted[json.dumps(data[i]["prompt"])]
            assert isinstance(row["prompt"], list) == chat
            p_ids, c_ids = encode_prompt_completion(tok, row["prompt"], row["completion"])
            assert (p_ids, c_ids) == (data[i]["prompt_ids"], data[i]["completion_ids"])
            assert c_ids[-1] == tok.eos_token_id or chat
        trainer.train()  # TRL accepts the BPE with and without a chat template
        assert math.isfinite(trainer.state.log_history[0]["loss"])


def test_job_trains_from_a_directory_and_saves_policy_tokenizer_and_log(base_dir, tmp_path):
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_text("".join(json.dumps({**r, "id": i}) + "\n" for i, r in enumerate(kto_rows(12))))
    before = load_file(base_dir / "model.safetensors")
    out = tmp_path / "kto-run"
    log = run_preference_job(
        {"base": str(base_dir), "rows": str(rows_file), "objective": "kto", "seed": 5,
         "options": {"batch_size": 4, "epochs": 2, "lr": 1e-3}, "record": {"subset": "random-50"}},
        out,
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
        "tokenizer_config.json", "train_log.json"]
    assert json.loads((out / "train_log.json").read_text()) == json.loads(json.dumps(log))
    assert log["objective"] == "kto" and log["subset"] == "random-50"
    assert log["rows"] == log["rows_used"] == 12 and log["desirable"] == 8 and log["undesirable"] == 4
    assert log["total_steps"] == 6 and [s["step"] for s in log["steps"]] == list(range(1, 7))
    assert all(math.isfinite(s["loss"]) for s in log["steps"])
    assert log["options"]["max_length"] == ARCH["n_positions"]  # default: the policy's context
    assert log["chat_template"] is False and log["device"] == "cpu" and log["bf16"] is False
    for key in ("load_seconds", "setup_seconds", "train_seconds", "save_seconds"):
        assert log["summary"][key] >= 0
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.pad_token == tok.eos_token  # pad = eos written for the BPE that had none
    after = load_file(out / "model.safetensors")
    assert any(not torch.equal(after[k], before[k]) for k in before)
    assert all(torch.equal(v, load_file(base_dir / "model.safetensors")[k]) for k, v in before.items())


def test_train_many_gives_the_same_policies_as_separate_runs(base, bare_tokenizer, tmp_path):
    kto, dpo = kto_rows(8), dpo_rows(6)
    options = {"batch_size": 4, "lr": 1e-3}
    runs = [PreferenceRun(kto, "kto", tmp_path / "many-kto", options, seed=11),
            PreferenceRun(dpo, "dpo", tmp_path / "many-dpo", options, seed=12)]
    base_before = {k: v.clone() for k, v in base.state_dict().items()}
    many = train_many(base, runs, tokenizer=bare_tokenizer, progress=False)
    alone = [train_preference(base, run.rows, run.objective, tmp_path / f"alone-{run.objective}",
                              tokenizer=bare_tokenizer, options=options, seed=run.seed, progress=False)
             for run in runs]
    assert all(torch.equal(v, base_before[k]) for k, v in base.state_dict().items())  # base untouched
    for run, log_many, log_alone in zip(runs, many, alone, strict=True):
        assert [s["loss"] for s in log_many["steps"]] == [s["loss"] for s in log_alone["steps"]]
        w_many = load_file(run.output_dir / "model.safetensors")
        w_alone = load_file(tmp_path / f"alone-{run.objective}" / "model.safetensors")
        assert all(torch.equal(w_many[k], w_alone[k]) for k in w_many)
        assert any(not torch.equal(w_many[k], base_before[k]) for k in w_many if k in base_before)


@pytest.mark.parametrize(
    ("rows", "objective", "options", "error", "match"),
    [
        ([{"prompt": "a", "completion": "b"}], "kto", {}, DataError, r"\[0\]: missing key\(s\) \['label'\]"),
        ([{"prompt": "a", "completion": "b", "label": "yes"}], "kto", {}, DataError, "'label' must be"),
        ([{"prompt": "a", "chosen": "b", "rejected": ""}], "dpo", {}, DataError, r"\[0\]: 'rejected' is empty"),
        ([], "dpo", {}, DataError, "no preference rows"),
        (kto_rows(2), "ipo", {}, ConfigError, "objective must be one of"),
        (kto_rows(2), "kto", {"beta": 0}, ConfigError, r"options\.beta must be a positive"),
        (kto_rows(2), "kto", {"learning_rate": 1e-4}, ConfigError, "unknown preference option"),
        (kto_rows(2), "kto", {"batch_size": 1}, ConfigError, "KTO needs >= 2 rows per batch"),
        (kto_rows(2), "kto", {"max_length": 65}, ConfigError, "exceeds the policy's 64 positions"),
        ([{"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}],
           "label": True}] * 2, "kto", {}, DataError, "no chat template"),
    ],
)
def test_bad_input_is_a_one_line_error(base, bare_tokenizer, tmp_path, rows, objective, options, error, match):
    with pytest.raises(error, match=match) as err:
        train_preference(base, rows, objective, tmp_path / "out", tokenizer=bare_tokenizer, options=options,
                         progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_prompts_that_fill_max_length_leave_nothing_to_train(base, bare_tokenizer, tmp_path):
    rows = [{"prompt": " ".join(["question"] * 80), "completion": " yes", "label": bool(i % 2)} for i in range(4)]
    with pytest.raises(DataError, match="every prompt fills max_length = 16"):
        train_preference(base, rows, "kto", tmp_path / "out", tokenizer=bare_tokenizer,
                         options={"max_length": 16, "batch_size": 2}, progress=False)
    assert not (tmp_path / "out").exists()


def test_a_nan_loss_stops_the_run_with_a_one_line_error(base, bare_tokenizer, tmp_path):
    broken = copy.deepcopy(base)
    with torch.no_grad():
        broken.transformer.h[0].mlp.c_fc.bias[0] = float("nan")
    with pytest.raises(TrainingError, match=r"non-finite loss nan .* at step 1/2 of preference run 'out'") as err:
        train_preference(broken, dpo_rows(4), "dpo", tmp_path / "out", tokenizer=bare_tokenizer,
                         options={"batch_size": 2}, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_record_keys_may_not_overwrite_the_log(base, bare_tokenizer, tmp_path):
    with pytest.raises(ConfigError, match=r"record key\(s\) \['steps'\] would overwrite"):
        train_preference(base, kto_rows(4), "kto", tmp_path / "out", tokenizer=bare_tokenizer,
                         options={"batch_size": 2}, record={"steps": []}, progress=False)


def test_jobs_share_each_base_and_come_back_in_order(base, base_dir, bare_tokenizer, tmp_path):
    other = save_checkpoint(build_gpt2(ARCH, len(bare_tokenizer), bare_tokenizer.eos_token_id, seed=9),
                            bare_tokenizer, tmp_path / "other-base")
    spec = {"rows": dpo_rows(4), "objective": "dpo", "options": {"batch_size": 2}}
    jobs = [({**spec, "base": str(base_dir), "run_name": "a"}, tmp_path / "a"),
            ({**spec, "base": str(other), "run_name": "b"}, tmp_path / "b"),
            ({**spec, "base": str(base_dir), "run_name": "c", "seed": 3}, tmp_path / "c")]
    logs = run_preference_jobs(jobs)
    assert [lg["run_name"] for lg in logs] == ["a", "b", "c"]
    # One load per base: booked to the first run of each group.
    assert logs[0]["summary"]["load_seconds"] > 0 and logs[1]["summary"]["load_seconds"] > 0
    assert logs[2]["summary"]["load_seconds"] == 0
    assert all((tmp_path / n / "model.safetensors").is_file() for n in "abc")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lr'\]"):
        run_preference_job({**spec, "base": str(base_dir), "lr": 1e-3}, tmp_path / "d")
