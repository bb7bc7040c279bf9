# Embed every training row, score its completion NLL, and select subsets:
# one selection per (dataset, budget, method, seed), all of one budget in one job.


rule ea_embed:
    input:
        unpack(ea_embed_inputs),
    output:
        embeddings=E.embeddings(),
        quality=E.quality_scores(),
    params:
        embedding=canonical(EA["embedding"]),
        embedding_model=ea_plan.embedding_model(config),
        quality=canonical(EA["quality"]),
        quality_model=ea_plan.quality_model(config),
    conda:
        CONDA_ENV
    log:
        P.log("efficient_alignment/embed/{pref}"),
    threads: rule_threads("ea_embed")
    resources:
        mem_mb=res("ea_embed", "mem_mb"),
        runtime=res("ea_embed", "runtime"),
        gpu=res("ea_embed", "gpu"),
    script:
        "../../scripts/efficient_alignment/embed.py"


rule ea_select:
    input:
        embeddings=E.embeddings(),
        quality=E.quality_scores(),
    output:
        selections=[E.selection(method=m, seed=str(s)) for m in EA_METHODS for s in EA_SEEDS],
    params:
        methods=canonical(EA["methods"]),
        seeds=ea_run_seeds,
        objective=EA["objective"],
    conda:
        CONDA_ENV
    log:
        P.log("efficient_alignment/select/{pref}_{budget}"),
    threads: 1
    resources:
        mem_mb=res("ea_select", "mem_mb"),
        runtime=res("ea_select", "runtime"),
    script:
        "../../scripts/efficient_alignment/select.py"
