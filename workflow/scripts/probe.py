"""The probe network: a hub model saved locally, or a tiny GPT-2 pre-trained briefly here."""

import logging
from pathlib import Path

import numpy as np

from datalign.io import provenance
from datalign.models import build_gpt2, load_model, save_checkpoint
from datalign.runner import run_step
from datalign.tokenizer import load_tokenizer
from datalign.tokens import TokenizedSplit, training_chunks
from datalign.train import train_causal_lm

log = logging.getLogger("datalign")


def main(smk):
    cfg = smk.params.probe
    out_dir = Path(smk.output.model).parent
    tokenizer = load_tokenizer(str(Path(smk.input.tokenizer).parent))
    if cfg.get("pretrained"):
        model = load_model(cfg["pretrained"])
        save_checkpoint(model, tokenizer, out_dir, extra_files={
            "train_log.json": {"pretrained": cfg["pretrained"], "steps": [],
                               "provenance": provenance(cfg)},
        })
        return
    pre = cfg["pretrain"]
    model = build_gpt2(cfg["architecture"], vocab_size=len(tokenizer),
                       eos_id=tokenizer.eos_token_id, seed=smk.params.seed)
    per_dataset = pre["token_budget"] // len(smk.input.tokens)
    parts = []
    for path in smk.input.tokens:
        split = TokenizedSplit.load(path, name=f"{Path(path).parent.name}/train")
        parts.append(training_chunks(split, pre["seq_len"], per_dataset, smk.params.seed))
    chunks = np.concatenate(parts)
    chunks = chunks[np.random.default_rng(smk.params.seed).permutation(len(chunks))]
    log.info("probe pre-training on %d chunks of %d tokens from %s", len(chunks), pre["seq_len"],
             ", ".join(Path(p).parent.name for p in smk.input.tokens))
    train_log = train_causal_lm(
        model, chunks, batch_size=pre["batch_size"], lr=pre["lr"], seed=smk.params.seed,
        weight_decay=pre["weight_decay"], warmup_frac=pre["warmup_frac"], grad_clip=pre["grad_clip"],
        mixed_precision=pre["mixed_precision"], run_name="probe",
    )
    record = train_log.to_json()
    record["provenance"] = provenance(cfg, seed=smk.params.seed)
    save_checkpoint(model, tokenizer, out_dir, extra_files={"train_log.json": record})


run_step(snakemake, main)  # noqa: F821
