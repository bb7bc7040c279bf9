# The study's tokenizer (a BPE trained on the training splits, or a hub tokenizer)
# and every prepared split turned into token ids.


rule train_tokenizer:
    input:
        texts=trust_pulled(tokenizer_inputs),
    output:
        tokenizer=f"{R}/tokenizer/tokenizer.json",
    params:
        tokenizer=canonical(config["tokenizer"]),
    conda:
        CONDA_ENV
    log:
        "logs/train_tokenizer.log",
    threads: 1
    resources:
        mem_mb=res("train_tokenizer", "mem_mb"),
        runtime=res("train_tokenizer", "runtime"),
    script:
        "../scripts/train_tokenizer.py"


rule tokenize:
    input:
        tokenizer=trust_pulled(rules.train_tokenizer.output.tokenizer),
        splits=trust_pulled(expand(f"{R}/data/{{{{dataset}}}}/{{split}}.jsonl", split=SPLITS)),
    output:
        tokens=expand(f"{R}/tokens/{{{{dataset}}}}/{{split}}.npz", split=SPLITS),
        summary=f"{R}/tokens/{{dataset}}/summary.json",
    conda:
        CONDA_ENV
    log:
        "logs/tokenize/{dataset}.log",
    threads: 1
    resources:
        mem_mb=res("tokenize", "mem_mb"),
        runtime=res("tokenize", "runtime"),
    script:
        "../scripts/tokenize.py"
