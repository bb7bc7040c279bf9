"""The exponential plateau per selection method, the budget table and the score plot of one dataset."""

from datalign.core.runner import run_step
from datalign.studies.efficient_alignment.steps import scaling_step


def main(smk):
    scaling_step(smk.wildcards.pref, list(smk.input.runs), smk.params.methods, smk.params.scaling,
                 smk.params.seed, smk.output.fits, smk.output.points, smk.output.table, smk.output.plot,
                 judged_files=list(smk.input.judged))


run_step(snakemake, main)  # noqa: F821
