"""Fit one encoder on a labelled dataset's train split; cache the features of both splits."""

from datalign.core.runner import run_step
from datalign.studies.spectral_imbalance.encoding import encode_step


def main(smk):
    encode_step(
        smk.wildcards.labelled, smk.wildcards.encoder, dict(smk.params.spec), smk.input.data,
        {"train": smk.output.train, "test": smk.output.test}, smk.output.info, smk.params.seed,
        probe_dir=smk.input.get("probe"), threads=smk.threads,
    )


run_step(snakemake, main)  # noqa: F821
