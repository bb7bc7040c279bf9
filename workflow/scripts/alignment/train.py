"""Train one model of a setting: from scratch (pretrain) or from the base (finetune).

With ``num_processes > 1`` the run goes through ``accelerate launch`` (one
process per GPU, or gloo processes on the CPU); see datalign.training.launch.
"""

import logging
from pathlib import Path

from datalign.core.io import provenance
from datalign.core.runner import run_step
from datalign.training.launch import TrainJob, launch_train_job

log = logging.getLogger("datalign")


def main(smk):
    setting, train_set = smk.wildcards.setting, smk.wildcards.train_set
    exp = smk.params.experiment
    if setting == "pretrain":
        source = {"architecture": smk.params.architecture}
    else:
        base = str(Path(smk.input.base).parent) if hasattr(smk.input, "base") else exp["base"]
        source = {"base": base, "base_dtype": exp.get("base_dtype")}
    job = TrainJob(
        run_name=f"{setting}/{train_set}",
        tokens=str(smk.input.tokens),
        tokenizer=str(Path(smk.input.tokenizer).parent),
        out_dir=str(Path(smk.output.model).parent),
        seq_len=exp["seq_len"], token_budget=exp["token_budget"], batch_size=exp["batch_size"],
        lr=exp["lr"], seed=smk.params.seed, weight_decay=exp["weight_decay"],
        warmup_frac=exp["warmup_frac"], grad_clip=exp["grad_clip"],
        mixed_precision=exp["mixed_precision"], threads=int(smk.threads),
        record={"provenance": provenance(exp, seed=smk.params.seed, setting=setting,
                                         train_set=train_set)},
        **source,
    )
    n = int(exp.get("num_processes", 1))
    log.info("%s on %s: %d process(es)", setting, train_set, n)
    launch_train_job(job, num_processes=n)


run_step(snakemake, main)  # noqa: F821
