# The resolved study (files merged, schema defaults filled) and the plan derived
# from it: DVC reads every stage's params from this file (dvc.yaml).


def _sha256(path):
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def study_plan():
    datasets = datasets_used(config)
    plan = {
        "datasets": {d: config["datasets"][d] for d in datasets},
        # Local data files by content: an edited file reruns the data stage in DVC too.
        "source_files": {
            d: {f: _sha256(f) for f in source_files_of(d) if os.path.isfile(f)}
            for d in datasets
            if source_files_of(d)
        },
    }
    for study in STUDIES:
        plan.update(study.plan(config))
    return canonical(plan)


def source_files_of(dataset):
    return source_files(dataset, config["datasets"][dataset])


rule study_config:
    output:
        study=P.study_config(),
    params:
        config=canonical(config),
        plan=lambda wildcards: study_plan(),
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
        "../../scripts/shared/study_config.py"
