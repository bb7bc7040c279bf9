# The spectral-imbalance study's names for its rules: its plan, its path table,
# its input and param functions, its resources (PAPERS.md part 3).

from datalign.studies.spectral_imbalance import study as si_plan
from datalign.studies.spectral_imbalance.paths import SpectralImbalancePaths

S = SpectralImbalancePaths(R)
SI = config["spectral_imbalance"]
SI_DATASETS = si_plan.datasets(config)
SI_PAIRS = si_plan.pairs(config)


wildcard_constraints:
    labelled="[A-Za-z0-9_]+",
    encoder="[A-Za-z0-9_]+",


DEFAULT_RESOURCES.update(
    {
        "si_prepare": dict(mem_mb=2000, runtime=30),
        "si_encode": dict(mem_mb=4000, runtime=60),
        "si_analyse": dict(mem_mb=4000, runtime=30),
        "si_compare": dict(mem_mb=4000, runtime=30),
        "si_summary": dict(mem_mb=1000, runtime=10),
    }
)


def si_encoder_spec(wildcards):
    """What changes one encoder's features: its spec (the probe checkpoint is an input)."""
    return canonical(SI["encoders"][wildcards.encoder])


def si_encode_inputs(wildcards):
    inputs = {"data": S.labelled_dir(wildcards.labelled)}
    if wildcards.encoder in si_plan.probe_encoders(config):
        inputs.update(probe=P.probe_model(), tokenizer=P.tokenizer())
    return inputs


def si_compare_inputs(wildcards):
    encoders = si_plan.encoders_for(config, wildcards.labelled)
    inputs = {
        "classes": [S.class_table(wildcards.labelled, e) for e in encoders],
        "imbalance": [S.imbalance_table(wildcards.labelled, e) for e in encoders],
        "correlations": [S.correlation_table(wildcards.labelled, e) for e in encoders],
        "probes": [S.probe_summary(wildcards.labelled, e) for e in encoders],
    }
    members = sorted({m for ens in si_plan.ensembles(config, wildcards.labelled) for m in ens})
    inputs["ensemble_features"] = [S.features(wildcards.labelled, m, "test") for m in members]
    return inputs


def si_compare_params(wildcards):
    """What changes one comparison: the encoders compared, the augmentation group, the ensembles, the analysis settings."""
    base, strategies = si_plan.augmentation_group(config, wildcards.labelled)
    return canonical(
        {
            "encoders": si_plan.encoders_for(config, wildcards.labelled),
            "augmentation_baseline": base,
            "augmentation_strategies": strategies,
            "ensembles": si_plan.ensembles(config, wildcards.labelled),
            "ensemble_members": sorted({m for ens in si_plan.ensembles(config, wildcards.labelled) for m in ens}),
            "analysis": SI["analysis"],
        }
    )
