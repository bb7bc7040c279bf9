"""Prepare one registry dataset: text, deterministic split, manifest."""

from pathlib import Path

from datalign.core.runner import run_step
from datalign.data import prepare_dataset


def main(smk):
    name = smk.wildcards.dataset
    components = {Path(m).parent.name: Path(m).parent for m in smk.input.components}
    prepare_dataset(
        name, smk.params.spec, Path(smk.output.manifest).parent, seed=smk.params.seed,
        component_dirs=components or None,
    )


run_step(snakemake, main)  # noqa: F821
