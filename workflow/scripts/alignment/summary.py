"""The study summary: correlation statistics and mixture interventions, as JSON and Markdown."""

import pandas as pd

from datalign.core.io import provenance, read_json, write_json, write_text
from datalign.core.runner import run_step
from datalign.studies.alignment import plan as study
from datalign.studies.alignment.summary import mixture_interventions, summary_markdown


def main(smk):
    pairs = pd.read_csv(smk.input.pairs)
    config = smk.params.config
    correlation = {s: read_json(p) for s, p in zip(smk.params.settings, smk.input.stats, strict=True)}
    eval_sets = sorted({e for s in smk.params.settings for e in study.eval_sets(config, s)})
    summary = {
        "correlation": correlation,
        "interventions": mixture_interventions(smk.params.datasets, pairs, eval_sets),
        "diversity": pd.read_csv(smk.input.diversity).to_dict(orient="records"),
        "provenance": provenance(seed=config["seed"]),
    }
    write_json(smk.output.json, summary)
    write_text(smk.output.markdown, summary_markdown(summary))


run_step(snakemake, main)  # noqa: F821
