# Per-class spectra, probes and the Gaussian prediction of one encoder's held-out features.


rule si_analyse:
    input:
        features=S.features(split="test"),
    output:
        classes=S.class_table(),
        imbalance=S.imbalance_table(),
        correlations=S.correlation_table(),
        probe=S.probe_summary(),
        spectra=report(
            S.spectra_plot(),
            caption="../../report/spectral_imbalance/spectra.rst",
            category="Spectral imbalance",
            subcategory="{labelled}",
            labels={"encoder": "{encoder}", "plot": "per-class spectra"},
        ),
        metrics=report(
            S.metrics_plot(),
            caption="../../report/spectral_imbalance/metrics_vs_error.rst",
            category="Spectral imbalance",
            subcategory="{labelled}",
            labels={"encoder": "{encoder}", "plot": "spectral metrics vs error"},
        ),
        prediction=report(
            S.prediction_plot(),
            caption="../../report/spectral_imbalance/predicted_vs_measured.rst",
            category="Spectral imbalance",
            subcategory="{labelled}",
            labels={"encoder": "{encoder}", "plot": "predicted vs measured error"},
        ),
    params:
        analysis=canonical(SI["analysis"]),
        # one seed per dataset: every encoder is probed on the same splits (paired comparison)
        seed=lambda wc: derived_seed(config, "spectral_imbalance", "analyse", wc.labelled),
    conda:
        CONDA_ENV
    log:
        P.log("spectral_imbalance/analyse/{labelled}/{encoder}"),
    threads: 1
    resources:
        mem_mb=res("si_analyse", "mem_mb"),
        runtime=res("si_analyse", "runtime"),
    script:
        "../../scripts/spectral_imbalance/analyse.py"
