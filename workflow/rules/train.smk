# One model per training set: pre-trained from scratch or fine-tuned from the base.


rule train:
    input:
        unpack(trust_pulled(train_inputs)),
    output:
        model=f"{R}/checkpoints/{{setting}}/{{train_set}}/model.safetensors",
        log=f"{R}/checkpoints/{{setting}}/{{train_set}}/train_log.json",
    params:
        experiment=lambda wc: canonical(config["experiments"][wc.setting]),
        architecture=lambda wc: canonical(config["experiments"][wc.setting].get("architecture")),
        seed=lambda wc: study.derived_seed(config, "train", wc.setting),
    conda:
        CONDA_ENV
    log:
        "logs/train/{setting}_{train_set}.log",
    benchmark:
        "logs/benchmarks/train/{setting}_{train_set}.tsv"
    threads: rule_threads("train")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=train_gpus,
    script:
        "../scripts/train.py"
