# The efficient-alignment study's names for its rules: its plan, its path table,
# its input and param functions, its resources (PAPERS.md part 2).

from datalign.studies.efficient_alignment import plan as ea_plan
from datalign.studies.efficient_alignment.paths import EfficientAlignmentPaths

E = EfficientAlignmentPaths(R)
EA = config["efficient_alignment"]
EA_DATASETS = ea_plan.datasets(config)
EA_BUDGETS = ea_plan.budgets(config)
EA_METHODS = ea_plan.methods(config)
EA_SEEDS = ea_plan.seeds(config)
EA_JUDGE = ea_plan.judge(config)


wildcard_constraints:
    pref="[A-Za-z0-9_]+",
    budget="[0-9]+(\.[0-9]+)?",


DEFAULT_RESOURCES.update(
    {
        "ea_prepare": dict(mem_mb=2000, runtime=30),
        "ea_export_policy": dict(mem_mb=4000, runtime=30),
        "ea_embed": dict(mem_mb=4000, runtime=60),
        "ea_select": dict(mem_mb=2000, runtime=30),
        "ea_align": dict(mem_mb=4000, runtime=240),
        "ea_judge": dict(mem_mb=4000, runtime=60),
        "ea_scaling": dict(mem_mb=1000, runtime=10),
        "ea_summary": dict(mem_mb=1000, runtime=10),
    }
)


def ea_model_inputs(name):
    """Files a model named in the config is read from: the probe and the BPE, the exported policy, or none (hub)."""
    if name == "probe":
        return {"probe": P.probe_model(), "probe_tokenizer": P.tokenizer()}
    if name == "smollm2":
        return {"policy": E.policy_model()}
    return {}


def ea_embed_inputs(wildcards):
    inputs = {"train": E.pref_split(wildcards.pref, "train")}
    for role, name in (("embedder", ea_plan.embedding_model(config)), ("scorer", ea_plan.quality_model(config))):
        if role == "embedder" and EA["embedding"]["kind"] != "last_token":
            continue
        inputs.update({f"{role}_{k}": v for k, v in ea_model_inputs(name).items()})
    return inputs


def ea_align_inputs(wildcards):
    inputs = {
        "train": E.pref_split(wildcards.pref, "train"),
        "test": E.pref_split(wildcards.pref, "test"),
        "selections": [E.selection(wildcards.pref, wildcards.budget, m, s) for m in EA_METHODS for s in EA_SEEDS],
    }
    inputs.update({f"policy_{k}": v for k, v in ea_model_inputs(EA["policy"]).items()})
    return inputs


def ea_run_seeds(wildcards):
    """The (selection / training) seed of each listed seed: derived from the study seed and the listed one."""
    return {str(s): derived_seed(config, "efficient_alignment", str(s)) for s in EA_SEEDS}


def ea_align_outputs():
    """The align job's files: the runs, and with the judge on the completions it generated."""
    outputs = {"runs": E.runs()}
    if EA_JUDGE:
        outputs["completions"] = E.completions()
    return outputs


def ea_judge_inputs(wildcards):
    inputs = {
        "test": E.pref_split(wildcards.pref, "test"),
        "runs": E.runs(wildcards.pref, wildcards.budget),
        "completions": E.completions(wildcards.pref, wildcards.budget),
    }
    # a local reward-model directory is an input (a hub name is not a file)
    if EA_JUDGE and Path(EA_JUDGE["model"]).is_dir():
        inputs["judge_config"] = str(Path(EA_JUDGE["model"]) / "config.json")
    return inputs


def ea_judged(pref):
    """The judged files of one dataset, one per budget (none with the judge off)."""
    return [E.judged(pref, b) for b in EA_BUDGETS] if EA_JUDGE else []
