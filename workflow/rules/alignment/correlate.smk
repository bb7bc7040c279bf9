# Does alignment predict loss? Points, statistics and the scatter plot per setting.


rule correlate:
    input:
        alignment=A.alignment_table(),
        losses=lambda wc: [A.loss(wc.setting, t, e) for t, e in plan.evaluation_pairs(config, wc.setting)],
        baselines=lambda wc: [A.baseline_loss(wc.setting, e) for e in plan.eval_sets(config, wc.setting)],
    output:
        points=A.correlation_points(),
        stats=A.correlation_stats(),
        scatter=report(
            A.correlation_scatter(),
            caption="../../report/scatter.rst",
            category="Alignment predicts loss",
            labels={"setting": "{setting}"},
        ),
    params:
        pairs=lambda wc: plan.evaluation_pairs(config, wc.setting),
        eval_sets=lambda wc: plan.eval_sets(config, wc.setting),
        correlation=canonical(config["correlation"]),
        seed=lambda wc: derived_seed(config, "correlate", wc.setting),
    conda:
        CONDA_ENV
    log:
        P.log("correlate/{setting}"),
    threads: 1
    resources:
        mem_mb=res("correlate", "mem_mb"),
        runtime=res("correlate", "runtime"),
    script:
        "../../scripts/alignment/correlate.py"
