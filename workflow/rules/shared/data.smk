# Registry entry -> prepared, tokenizer-independent text with a deterministic split.


rule prepare_data:
    input:
        sources=source_inputs,
        components=mixture_inputs,
    output:
        manifest=P.data_manifest(),
        splits=P.data_splits(),
    params:
        spec=lambda wc: canonical(config["datasets"][wc.dataset]),
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        P.log("prepare_data/{dataset}"),
    threads: 1
    resources:
        mem_mb=res("prepare_data", "mem_mb"),
        runtime=res("prepare_data", "runtime"),
    script:
        "../../scripts/shared/prepare_data.py"
