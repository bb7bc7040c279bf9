# Training curves and the study summary (the numbers the README quotes).


rule loss_curves:
    input:
        logs=lambda wc: [A.train_log(wc.setting, t) for t in plan.train_sets(config, wc.setting)],
    output:
        plot=report(
            A.loss_curves(),
            caption="../../report/loss_curves.rst",
            category="Training",
            labels={"setting": "{setting}"},
        ),
    params:
        names=lambda wc: plan.train_sets(config, wc.setting),
    conda:
        CONDA_ENV
    log:
        P.log("loss_curves/{setting}"),
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    script:
        "../../scripts/alignment/loss_curves.py"


rule summary:
    input:
        stats=[A.correlation_stats(s) for s in SETTINGS],
        points=[A.correlation_points(s) for s in SETTINGS],
        pairs=A.alignment_table(),
        diversity=A.diversity_table(),
    output:
        json=A.summary_json(),
        markdown=A.summary_markdown(),
    params:
        settings=SETTINGS,
        datasets=canonical({name: config["datasets"][name] for name in plan.datasets_used(config)}),
        config=canonical(config),
    conda:
        CONDA_ENV
    log:
        P.log("summary"),
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    script:
        "../../scripts/alignment/summary.py"
