"""The spectral-imbalance study as the workflow sees it: rule files, DVC families, targets, checks.

Imports nothing heavy (no torch, transformers, datasets, scikit-learn):
``snakemake -n`` plans a paper-scale config through this module with the
network cut off. The encoders' options are checked by the light
:mod:`.encoders.specs`, the labelled datasets by :mod:`datalign.data.labelled.spec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError
from datalign.core.pipeline import Family
from datalign.data.labelled.spec import validate_labelled_spec
from datalign.studies import Study
from datalign.studies.spectral_imbalance.encoders.specs import INPUT_KIND, validate_encoder_spec
from datalign.studies.spectral_imbalance.paths import FOLDER, SpectralImbalancePaths

RULES = "workflow/rules/spectral_imbalance"
SCRIPTS = "workflow/scripts/spectral_imbalance"
KEY = "spectral_imbalance"
SD = FOLDER  # the study's folder under results_dir
#: The labelled splits every dataset is cut into (encoders fit on train; the analysis reads test).
SPLITS = ("train", "test")
TEXT_SOURCES = ("bbc_news",)

#: The study's DVC stages, after the shared ones (study, data, probe).
FAMILIES = (
    Family(
        name="si_data",
        rules=("si_prepare",),
        rule_files=(f"{RULES}/data.smk",),
        scripts=(f"{SCRIPTS}/prepare.py",),
        outs=(f"{SD}/data",),
        params=("config.seed", "config.labelled_datasets", f"config.{KEY}.datasets"),
    ),
    Family(
        name="si_features",
        rules=("si_encode",),
        rule_files=(f"{RULES}/encode.smk",),
        scripts=(f"{SCRIPTS}/encode.py",),
        outs=(f"{SD}/features",),
        deps=(f"{SD}/data",),
        params=("config.seed", f"config.{KEY}.encoders", "plan.spectral_imbalance_pairs"),
        comment=("One job per (labelled dataset, encoder): the encoder is fitted on the train split\n"
                 "and both splits are cached; a new encoder computes only its own features."),
    ),
    Family(
        name="si_analysis",
        rules=("si_analyse",),
        rule_files=(f"{RULES}/analyse.smk",),
        scripts=(f"{SCRIPTS}/analyse.py",),
        outs=(f"{SD}/analysis",),
        deps=(f"{SD}/features",),
        params=("config.seed", f"config.{KEY}.analysis", "plan.spectral_imbalance_pairs"),
    ),
    Family(
        name="si_comparison",
        rules=("si_compare", "si_summary"),
        rule_files=(f"{RULES}/compare.smk",),
        scripts=(f"{SCRIPTS}/compare.py", f"{SCRIPTS}/summary.py"),
        outs=(f"{SD}/compare", f"{SD}/summary.json", f"{SD}/summary.md"),
        deps=(f"{SD}/analysis", f"{SD}/features"),
        params=("config.seed", f"config.{KEY}", "config.labelled_datasets"),
        comment=("Depends on the analyses (and, for feature ensembles, the features) only: with them\n"
                 "pulled, `dvc repro --single-item si_comparison` recompares without encoding anything."),
    ),
)


def section(config: dict[str, Any]) -> dict[str, Any]:
    return config[KEY]


def datasets(config: dict[str, Any]) -> list[str]:
    """The labelled datasets the study reads, in config order."""
    return list(section(config)["datasets"])


def data_kind(config: dict[str, Any], name: str) -> str:
    """``text`` or ``image``, known from the spec (a local .jsonl holds texts)."""
    spec = config["labelled_datasets"][name]
    if spec["source"] in TEXT_SOURCES or (spec["source"] == "local" and str(spec.get("path", "")).endswith(".jsonl")):
        return "text"
    return "image"


def encoders_for(config: dict[str, Any], name: str) -> list[str]:
    """The encoders (config order) that encode labelled dataset ``name``: those of its input kind."""
    kind = data_kind(config, name)
    return [e for e, spec in section(config)["encoders"].items() if INPUT_KIND[spec["kind"]] == kind]


def pairs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (labelled dataset, encoder) the study encodes and analyses."""
    return [(d, e) for d in datasets(config) for e in encoders_for(config, d)]


def augmentation_group(config: dict[str, Any], name: str) -> tuple[str | None, list[str]]:
    """(baseline, strategies): the cnn encoders of dataset ``name`` compared by augmentation.

    The baseline is ``augmentation_baseline`` or the cnn encoder without
    augmentation; (None, []) when there is none or fewer than 2 cnn encoders.
    """
    encs = section(config)["encoders"]
    cnns = [e for e in encoders_for(config, name) if encs[e]["kind"] == "cnn"]
    base = section(config).get("augmentation_baseline")
    if base is None:
        plain = [e for e in cnns if not _augment_names(encs[e].get("augment"))]
        base = plain[0] if plain else None
    if base is None or len(cnns) < 2 or base not in cnns:
        return None, []
    return base, cnns


def _augment_names(augment: Any) -> list[str]:
    names = [augment] if isinstance(augment, str) else list(augment or [])
    return [n for n in names if n != "none"]


def ensembles(config: dict[str, Any], name: str) -> list[list[str]]:
    """The configured feature ensembles that apply to dataset ``name`` (all members encode it)."""
    have = set(encoders_for(config, name))
    return [list(e) for e in section(config).get("ensembles", []) if set(e) <= have]


def probe_encoders(config: dict[str, Any]) -> list[str]:
    """Encoders that read the shared probe (causal_lm with ``checkpoint: probe``)."""
    return [e for e, s in section(config)["encoders"].items()
            if s["kind"] == "causal_lm" and s.get("checkpoint") == "probe"]


def needs_probe(config: dict[str, Any]) -> bool:
    return any(e in probe_encoders(config) for _, e in pairs(config))


