"""The efficient-alignment study's path table (see :mod:`datalign.core.paths` for the convention).

Called with names, a method gives one artifact's path; called without, the
Snakemake pattern with its wildcards (``{pref}`` a preference dataset,
``{budget}`` a budget label such as ``5`` or ``2.5`` percent, ``{method}``,
``{seed}``). Every artifact lives under ``{results_dir}/efficient_alignment/``.
"""

from __future__ import annotations

from datalign.core.paths import SharedPaths


class EfficientAlignmentPaths(SharedPaths):
    """Artifacts of the efficient-alignment study under ``results_dir`` (plus the shared ones)."""

    def study_dir(self) -> str:
        return f"{self.root}/efficient_alignment"

    # Prepared preference data: train.jsonl, test.jsonl (held-out groups), manifest.json.
    def pref_dir(self, pref: str = "{pref}") -> str:
        return f"{self.study_dir()}/data/{pref}"

    def pref_manifest(self, pref: str = "{pref}") -> str:
        return f"{self.pref_dir(pref)}/manifest.json"

    def pref_split(self, pref: str = "{pref}", split: str = "{split}") -> str:
        return f"{self.pref_dir(pref)}/{split}.jsonl"

    # A policy exported from a package (SmolLM2-135M-Instruct), when the config names one.
    def policy_dir(self) -> str:
        return f"{self.study_dir()}/policy"

    def policy_model(self) -> str:
        return f"{self.policy_dir()}/model.safetensors"

    # Row embeddings (the selection's input) and per-row completion NLL (the quality probe's).
    def embeddings(self, pref: str = "{pref}") -> str:
        return f"{self.study_dir()}/embeddings/{pref}.npz"

    def quality_scores(self, pref: str = "{pref}") -> str:
        return f"{self.study_dir()}/quality/{pref}.npz"

    # One selection per (dataset, budget, method, seed).
    def selection(self, pref: str = "{pref}", budget: str = "{budget}", method: str = "{method}",
                  seed: str = "{seed}") -> str:
        return f"{self.study_dir()}/selection/{pref}/{budget}/{method}_seed{seed}.npz"

    # The runs of one (dataset, budget): every method x seed aligned and evaluated.
    def runs(self, pref: str = "{pref}", budget: str = "{budget}") -> str:
        return f"{self.study_dir()}/runs/{pref}/{budget}.json"

    # With the judge on: the greedy completions of the held-out prompts by the base and every run
    # (written by the align job), and their judged win rates (the judge job; under the scaling folder).
    def completions(self, pref: str = "{pref}", budget: str = "{budget}") -> str:
        return f"{self.study_dir()}/runs/{pref}/{budget}.completions.json"

    def judged(self, pref: str = "{pref}", budget: str = "{budget}") -> str:
        return f"{self.scaling_dir(pref)}/judged/{budget}.json"

    # The scaling fit, points, the budget table and the plot, per dataset.
    def scaling_dir(self, pref: str = "{pref}") -> str:
        return f"{self.study_dir()}/scaling/{pref}"

    def scaling_fits(self, pref: str = "{pref}") -> str:
        return f"{self.scaling_dir(pref)}/fits.json"

    def scaling_points(self, pref: str = "{pref}") -> str:
        return f"{self.scaling_dir(pref)}/points.csv"

    def budget_table(self, pref: str = "{pref}") -> str:
        return f"{self.scaling_dir(pref)}/table.csv"

    def score_plot(self, pref: str = "{pref}") -> str:
        return f"{self.scaling_dir(pref)}/score_vs_fraction.png"

    # The study's headline numbers.
    def summary_json(self) -> str:
        return f"{self.study_dir()}/summary.json"

    def summary_markdown(self) -> str:
        return f"{self.study_dir()}/summary.md"
