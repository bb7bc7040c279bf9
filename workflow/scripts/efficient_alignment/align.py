"""Align the policy on every (method, seed) subset of one budget; evaluate each run on the test pairs."""

from pathlib import Path

from datalign.core.runner import run_step
from datalign.studies.efficient_alignment.steps import align_step


def main(smk):
    files = smk.input
    policy = smk.params.policy
    for key in ("policy_probe", "policy_policy"):
        if key in files.keys():  # noqa: SIM118 - a Snakemake Namedlist: `in` would test its values
            policy = str(Path(files[key]).parent)
    # Each selection file names its (method, seed): <method>_seed<seed>.npz (the path table's name).
    selections = {tuple(Path(p).stem.rsplit("_seed", 1)): p for p in files.selections}
    align_step(smk.wildcards.pref, smk.wildcards.budget, Path(files.train).parent, selections, policy,
               smk.params.objective, smk.params.training, smk.params.evaluation, smk.params.seeds,
               smk.output.runs, generation=smk.params.generation,
               completions_out=smk.output.get("completions"))


run_step(snakemake, main)  # noqa: F821
