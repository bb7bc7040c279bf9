"""One measure's alignment of every Task2Vec set with every evaluation set, with CIs and costs."""

from pathlib import Path

from datalign.core.io import atomic_path, write_json
from datalign.core.runner import run_step
from datalign.data.prepare import read_split
from datalign.measures.registry import get_measure
from datalign.measures.table import alignment_table


def main(smk):
    name = smk.wildcards.measure
    measure = get_measure(name, **smk.params.options)
    sets = {}
    for label, path in zip(smk.params.labels, smk.input.splits, strict=True):
        sets[label] = read_split(Path(path).parent, Path(path).stem)
    table = alignment_table(sets, list(smk.params.targets), measure, bootstrap=smk.params.bootstrap,
                            confidence=smk.params.confidence, seed=smk.params.seed)
    with atomic_path(smk.output.table) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    write_json(smk.output.meta, {
        **table.attrs,
        "pairs": len(table),
        "seconds_per_pair": float(table["seconds"].mean()),
        # no datalign.core.io.provenance: it imports torch, which gzip and ngram never need
    })


run_step(snakemake, main)  # noqa: F821
