"""The study summary: how well spectra and the Gaussian prediction rank per-class error (JSON + markdown)."""

from datalign.core.runner import run_step
from datalign.studies.spectral_imbalance.summary import write_summary


def main(smk):
    write_summary(smk.params.datasets, [tuple(p) for p in smk.params.pairs], dict(smk.params.study),
                  {k: list(v) for k, v in smk.input.items()}, smk.output.json, smk.output.markdown)


run_step(snakemake, main)  # noqa: F821
