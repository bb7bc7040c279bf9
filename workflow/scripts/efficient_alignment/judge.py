"""Judge the completions of one budget's runs (and the base) against the reference completions."""

from pathlib import Path

from datalign.core.runner import run_step
from datalign.studies.efficient_alignment.steps import judge_step


def main(smk):
    files = smk.input
    judge_step(smk.wildcards.pref, smk.wildcards.budget, Path(files.test).parent, files.runs, files.completions,
               smk.params.judge, smk.params.judge_model, smk.params.evaluation, smk.output.judged)


run_step(snakemake, main)  # noqa: F821
