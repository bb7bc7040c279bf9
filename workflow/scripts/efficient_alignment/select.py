"""Select every (method, seed) subset of one budget of one preference dataset."""

from pathlib import Path

from datalign.core.runner import run_step
from datalign.studies.efficient_alignment.steps import select_step


def method_and_seed(path):
    """(method, listed seed) of a selection file ``<method>_seed<seed>.npz`` (the path table's name)."""
    method, seed = Path(path).stem.rsplit("_seed", 1)
    return method, seed


def main(smk):
    # The outputs name their (method, seed): params are canonical (sorted) mappings, not in output order.
    outputs = {method_and_seed(p): p for p in smk.output.selections}
    methods = {m: smk.params.methods[m] for m, _ in outputs}
    select_step(smk.wildcards.pref, smk.wildcards.budget, smk.input.embeddings, smk.input.quality,
                methods, smk.params.seeds, smk.params.objective, outputs)


run_step(snakemake, main)  # noqa: F821
