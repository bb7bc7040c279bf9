"""The alignment study as the workflow sees it: rule files, DVC families, targets, checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datalign.core.config import load_yaml
from datalign.core.errors import ConfigError
from datalign.core.pipeline import Family
from datalign.measures.registry import measures_schema
from datalign.studies import Study, require_registered
from datalign.studies.alignment import plan
from datalign.studies.alignment.paths import AlignmentPaths
from datalign.task2vec.config import task2vec_schema

RULES = "workflow/rules/alignment"
SCRIPTS = "workflow/scripts/alignment"

#: The alignment study's DVC stages, after the shared ones (study, data, probe).
FAMILIES = (
    Family(
        name="task2vec",
        # task2vec_group: resources.task2vec.sets_per_job > 1 (workflow/rules/alignment/task2vec.smk)
        rules=("task2vec", "task2vec_group"),
        rule_files=(f"{RULES}/task2vec.smk", f"{RULES}/task2vec_single.smk", f"{RULES}/task2vec_grouped.smk"),
        scripts=(f"{SCRIPTS}/task2vec.py",),
        outs=("task2vec",),
        deps=("probe", "tokens"),
        params=("config.seed", "config.task2vec", "plan.embedding_sets"),
    ),
    Family(
        name="alignment",
        rules=("alignment", "measure_alignment"),
        rule_files=(f"{RULES}/alignment.smk", f"{RULES}/measures.smk"),
        scripts=(f"{SCRIPTS}/alignment.py", f"{SCRIPTS}/measure_alignment.py"),
        outs=("alignment",),
        # the cheap measures (alignment/measures/) read the prepared documents
        deps=("task2vec", "data"),
        params=("config.seed", "config.alignment", "config.task2vec.distance", "config.measures",
                "plan.embedding_sets"),
    ),
    Family(
        name="training",
        rules=("train", "loss_curves"),
        rule_files=(f"{RULES}/train.smk", f"{RULES}/report.smk"),
        scripts=(f"{SCRIPTS}/train.py", f"{SCRIPTS}/loss_curves.py"),
        outs=("checkpoints", "plots"),
        deps=("tokenizer", "tokens", "probe"),
        # how the models are trained, not what they are evaluated on
        params=("config.seed", "plan.training"),
    ),
    Family(
        name="evaluation",
        rules=("evaluate", "baseline"),
        rule_files=(f"{RULES}/evaluate.smk",),
        scripts=(f"{SCRIPTS}/evaluate.py", f"{SCRIPTS}/baseline.py"),
        outs=("losses", "baselines"),
        # the probe and the tokenizer: the untuned base and the unigram reference
        deps=("checkpoints", "tokens", "probe", "tokenizer"),
        params=("plan.evaluation", "plan.baselines"),
    ),
    Family(
        name="correlation",
        rules=("correlate", "summary", "measure_comparison"),
        rule_files=(f"{RULES}/correlate.smk", f"{RULES}/report.smk", f"{RULES}/measures.smk"),
        scripts=(f"{SCRIPTS}/correlate.py", f"{SCRIPTS}/summary.py", f"{SCRIPTS}/measure_comparison.py"),
        outs=("correlation", "summary.json", "summary.md"),
        deps=("alignment/alignment.csv", "alignment/diversity.csv", "alignment/measures", "losses", "baselines"),
        # the summary records the whole resolved config
        params=("config",),
        comment=(
            "Depends on the alignment tables and the losses only: with those two pulled,\n"
            "`dvc repro --single-item correlation` re-correlates without any checkpoint."
        ),
    ),
)


def tokenized(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(dataset, split) token files the study reads: Task2Vec sets, training and evaluation splits."""
    files = {(es.dataset, es.split) for es in plan.embedding_sets(config)}
    for setting in plan.settings(config):
        files.update((t, "train") for t in plan.train_sets(config, setting))
        files.update((e, "test") for e in plan.eval_sets(config, setting))
    return sorted(files)


def family_targets(family: str, config: dict[str, Any]) -> list[str]:
    """The files of one of the study's families (the input of its rule ``dvc_<family>``)."""
    p = AlignmentPaths(config["results_dir"])
    settings = plan.settings(config)
    if family == "task2vec":
        return [p.embeddings(es.dataset, es.split) for es in plan.embedding_sets(config)]
    if family == "alignment":
        return [p.alignment_table(), p.diversity_table(), p.heatmap(),
                *[p.measure_table(m) for m in config["measures"]["run"]]]
    if family == "training":
        return [
            *[p.checkpoint(s, t) for s in settings for t in plan.train_sets(config, s)],
            *[p.loss_curves(s) for s in settings],
        ]
    if family == "evaluation":
        return [
            *[p.loss(s, t, e) for s in settings for t, e in plan.evaluation_pairs(config, s)],
            *[p.baseline_loss(s, e) for s in settings for e in plan.eval_sets(config, s)],
        ]
    if family == "correlation":
        return [p.summary_json(), p.measures_comparison(), *[p.correlation_scatter(s) for s in settings]]
    raise ConfigError(f"the alignment study has no artifact family '{family}'")


