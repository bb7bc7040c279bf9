# Registry entry -> prepared, tokenizer-independent text with a deterministic split.


rule prepare_data:
    input:
        components=trust_pulled(mixture_inputs),
    output:
        manifest=f"{R}/data/{{dataset}}/manifest.json",
        splits=expand(f"{R}/data/{{{{dataset}}}}/{{split}}.jsonl", split=SPLITS),
    params:
        spec=lambda wc: canonical(config["datasets"][wc.dataset]),
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        "logs/prepare_data/{dataset}.log",
    threads: 1
    resources:
        mem_mb=res("prepare_data", "mem_mb"),
        runtime=res("prepare_data", "runtime"),
    script:
        "../scripts/prepare_data.py"
