# Shared helpers: config validation, paths, resources. Everything that decides
# *what* the study computes lives in datalign.studies.alignment.plan.

import copy
import os
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.io import IOFile

REPO = Path(workflow.basedir).parent
sys.path.insert(0, str(REPO / "src"))
# Jobs (local, or submitted to SLURM) import the library from this checkout too.
os.environ.update(
    PYTHONPATH=os.pathsep.join([str(REPO / "src"), *filter(None, os.getenv("PYTHONPATH", "").split(os.pathsep))])
)

from datalign.studies.alignment import plan as study
from datalign.core.config import validate_config
from datalign.core.errors import ConfigError

# A study file given with --configfile is the whole study: Snakemake would merge it
# over config/config.yaml (the Snakefile's configfile), so a study that leaves a
# key out would silently inherit the default study's value. Rebuild the config
# from the command line's files and --config values alone.
if workflow.config_settings.configfiles:
    config.clear()
    config.update(copy.deepcopy(dict(workflow.config_settings.overwrite_config)))

try:
    validate_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None

R = config["results_dir"]
SETTINGS = study.settings(config)
EMBEDDING_SETS = study.embedding_sets(config)
SPLITS = list(study.SPLITS)
CONDA_ENV = "../../envs/datalign.yaml"


wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    train_set="[A-Za-z0-9_]+",
    eval_set="[A-Za-z0-9_]+",
    split="train|validation|test",
    setting="pretrain|finetune",


# Defaults sized for a 2-core laptop; paper.yaml and profiles override them.
DEFAULT_RESOURCES = {
    "prepare_data": dict(mem_mb=2000, runtime=30),
    "train_tokenizer": dict(mem_mb=2000, runtime=30),
    "tokenize": dict(mem_mb=2000, runtime=30),
    "probe": dict(mem_mb=4000, runtime=120),
    "task2vec": dict(mem_mb=4000, runtime=240),
    "alignment": dict(mem_mb=2000, runtime=30),
    "train": dict(mem_mb=4000, runtime=240),
    "evaluate": dict(mem_mb=4000, runtime=60),
    "correlate": dict(mem_mb=1000, runtime=10),
    "report": dict(mem_mb=1000, runtime=10),
}


def canonical(value):
    """``value`` with every mapping's keys sorted, recursively.

    Snakemake's params trigger compares params as written; sorting makes a
    reordered (but equal) config section not count as a change.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def res(rule_name, key):
    """A rule's resource: config `resources.<rule>.<key>` or the laptop default."""
    configured = config.get("resources", {}).get(rule_name, {})
    if key in configured:
        return configured[key]
    return DEFAULT_RESOURCES.get(rule_name, {}).get(key, 0 if key == "gpu" else None)


def rule_threads(rule_name):
    return config.get("resources", {}).get(rule_name, {}).get("threads", config["threads"])


def train_gpus(wildcards):
    """GPUs of one training job: `resources.train.gpu`, raised to the setting's
    num_processes when the job runs on GPUs (one process per GPU); 0 keeps it on
    the CPU, where num_processes > 1 means gloo processes on the job's cores.
    The SLURM executor turns `gpu=N` into `--gpus=N` (add `gpu_model` in a profile's
    set-resources to pin a card type)."""
    gpus = res("train", "gpu")
    if not gpus:
        return 0
    return max(gpus, config["experiments"][wildcards.setting].get("num_processes", 1))


def data_dir(dataset):
    return f"{R}/data/{dataset}"


def split_file(dataset, split):
    return f"{R}/data/{dataset}/{split}.jsonl"


def token_file(dataset, split):
    return f"{R}/tokens/{dataset}/{split}.npz"


def embedding_file(es):
    return f"{R}/task2vec/{es.dataset}/{es.split}.npz"


def checkpoint_file(setting, train_set):
    return f"{R}/checkpoints/{setting}/{train_set}/model.safetensors"


def loss_file(setting, train_set, eval_set):
    return f"{R}/losses/{setting}/{train_set}/{eval_set}.json"


def final_targets():
    targets = [
        f"{R}/study.yaml",
        f"{R}/alignment/heatmap.png",
        f"{R}/alignment/diversity.png",
        f"{R}/summary.json",
    ]
    for setting in SETTINGS:
        targets += [
            f"{R}/correlation/{setting}/scatter.png",
            f"{R}/plots/loss_curves_{setting}.png",
        ]
    return targets


# Input functions of the rules.


def mixture_inputs(wildcards):
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] != "mixture":
        return []
    return [f"{R}/data/{c}/manifest.json" for c in spec["components"]]


def tokenizer_inputs(wildcards):
    if config["tokenizer"]["kind"] != "bpe":
        return []
    return [split_file(d, "train") for d in config["tokenizer"]["train_on"]]


def probe_inputs(wildcards):
    if config["probe"].get("pretrained") is not None:
        return []
    return [token_file(d, "train") for d in config["probe"]["pretrain"]["datasets"]]


def train_inputs(wildcards):
    inputs = {
        "tokenizer": rules.train_tokenizer.output.tokenizer,
        "tokens": token_file(wildcards.train_set, "train"),
    }
    if wildcards.setting == "finetune" and config["experiments"]["finetune"]["base"] == "probe":
        inputs["base"] = rules.probe.output.model
    return inputs


