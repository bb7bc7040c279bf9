"""The reward-model judge of the efficient-alignment study on a tiny local reward model.

The reward model is a GPT-2 sequence classifier saved to disk like a hub model
(config.json, weights, tokenizer.json): byte-level tokens, and weights set so
that its score is a known, strictly increasing function of the id of the last
token (every block's output zeroed, no position embedding, the score head reading
one direction of the token embedding). Its loading code is the one a hub name
goes through (``AutoModelForSequenceClassification.from_pretrained``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datalign.studies.efficient_alignment.evaluation import (
    judge_win_rate,
    load_reward_model,
    pairwise_outcomes,
    reward_scores,
)
from datalign.studies.efficient_alignment.steps import judge_step


def build_monotone_judge(path: Path) -> Path:
    """Save a tiny reward model whose score increases strictly with the id of the last token.

    Tokens are bytes (byte-level alphabet in code-point order, so ``"z"`` > ``"a"``).
    Embedding of token i: ``u + (i / V) w`` with u, w orthogonal and zero-mean, so
    the final layer norm gives ``(u + t w) / sd(t)``; the head reads w:
    ``score(t) = c t / sqrt(a + b t^2)``, strictly increasing for t >= 0.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    vocab["<|endoftext|>"] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>")
    n = len(vocab)
    config = GPT2Config(vocab_size=n, n_positions=1024, n_embd=8, n_layer=1, n_head=2, num_labels=1,
                        eos_token_id=n - 1, bos_token_id=n - 1, pad_token_id=n - 1)
    model = GPT2ForSequenceClassification(config)
    u = torch.tensor([1.0, -1.0, 1.0, -1.0, 0.0, 0.0, 0.0, 0.0])
    w = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 1.0, -1.0])
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.transformer.wte.weight.copy_(u + torch.arange(n, dtype=torch.float32)[:, None] / n * w)
        model.transformer.ln_f.weight.fill_(1.0)
        for block in model.transformer.h:
            block.ln_1.weight.fill_(1.0)
            block.ln_2.weight.fill_(1.0)
        model.score.weight.copy_(w[None, :])
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    return build_monotone_judge(tmp_path_factory.mktemp("judge"))


def test_local_judge_loads_like_a_hub_model_and_scores_the_known_feature(judge_dir):
    assert {"config.json", "tokenizer.json"} <= {p.name for p in judge_dir.iterdir()}
    model, tok = load_reward_model(judge_dir, device="cpu")
    prompts = ["Q: which?\nA:"] * 4
    completions = [" ends in a", " ends in m", " ends in z", " ends in b"]
    scores = reward_scores(model, tok, prompts, completions, batch_size=3)
    # strictly increasing in the last character: a < b < m < z
    assert scores[0] < scores[3] < scores[1] < scores[2]
    # padding in a batch does not change a score (the classifier reads the last non-pad token)
    single = [reward_scores(model, tok, [p], [c], batch_size=1)[0] for p, c in zip(prompts, completions, strict=True)]
    assert scores == pytest.approx(single, abs=1e-6)


def test_identical_completions_win_half_and_known_winner_wins(judge_dir, tmp_path):
    """judge_step: completions equal to the references tie (0.5); ones ending higher always win."""
    from datalign.data.preference import prepare_preference_dataset, read_preference_split

    rows = []
    for i, c in enumerate("abcdefghijkl"):
        rows.append({"prompt": f"Q{i}: say something\nA:", "completion": f" answer {c}", "label": True})
        rows.append({"prompt": f"Q{i}: say something\nA:", "completion": " nope", "label": False})
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = tmp_path / "data"
    prepare_preference_dataset("toy", {"source": "local", "path": str(tmp_path / "rows.jsonl"),
                                       "test_fraction": 0.5}, data, seed=0)
    test = read_preference_split(data, "test", form="pairs")
    assert len(test) >= 3
    refs = [p.chosen for p in test]
    runs = {"runs": [
        {"method": "same", "seed": 0, "run_seed": 11, "shared_with": None},
        {"method": "better", "seed": 0, "run_seed": 11, "shared_with": None},
        {"method": "worse", "seed": 0, "run_seed": 11, "shared_with": None},
    ]}
    completions = {"prompts": len(test), "max_new_tokens": 8, "base": refs, "runs": {
        "same_seed0": refs,
        "better_seed0": [r[:-1] + "z" for r in refs],  # the last character beats every reference's
        "worse_seed0": [r[:-1] + "!" for r in refs],  # '!' < 'a'
    }}
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    (tmp_path / "completions.json").write_text(json.dumps(completions))
    judge = {"model": str(judge_dir), "batch_size": 4, "max_length": 64, "max_new_tokens": 8, "max_prompts": None}
    evaluation = {"max_pairs": None, "bootstrap": 200, "confidence": 0.9}
    out = judge_step("toy", "10", data, tmp_path / "runs.json", tmp_path / "completions.json", judge,
                     str(judge_dir), evaluation, tmp_path / "judged.json")
    assert json.loads((tmp_path / "judged.json").read_text()) == json.loads(json.dumps(out))
    by = {r["method"]: r for r in out["runs"]}
    assert out["base"]["win_rate"] == 0.5 and out["base"]["ties"] == len(test)
    assert by["same"]["win_rate"] == 0.5 and by["same"]["win_rate_ci"] == [0.5, 0.5]
    assert by["better"]["win_rate"] == 1.0 and by["better"]["wins"] == len(test)
    assert by["worse"]["win_rate"] == 0.0 and by["worse"]["losses"] == len(test)
    assert out["methods"]["better"] == {"seeds": 1, "n": len(test), "win_rate": 1.0, "win_rate_ci": [1.0, 1.0]}
    assert "half" in out["ties"] and out["reference"] == "chosen"


def test_judge_win_rate_of_a_policy_on_the_local_judge(judge_dir):
    """The library's judge_win_rate with a tiny GPT-2 policy: outcomes are those of the judge's scores."""
    from datalign.lm.models import build_gpt2

    rm, rm_tok = load_reward_model(judge_dir, device="cpu")
    policy = build_gpt2({"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64}, vocab_size=len(rm_tok),
                        eos_id=rm_tok.eos_token_id, seed=0)
    pairs = [{"prompt": f"Q{i}:", "chosen": f" {c}"} for i, c in enumerate("amzb")]
    result = judge_win_rate(policy, rm_tok, rm, rm_tok, pairs, max_new_tokens=4, batch_size=2, n_boot=100)
    prompts = [p["prompt"] for p in pairs]
    expected = pairwise_outcomes(reward_scores(rm, rm_tok, prompts, result["completions"]),
                                 reward_scores(rm, rm_tok, prompts, [p["chosen"] for p in pairs]))
    assert result["win_rate"] == pytest.approx(float(np.mean(expected)))
    assert result["win_rate_ci"][0] <= result["win_rate"] <= result["win_rate_ci"][1]

