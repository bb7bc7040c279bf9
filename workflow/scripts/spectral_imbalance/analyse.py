"""Per-class spectra, linear probes and the Gaussian prediction of one encoder's held-out features."""

from datalign.core.runner import run_step
from datalign.studies.spectral_imbalance.workflow_steps import analyse_step


def main(smk):
    analyse_step(smk.input.features, dict(smk.params.analysis), smk.params.seed, dict(smk.output),
                 title=f"{smk.wildcards.encoder} on {smk.wildcards.labelled}")


run_step(snakemake, main)  # noqa: F821
