# One encoder on one labelled dataset: fitted on train, both splits encoded and cached.


rule si_encode:
    input:
        unpack(si_encode_inputs),
    output:
        train=S.features(split="train"),
        test=S.features(split="test"),
        info=S.features_info(),
    params:
        spec=si_encoder_spec,
        seed=config["seed"],
    conda:
        CONDA_ENV
    log:
        P.log("spectral_imbalance/encode/{labelled}/{encoder}"),
    threads: rule_threads("si_encode")
    resources:
        mem_mb=res("si_encode", "mem_mb"),
        runtime=res("si_encode", "runtime"),
        gpu=res("si_encode", "gpu"),
    script:
        "../../scripts/spectral_imbalance/encode.py"
