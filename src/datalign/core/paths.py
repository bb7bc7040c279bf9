"""Where the artifacts shared by every study live: one path table, used by the
rules, the DVC stages and the scripts alike.

Every method returns a path under ``results_dir``. Called with concrete names it
gives that artifact's path; called without arguments it gives the Snakemake
pattern (``{dataset}``, ``{split}`` left as wildcards). A pattern is therefore
written exactly once, here, whether a rule declares it as an output or an input
function asks for one instance of it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

SPLIT_NAMES = ("train", "validation", "test")


class SharedPaths:
    """Artifacts of the shared layers: prepared data, the tokenizer, token ids, the probe.

    ``results_dir`` is the config's ``results_dir`` (a path relative to the
    working directory, or absolute).
    """

    def __init__(self, results_dir: str) -> None:
        self.root = str(results_dir).rstrip("/") or "."

    # Logs and job benchmarks go with the results they explain: two studies in one
    # checkout with different results_dir keep apart, and clean-up is one folder.
    def log(self, name: str) -> str:
        """The log of one job, ``name`` a rule-chosen path such as ``train/{setting}_{train_set}``."""
        return f"{self.root}/logs/{name}.log"

    def benchmark(self, name: str) -> str:
        """Snakemake's benchmark TSV (seconds, memory) of one job."""
        return f"{self.root}/logs/benchmarks/{name}.tsv"

    # The resolved study config (files merged, defaults filled, plan added).
    def study_config(self) -> str:
        return f"{self.root}/study.yaml"

    # Prepared text datasets (datalign.data).
    def data_dir(self, dataset: str = "{dataset}") -> str:
        return f"{self.root}/data/{dataset}"

    def data_manifest(self, dataset: str = "{dataset}") -> str:
        return f"{self.data_dir(dataset)}/manifest.json"

    def data_split(self, dataset: str = "{dataset}", split: str = "{split}") -> str:
        return f"{self.data_dir(dataset)}/{split}.jsonl"

    def data_splits(self, dataset: str = "{dataset}") -> list[str]:
        return [self.data_split(dataset, s) for s in SPLIT_NAMES]

    # The tokenizer shared by every language model of a study (datalign.lm.tokenizer).
    def tokenizer_dir(self) -> str:
        return f"{self.root}/tokenizer"

    def tokenizer(self) -> str:
        return f"{self.tokenizer_dir()}/tokenizer.json"

    # Token ids per split (datalign.lm.tokens).
    def tokens(self, dataset: str = "{dataset}", split: str = "{split}") -> str:
        return f"{self.root}/tokens/{dataset}/{split}.npz"

    def token_splits(self, dataset: str = "{dataset}") -> list[str]:
        return [self.tokens(dataset, s) for s in SPLIT_NAMES]

    def tokens_summary(self, dataset: str = "{dataset}") -> str:
        return f"{self.root}/tokens/{dataset}/summary.json"

    # The probe: Task2Vec's feature extractor, the fine-tuning base, the tiny policy.
    def probe_dir(self) -> str:
        return f"{self.root}/probe"

    def probe_model(self) -> str:
        return f"{self.probe_dir()}/model.safetensors"

    def probe_log(self) -> str:
        return f"{self.probe_dir()}/train_log.json"


#: What :func:`keep_results_out_of_git` writes: everything below the folder is ignored.
RESULTS_GITIGNORE = "# written by datalign: results are DVC's to track, not git's\n*\n"


def keep_results_out_of_git(results_dir: str | Path) -> Path | None:
    """Make git ignore ``results_dir`` when it lies in a git work tree that does not ignore it.

    A custom ``results_dir`` (``studies/proofs``, say) is not covered by the
    repository's ``.gitignore``; this writes ``<results_dir>/.gitignore`` with ``*``,
    the way virtual environments keep themselves out of git. Returns the file
    written, or None when nothing was needed (already ignored, not in a work
    tree, or git not installed).
    """
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        probe = subprocess.run(
            ["git", "check-ignore", "-q", "--no-index", str(folder.resolve()) + "/"],
            cwd=folder, capture_output=True, text=True, check=False,
        )
    except OSError:  # no git on this machine
        return None
    # 0: ignored already; 128: not a work tree (or git refused); 1: not ignored
    if probe.returncode != 1:
        return None
    target = folder / ".gitignore"
    if not target.exists():
        target.write_text(RESULTS_GITIGNORE, encoding="utf-8")
    return target