def final_targets(config: dict[str, Any]) -> list[str]:
    """What ``rule all`` builds for the study."""
    p = AlignmentPaths(config["results_dir"])
    targets = [p.heatmap(), p.diversity_plot(), p.summary_json(), p.measures_comparison_plot()]
    for setting in plan.settings(config):
        targets += [p.correlation_scatter(setting), p.loss_curves(setting)]
    return targets


def dvc_metrics(config: dict[str, Any]) -> list[str]:
    """`dvc metrics show`: Pearson r, r^2, Spearman rho, p-values and CIs per setting."""
    return [AlignmentPaths(config["results_dir"]).summary_json()]


def dvc_plots(config: dict[str, Any]) -> list[Any]:
    """`dvc plots show`: alignment against loss (interactive, one per setting), the
    workflow's own scatter plots with the fitted line and band, and the training curves."""
    p = AlignmentPaths(config["results_dir"])
    settings = plan.settings(config)
    interactive = [
        {
            f"alignment_vs_loss_{s}": {
                "template": "scatter",
                "title": f"{s}: alignment with the evaluation set vs. cross-entropy",
                "x": "alignment",
                "y": {p.correlation_points(s): "cross_entropy"},
            }
        }
        for s in settings
    ]
    return [*interactive, *[p.correlation_scatter(s) for s in settings], f"{p.root}/plots"]


def measures_config_schema() -> dict[str, Any]:
    """The ``measures`` block: its shared keys from schema.yaml, each measure's own keys from its module."""
    return measures_schema(load_yaml(Path(__file__).resolve().parent / "schema.yaml")["properties"]["measures"])


def check(config: dict[str, Any]) -> None:
    """References and sizes the schema cannot express, checked before any job runs."""
    experiments = config.get("experiments") or {}
    if not experiments:
        raise ConfigError("config key 'experiments': at least one setting (finetune or pretrain) is required")
    evaluated = {e for exp in experiments.values() for e in exp["eval_sets"]}
    mixed_in = {c for spec in config["datasets"].values() if spec.get("source") == "mixture"
                for c in spec["components"]}
    for component, targets in (config.get("interventions") or {}).items():
        if component not in mixed_in:
            raise ConfigError(
                f"config key 'interventions.{component}': '{component}' is not a component of any mixture "
                f"(mixed-in datasets: {', '.join(sorted(mixed_in)) or 'none'})"
            )
        for target in targets:
            if target not in evaluated:
                raise ConfigError(
                    f"config key 'interventions.{component}': '{target}' is not an evaluation set of any "
                    f"setting (evaluation sets: {', '.join(sorted(evaluated))})"
                )
    for setting, exp in experiments.items():
        require_registered(config, exp["train_sets"], f"experiments.{setting}.train_sets")
        require_registered(config, exp["eval_sets"], f"experiments.{setting}.eval_sets")
        # correlate needs three (alignment, loss) points; knowing it now saves every training job.
        points = len(exp["train_sets"]) * len(exp["eval_sets"])
        if points < 3:
            raise ConfigError(
                f"config key 'experiments.{setting}': {len(exp['train_sets'])} training x "
                f"{len(exp['eval_sets'])} evaluation sets give {points} (alignment, loss) points; "
                "the correlation needs at least 3"
            )


STUDY = Study(
    name="alignment",
    schema=Path(__file__).resolve().parent / "schema.yaml",
    rule_files=tuple(
        f"{RULES}/{name}.smk"
        for name in ("common", "task2vec", "alignment", "train", "evaluate", "correlate", "measures", "report")
    ),
    families=FAMILIES,
    family_targets=family_targets,
    final_targets=final_targets,
    text_datasets=lambda config: [
        name
        for setting in plan.settings(config)
        for name in (*plan.train_sets(config, setting), *plan.eval_sets(config, setting))
    ],
    tokenized=tokenized,
    check=check,
    needs_probe=lambda config: True,
    plan=lambda config: {
        "embedding_sets": [es.label for es in plan.embedding_sets(config)],
        "training": plan.training_plan(config),
        "evaluation": plan.evaluation_plan(config),
        "baselines": {s: plan.baseline_reference(config, s) for s in plan.settings(config)},
    },
    generated_properties=lambda: {"task2vec": task2vec_schema(), "measures": measures_config_schema()},
    dvc_metrics=dvc_metrics,
    dvc_plots=dvc_plots,
)
