"""Compare the encoders of one labelled dataset: rankings, augmentation effects, choice by predicted gap."""

from datalign.core.runner import run_step
from datalign.studies.spectral_imbalance.workflow_steps import compare_step


def main(smk):
    compare_step(smk.wildcards.labelled, dict(smk.params.compare), smk.params.seed,
                 {k: list(v) for k, v in smk.input.items()}, dict(smk.output))


run_step(snakemake, main)  # noqa: F821
