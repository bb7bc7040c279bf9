# The resolved study (files merged, schema defaults filled) and the plan derived
# from it: DVC reads every stage's params from this file (dvc.yaml).


rule study_config:
    output:
        study=P.study_config(),
    params:
        config=canonical(config),
        plan=lambda wildcards: study_plan(),
    conda:
        CONDA_ENV
    log:
        P.log("study_config"),
    localrule: True
    threads: 1
    resources:
        mem_mb=res("report", "mem_mb"),
        runtime=res("report", "runtime"),
    script:
        "../../scripts/shared/study_config.py"
