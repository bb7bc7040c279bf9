# The probe network: Task2Vec's feature extractor and the fine-tuning base.


rule probe:
    input:
        tokenizer=trust_pulled(rules.train_tokenizer.output.tokenizer),
        tokens=trust_pulled(probe_inputs),
    output:
        model=f"{R}/probe/model.safetensors",
        log=f"{R}/probe/train_log.json",
    params:
        probe=canonical(config["probe"]),
        seed=study.derived_seed(config, "probe"),
    conda:
        CONDA_ENV
    log:
        "logs/probe.log",
    benchmark:
        "logs/benchmarks/probe.tsv"
    threads: rule_threads("probe")
    resources:
        mem_mb=res("probe", "mem_mb"),
        runtime=res("probe", "runtime"),
        gpu=res("probe", "gpu"),
    script:
        "../scripts/probe.py"
