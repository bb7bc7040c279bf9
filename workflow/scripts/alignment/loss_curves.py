"""Training loss curves of every model of one setting."""

from pathlib import Path

import numpy as np

from datalign.core.io import read_json
from datalign.core.runner import run_step
from datalign.plotting.charts import loss_curves


def main(smk):
    curves = {}
    for name, path in zip(smk.params.names, smk.input.logs, strict=True):
        records = read_json(path)["steps"]
        curves[name] = (np.array([r["tokens_seen"] for r in records]),
                        np.array([r["loss"] for r in records]))
    loss_curves(curves, Path(smk.output.plot), title=f"Training loss ({smk.wildcards.setting})",
                smooth=5)


run_step(snakemake, main)  # noqa: F821
