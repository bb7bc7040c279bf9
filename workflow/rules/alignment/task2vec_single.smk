# Task2Vec, one set per job (resources.task2vec.sets_per_job: 1, the default): one
# Fisher embedding per batch of a (dataset, split). Included by task2vec.smk.


rule task2vec:
    input:
        probe=P.probe_model(),
        tokens=P.tokens(),
    output:
        embeddings=A.embeddings(),
        meta=A.embeddings_meta(),
    params:
        task2vec=canonical(config["task2vec"]),
        seed=lambda wc: derived_seed(config, "task2vec", wc.dataset, wc.split),
    conda:
        CONDA_ENV
    log:
        P.log("task2vec/{dataset}_{split}"),
    benchmark:
        P.benchmark("task2vec/{dataset}_{split}")
    threads: rule_threads("task2vec")
    resources:
        mem_mb=res("task2vec", "mem_mb"),
        runtime=res("task2vec", "runtime"),
        gpu=res("task2vec", "gpu"),
    script:
        "../../scripts/alignment/task2vec.py"
