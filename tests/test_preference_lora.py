"""LoRA (peft, through TRL's ``peft_config``) preference runs on a tiny GPT-2 with the project's BPE.

With ``options.lora`` the adapters are trained on the base itself and the
reference is the base with the adapters disabled (no frozen copy). Checked
here: the first step's KTO and DPO losses against their formulas with the
untouched base as reference, only adapter parameters train, the base's
weights stay byte-identical, every run of ``train_many`` starts from the
untouched base (a full fine-tune after LoRA runs included), the held-out
evaluation's reference is the adapter-disabled base without a copy, and a bad
LoRA block is a one-line ConfigError before training.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from datalign.core.errors import ConfigError
from datalign.lm.models import build_gpt2, save_checkpoint
from datalign.training.preference import (
    PreferenceOptions,
    PreferenceRun,
    build_trainer,
    lent_base,
    prepare_tokenizer,
    train_many,
    train_preference,
    trained_policy,
)

from .test_preference_training import (
    ARCH,
    bare_bpe_tokenizer,
    dpo_rows,
    kto_rows,
    sigmoid,
    summed_logp,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

LORA = {"r": 4, "alpha": 8, "target_modules": ["c_attn", "c_proj"]}


@pytest.fixture(scope="module")
def bare_tokenizer(tmp_path_factory):
    return bare_bpe_tokenizer(tmp_path_factory)


@pytest.fixture
def base(bare_tokenizer):
    """A fresh tiny GPT-2 per test (LoRA runs borrow the base in place), with dropout 0.1 (TRL zeroes it
    during a run; the base must get it back)."""
    return build_gpt2({**ARCH, "dropout": 0.1}, vocab_size=len(bare_tokenizer), eos_id=bare_tokenizer.eos_token_id,
                      seed=0)


def _snapshot(model) -> dict[str, bytes]:
    return {k: v.detach().cpu().numpy().tobytes() for k, v in model.state_dict().items()}


def assert_untouched(base, before: dict[str, bytes], pristine) -> None:
    """``base`` is the model it was before the run: same bytes, modules, flags; no adapter left."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    assert _snapshot(base) == before
    assert [(n, type(m)) for n, m in base.named_modules()] == [(n, type(m)) for n, m in pristine.named_modules()]
    assert not any(isinstance(m, BaseTunerLayer) for m in base.modules())
    assert set(base.__dict__) == set(pristine.__dict__)  # no forward patch, no peft_config left
    assert [p.requires_grad for p in base.parameters()] == [p.requires_grad for p in pristine.parameters()]
    assert [m.training for m in base.modules()] == [m.training for m in pristine.modules()]
    drops = [(n, m.p) for n, m in pristine.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(p > 0 for _, p in drops) and [(n, m.p) for n, m in base.named_modules() if isinstance(m, torch.nn.Dropout)] == drops
    assert base.config.pad_token_id == pristine.config.pad_token_id


def _perturb_adapters(policy, scale: float = 0.3) -> None:
    # LoRA's B starts at zero (policy == reference); random B moves the policy off the base deterministically.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.copy_(scale * torch.randn(p.shape, generator=gen))


def _base_params_unchanged(policy, pristine) -> None:
    ref = dict(pristine.named_parameters())
    for name, p in policy.get_base_model().named_parameters():
        if "lora_" not in name:
            assert torch.equal(p, ref[name.replace(".base_layer", "")]), name


def test_kto_lora_loss_matches_the_formula_against_the_adapter_disabled_base(base, bare_tokenizer, tmp_path):
    rows = kto_rows(6)
    beta, lam_d, lam_u = 0.2, 1.3, 0.8
    opts = PreferenceOptions(batch_size=6, max_steps=1, beta=beta, desirable_weight=lam_d,
                             undesirable_weight=lam_u, warmup_ratio=0.0, lr=1e-2, lora=LORA)
    tok = prepare_tokenizer(bare_tokenizer)
    pristine, before = copy.deepcopy(base), _snapshot(base)
    with lent_base(base):
        trainer = build_trainer(base, tok, rows, "kto", opts, seed=3, work_dir=str(tmp_path))
        policy = trainer.accelerator.unwrap_model(trainer.model)
        assert trainer.ref_model is None and policy.get_base_model() is base  # no copy of the model
        _perturb_adapters(policy)

        by_prompt = {r["prompt"]: r for r in rows}
        seq = [by_prompt[p] for p in trainer.train_dataset["prompt"]]
        # The reference TRL uses (adapters disabled) is the untouched base, to the last bit.
        with policy.disable_adapter():
            ref_policy = [summed_logp(policy, tok, x["prompt"], x["completion"]) for x in seq]
        ref_base = [summed_logp(pristine, tok, x["prompt"], x["completion"]) for x in seq]
        assert ref_policy == ref_base
        r = [summed_logp(policy, tok, x["prompt"], x["completion"]) - rb for x, rb in zip(seq, ref_base, strict=True)]
        mismatched = [summed_logp(policy, tok, seq[i]["prompt"], seq[i - 1]["completion"])
                      - summed_logp(pristine, tok, seq[i]["prompt"], seq[i - 1]["completion"]) for i in range(len(seq))]
        z0 = max(0.0, sum(mismatched) / len(mismatched))
        losses = [lam_d * (1 - sigmoid(beta * (ri - z0))) if x["label"] else lam_u * (1 - sigmoid(beta * (z0 - ri)))
                  for ri, x in zip(r, seq, strict=True)]
        expected = sum(losses) / len(losses)
        assert abs(expected - 0.5 * (lam_d * sum(x["label"] for x in seq) + lam_u * sum(not x["label"] for x in seq))
                   / len(seq)) > 1e-3, "policy equals reference: the test would not discriminate"

        batch = next(iter(trainer.get_train_dataloader()))
        assert trainer.compute_loss(trainer.model, batch).item() == pytest.approx(expected, abs=1e-5)
        adapters = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
        assert adapters and all("lora_" in n for n in adapters)
        trainer.train()
        first = trainer.state.log_history[0]
        assert first["loss"] == pytest.approx(expected, abs=1e-5)
        assert first["kl"] == pytest.approx(z0, abs=1e-4)
        moved = [n for n, p in policy.named_parameters() if n in adapters and not torch.equal(p, adapters[n])]
        assert moved, "the adapters did not train"
        _base_params_unchanged(policy, pristine)
    assert_untouched(base, before, pristine)


def test_dpo_lora_loss_matches_the_formula_against_the_adapter_disabled_base(base, bare_tokenizer, tmp_path):
    rows = dpo_rows(5)
    beta = 0.3
    opts = PreferenceOptions(batch_size=5, max_steps=1, beta=beta, warmup_ratio=0.0, lr=1e-2, lora=LORA)
    tok = prepare_tokenizer(bare_tokenizer)
    pristine, before = copy.deepcopy(base), _snapshot(base)
    with lent_base(base):
        trainer = build_trainer(base, tok, rows, "dpo", opts, seed=4, work_dir=str(tmp_path))
        policy = trainer.accelerator.unwrap_model(trainer.model)
        assert trainer.ref_model is None and policy.get_base_model() is base
        _perturb_adapters(policy)

        def log_ratio(x, key):
            with policy.disable_adapter():
                assert summed_logp(policy, tok, x["prompt"], x[key]) == summed_logp(pristine, tok, x["prompt"], x[key])
            return summed_logp(policy, tok, x["prompt"], x[key]) - summed_logp(pristine, tok, x["prompt"], x[key])

        per_pair = [-np.log(sigmoid(beta * (log_ratio(x, "chosen") - log_ratio(x, "rejected")))) for x in rows]
        expected = float(sum(per_pair) / len(per_pair))
        assert abs(expected - np.log(2)) > 1e-3, "policy equals reference: the test would not discriminate"
        batch = next(iter(trainer.get_train_dataloader()))
        assert trainer.compute_loss(trainer.model, batch).item() == pytest.approx(expected, abs=1e-5)
        trainer.train()
        assert trainer.state.log_history[0]["loss"] == pytest.approx(expected, abs=1e-5)
        assert all("lora_" in n for n, p in policy.named_parameters() if p.requires_grad)
        _base_params_unchanged(policy, pristine)
    assert_untouched(base, before, pristine)


def test_adapter_dropout_survives_trls_disable_dropout(base, bare_tokenizer, tmp_path):
    """TRL zeroes every dropout module (the adapters' included); the LoRA dropout is set back, the base's not."""
    from peft.tuners.lora import LoraLayer

    pristine, before = copy.deepcopy(base), _snapshot(base)
    opts = PreferenceOptions(batch_size=4, max_steps=1, lora={**LORA, "dropout": 0.1})
    with lent_base(base):
        trainer = build_trainer(base, prepare_tokenizer(bare_tokenizer), kto_rows(8), "kto", opts, seed=0,
                                work_dir=str(tmp_path))
        policy = trainer.accelerator.unwrap_model(trainer.model)
        adapter = [d.p for m in policy.modules() if isinstance(m, LoraLayer) for d in m.lora_dropout.values()]
        assert adapter and set(adapter) == {0.1}
        others = [m.p for n, m in policy.named_modules() if isinstance(m, torch.nn.Dropout) and "lora_dropout" not in n]
        assert others and set(others) == {0}
    assert_untouched(base, before, pristine)  # the base's own dropout is back at its value


def test_every_run_of_train_many_starts_from_the_untouched_base(base, bare_tokenizer, tmp_path):
    pristine, before = copy.deepcopy(base), _snapshot(base)
    common = {"batch_size": 4, "max_steps": 3, "lr": 1e-2, "warmup_ratio": 0.0}
    lora, full = {**common, "lora": LORA}, common
    kto, dpo = kto_rows(12), dpo_rows(8)
    runs = [PreferenceRun(kto, "kto", tmp_path / "a", lora, 5), PreferenceRun(kto, "kto", tmp_path / "b", lora, 5),
            PreferenceRun(dpo, "dpo", tmp_path / "c", lora, 6), PreferenceRun(kto, "kto", tmp_path / "d", full, 5)]
    logs = train_many(base, runs, tokenizer=bare_tokenizer, progress=False)
    assert_untouched(base, before, pristine)

    def adapter(run):
        assert not (tmp_path / run / "model.safetensors").exists()  # the adapter only, not a model copy
        return load_file(tmp_path / run / "adapter_model.safetensors")

    def curve(log):
        return [s["loss"] for s in log["steps"]]

    a, b = adapter("a"), adapter("b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert curve(logs[0]) == curve(logs[1]) and len(set(curve(logs[0]))) > 1  # trained, identically
    n_adapter = sum(v.numel() for v in a.values())
    assert logs[0]["trainable_parameters"] == n_adapter < logs[3]["trainable_parameters"]
    assert logs[0]["options"]["lora"] == {**LORA, "dropout": 0.0} and logs[3]["options"]["lora"] is None
    cfg = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and sorted(cfg["target_modules"]) == ["c_attn", "c_proj"]

    # Each run equals a run of its own on a fresh copy of the base (the full one after three LoRA runs too).
    for run, rows, objective, opts, seed in (("a", kto, "kto", lora, 5), ("c", dpo, "dpo", lora, 6),
                                             ("d", kto, "kto", full, 5)):
        alone = train_preference(copy.deepcopy(pristine), rows, objective, tmp_path / f"{run}_alone",
                                 tokenizer=bare_tokenizer, options=opts, seed=seed, progress=False)
        assert curve(alone) == curve(logs["abcd".index(run)])
        name = "model.safetensors" if run == "d" else "adapter_model.safetensors"
        got, want = load_file(tmp_path / run / name), load_file(tmp_path / f"{run}_alone" / name)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got), run
    full_weights = load_file(tmp_path / "d" / "model.safetensors")
    assert not torch.equal(full_weights["transformer.h.0.attn.c_attn.weight"],
                           pristine.transformer.h[0].attn.c_attn.weight.detach())  # the full run trained


def test_lora_policy_is_evaluated_against_its_adapter_disabled_base_without_a_copy(base, bare_tokenizer, tmp_path):
    from datalign.studies.efficient_alignment.evaluation import (
        completion_logps,
        evaluate_policy_dir,
        evaluate_preferences,
    )
    from datalign.studies.efficient_alignment.steps import CachedEvaluation

    tok = prepare_tokenizer(bare_tokenizer)
    opts = {"batch_size": 4, "max_steps": 3, "lr": 1e-2, "warmup_ratio": 0.0, "lora": LORA}
    train_preference(base, kto_rows(12), "kto", tmp_path / "run", tokenizer=tok, options=opts, seed=1,
                     progress=False)
    pristine, before = copy.deepcopy(base), _snapshot(base)
    pairs = dpo_rows(6, seed=9)
    # What the align job does: the reference scored once from the base, each run put on the same base.
    cached = CachedEvaluation(base, tok, pairs, beta=0.1, max_length=None, batch_size=4, use_chat_template=True,
                              confidence=0.95, n_boot=100)
    with trained_policy(tmp_path / "run", base=base) as policy:
        assert policy.get_base_model() is base
        for key in ("chosen", "rejected"):
            with policy.disable_adapter():
                ref = completion_logps(policy, tok, [p["prompt"] for p in pairs], [p[key] for p in pairs],
                                       batch_size=4)
            assert np.array_equal(ref[0], cached.reference[key][0])
        ours = cached(policy, seed=3)
        assert ours == evaluate_preferences(policy, None, tok, pairs, beta=0.1, batch_size=4, n_boot=100, seed=3)
        assert ours == evaluate_preferences(policy, pristine, tok, pairs, beta=0.1, batch_size=4, n_boot=100, seed=3)
        assert ours["reward_margin"] != 0.0  # the adapter moved the policy
    assert_untouched(base, before, pristine)
    with pytest.raises(ConfigError, match="not a peft model"):
        evaluate_preferences(pristine, None, tok, pairs, batch_size=4, n_boot=100)
    # From disk: the adapter goes on the loaded reference, one model in memory.
    save_checkpoint(pristine, tok, tmp_path / "base")
    from_disk = evaluate_policy_dir(tmp_path / "run", tmp_path / "base", pairs, batch_size=4, n_boot=100, seed=3)
    assert {k: from_disk[k] for k in ours} == ours


@pytest.mark.parametrize(
    ("lora", "match"),
    [
        ({"r": 0}, "options.lora.r must be an integer >= 1, got 0"),
        ({"r": 4, "rank": 8}, "options.lora: unknown LoRA option(s) ['rank']"),
        ({"alpha": -1}, "options.lora.alpha must be a positive number"),
        ({"target_modules": ["q_proj"]}, "options.lora.target_modules: 'q_proj' matches no linear layer"),
        ({"target_modules": ["c_attn", "lm_head"]}, "options.lora.target_modules: 'lm_head' is the output head"),
    ],
)
def test_bad_lora_block_is_one_line_before_training(base, bare_tokenizer, tmp_path, lora, match):
    pristine, before = copy.deepcopy(base), _snapshot(base)
    with pytest.raises(ConfigError) as err:
        train_preference(base, kto_rows(8), "kto", tmp_path / "out", tokenizer=bare_tokenizer,
                         options={"batch_size": 4, "lora": lora}, progress=False)
    assert match in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
    assert_untouched(base, before, pristine)
