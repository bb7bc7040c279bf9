# Shared helpers: config validation, paths, resources. Everything that decides
# *what* the study computes lives in datalign.study.

import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

REPO = Path(workflow.basedir).parent
sys.path.insert(0, str(REPO / "src"))
# Jobs (local, or submitted to SLURM) import the library from this checkout too.
os.environ.update(
    PYTHONPATH=os.pathsep.join([str(REPO / "src"), *filter(None, os.getenv("PYTHONPATH", "").split(os.pathsep))])
)

from datalign import study
from datalign.config import validate_config
from datalign.errors import ConfigError

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
