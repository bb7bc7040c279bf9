"""The spectral-imbalance study (PAPERS.md part 3; Kaushik et al., ICML 2024).

Balanced labelled data (``datalign.data.labelled``) is encoded into features
(:mod:`.encoders`); the per-class covariance spectra of those features are
compared with per-class linear-probe errors and with the Gaussian-mixture
theory of the paper.
"""
