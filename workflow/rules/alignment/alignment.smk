# Diversity of every embedded set and alignment between every pair, with CIs.


rule alignment:
    input:
        embeddings=[A.embeddings(es.dataset, es.split) for es in EMBEDDING_SETS],
    output:
        diversity=A.diversity_table(),
        pairs=A.alignment_table(),
        square=A.alignment_square(),
        heatmap=report(
            A.heatmap(),
            caption="../../report/heatmap.rst",
            category="Alignment",
        ),
        diversity_plot=report(
            A.diversity_plot(),
            caption="../../report/diversity.rst",
            category="Alignment",
        ),
    params:
        labels=[es.label for es in EMBEDDING_SETS],
        alignment=canonical(config["alignment"]),
        distance=config["task2vec"]["distance"],
        seed=derived_seed(config, "alignment"),
    conda:
        CONDA_ENV
    log:
        P.log("alignment"),
    threads: 1
    resources:
        mem_mb=res("alignment", "mem_mb"),
        runtime=res("alignment", "runtime"),
    script:
        "../../scripts/alignment/alignment.py"
