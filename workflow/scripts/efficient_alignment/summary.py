"""The study's headline numbers (JSON and markdown)."""

from datalign.core.runner import run_step
from datalign.studies.efficient_alignment.steps import summary_step


def main(smk):
    summary_step(smk.params.datasets, list(smk.input.fits), list(smk.input.points), smk.params.section,
                 smk.output.json, smk.output.markdown)


run_step(snakemake, main)  # noqa: F821
