# Cheap alignment measures beside Task2Vec (datalign.measures): one job per measure on
# the prepared documents of the Task2Vec sets, then every measure's power to predict the
# loss, Task2Vec's included, against its cost.

from datalign.measures.registry import resolve_options

MEASURES = config["measures"]["run"]
# The sets and labels Task2Vec embeds (train splits of training sets, test splits of
# evaluation sets); every set is compared with every evaluation set's test split.
MEASURE_TARGETS = sorted({plan.eval_key(e) for s in SETTINGS for e in plan.eval_sets(config, s)})
# Where the task2vec rule's benchmark lands (its cost per set, read when present).
TASK2VEC_BENCHMARK = P.benchmark("task2vec/{dataset}_{split}")


wildcard_constraints:
    measure="[a-z][a-z0-9_]*",


rule measure_alignment:
    input:
        splits=[P.data_split(es.dataset, es.split) for es in EMBEDDING_SETS],
    output:
        table=A.measure_table(),
        meta=A.measure_meta(),
    params:
        labels=[es.label for es in EMBEDDING_SETS],
        targets=MEASURE_TARGETS,
        # the measure's own keys, defaults filled: an edit to one measure reruns its job only
        options=lambda wc: canonical(resolve_options(wc.measure, config["measures"].get(wc.measure))),
        bootstrap=config["measures"]["bootstrap"],
        confidence=config["measures"]["confidence"],
        seed=lambda wc: derived_seed(config, "measures", wc.measure),
    conda:
        CONDA_ENV
    log:
        P.log("measures/{measure}"),
    benchmark:
        P.benchmark("measures/{measure}")
    threads: rule_threads("measure_alignment")
    resources:
        mem_mb=res("measure_alignment", "mem_mb") or 2000,
        runtime=res("measure_alignment", "runtime") or 30,
    script:
        "../../scripts/alignment/measure_alignment.py"


rule measure_comparison:
    input:
        tables=[A.measure_table(m) for m in MEASURES],
        metas=[A.measure_meta(m) for m in MEASURES],
        task2vec=A.alignment_table(),
        points=[A.correlation_points(s) for s in SETTINGS],
    output:
        table=A.measures_comparison(),
        markdown=A.measures_comparison_markdown(),
        plot=report(
            A.measures_comparison_plot(),
            caption="../../report/measures.rst",
            category="Alignment predicts loss",
        ),
    params:
        measures=MEASURES,
        settings=SETTINGS,
        pairs={s: plan.evaluation_pairs(config, s) for s in SETTINGS},
        estimator=config["task2vec"]["estimator"],
        # Task2Vec's cost per set: its job's benchmark, or the embedding time in its
        # metadata; read if present, not inputs (a DVC pull brings neither necessarily).
        task2vec_cost={
            es.label: {
                "benchmark": TASK2VEC_BENCHMARK.format(dataset=es.dataset, split=es.split),
                "meta": A.embeddings_meta(es.dataset, es.split),
            }
            for es in EMBEDDING_SETS
        },
        correlation=canonical(config["correlation"]),
        seed=derived_seed(config, "measure_comparison"),
    conda:
        CONDA_ENV
    log:
        P.log("measure_comparison"),
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    script:
        "../../scripts/alignment/measure_comparison.py"
