# The alignment study's names for its rules: its plan, its path table, its input functions.

from datalign.studies.alignment import plan
from datalign.studies.alignment.paths import AlignmentPaths

A = AlignmentPaths(R)
SETTINGS = plan.settings(config)
EMBEDDING_SETS = plan.embedding_sets(config)



wildcard_constraints:
    train_set="[A-Za-z0-9_]+",
    eval_set="[A-Za-z0-9_]+",
    setting="pretrain|finetune",


def training_params(wildcards):
    """What changes one model: the setting's training keys, not the lists of sets."""
    return canonical(plan.training_keys(config, wildcards.setting))


def evaluation_params(wildcards):
    """What changes one loss besides its model (an input): the held-out tokens, cut and batched."""
    return canonical(plan.evaluation_keys(config, wildcards.setting))


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


def train_inputs(wildcards):
    inputs = {
        "tokenizer": P.tokenizer(),
        "tokens": P.tokens(wildcards.train_set, "train"),
    }
    if wildcards.setting == "finetune" and config["experiments"]["finetune"]["base"] == "probe":
        inputs["base"] = P.probe_model()
    return inputs


def baseline_inputs(wildcards):
    """The reference of a setting's losses: the untuned base (finetune with the probe as
    base; a hub base is named in params), or the evaluation set's train tokens and the
    tokenizer's vocabulary (pretrain: the unigram reference; see plan.baseline_reference)."""
    inputs = {"tokens": P.tokens(wildcards.eval_set, "test")}
    reference = plan.baseline_reference(config, wildcards.setting)
    if reference["kind"] == "base_model" and reference["base"] == "probe":
        inputs["base"] = P.probe_model()
    elif reference["kind"] == "unigram":
        inputs["train_tokens"] = P.tokens(wildcards.eval_set, "train")
        inputs["tokenizer"] = P.tokenizer()
    return inputs
