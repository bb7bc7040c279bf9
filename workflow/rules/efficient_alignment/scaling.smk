# The exponential plateau per method, the budget table, the plot, and the study summary.


rule ea_scaling:
    input:
        runs=lambda wc: [E.runs(wc.pref, b) for b in EA_BUDGETS],
        judged=lambda wc: ea_judged(wc.pref),
    output:
        fits=E.scaling_fits(),
        points=E.scaling_points(),
        table=E.budget_table(),
        plot=report(
            E.score_plot(),
            caption="../../report/efficient_alignment/score_vs_fraction.rst",
            category="Data-efficient alignment",
            labels={"dataset": "{pref}"},
        ),
    params:
        scaling=canonical(EA["scaling"]),
        budgets=EA_BUDGETS,
        methods=EA_METHODS,
        seed=derived_seed(config, "efficient_alignment", "scaling"),
    conda:
        CONDA_ENV
    log:
        P.log("efficient_alignment/scaling/{pref}"),
    threads: 1
    resources:
        mem_mb=res("ea_scaling", "mem_mb"),
        runtime=res("ea_scaling", "runtime"),
    script:
        "../../scripts/efficient_alignment/scaling.py"


rule ea_summary:
    input:
        fits=[E.scaling_fits(d) for d in EA_DATASETS],
        points=[E.scaling_points(d) for d in EA_DATASETS],
        judged=[f for d in EA_DATASETS for f in ea_judged(d)],
    output:
        json=E.summary_json(),
        markdown=E.summary_markdown(),
    params:
        datasets=EA_DATASETS,
        section=canonical(EA),
        preference_datasets=canonical({d: config["preference_datasets"][d] for d in EA_DATASETS}),
    conda:
        CONDA_ENV
    log:
        P.log("efficient_alignment/summary"),
    threads: 1
    resources:
        mem_mb=res("ea_summary", "mem_mb"),
        runtime=res("ea_summary", "runtime"),
    script:
        "../../scripts/efficient_alignment/summary.py"
