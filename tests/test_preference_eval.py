"""Evaluation of aligned policies on held-out pairs: implicit rewards, accuracy, margins, NLL, judged win rate.

Everything runs on a tiny GPT-2 with the project's own BPE (no pad token, no
chat template) and a random tiny reward model saved to disk in the test.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, GPT2Config, GPT2ForSequenceClassification

from datalign.core.errors import ConfigError, DataError, TrainingError
from datalign.lm.models import build_gpt2, load_model, save_checkpoint
from datalign.lm.tokenizer import train_bpe
from datalign.studies.efficient_alignment.evaluation import (
    bootstrap_mean_ci,
    completion_logps,
    evaluate_policy_dir,
    evaluate_preferences,
    generate_completions,
    implicit_rewards,
    judge_win_rate,
    load_reward_model,
    pairwise_outcomes,
    preference_accuracy,
    reward_scores,
)
from datalign.training.preference import train_preference

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", "good", "bad", "answer", "question", "why",
         "how", "is", "yes", "no", "red", "blue", "code", "list", "sort", "print", "value", "return"]
ARCH = {"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64, "initializer_range": 0.2}


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 10))) for _ in range(n)]


def make_pairs(n: int, seed: int = 7) -> list[dict]:
    t = _texts(3 * n, seed)
    return [{"prompt": f"Q{i}: {t[i]}\nA:", "chosen": " " + t[n + i], "rejected": " " + t[2 * n + i]}
            for i in range(n)]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe")
    train_bpe(_texts(300, 0), 300, path)
    tok = AutoTokenizer.from_pretrained(path)
    tok.pad_token = None  # as the workflow's BPE is saved: no pad token, no chat template
    return tok


@pytest.fixture(scope="module")
def reference(tokenizer):
    return build_gpt2(ARCH, vocab_size=len(tokenizer), eos_id=tokenizer.eos_token_id, seed=0)


@pytest.fixture(scope="module")
def policy(reference):
    # A policy that differs from the reference deterministically: a flatter output layer.
    model = build_gpt2(ARCH, vocab_size=reference.config.vocab_size, eos_id=reference.config.eos_token_id, seed=0)
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(0.6)
    return model


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory, tokenizer):
    """A random tiny GPT-2 reward model (one output) with the BPE tokenizer, saved like a hub model."""
    path = tmp_path_factory.mktemp("reward")
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2, num_labels=1,
                        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
                        initializer_range=0.5)
    torch.manual_seed(3)
    GPT2ForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def hand_logp(model, tok, prompt: str, completion: str) -> tuple[float, int]:
    """Unbatched log pi(completion + eos | prompt) and its token count."""
    p = tok(prompt)["input_ids"]
    ids = tok(prompt + completion + tok.eos_token)["input_ids"]
    assert ids[: len(p)] == p
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(input_ids=x).logits[0].double()
    lp = torch.log_softmax(logits[:-1], -1).gather(1, x[0, 1:, None])[:, 0]
    return float(lp[len(p) - 1 :].sum()), len(ids) - len(p)


def test_completion_logps_match_the_unbatched_sum_over_completion_tokens(policy, tokenizer):
    pairs = make_pairs(7)
    prompts, completions = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    logps, counts = completion_logps(policy, tokenizer, prompts, completions, batch_size=3)
    expected = [hand_logp(policy, tokenizer, p, c) for p, c in zip(prompts, completions, strict=True)]
    assert logps == pytest.approx([e[0] for e in expected], abs=1e-4)
    assert counts.tolist() == [e[1] for e in expected]
    assert len(set(counts.tolist())) > 1  # rows of different lengths: padding was exercised


def test_completion_logps_cut_at_max_length_keeping_the_start(policy, tokenizer):
    prompt, completion = "Q: why\nA:", " the cat sat on the mat and the dog sat on the cat"
    full, n_full = hand_logp(policy, tokenizer, prompt, completion)
    n_prompt = len(tokenizer(prompt)["input_ids"])
    logps, counts = completion_logps(policy, tokenizer, [prompt], [completion], max_length=n_prompt + 3)
    assert counts.tolist() == [3] and n_full > 3
    ids = tokenizer(prompt + completion + tokenizer.eos_token)["input_ids"][: n_prompt + 3]
    x = torch.tensor([ids])
    with torch.no_grad():
        lp = torch.log_softmax(policy(input_ids=x).logits[0, :-1].double(), -1).gather(1, x[0, 1:, None])[:, 0]
    assert logps[0] == pytest.approx(float(lp[n_prompt - 1 :].sum()), abs=1e-4)


def test_implicit_rewards_are_beta_times_the_log_ratio(policy, reference, tokenizer):
    pairs = make_pairs(5)
    beta = 0.25
    rewards = implicit_rewards(policy, reference, tokenizer, pairs, beta=beta, batch_size=2)
    for key in ("chosen", "rejected"):
        expected = [beta * (hand_logp(policy, tokenizer, p["prompt"], p[key])[0]
                            - hand_logp(reference, tokenizer, p["prompt"], p[key])[0]) for p in pairs]
        assert rewards[key] == pytest.approx(expected, abs=1e-4)
    assert np.abs(rewards["chosen"]).max() > 0.1  # the policy really differs from the reference


def test_preference_accuracy_and_outcomes_count_ties_half():
    assert pairwise_outcomes([1, 2, 3, 4], [0, 2, 5, 1]).tolist() == [1.0, 0.5, 0.0, 1.0]
    assert preference_accuracy([1, 2, 3, 4], [0, 2, 5, 1]) == pytest.approx(0.625)
    with pytest.raises(DataError, match="two 1-D arrays of one length"):
        preference_accuracy([1, 2], [1])
    with pytest.raises(DataError, match="NaN"):
        pairwise_outcomes([1.0, float("nan")], [0.0, 0.0])


def test_bootstrap_ci_is_seeded_and_close_to_the_normal_interval():
    x = np.random.default_rng(0).normal(2.0, 1.0, size=400)
    low, high = bootstrap_mean_ci(x, confidence=0.95, n_boot=4000, seed=1)
    assert (low, high) == bootstrap_mean_ci(x, confidence=0.95, n_boot=4000, seed=1)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert low < x.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert bootstrap_mean_ci([3.0]) == (3.0, 3.0)
    with pytest.raises(DataError, match="non-empty"):
        bootstrap_mean_ci([])
    with pytest.raises(ConfigError, match="confidence"):
        bootstrap_mean_ci([1.0, 2.0], confidence=1.5)


def test_evaluation_of_the_reference_against_itself_is_neutral(reference, tokenizer):
    result = evaluate_preferences(reference, reference, tokenizer, make_pairs(6), beta=0.1, n_boot=200)
    assert result["preference_accuracy"] == 0.5  # every pair a tie
    assert result["reward_margin"] == 0.0 and result["reward_margin_ci"] == [0.0, 0.0]
    logps, counts = completion_logps(reference, tokenizer, [p["prompt"] for p in make_pairs(6)],
                                     [p["chosen"] for p in make_pairs(6)])
    assert result["chosen_nll_per_token"] == pytest.approx(-logps.sum() / counts.sum(), rel=1e-9)
    assert result["chosen_tokens"] == int(counts.sum()) and result["pairs"] == 6


def test_dpo_training_raises_accuracy_and_margin_on_its_pairs(reference, tokenizer, tmp_path):
    pairs = make_pairs(8, seed=11)
    base_dir = save_checkpoint(reference, tokenizer, tmp_path / "base")
    train_preference(base_dir, pairs, "dpo", tmp_path / "dpo", seed=0, progress=False,
                     options={"lr": 5e-3, "epochs": 4, "batch_size": 4, "beta": 0.25, "max_length": 48})
    before = evaluate_preferences(reference, reference, tokenizer, pairs, n_boot=200)
    after = evaluate_policy_dir(tmp_path / "dpo", base_dir, pairs, n_boot=200)
    assert after["beta"] == 0.25  # read from the run's train_log.json
    assert after["policy"] == str(tmp_path / "dpo")
    assert after["preference_accuracy"] > before["preference_accuracy"] + 0.3
    assert after["reward_margin"] > 0 and after["reward_margin_ci"][0] > 0
    aligned = load_model(tmp_path / "dpo")
    direct = evaluate_preferences(aligned, reference, tokenizer, pairs, beta=0.25, max_length=48, n_boot=200)
    assert direct["reward_margin"] == pytest.approx(after["reward_margin"], abs=1e-6)


def test_reward_model_loads_pads_and_scores_batches_like_single_rows(reward_dir, tokenizer):
    model, rm_tok = load_reward_model(reward_dir, device="cpu")
    assert rm_tok.pad_token == rm_tok.eos_token and model.config.pad_token_id == rm_tok.eos_token_id
    pairs = make_pairs(5)
    prompts, completions = [p["prompt"] for p in pairs], [p["chosen"] for p in pairs]
    batched = reward_scores(model, rm_tok, prompts, completions, batch_size=4)
    single = [reward_scores(model, rm_tok, [p], [c], batch_size=1)[0] for p, c in zip(prompts, completions,
                                                                                       strict=True)]
    assert batched == pytest.approx(single, abs=1e-5)
    assert np.ptp(batched) > 1e-3  # a random model still tells the texts apart


def test_reward_model_errors_are_one_line(reward_dir, tmp_path, tokenizer):
    two = tmp_path / "two-labels"
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=32, n_embd=8, n_layer=1, n_head=2, num_labels=2)
    GPT2ForSequenceClassification(config).save_pretrained(two)
    tokenizer.save_pretrained(two)
    with pytest.raises(ConfigError, match="has 2 outputs; a scalar reward model has 1"):
        load_reward_model(two)
    with pytest.raises(TrainingError, match="cannot load reward model") as err:
        load_reward_model(tmp_path / "missing")
    assert "\n" not in str(err.value)


def greedy_by_hand(model, tok, prompt: str, max_new: int) -> str:
    ids = tok(prompt)["input_ids"]
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            nxt = int(model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
    return tok.decode(new)


def test_generation_is_greedy_and_left_padding_does_not_change_it(policy, tokenizer):
    prompts = [p["prompt"] for p in make_pairs(4)]
    batched = generate_completions(policy, tokenizer, prompts, max_new_tokens=6, batch_size=4)
    assert batched == [greedy_by_hand(policy, tokenizer, p, 6) for p in prompts]
    assert any(batched)
    with pytest.raises(ConfigError, match="leaves no room for a prompt"):
        generate_completions(policy, tokenizer, prompts, max_new_tokens=64)


def test_judged_win_rate_scores_generations_against_the_reference(policy, tokenizer, reward_dir):
    rm, rm_tok = load_reward_model(reward_dir, device="cpu")
    pairs = make_pairs(6)
    result = judge_win_rate(policy, tokenizer, rm, rm_tok, pairs, max_new_tokens=5, n_boot=200)
    prompts = [p["prompt"] for p in pairs]
    s_pol = reward_scores(rm, rm_tok, prompts, result["completions"])
    s_ref = reward_scores(rm, rm_tok, prompts, [p["chosen"] for p in pairs])
    expected = pairwise_outcomes(s_pol, s_ref)
    assert result["win_rate"] == pytest.approx(expected.mean())
    assert result["wins"] + result["ties"] + result["losses"] == result["n"] == 6
    assert result["win_rate_ci"][0] <= result["win_rate"] <= result["win_rate_ci"][1]
    assert result["completions"] == generate_completions(policy, tokenizer, prompts, max_new_tokens=5)


def test_bad_pairs_are_one_line_errors(policy, reference, tokenizer):
    with pytest.raises(DataError, match=r"pairs\[1\]: missing key\(s\) \['rejected'\]"):
        evaluate_preferences(policy, reference, tokenizer, [make_pairs(1)[0], {"prompt": "x", "chosen": "y"}])
    with pytest.raises(DataError, match="no held-out pairs"):
        evaluate_preferences(policy, reference, tokenizer, [])
    long_prompt = [{"prompt": " ".join(["question"] * 100), "chosen": " yes", "rejected": " no"}]
    with pytest.raises(DataError, match="fills max_length"):
        evaluate_preferences(policy, reference, tokenizer, long_prompt)
