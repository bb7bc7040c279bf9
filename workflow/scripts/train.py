"""Train one model of a setting: from scratch (pretrain) or from the base (finetune)."""

import logging
from pathlib import Path

from datalign.io import provenance
from datalign.models import build_gpt2, load_model, save_checkpoint
from datalign.runner import run_step
from datalign.tokenizer import load_tokenizer
from datalign.tokens import TokenizedSplit, training_chunks
from datalign.train import train_causal_lm

log = logging.getLogger("datalign")


def main(smk):
    setting, train_set = smk.wildcards.setting, smk.wildcards.train_set
    exp = smk.params.experiment
    tokenizer = load_tokenizer(str(Path(smk.input.tokenizer).parent))
    if setting == "pretrain":
        model = build_gpt2(smk.params.architecture, vocab_size=len(tokenizer),
                           eos_id=tokenizer.eos_token_id, seed=smk.params.seed)
    else:
        base = str(Path(smk.input.base).parent) if hasattr(smk.input, "base") else exp["base"]
        model = load_model(base)
    split = TokenizedSplit.load(smk.input.tokens, name=f"{train_set}/train")
    chunks = training_chunks(split, exp["seq_len"], exp["token_budget"], smk.params.seed)
    log.info("%s on %s: %d chunks of %d tokens", setting, train_set, len(chunks), exp["seq_len"])
    train_log = train_causal_lm(
        model, chunks, batch_size=exp["batch_size"], lr=exp["lr"], seed=smk.params.seed,
        weight_decay=exp["weight_decay"], warmup_frac=exp["warmup_frac"],
        grad_clip=exp["grad_clip"], mixed_precision=exp["mixed_precision"],
        run_name=f"{setting}/{train_set}",
    )
    record = train_log.to_json()
    record["provenance"] = provenance(exp, seed=smk.params.seed, setting=setting, train_set=train_set)
    save_checkpoint(model, tokenizer, Path(smk.output.model).parent,
                    extra_files={"train_log.json": record})


run_step(snakemake, main)  # noqa: F821
