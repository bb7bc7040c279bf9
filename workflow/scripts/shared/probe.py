"""The probe network: a hub model saved locally, or a tiny GPT-2 pre-trained briefly here.

The pre-training mixes the ``probe.pretrain.datasets`` train splits equally by
tokens and runs like any training job (``num_processes`` included, see
datalign.training.launch).
"""

from pathlib import Path

from datalign.core.io import provenance
from datalign.core.runner import run_step
from datalign.lm.models import load_model, save_checkpoint
from datalign.lm.tokenizer import load_tokenizer
from datalign.training.launch import TrainJob, launch_train_job


def main(smk):
    cfg = smk.params.probe
    out_dir = Path(smk.output.model).parent
    tokenizer_dir = str(Path(smk.input.tokenizer).parent)
    if cfg.get("pretrained"):
        model = load_model(cfg["pretrained"])
        save_checkpoint(model, load_tokenizer(tokenizer_dir), out_dir, extra_files={
            "train_log.json": {"pretrained": cfg["pretrained"], "steps": [],
                               "provenance": provenance(cfg)},
        })
        return
    pre = cfg["pretrain"]
    job = TrainJob(
        run_name="probe",
        tokens=[str(p) for p in smk.input.tokens],
        tokenizer=tokenizer_dir,
        out_dir=str(out_dir),
        architecture=cfg["architecture"],
        seq_len=pre["seq_len"], token_budget=pre["token_budget"], batch_size=pre["batch_size"],
        lr=pre["lr"], seed=smk.params.seed, weight_decay=pre["weight_decay"],
        warmup_frac=pre["warmup_frac"], grad_clip=pre["grad_clip"],
        mixed_precision=pre["mixed_precision"], threads=int(smk.threads),
        record={"provenance": provenance(cfg, seed=smk.params.seed)},
    )
    launch_train_job(job, num_processes=int(pre.get("num_processes", 1)))


run_step(snakemake, main)  # noqa: F821
