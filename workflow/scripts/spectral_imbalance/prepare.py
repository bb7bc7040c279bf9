"""Prepare one labelled dataset: balanced (equal per class), stratified train/test, manifest."""

from datalign.core.runner import run_step
from datalign.data.labelled.prepare import prepare_labelled


def main(smk):
    prepare_labelled(smk.wildcards.labelled, smk.params.spec, smk.output.data, seed=smk.params.seed,
                     section="labelled_datasets")


run_step(snakemake, main)  # noqa: F821
