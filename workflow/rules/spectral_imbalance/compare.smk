# Across the encoders of one labelled dataset (rankings, augmentation, choice by
# predicted gap), then the study summary (the numbers the README quotes).


rule si_compare:
    input:
        unpack(si_compare_inputs),
    output:
        encoders=report(
            S.encoder_table(),
            caption="../../report/spectral_imbalance/encoder_table.rst",
            category="Spectral imbalance",
            subcategory="{labelled}",
            labels={"encoder": "all", "plot": "encoder table"},
        ),
        agreement=S.ranking_agreement(),
        correlations=S.all_correlations(),
        augmentation=report(
            S.augmentation_table(),
            caption="../../report/spectral_imbalance/augmentation_table.rst",
            category="Spectral imbalance",
            subcategory="{labelled}",
            labels={"encoder": "cnn strategies", "plot": "augmentation table"},
        ),
        selection=S.selection_table(),
        encoder_plot=report(
            S.encoder_plot(),
            caption="../../report/spectral_imbalance/encoders.rst",
            category="Spectral imbalance",
            subcategory="{labelled}",
            labels={"encoder": "all", "plot": "imbalance vs class gap"},
        ),
        correlation_plot=report(
            S.correlation_plot(),
            caption="../../report/spectral_imbalance/correlations.rst",
            category="Spectral imbalance",
            subcategory="{labelled}",
            labels={"encoder": "all", "plot": "Spearman per encoder"},
        ),
    params:
        compare=si_compare_params,
        # the analysis seed: ensembles are probed on the same splits as the single encoders
        seed=lambda wc: derived_seed(config, "spectral_imbalance", "analyse", wc.labelled),
    conda:
        CONDA_ENV
    log:
        P.log("spectral_imbalance/compare/{labelled}"),
    threads: 1
    resources:
        mem_mb=res("si_compare", "mem_mb"),
        runtime=res("si_compare", "runtime"),
    script:
        "../../scripts/spectral_imbalance/compare.py"


rule si_summary:
    input:
        data=[S.labelled_dir(d) for d in SI_DATASETS],
        infos=[S.features_info(d, e) for d, e in SI_PAIRS],
        correlations=[S.all_correlations(d) for d in SI_DATASETS],
        encoders=[S.encoder_table(d) for d in SI_DATASETS],
        augmentation=[S.augmentation_table(d) for d in SI_DATASETS],
        selection=[S.selection_table(d) for d in SI_DATASETS],
        agreement=[S.ranking_agreement(d) for d in SI_DATASETS],
    output:
        json=S.summary_json(),
        markdown=S.summary_markdown(),
    params:
        datasets=SI_DATASETS,
        pairs=[list(p) for p in SI_PAIRS],
        labelled=canonical({d: config["labelled_datasets"][d] for d in SI_DATASETS}),
        study=canonical(SI),
    conda:
        CONDA_ENV
    log:
        P.log("spectral_imbalance/summary"),
    threads: 1
    resources:
        mem_mb=res("si_summary", "mem_mb"),
        runtime=res("si_summary", "runtime"),
    script:
        "../../scripts/spectral_imbalance/summary.py"
