"""``embedding_cosine``: mean cosine similarity of the two sets' sentence embeddings.

Each document is embedded by all-MiniLM-L6-v2 (Reimers & Gurevych 2019,
Sentence-BERT; the packaged offline copy, :mod:`datalign.lm.sentence`) as a
unit vector u (mean-pooled token states, L2-normalised; the text is cut to
``max_seq_length`` word pieces). The alignment is the mean cosine over all
document pairs, which for unit vectors is the dot product of the two mean
embeddings::

    alignment(A, B) = 1/(|A||B|) sum_{a in A} sum_{b in B} u_a . u_b = mean(u_A) . mean(u_B)

(the sentence-embedding alignment the later version of Chawla et al. 2025
compares with Task2Vec). Units: none (a cosine). Range: [-1, 1]; in practice
[0, 1] for this encoder, 1 only when every document of both sets has the same
embedding. With document weights (a bootstrap resample) the means are weighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from datalign.measures.base import Comparison, Measure, Representation, keep_documents, weights
from datalign.measures.registry import register_measure
from datalign.task2vec.options import Options, option


@dataclass(frozen=True)
class EmbeddingCosineOptions(Options):
    """The ``embedding_cosine`` measure's keys (``measures.embedding_cosine``)."""

    model: str = option("", "sentence-transformers directory or hub name ('': the packaged all-MiniLM-L6-v2, "
                        "offline)")
    max_docs: int = option(48, "documents kept per set (a seeded sample; 0: all)", minimum=0)
    max_seq_length: int = option(128, "word pieces read per document (the model's own cap is 256)",
                                 minimum=8, maximum=512)
    max_chars: int = option(2000, "characters passed to the tokenizer per document (0: all); the text "
                            "beyond max_seq_length word pieces is dropped anyway", minimum=0)
    batch_size: int = option(32, "documents per encoder batch", minimum=1)
    seed: int = option(0, "seed of the document sample", minimum=0)


class _MeanDot(Comparison):
    def __init__(self, u: np.ndarray, v: np.ndarray) -> None:
        self.u, self.v = u, v
        self.n_candidate, self.n_target = u.shape[0], v.shape[0]

    def values(self, w_candidate: np.ndarray, w_target: np.ndarray) -> np.ndarray:
        wc = np.asarray(w_candidate, dtype=float)
        wt = np.asarray(w_target, dtype=float)
        mu = (wc @ self.u) / wc.sum(axis=1, keepdims=True)
        mv = (wt @ self.v) / wt.sum(axis=1, keepdims=True)
        return np.einsum("bd,bd->b", mu, mv)

    def value(self, w_candidate=None, w_target=None) -> float:
        wc = weights(w_candidate, self.n_candidate)[None, :]
        wt = weights(w_target, self.n_target)[None, :]
        return float(self.values(wc, wt)[0])


@register_measure("embedding_cosine", options=EmbeddingCosineOptions)
class EmbeddingCosine(Measure):
    """Mean cosine of all-MiniLM-L6-v2 sentence embeddings over document pairs; [-1, 1]."""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._encoder: Any = None

    def encoder(self) -> Any:
        """The sentence encoder, loaded on first use and kept."""
        if self._encoder is None:
            from datalign.lm.sentence import load_sentence_encoder

            self._encoder = load_sentence_encoder(self.options.model or None)
            self._encoder.max_seq_length = self.options.max_seq_length
        return self._encoder

    def setup(self) -> None:
        self.encoder()

    def embed(self, docs: list[str]) -> np.ndarray:
        """Unit-norm float64 embeddings (n, d) of ``docs`` as given (no sampling)."""
        o = self.options
        texts = [d[: o.max_chars] for d in docs] if o.max_chars else list(docs)
        emb = self.encoder().encode(texts, batch_size=o.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float64).reshape(len(texts), -1)

    def _prepare(self, docs: list[str]) -> tuple[np.ndarray, int]:
        kept = keep_documents(docs, self.options.max_docs, self.options.seed)
        return self.embed(kept), len(kept)

    def _compare(self, candidate: Representation, target: Representation) -> Comparison:
        return _MeanDot(candidate.data, target.data)
