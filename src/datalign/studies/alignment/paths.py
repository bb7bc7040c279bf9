"""The alignment study's path table (see :mod:`datalign.core.paths` for the convention).

Called with names, a method gives one artifact's path; called without, the
Snakemake pattern with its wildcards. Rules, DVC stages and scripts take paths
from here only.
"""

from __future__ import annotations

from datalign.core.paths import SharedPaths


class AlignmentPaths(SharedPaths):
    """Artifacts of the alignment study under ``results_dir`` (plus the shared ones)."""

    # Task2Vec: one embedding per batch of a (dataset, split), with a JSON sidecar.
    def embeddings(self, dataset: str = "{dataset}", split: str = "{split}") -> str:
        return f"{self.root}/task2vec/{dataset}/{split}.npz"

    def embeddings_meta(self, dataset: str = "{dataset}", split: str = "{split}") -> str:
        return f"{self.root}/task2vec/{dataset}/{split}.json"

    def embedding_group(self, group: str | int = "{group}") -> str:
        """The folder a grouped Task2Vec job (``resources.task2vec.sets_per_job`` > 1) writes
        its sets' files to, under their usual names (``<dataset>/<split>.npz``), before
        rule task2vec copies each to :meth:`embeddings`."""
        return f"{self.root}/task2vec/.groups/{group}"

    # Coefficients of every embedded set.
    def alignment_dir(self) -> str:
        return f"{self.root}/alignment"

    def diversity_table(self) -> str:
        return f"{self.alignment_dir()}/diversity.csv"

    def alignment_table(self) -> str:
        return f"{self.alignment_dir()}/alignment.csv"

    def alignment_square(self) -> str:
        return f"{self.alignment_dir()}/square.csv"

    def heatmap(self) -> str:
        return f"{self.alignment_dir()}/heatmap.png"

    def diversity_plot(self) -> str:
        return f"{self.alignment_dir()}/diversity.png"

    # Cheap alignment measures beside Task2Vec (datalign.measures): one table per measure.
    def measures_dir(self) -> str:
        return f"{self.alignment_dir()}/measures"

    def measure_table(self, measure: str = "{measure}") -> str:
        return f"{self.measures_dir()}/{measure}.csv"

    def measure_meta(self, measure: str = "{measure}") -> str:
        return f"{self.measures_dir()}/{measure}.json"

    # One trained model per (setting, training set).
    def checkpoint_dir(self, setting: str = "{setting}", train_set: str = "{train_set}") -> str:
        return f"{self.root}/checkpoints/{setting}/{train_set}"

    def checkpoint(self, setting: str = "{setting}", train_set: str = "{train_set}") -> str:
        return f"{self.checkpoint_dir(setting, train_set)}/model.safetensors"

    def train_log(self, setting: str = "{setting}", train_set: str = "{train_set}") -> str:
        return f"{self.checkpoint_dir(setting, train_set)}/train_log.json"

    def loss_curves(self, setting: str = "{setting}") -> str:
        return f"{self.root}/plots/loss_curves_{setting}.png"

    # Evaluation of every model on every evaluation set of its setting.
    def loss(self, setting: str = "{setting}", train_set: str = "{train_set}",
             eval_set: str = "{eval_set}") -> str:
        return f"{self.root}/losses/{setting}/{train_set}/{eval_set}.json"

    # What each setting's losses are held against: the base model (finetune) or the
    # evaluation set's unigram model (pretrain), on the same held-out tokens.
    def baseline_loss(self, setting: str = "{setting}", eval_set: str = "{eval_set}") -> str:
        return f"{self.root}/baselines/{setting}/{eval_set}.json"

    # Alignment against loss, per setting.
    def correlation_points(self, setting: str = "{setting}") -> str:
        return f"{self.root}/correlation/{setting}/points.csv"

    def correlation_stats(self, setting: str = "{setting}") -> str:
        return f"{self.root}/correlation/{setting}/stats.json"

    def correlation_scatter(self, setting: str = "{setting}") -> str:
        return f"{self.root}/correlation/{setting}/scatter.png"

    # Every measure's power to predict the loss (Task2Vec included), with its cost.
    def measures_comparison_dir(self) -> str:
        return f"{self.root}/correlation/measures"

    def measures_comparison(self) -> str:
        return f"{self.measures_comparison_dir()}/comparison.csv"

    def measures_comparison_markdown(self) -> str:
        return f"{self.measures_comparison_dir()}/comparison.md"

    def measures_comparison_plot(self) -> str:
        return f"{self.measures_comparison_dir()}/comparison.png"

    # The headline numbers.
    def summary_json(self) -> str:
        return f"{self.root}/summary.json"

    def summary_markdown(self) -> str:
        return f"{self.root}/summary.md"
