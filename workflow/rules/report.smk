# Training curves and the study summary (the numbers the README quotes).


rule loss_curves:
    input:
        logs=trust_pulled(
            lambda wc: [f"{R}/checkpoints/{wc.setting}/{t}/train_log.json" for t in study.train_sets(config, wc.setting)]
        ),
    output:
        plot=report(
            f"{R}/plots/loss_curves_{{setting}}.png",
            caption="../report/loss_curves.rst",
            category="Training",
            labels={"setting": "{setting}"},
        ),
    params:
        names=lambda wc: study.train_sets(config, wc.setting),
    conda:
        CONDA_ENV
    log:
        "logs/loss_curves/{setting}.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    script:
        "../scripts/loss_curves.py"


rule summary:
    input:
        stats=trust_pulled(expand(f"{R}/correlation/{{setting}}/stats.json", setting=SETTINGS)),
        points=trust_pulled(expand(f"{R}/correlation/{{setting}}/points.csv", setting=SETTINGS)),
        pairs=trust_pulled(rules.alignment.output.pairs),
        diversity=trust_pulled(rules.alignment.output.diversity),
    output:
        json=f"{R}/summary.json",
        markdown=f"{R}/summary.md",
    params:
        settings=SETTINGS,
        datasets=canonical({name: config["datasets"][name] for name in study.datasets_used(config)}),
        config=canonical(config),
    conda:
        CONDA_ENV
    log:
        "logs/summary.log",
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    script:
        "../scripts/summary.py"
