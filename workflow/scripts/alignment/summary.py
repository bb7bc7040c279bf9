"""The study summary: correlation and its robustness per setting, what training bought
against the reference loss, and the mixture interventions against their targets."""

import pandas as pd

from datalign.core.io import provenance, read_json, write_json, write_text
from datalign.core.runner import run_step
from datalign.studies.alignment import plan as study
from datalign.studies.alignment.summary import (
    intervention_targets,
    mixture_interventions,
    reference_outcome,
    summary_markdown,
    untargeted_families,
)


def main(smk):
    pairs = pd.read_csv(smk.input.pairs)
    config = smk.params.config
    settings = smk.params.settings
    correlation = {s: read_json(p) for s, p in zip(settings, smk.input.stats, strict=True)}
    points = {s: pd.read_csv(p) for s, p in zip(settings, smk.input.points, strict=True)}
    eval_sets = sorted({e for s in settings for e in study.eval_sets(config, s)})
    targets = intervention_targets(config, eval_sets)
    summary = {
        "correlation": correlation,
        "reference": {s: reference_outcome(points[s]) for s in settings},
        "interventions": mixture_interventions(smk.params.datasets, pairs, targets, points),
        "intervention_targets": targets,
        "untargeted_families": untargeted_families(smk.params.datasets, targets),
        "diversity": pd.read_csv(smk.input.diversity).to_dict(orient="records"),
        "provenance": provenance(seed=config["seed"]),
    }
    write_json(smk.output.json, summary)
    write_text(smk.output.markdown, summary_markdown(summary))


run_step(snakemake, main)  # noqa: F821