def family_targets(family: str, config: dict[str, Any]) -> list[str]:
    """The files of one of the study's families (the input of its rule ``dvc_<family>``)."""
    p = SpectralImbalancePaths(config["results_dir"])
    if family == "si_data":
        return [p.labelled_dir(d) for d in datasets(config)]
    if family == "si_features":
        return [p.features(d, e, s) for d, e in pairs(config) for s in SPLITS]
    if family == "si_analysis":
        return [p.class_table(d, e) for d, e in pairs(config)]
    if family == "si_comparison":
        return [p.summary_json(), *[p.encoder_table(d) for d in datasets(config)]]
    raise ConfigError(f"the spectral_imbalance study has no artifact family '{family}'")


def final_targets(config: dict[str, Any]) -> list[str]:
    """What ``rule all`` builds for the study: per-encoder plots, comparison tables and plots, the summary."""
    p = SpectralImbalancePaths(config["results_dir"])
    targets = [p.summary_json(), p.summary_markdown()]
    for d, e in pairs(config):
        targets += [p.spectra_plot(d, e), p.metrics_plot(d, e), p.prediction_plot(d, e)]
    for d in datasets(config):
        targets += [p.encoder_table(d), p.encoder_plot(d), p.correlation_plot(d)]
    return targets


def check(config: dict[str, Any]) -> None:
    """References and sizes the schema cannot express, checked before any job runs."""
    sec = section(config)
    registry = config.get("labelled_datasets") or {}
    for name in sec["datasets"]:
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            raise ConfigError(f"config key '{KEY}.datasets': '{name}' is not in labelled_datasets (known: {known})")
        validate_labelled_spec(name, registry[name], "labelled_datasets")
    for name, spec in sec["encoders"].items():
        validate_encoder_spec(name, spec, f"{KEY}.encoders")
    for name in sec["datasets"]:
        if not encoders_for(config, name):
            raise ConfigError(f"config key '{KEY}.encoders': no encoder encodes the {data_kind(config, name)}s "
                              f"of labelled dataset '{name}'")
    base = sec.get("augmentation_baseline")
    if base is not None:
        spec = sec["encoders"].get(base)
        if spec is None or spec["kind"] != "cnn":
            raise ConfigError(f"config key '{KEY}.augmentation_baseline': '{base}' is not a cnn encoder of "
                              f"{KEY}.encoders")
    for i, members in enumerate(sec.get("ensembles", [])):
        for m in members:
            if m not in sec["encoders"]:
                raise ConfigError(f"config key '{KEY}.ensembles[{i}]': '{m}' is not in {KEY}.encoders")
        if len({data_kind_of_encoder(sec["encoders"][m]) for m in members}) > 1:
            raise ConfigError(f"config key '{KEY}.ensembles[{i}]': mixes image and text encoders {members}")
    if needs_probe(config):
        for key in ("tokenizer", "probe"):
            if not config.get(key):
                raise ConfigError(f"config key '{key}': required, since encoder(s) {probe_encoders(config)} "
                                  "read the shared probe (checkpoint: probe)")
    _check_sizes(config)


def data_kind_of_encoder(spec: dict[str, Any]) -> str:
    return INPUT_KIND[spec["kind"]]


def _check_sizes(config: dict[str, Any]) -> None:
    """Sizes the config fixes: the probe's splits need >= 1 test and >= 2 train rows of every class."""
    sec = section(config)
    test_size = sec["analysis"]["test_size"]
    for name in sec["datasets"]:
        spec = config["labelled_datasets"][name]
        per_class = spec.get("per_class")
        if per_class is None:
            continue
        if spec["source"] in ("fashion_mnist",) or (spec["source"] == "hf" and spec.get("splits")):
            held = spec.get("test_per_class")
        else:
            held = round(per_class * spec.get("test_fraction", 0.2))
            if held < 1 or per_class - held < 1:
                raise ConfigError(f"config key 'labelled_datasets.{name}': per_class {per_class} with test_fraction "
                                  f"{spec.get('test_fraction', 0.2)} leaves {held} test and {per_class - held} "
                                  "train samples per class; both need at least 1")
        if held is not None and (round(held * test_size) < 1 or held - round(held * test_size) < 2):
            raise ConfigError(f"config key '{KEY}.analysis.test_size': {test_size} of the {held} held-out samples "
                              f"per class of '{name}' leaves a probe split without enough samples of a class "
                              "(raise per_class or test_fraction)")


def dvc_metrics(config: dict[str, Any]) -> list[str]:
    """`dvc metrics show`: per dataset and encoder, accuracy, class gap and the Spearman rho (with CI)
    of the Gaussian prediction and of every spectral metric against per-class error."""
    return [SpectralImbalancePaths(config["results_dir"]).summary_json()]


def dvc_plots(config: dict[str, Any]) -> list[Any]:
    """`dvc plots show`: the comparison plots of every labelled dataset (images)."""
    p = SpectralImbalancePaths(config["results_dir"])
    return [path for d in datasets(config) for path in (p.correlation_plot(d), p.encoder_plot(d))]


STUDY = Study(
    name=KEY,
    schema=Path(__file__).resolve().parent / "schema.yaml",
    rule_files=tuple(f"{RULES}/{name}.smk" for name in ("common", "data", "encode", "analyse", "compare")),
    families=FAMILIES,
    family_targets=family_targets,
    final_targets=final_targets,
    text_datasets=lambda config: [],
    check=check,
    needs_probe=needs_probe,
    plan=lambda config: {"spectral_imbalance_pairs": [f"{d}/{e}" for d, e in pairs(config)]},
    dvc_metrics=dvc_metrics,
    dvc_plots=dvc_plots,
)