# Pulled artifacts. Snakemake 9 reruns a job whose input is newer than its output,
# whatever its rerun-triggers say, and `dvc pull` writes files with new timestamps
# in no particular order (DVC keeps no mtimes). Every rule input therefore goes
# through `trust_pulled`, which marks a file ancient (its timestamp triggers
# nothing) when
#   1. it exists and Snakemake has no record of writing it in this working copy
#      (it came from `dvc pull` or `dvc checkout`),
#   2. its DVC stage and every stage upstream of it are complete (all their
#      artifacts present), and
#   3. it is newer than every script those stages run (no script changed since).
# Otherwise the file keeps all of Snakemake's triggers: what Snakemake wrote here,
# what follows a missing artifact, what follows a changed script. The stages come
# from dvc.yaml (outs, and deps on other stages' outs). See README.md, "Sharing results with DVC".


def _under(path, root):
    return path == root or path.startswith(f"{root}/")


def _dvc_stages():
    """dvc.yaml's stages as {name: (outs, deps)}: none without dvc.yaml, whose
    outputs are under results/, or with another results_dir."""
    spec = REPO / "dvc.yaml"
    if not spec.exists() or R != "results":
        return {}
    stages = yaml.safe_load(spec.read_text()).get("stages", {})
    return {
        name: (
            [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])],
            stage.get("deps", []),
        )
        for name, stage in stages.items()
    }


_TRUST = {}


def _trusted_after():
    """{DVC output path: the time after which a pulled file in it counts as given}:
    the newest script of its stage and the stages upstream of it, or None while
    one of those stages misses an artifact. Computed once per run."""
    if "table" not in _TRUST:
        stages = _dvc_stages()

        def producers(path):
            return {name for name, (outs, _) in stages.items() if any(_under(path, o) for o in outs)}

        table = {}
        for name, (outs, _) in stages.items():
            chain, todo = {name}, [name]
            while todo:
                for dep in stages[todo.pop()][1]:
                    for up in producers(dep) - chain:
                        chain.add(up)
                        todo.append(up)
            complete = name in FAMILIES and all(
                os.path.exists(f) for s in chain if s in FAMILIES for f in family_targets(s)
            )
            scripts = [REPO / d for s in chain for d in stages[s][1] if d.startswith("workflow/scripts/")]
            newest = max((p.stat().st_mtime for p in scripts if p.exists()), default=0.0)
            table.update({out: newest if complete else None for out in outs})
        _TRUST["table"] = table
    return _TRUST["table"]


def _dated_as_given(path):
    persistence = workflow.persistence
    if persistence is None or not os.path.exists(path):
        return path
    after = next((t for out, t in _trusted_after().items() if _under(path, out)), None)
    # Snakemake dates a symlink (DVC cache.type symlink) by the newer of link and target.
    if after is None or max(os.lstat(path).st_mtime, os.stat(path).st_mtime) <= after:
        return path
    if persistence.metadata(IOFile(path)) is not None:
        return path
    return ancient(path)


def trust_pulled(item):
    """Rule input(s) (a path pattern, a list or dict of them, or an input function)
    with every pulled file that may be taken as given marked ancient (see above)."""

    def mark(value, wildcards):
        if isinstance(value, dict):
            return {k: mark(v, wildcards) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [mark(v, wildcards) for v in value]
        return _dated_as_given(str(value).format_map(dict(wildcards.items())))

    def inputs(wildcards):
        return mark(item(wildcards) if callable(item) else item, wildcards)

    return inputs


# Artifact families: one per DVC stage (dvc.yaml). Each family lists the files
# `rule all` needs from it, so `dvc repro` writes exactly what `snakemake` writes.


def tokenized_files():
    """Every token file a job of the study reads (probe, Task2Vec, training, evaluation)."""
    files = set(probe_inputs(None))
    files.update(token_file(es.dataset, es.split) for es in EMBEDDING_SETS)
    for setting in SETTINGS:
        files.update(token_file(t, "train") for t in study.train_sets(config, setting))
        files.update(token_file(e, "test") for e in study.eval_sets(config, setting))
    return sorted(files)


FAMILIES = ("data", "task2vec", "alignment", "training", "evaluation", "correlation")


def family_targets(family):
    """The files of one artifact family, the input of its target rule `dvc_<family>`."""
    if family == "data":
        return [
            *[f"{data_dir(d)}/manifest.json" for d in study.datasets_used(config)],
            f"{R}/tokenizer/tokenizer.json",
            *tokenized_files(),
        ]
    if family == "task2vec":
        return [f"{R}/probe/model.safetensors", *[embedding_file(es) for es in EMBEDDING_SETS]]
    if family == "alignment":
        return [f"{R}/alignment/{name}" for name in ("alignment.csv", "diversity.csv", "heatmap.png")]
    if family == "training":
        return [
            *[checkpoint_file(s, t) for s in SETTINGS for t in study.train_sets(config, s)],
            *[f"{R}/plots/loss_curves_{s}.png" for s in SETTINGS],
        ]
    if family == "evaluation":
        return [loss_file(s, t, e) for s in SETTINGS for t, e in study.evaluation_pairs(config, s)]
    if family == "correlation":
        return [f"{R}/summary.json", *[f"{R}/correlation/{s}/scatter.png" for s in SETTINGS]]
    raise WorkflowError(f"unknown artifact family '{family}'")
