"""Embed every training row of one preference dataset and score its completion NLL."""

from pathlib import Path

from datalign.core.runner import run_step
from datalign.studies.efficient_alignment.steps import embed_step


def model_path(name, files, role):
    """The directory of a model named in the config: the probe or the exported policy, else the name (hub)."""
    for key in (f"{role}_probe", f"{role}_policy"):
        if key in files.keys():  # noqa: SIM118 - a Snakemake Namedlist: `in` would test its values
            return str(Path(files[key]).parent)
    return name


def main(smk):
    embed_step(
        Path(smk.input.train).parent, smk.output.embeddings, smk.output.quality,
        smk.params.embedding, model_path(smk.params.embedding_model, smk.input, "embedder"),
        smk.params.quality, model_path(smk.params.quality_model, smk.input, "scorer"),
    )


run_step(snakemake, main)  # noqa: F821
