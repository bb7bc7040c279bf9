"""Prepare one preference dataset: KTO rows, a held-out test split by group, a manifest."""

from pathlib import Path

from datalign.core.runner import run_step
from datalign.data.preference import prepare_preference_dataset


def main(smk):
    prepare_preference_dataset(smk.wildcards.pref, smk.params.spec, Path(smk.output.manifest).parent,
                               seed=smk.params.seed)


run_step(snakemake, main)  # noqa: F821
