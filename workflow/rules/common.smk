# Shared by every file of rules: the library on the path, the validated config, the
# enabled studies, the shared path table, resources. What each study computes
# lives in its package (src/datalign/studies/<study>/).

import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

REPO = Path(workflow.basedir)
sys.path.insert(0, str(REPO / "src"))
# Jobs (local, or submitted to SLURM) import the library from this checkout too.
os.environ.update(
    PYTHONPATH=os.pathsep.join([str(REPO / "src"), *filter(None, os.getenv("PYTHONPATH", "").split(os.pathsep))])
)

from datalign.core.errors import DatalignError
from datalign.core.paths import SharedPaths, keep_results_out_of_git
from datalign.core.pulled import date_pulled_artifacts
from datalign.core.seeds import derived_seed
from datalign.data.inputs import source_files
from datalign.studies import datasets_used, enabled_studies, validate_study_config
from datalign.studies import pipeline

if not config:
    raise WorkflowError(
        "no config: run snakemake from the repository root (profiles/default names "
        "config/config.yaml) or pass --configfile"
    )
try:
    validate_study_config(config)
except DatalignError as err:
    raise WorkflowError(f"invalid config: {err}") from None

R = config["results_dir"]
P = SharedPaths(R)


onstart:
    # A results_dir the repository's .gitignore does not cover gets its own (not on -n).
    keep_results_out_of_git(R)
STUDIES = enabled_studies(config)
SPLITS = ["train", "validation", "test"]
CONDA_ENV = "../../../envs/datalign.yaml"

# Artifacts from `dvc pull` carry meaningless timestamps: date the ones DVC
# reports as recorded for the current code and parameters (datalign.core.pulled).
# The DVC project is the working directory (where results_dir lives).
try:
    _dated = date_pulled_artifacts(
        Path.cwd(), [REPO / "Snakefile", REPO / "workflow", REPO / "src" / "datalign"]
    )
except RuntimeError as err:
    raise WorkflowError(f"cannot read DVC's record of the artifacts: {err}") from None
if _dated:
    print(
        f"artifacts recorded by DVC taken as given: "
        + ", ".join(f"{stage} ({n} files)" for stage, n in _dated.items()),
        file=sys.stderr,
    )



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


def final_targets():
    targets = [P.study_config()]
    for study in STUDIES:
        targets += study.final_targets(config)
    return targets


# Input functions of the shared rules.


def source_inputs(wildcards):
    """Files outside the workflow a dataset is read from (a `local` source's files):
    an edit to one of them reruns the dataset's preparation and all that follows."""
    return source_files(wildcards.dataset, config["datasets"][wildcards.dataset])


def mixture_inputs(wildcards):
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] != "mixture":
        return []
    return [P.data_manifest(c) for c in spec["components"]]


def tokenizer_inputs(wildcards):
    if config["tokenizer"]["kind"] != "bpe":
        return []
    return [P.data_split(d, "train") for d in config["tokenizer"]["train_on"]]


def probe_inputs(wildcards):
    if config["probe"].get("pretrained") is not None:
        return []
    return [P.tokens(d, "train") for d in config["probe"]["pretrain"]["datasets"]]


# The resolved study's plan, written by study_config: what DVC's stages depend on.


def _sha256(path):
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def study_plan():
    datasets = datasets_used(config)
    plan = {
        "datasets": {d: config["datasets"][d] for d in datasets},
        # Local data files by content: an edited file reruns the data stage in DVC too.
        "source_files": {
            d: {f: _sha256(f) for f in source_files_of(d) if os.path.isfile(f)}
            for d in datasets
            if source_files_of(d)
        },
    }
    for study in STUDIES:
        plan.update(study.plan(config))
    return canonical(plan)


def source_files_of(dataset):
    return source_files(dataset, config["datasets"][dataset])
