# Cross-entropy and perplexity of every model on every evaluation set of its setting.


rule evaluate:
    input:
        model=trust_pulled(f"{R}/checkpoints/{{setting}}/{{train_set}}/model.safetensors"),
        tokens=trust_pulled(f"{R}/tokens/{{eval_set}}/test.npz"),
    output:
        loss=f"{R}/losses/{{setting}}/{{train_set}}/{{eval_set}}.json",
    params:
        experiment=lambda wc: canonical(config["experiments"][wc.setting]),
    conda:
        CONDA_ENV
    log:
        "logs/evaluate/{setting}_{train_set}_{eval_set}.log",
    threads: rule_threads("evaluate")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
        gpu=res("evaluate", "gpu"),
    script:
        "../scripts/evaluate.py"
