"""The resolved study config (files merged, defaults filled) and the plan derived from it.

DVC reads its stages' parameters from this file, so a stage reruns when a value
it depends on changes, whichever config file or schema default that value came from.
"""

import yaml

from datalign.core.io import write_text
from datalign.core.runner import run_step


def main(smk):
    resolved = {"config": dict(smk.params.config), "plan": dict(smk.params.plan)}
    header = "# Written by the workflow (rule study_config): the parameters DVC tracks.\n"
    write_text(smk.output.study, header + yaml.safe_dump(resolved, sort_keys=True))


run_step(snakemake, main)  # noqa: F821
