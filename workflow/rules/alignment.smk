# Diversity of every embedded set and alignment between every pair, with CIs.


rule alignment:
    input:
        embeddings=trust_pulled([embedding_file(es) for es in EMBEDDING_SETS]),
    output:
        diversity=f"{R}/alignment/diversity.csv",
        pairs=f"{R}/alignment/alignment.csv",
        square=f"{R}/alignment/square.csv",
        heatmap=report(
            f"{R}/alignment/heatmap.png",
            caption="../report/heatmap.rst",
            category="Alignment",
        ),
        diversity_plot=report(
            f"{R}/alignment/diversity.png",
            caption="../report/diversity.rst",
            category="Alignment",
        ),
    params:
        labels=[es.label for es in EMBEDDING_SETS],
        alignment=canonical(config["alignment"]),
        distance=config["task2vec"]["distance"],
        seed=study.derived_seed(config, "alignment"),
    conda:
        CONDA_ENV
    log:
        "logs/alignment.log",
    threads: 1
    resources:
        mem_mb=res("alignment", "mem_mb"),
        runtime=res("alignment", "runtime"),
    script:
        "../scripts/alignment.py"
