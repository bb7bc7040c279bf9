"""``ngram``: hashed unigram + bigram distributions of the two sets, compared (DSIR).

Features as in DSIR (Xie et al. 2023, "Data Selection for Language Models via
Importance Resampling", section 4 and eq. 2): each document is lower-cased,
split into words and punctuation runs, and its unigrams and bigrams are hashed
into ``buckets`` counts (scikit-learn's ``HashingVectorizer``, no sign flip, no
norm). A set's feature distribution is its summed counts, add-one smoothed::

    p(f) = (N(f) + 1) / (sum_f' N(f') + buckets)

Two statistics (``statistic``):

- ``kl`` (default): alignment = -KL(p_target || p_candidate)
  = -sum_f p_t(f) log(p_t(f) / p_c(f)), in nats per feature, range (-inf, 0],
  0 when the two distributions are equal. This is the n-gram analogue of what
  the study correlates it with: the loss of a model fitted to the candidate,
  evaluated on the target, is the cross-entropy H(p_t, p_c) = H(p_t) + KL(p_t || p_c),
  so KL(target || candidate) is the extra loss an n-gram model of the candidate
  pays on the target; it is why ``kl`` is the default.
- ``log_importance``: DSIR's importance weight, averaged. For a candidate
  document x with feature counts c_f(x), log w(x) = sum_f c_f(x) log(p_t(f) / p_c(f))
  (DSIR eq. 2); here divided by the document's feature count (nats per feature,
  so long documents do not dominate), alignment = mean over candidate documents
  of that. Range: the real line, higher meaning the candidate's documents look
  more like the target than like the candidate's own average. Pooled over
  features it is -KL(p_c || p_t), the reverse direction of ``kl``; DSIR ranks
  single documents with it, a set-level comparison gains nothing over ``kl``.

With document weights (a bootstrap resample) the counts of a document are
multiplied by its weight before summing, and ``log_importance`` averages with
the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datalign.measures.base import Comparison, Measure, Representation, keep_documents, weights
from datalign.measures.registry import register_measure
from datalign.task2vec.options import Options, option

STATISTICS = ("kl", "log_importance")
#: Words (letters, digits, underscore) or runs of punctuation, as NLTK's WordPunctTokenizer (DSIR).
TOKEN_PATTERN = r"\w+|[^\w\s]+"


@dataclass(frozen=True)
class NgramOptions(Options):
    """The ``ngram`` measure's keys (``measures.ngram``)."""

    statistic: str = option("kl", "kl: -KL(target || candidate); log_importance: mean DSIR log "
                            "importance weight of the candidate's documents", enum=STATISTICS)
    buckets: int = option(10000, "hash buckets of the unigram + bigram features (DSIR: 10000)", minimum=16)
    max_docs: int = option(1000, "documents kept per set (a seeded sample; 0: all)", minimum=0)
    max_chars: int = option(20000, "characters kept from the start of each document (0: all)", minimum=0)
    seed: int = option(0, "seed of the document sample", minimum=0)


def hashed_counts(docs: list[str], buckets: int):
    """(n, buckets) sparse matrix of hashed unigram + bigram counts (float64, CSR)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(n_features=buckets, ngram_range=(1, 2), token_pattern=TOKEN_PATTERN,
                            lowercase=True, alternate_sign=False, norm=None, dtype=np.float64)
    return vec.transform(docs).tocsr()


def smoothed(counts: np.ndarray) -> np.ndarray:
    """Add-one smoothed distribution of feature counts (rows: one distribution each)."""
    c = np.asarray(counts, dtype=float) + 1.0
    return c / c.sum(axis=-1, keepdims=True)


class _NgramComparison(Comparison):
    def __init__(self, a, b, statistic: str) -> None:
        self.a, self.b, self.statistic = a, b, statistic
        self.n_candidate, self.n_target = a.shape[0], b.shape[0]
        self.a_totals = np.maximum(np.asarray(a.sum(axis=1)).ravel(), 1.0)

    def values(self, w_candidate: np.ndarray, w_target: np.ndarray) -> np.ndarray:
        wc = np.asarray(w_candidate, dtype=float)
        wt = np.asarray(w_target, dtype=float)
        log_pc = np.log(smoothed((self.a.T @ wc.T).T))   # (B, buckets)
        log_pt = np.log(smoothed((self.b.T @ wt.T).T))
        if self.statistic == "kl":
            return -np.sum(np.exp(log_pt) * (log_pt - log_pc), axis=1)
        ratio = log_pt - log_pc                           # (B, buckets)
        per_doc = (self.a @ ratio.T).T / self.a_totals    # (B, n_candidate): nats per feature
        return np.sum(per_doc * wc, axis=1) / wc.sum(axis=1)

    def value(self, w_candidate=None, w_target=None) -> float:
        wc = weights(w_candidate, self.n_candidate)[None, :]
        wt = weights(w_target, self.n_target)[None, :]
        return float(self.values(wc, wt)[0])


@register_measure("ngram", options=NgramOptions)
class NgramAlignment(Measure):
    """Hashed unigram + bigram distributions (DSIR): -KL(target || candidate) by default, <= 0."""

    def _prepare(self, docs: list[str]) -> tuple[object, int]:
        o = self.options
        kept = keep_documents(docs, o.max_docs, o.seed)
        if o.max_chars:
            kept = [d[: o.max_chars] for d in kept]
        return hashed_counts(kept, o.buckets), len(kept)

    def _compare(self, candidate: Representation, target: Representation) -> Comparison:
        return _NgramComparison(candidate.data, target.data, self.options.statistic)
