# The bridge to DVC (dvc.yaml, README.md, "Sharing results with DVC"). Each DVC stage runs
#   snakemake dvc_<family> --allowed-rules <the family's rules> dvc_<family>
# so it writes its own artifact family and takes every upstream artifact as
# given: a stage never recomputes, or needs, what another stage owns.
# study_config writes the resolved config, where DVC reads the stages' params.


rule study_config:
    output:
        study=f"{R}/study.yaml",
    params:
        config=canonical(config),
        plan=canonical(
            {
                "datasets": {d: config["datasets"][d] for d in study.datasets_used(config)},
                "embedding_sets": [es.label for es in EMBEDDING_SETS],
            }
        ),
    conda:
        CONDA_ENV
    log:
        "logs/study_config.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    script:
        "../scripts/study_config.py"


rule dvc_data:
    input:
        family_targets("data"),
    localrule: True


rule dvc_task2vec:
    input:
        family_targets("task2vec"),
    localrule: True


rule dvc_alignment:
    input:
        family_targets("alignment"),
    localrule: True


rule dvc_training:
    input:
        family_targets("training"),
    localrule: True


rule dvc_evaluation:
    input:
        family_targets("evaluation"),
    localrule: True


rule dvc_correlation:
    input:
        family_targets("correlation"),
    localrule: True
