# The language-model layer shared by the studies: the tokenizer (a BPE trained on
# the training splits, or a hub tokenizer), every prepared split as token ids,
# and the probe (Task2Vec's feature extractor, the fine-tuning base, the policy).


rule train_tokenizer:
    input:
        texts=tokenizer_inputs,
    output:
        tokenizer=P.tokenizer(),
    params:
        tokenizer=canonical(config["tokenizer"]),
    conda:
        CONDA_ENV
    log:
        P.log("train_tokenizer"),
    threads: 1
    resources:
        mem_mb=res("train_tokenizer", "mem_mb"),
        runtime=res("train_tokenizer", "runtime"),
    script:
        "../../scripts/shared/train_tokenizer.py"


rule tokenize:
    input:
        tokenizer=P.tokenizer(),
        splits=P.data_splits(),
    output:
        tokens=P.token_splits(),
        summary=P.tokens_summary(),
    conda:
        CONDA_ENV
    log:
        P.log("tokenize/{dataset}"),
    threads: 1
    resources:
        mem_mb=res("tokenize", "mem_mb"),
        runtime=res("tokenize", "runtime"),
    script:
        "../../scripts/shared/tokenize.py"


rule probe:
    input:
        tokenizer=P.tokenizer(),
        tokens=probe_inputs,
    output:
        model=P.probe_model(),
        log=P.probe_log(),
    params:
        probe=canonical(config["probe"]),
        seed=derived_seed(config, "probe"),
    conda:
        CONDA_ENV
    log:
        P.log("probe"),
    benchmark:
        P.benchmark("probe")
    threads: rule_threads("probe")
    resources:
        mem_mb=res("probe", "mem_mb"),
        runtime=res("probe", "runtime"),
        gpu=res("probe", "gpu"),
    script:
        "../../scripts/shared/probe.py"
