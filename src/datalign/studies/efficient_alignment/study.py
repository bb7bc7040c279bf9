"""The efficient-alignment study as the workflow sees it: rule files, DVC families, targets, checks.

Imports nothing heavy (no torch, transformers, datasets, TRL): ``snakemake -n``
plans a paper-scale config through this module with the network cut off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datalign.core.errors import ConfigError
from datalign.core.pipeline import Family
from datalign.data.preference.spec import validate_preference_spec
from datalign.studies import Study
from datalign.studies.efficient_alignment import plan
from datalign.studies.efficient_alignment.paths import EfficientAlignmentPaths

RULES = "workflow/rules/efficient_alignment"
SCRIPTS = "workflow/scripts/efficient_alignment"
KEY = "efficient_alignment"
ED = "efficient_alignment"  # the study's folder under results_dir
#: Keys of study.yaml's plan holding what the align job reads of `evaluation` (DVC params of ea_runs).
ALIGN_EVALUATION = "efficient_alignment_align_evaluation"
GENERATION = "efficient_alignment_generation"

#: The study's DVC stages, after the shared ones (study, data, probe).
FAMILIES = (
    Family(
        name="ea_data",
        rules=("ea_prepare",),
        rule_files=(f"{RULES}/data.smk",),
        scripts=(f"{SCRIPTS}/prepare.py",),
        outs=(f"{ED}/data",),
        params=("config.seed", "config.preference_datasets", f"config.{KEY}.datasets"),
    ),
    Family(
        name="ea_embeddings",
        rules=("ea_embed",),
        rule_files=(f"{RULES}/select.smk",),
        scripts=(f"{SCRIPTS}/embed.py",),
        outs=(f"{ED}/embeddings", f"{ED}/quality"),
        deps=(f"{ED}/data", "probe", "tokenizer"),
        params=(f"config.{KEY}.embedding", f"config.{KEY}.quality", f"config.{KEY}.policy"),
    ),
    Family(
        name="ea_selection",
        rules=("ea_select",),
        rule_files=(f"{RULES}/select.smk",),
        scripts=(f"{SCRIPTS}/select.py",),
        outs=(f"{ED}/selection",),
        deps=(f"{ED}/embeddings", f"{ED}/quality"),
        params=("config.seed", f"config.{KEY}.methods", f"config.{KEY}.budgets", f"config.{KEY}.seeds"),
    ),
    Family(
        name="ea_runs",
        rules=("ea_align",),
        rule_files=(f"{RULES}/align.smk",),
        scripts=(f"{SCRIPTS}/align.py",),
        outs=(f"{ED}/runs",),
        deps=(f"{ED}/data", f"{ED}/selection", "probe", "tokenizer"),
        # The evaluation keys the align job reads, as its Snakemake params (plan.align_evaluation,
        # plan.generation), from study.yaml's plan: every key exists there whether or not the judge
        # is on (null when off), and the judge's model, batch and context are not among them.
        params=("config.seed", f"config.{KEY}.policy", f"config.{KEY}.objective",
                f"config.{KEY}.training", f"plan.{ALIGN_EVALUATION}", f"plan.{GENERATION}"),
        comment=("One job per (dataset, budget): every method x seed at that budget is a separate\n"
                 "run from the same base, trained one after another in one process (train_many).\n"
                 "A new judge (reward model, its batch or context) reruns ea_scaling only."),
    ),
    Family(
        name="ea_scaling",
        rules=("ea_judge", "ea_scaling", "ea_summary"),
        rule_files=(f"{RULES}/judge.smk", f"{RULES}/scaling.smk"),
        scripts=(f"{SCRIPTS}/judge.py", f"{SCRIPTS}/scaling.py", f"{SCRIPTS}/summary.py"),
        outs=(f"{ED}/scaling", f"{ED}/summary.json", f"{ED}/summary.md"),
        deps=(f"{ED}/runs", f"{ED}/data"),
        params=(f"config.{KEY}",),
        comment=("Depends on the runs' metrics (and, with the judge on, their completions) only: with\n"
                 "them pulled, `dvc repro --single-item ea_scaling` rejudges and refits without training."),
    ),
)


def family_targets(family: str, config: dict[str, Any]) -> list[str]:
    """The files of one of the study's families (the input of its rule ``dvc_<family>``)."""
    p = EfficientAlignmentPaths(config["results_dir"])
    prefs, budgets = plan.datasets(config), plan.budgets(config)
    if family == "ea_data":
        return [p.pref_manifest(d) for d in prefs]
    if family == "ea_embeddings":
        return [f for d in prefs for f in (p.embeddings(d), p.quality_scores(d))]
    if family == "ea_selection":
        return [p.selection(d, b, m, str(s)) for d in prefs for b in budgets
                for m in plan.methods(config) for s in plan.seeds(config)]
    if family == "ea_runs":
        return [p.runs(d, b) for d in prefs for b in budgets]
    if family == "ea_scaling":
        return [p.summary_json(), *[p.score_plot(d) for d in prefs]]
    raise ConfigError(f"the efficient_alignment study has no artifact family '{family}'")


