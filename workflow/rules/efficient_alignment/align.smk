# Align the policy on every selected subset of one budget (a separate run per method x seed,
# each from the same base, one after another in one process) and evaluate each run
# on the held-out test pairs (with the judge on, also generate each run's completions).


rule ea_align:
    input:
        unpack(ea_align_inputs),
    output:
        **ea_align_outputs(),
    params:
        policy=EA["policy"],
        objective=EA["objective"],
        training=canonical(EA["training"]),
        evaluation=canonical(ea_plan.align_evaluation(config)),
        generation=canonical(ea_plan.generation(config)),
        seeds=ea_run_seeds,
    conda:
        CONDA_ENV
    log:
        P.log("efficient_alignment/align/{pref}_{budget}"),
    benchmark:
        P.benchmark("efficient_alignment/align/{pref}_{budget}")
    threads: rule_threads("ea_align")
    resources:
        mem_mb=res("ea_align", "mem_mb"),
        runtime=res("ea_align", "runtime"),
        gpu=res("ea_align", "gpu"),
    script:
        "../../scripts/efficient_alignment/align.py"
