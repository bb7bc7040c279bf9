# Labelled registry entry -> balanced train/test splits with a manifest.


rule si_prepare:
    output:
        data=directory(S.labelled_dir()),
    params:
        spec=lambda wc: canonical(config["labelled_datasets"][wc.labelled]),
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        P.log("spectral_imbalance/prepare/{labelled}"),
    threads: 1
    resources:
        mem_mb=res("si_prepare", "mem_mb"),
        runtime=res("si_prepare", "runtime"),
    script:
        "../../scripts/spectral_imbalance/prepare.py"
