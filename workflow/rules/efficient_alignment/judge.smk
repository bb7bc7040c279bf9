# With the judge on (efficient_alignment.evaluation.judge): a reward model scores every run's
# greedy completions of the held-out prompts (written by ea_align) against the reference
# (chosen) completions. Its params are the judge's alone: a new reward model rescores, it
# does not retrain.


rule ea_judge:
    input:
        unpack(ea_judge_inputs),
    output:
        judged=E.judged(),
    params:
        judge=canonical(EA_JUDGE),
        judge_model=EA_JUDGE["model"] if EA_JUDGE else None,
        evaluation=canonical(ea_plan.align_evaluation(config)),
    conda:
        CONDA_ENV
    log:
        P.log("efficient_alignment/judge/{pref}_{budget}"),
    benchmark:
        P.benchmark("efficient_alignment/judge/{pref}_{budget}")
    threads: rule_threads("ea_judge")
    resources:
        mem_mb=res("ea_judge", "mem_mb"),
        runtime=res("ea_judge", "runtime"),
        gpu=res("ea_judge", "gpu"),
    script:
        "../../scripts/efficient_alignment/judge.py"
