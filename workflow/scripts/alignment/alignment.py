"""Diversity of every embedded set, alignment between every pair, heatmap."""

from pathlib import Path

import numpy as np
import pandas as pd

from datalign.core.io import atomic_path
from datalign.core.runner import run_step
from datalign.plotting.charts import alignment_heatmap, coefficient_bars
from datalign.task2vec.coefficients import alignment_matrix, diversity, to_square


def _write_csv(df: pd.DataFrame, path: str) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def main(smk):
    labels = list(smk.params.labels)
    stats = smk.params.alignment
    embeddings = {}
    for label, path in zip(labels, smk.input.embeddings, strict=True):
        with np.load(path) as z:
            embeddings[label] = z["embeddings"]
    common = dict(kind=smk.params.distance, bootstrap=stats["bootstrap"],
                  confidence=stats["confidence"], seed=smk.params.seed)
    rows = []
    for label in labels:
        d = diversity(embeddings[label], **common)
        rows.append({"set": label, **d.as_dict()})
    div = pd.DataFrame(rows)
    _write_csv(div, smk.output.diversity)

    pairs = alignment_matrix(embeddings, labels, labels, **common)
    _write_csv(pairs, smk.output.pairs)
    square = to_square(pairs, labels, labels)
    with atomic_path(smk.output.square) as tmp:
        square.to_csv(tmp, float_format="%.6g")

    short = [lbl.replace("/train", " (train)").replace("/test", " (test)") for lbl in labels]
    values = square.to_numpy()
    # The coefficients of one probe span a narrow band; a [0, 1] scale would hide it.
    alignment_heatmap(values, short, short, Path(smk.output.heatmap),
                      title="Task2Vec alignment between datasets",
                      vmin=float(np.nanmin(values)), vmax=float(np.nanmax(values)))
    coefficient_bars(short, div["value"].to_numpy(), div["ci_low"].to_numpy(),
                     div["ci_high"].to_numpy(), Path(smk.output.diversity_plot),
                     title="Task2Vec diversity (95% bootstrap CI)", ylabel="diversity")


run_step(snakemake, main)  # noqa: F821
