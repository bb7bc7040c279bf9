# Does alignment predict loss? Points, statistics and the scatter plot per setting.


rule correlate:
    input:
        alignment=trust_pulled(rules.alignment.output.pairs),
        losses=trust_pulled(
            lambda wc: [loss_file(wc.setting, t, e) for t, e in study.evaluation_pairs(config, wc.setting)]
        ),
    output:
        points=f"{R}/correlation/{{setting}}/points.csv",
        stats=f"{R}/correlation/{{setting}}/stats.json",
        scatter=report(
            f"{R}/correlation/{{setting}}/scatter.png",
            caption="../report/scatter.rst",
            category="Alignment predicts loss",
            labels={"setting": "{setting}"},
        ),
    params:
        pairs=lambda wc: study.evaluation_pairs(config, wc.setting),
        correlation=canonical(config["correlation"]),
        seed=lambda wc: study.derived_seed(config, "correlate", wc.setting),
    conda:
        CONDA_ENV
    log:
        "logs/correlate/{setting}.log",
    threads: 1
    resources:
        mem_mb=res("correlate", "mem_mb"),
        runtime=res("correlate", "runtime"),
    script:
        "../scripts/correlate.py"
