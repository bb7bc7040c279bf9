"""The spectral-imbalance study's path table (see :mod:`datalign.core.paths` for the convention).

Called with names, a method gives one artifact's path; called without, the
Snakemake pattern with its wildcards (``{labelled}``: a labelled dataset,
``{encoder}``: an encoder). Everything lives under
``{results_dir}/spectral_imbalance/``. Rules, DVC stages and scripts take
paths from here only.
"""

from __future__ import annotations

from datalign.core.paths import SharedPaths

#: The study's folder under results_dir (DVC families name their outs relative to results_dir).
FOLDER = "spectral_imbalance"


class SpectralImbalancePaths(SharedPaths):
    """Artifacts of the spectral-imbalance study (plus the shared ones)."""

    def study_dir(self) -> str:
        return f"{self.root}/{FOLDER}"

    # A prepared labelled dataset: a folder with train/test files and manifest.json.
    def labelled_dir(self, labelled: str = "{labelled}") -> str:
        return f"{self.study_dir()}/data/{labelled}"

    def labelled_manifest(self, labelled: str = "{labelled}") -> str:
        return f"{self.labelled_dir(labelled)}/manifest.json"

    # Cached features of one encoder on one labelled dataset (fitted on train).
    def features(self, labelled: str = "{labelled}", encoder: str = "{encoder}", split: str = "{split}") -> str:
        return f"{self.study_dir()}/features/{labelled}/{encoder}/{split}.npz"

    def features_info(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.study_dir()}/features/{labelled}/{encoder}/info.json"

    # Per-encoder analysis of the held-out (test) features.
    def analysis_dir(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.study_dir()}/analysis/{labelled}/{encoder}"

    def class_table(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.analysis_dir(labelled, encoder)}/classes.csv"

    def imbalance_table(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.analysis_dir(labelled, encoder)}/imbalance.csv"

    def correlation_table(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.analysis_dir(labelled, encoder)}/correlations.csv"

    def probe_summary(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.analysis_dir(labelled, encoder)}/probe.json"

    def spectra_plot(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.analysis_dir(labelled, encoder)}/spectra.png"

    def metrics_plot(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.analysis_dir(labelled, encoder)}/metrics_vs_error.png"

    def prediction_plot(self, labelled: str = "{labelled}", encoder: str = "{encoder}") -> str:
        return f"{self.analysis_dir(labelled, encoder)}/predicted_vs_measured.png"

    # Across the encoders of one labelled dataset.
    def compare_dir(self, labelled: str = "{labelled}") -> str:
        return f"{self.study_dir()}/compare/{labelled}"

    def encoder_table(self, labelled: str = "{labelled}") -> str:
        return f"{self.compare_dir(labelled)}/encoders.csv"

    def ranking_agreement(self, labelled: str = "{labelled}") -> str:
        return f"{self.compare_dir(labelled)}/ranking_agreement.csv"

    def all_correlations(self, labelled: str = "{labelled}") -> str:
        return f"{self.compare_dir(labelled)}/correlations.csv"

    def augmentation_table(self, labelled: str = "{labelled}") -> str:
        return f"{self.compare_dir(labelled)}/augmentation.csv"

    def selection_table(self, labelled: str = "{labelled}") -> str:
        return f"{self.compare_dir(labelled)}/selection.csv"

    def encoder_plot(self, labelled: str = "{labelled}") -> str:
        return f"{self.compare_dir(labelled)}/encoders.png"

    def correlation_plot(self, labelled: str = "{labelled}") -> str:
        return f"{self.compare_dir(labelled)}/correlations.png"

    # The headline numbers.
    def summary_json(self) -> str:
        return f"{self.study_dir()}/summary.json"

    def summary_markdown(self) -> str:
        return f"{self.study_dir()}/summary.md"
