# Cross-entropy and perplexity of every model on every evaluation set of its setting.


rule evaluate:
    input:
        model=A.checkpoint(),
        tokens=lambda wc: P.tokens(wc.eval_set, "test"),
    output:
        loss=A.loss(),
    params:
        experiment=evaluation_params,
    conda:
        CONDA_ENV
    log:
        P.log("evaluate/{setting}_{train_set}_{eval_set}"),
    threads: rule_threads("evaluate")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
        gpu=res("evaluate", "gpu"),
    script:
        "../../scripts/alignment/evaluate.py"


rule baseline:
    input:
        unpack(baseline_inputs),
    output:
        loss=A.baseline_loss(),
    params:
        experiment=evaluation_params,
        reference=lambda wc: canonical(plan.baseline_reference(config, wc.setting)),
    conda:
        CONDA_ENV
    log:
        P.log("baseline/{setting}_{eval_set}"),
    threads: rule_threads("evaluate")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
        gpu=res("evaluate", "gpu"),
    script:
        "../../scripts/alignment/baseline.py"
