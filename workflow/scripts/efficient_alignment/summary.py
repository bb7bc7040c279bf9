"""The study's headline numbers (JSON and markdown)."""

from pathlib import Path

from datalign.core.runner import run_step
from datalign.studies.efficient_alignment.steps import summary_step


def main(smk):
    # judged files are <scaling>/<dataset>/judged/<budget>.json (the path table's names)
    judged = {}
    for path in smk.input.judged:
        judged.setdefault(Path(path).parent.parent.name, []).append(path)
    summary_step(smk.params.datasets, list(smk.input.fits), list(smk.input.points), smk.params.section,
                 smk.output.json, smk.output.markdown, judged_files=judged or None)


run_step(snakemake, main)  # noqa: F821