def final_targets(config: dict[str, Any]) -> list[str]:
    """What ``rule all`` builds for the study: the plots, tables and the summary."""
    p = EfficientAlignmentPaths(config["results_dir"])
    targets = [p.summary_json(), p.summary_markdown()]
    for d in plan.datasets(config):
        targets += [p.score_plot(d), p.budget_table(d)]
    return targets


def dvc_metrics(config: dict[str, Any]) -> list[str]:
    """`dvc metrics show`: plateau fits (R², r, a, b) and the ISA comparisons of every dataset."""
    return [EfficientAlignmentPaths(config["results_dir"]).summary_json()]


def dvc_plots(config: dict[str, Any]) -> list[Any]:
    """`dvc plots show`: score against percent of data per method (interactive), and the workflow's plots."""
    p = EfficientAlignmentPaths(config["results_dir"])
    metric = config[KEY]["scaling"]["metric"]
    interactive = [
        {
            f"score_vs_data_{d}": {
                "template": "scatter",
                "title": f"{d}: {metric} of every run vs percent of the data",
                "x": "percent",
                "y": {p.scaling_points(d): metric},
            }
        }
        for d in plan.datasets(config)
    ]
    return [*interactive, *[p.score_plot(d) for d in plan.datasets(config)]]


def _max_train_rows(spec: dict[str, Any]) -> int | None:
    """An upper bound of a prepared train split's rows known from the config (``max_rows``)."""
    return spec.get("max_rows")


def check(config: dict[str, Any]) -> None:
    """References and sizes the schema cannot express, checked before any job runs."""
    sec = config[KEY]
    registry = config.get("preference_datasets") or {}
    for name in sec["datasets"]:
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none"
            raise ConfigError(f"config key '{KEY}.datasets': '{name}' is not in preference_datasets "
                              f"(known: {known})")
        validate_preference_spec(name, registry[name])
    if plan.needs_probe(config):
        for key in ("tokenizer", "probe"):
            if not config.get(key):
                raise ConfigError(f"config key '{key}': required, since the study's policy, embedder or "
                                  f"quality scorer is 'probe'")
    if sec["scaling"]["metric"] == "win_rate" and not plan.judge(config):
        raise ConfigError(f"config key '{KEY}.scaling.metric': win_rate needs the judge "
                          f"({KEY}.evaluation.judge.model)")
    for method, options in sec["methods"].items():
        if not isinstance(options, dict):
            raise ConfigError(f"config key '{KEY}.methods.{method}': options must be a mapping, "
                              f"got {options!r}")
    _check_method_options(sec["methods"])
    if sec["embedding"]["kind"] == "sentence" and sec["embedding"]["model"] in ("probe", "policy"):
        raise ConfigError(f"config key '{KEY}.embedding.model': the sentence embedder needs a "
                          f"sentence-transformers model (null: all-MiniLM-L6-v2), not "
                          f"'{sec['embedding']['model']}'")
    # Sizes the config already bounds: a budget that rounds to no row (or, for KTO,
    # to fewer rows than a step's KL estimate needs) is known before any job.
    smallest = min(float(b) for b in sec["budgets"])
    need = 2 if sec["objective"] == "kto" else 1
    for name in sec["datasets"]:
        bound = _max_train_rows(registry[name])
        if bound is None:
            continue
        k = plan.budget_rows(smallest, bound)
        if k < need:
            raise ConfigError(
                f"config key '{KEY}.budgets': {smallest:g}% of dataset {name}'s at most {bound} "
                f"training rows (preference_datasets.{name}.max_rows) rounds to {k} row(s); "
                f"{sec['objective'].upper()} needs at least {need}: raise max_rows or the budget"
            )


def method_option_names() -> dict[str, list[str]]:
    """Keyword options of every registered selection method, read from the method modules' source.

    Read with ``ast``, not imported: importing the methods pulls in scikit-learn and
    scipy (seconds), and planning must stay light.
    """
    import ast

    folder = Path(__file__).resolve().parent / "selection"
    found: dict[str, list[str]] = {}
    for module in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if (isinstance(deco, ast.Call) and getattr(deco.func, "id", "") == "register_method"
                        and deco.args and isinstance(deco.args[0], ast.Constant)):
                    found[deco.args[0].value] = [a.arg for a in node.args.kwonlyargs]
    return found


def _check_method_options(methods: dict[str, dict[str, Any]]) -> None:
    """Unknown option names of a selection method (the one-line error the selection job would give)."""
    known = method_option_names()
    for method, options in methods.items():
        allowed = known.get(method, [])
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConfigError(f"config key '{KEY}.methods.{method}': unknown option(s) {unknown} "
                              f"(allowed: {allowed})")


STUDY = Study(
    name="efficient_alignment",
    schema=Path(__file__).resolve().parent / "schema.yaml",
    rule_files=tuple(f"{RULES}/{name}.smk" for name in ("common", "data", "select", "align", "judge", "scaling")),
    families=FAMILIES,
    family_targets=family_targets,
    final_targets=final_targets,
    text_datasets=lambda config: [],
    check=check,
    needs_probe=plan.needs_probe,
    plan=lambda config: {
        "efficient_alignment_budgets": plan.budgets(config),
        ALIGN_EVALUATION: plan.align_evaluation(config),
        GENERATION: plan.generation(config),
    },
    dvc_metrics=dvc_metrics,
    dvc_plots=dvc_plots,
)
