# Preference data (KTO rows, pairs linked by id): train and a held-out test split by group,
# and the policy a package ships, exported as a model directory when the config names it.


rule ea_prepare:
    output:
        manifest=E.pref_manifest(),
        train=E.pref_split(split="train"),
        test=E.pref_split(split="test"),
    params:
        spec=lambda wc: canonical(config["preference_datasets"][wc.pref]),
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        P.log("efficient_alignment/prepare/{pref}"),
    threads: 1
    resources:
        mem_mb=res("ea_prepare", "mem_mb"),
        runtime=res("ea_prepare", "runtime"),
    script:
        "../../scripts/efficient_alignment/prepare.py"


rule ea_export_policy:
    output:
        model=E.policy_model(),
    params:
        policy=EA["policy"],
    conda:
        CONDA_ENV
    log:
        P.log("efficient_alignment/export_policy"),
    threads: 1
    resources:
        mem_mb=res("ea_export_policy", "mem_mb"),
        runtime=res("ea_export_policy", "runtime"),
    script:
        "../../scripts/efficient_alignment/export_policy.py"
