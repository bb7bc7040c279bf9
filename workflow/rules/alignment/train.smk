# One model per training set: pre-trained from scratch or fine-tuned from the base.


rule train:
    input:
        unpack(train_inputs),
    output:
        model=A.checkpoint(),
        log=A.train_log(),
    params:
        experiment=training_params,
        architecture=lambda wc: canonical(config["experiments"][wc.setting].get("architecture")),
        seed=lambda wc: derived_seed(config, "train", wc.setting),
    conda:
        CONDA_ENV
    log:
        P.log("train/{setting}_{train_set}"),
    benchmark:
        P.benchmark("train/{setting}_{train_set}")
    threads: rule_threads("train")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=train_gpus,
    script:
        "../../scripts/alignment/train.py"
