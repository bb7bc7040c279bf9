"""What every measure shares: the representation of a set, the comparison of two, input checks.

A measure works in two steps, so that a set compared with many others is
processed once:

1. :meth:`Measure.prepare` turns one set's documents into a
   :class:`Representation` with one entry per document kept (a compressed
   length, an embedding, a row of n-gram counts);
2. :meth:`Measure.compare` pairs two representations into a
   :class:`Comparison`, whose :meth:`~Comparison.value` is the alignment with
   every document weighted. With unit weights it is the point value
   (:meth:`Measure.alignment`); with the multiplicities of a resample drawn with
   replacement it is exactly the value on that resample, which makes a
   bootstrap over documents cheap (:func:`datalign.measures.table.alignment_table`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from datalign.measures.registry import MeasureError, MeasureInputError


@dataclass
class Representation:
    """One set as a measure sees it: ``data`` holds one entry per kept document.

    ``measure`` names the measure that made it (comparing it with another
    measure's is an error); ``n_docs`` is the number of documents kept (after
    the measure's own caps), ``n_input`` the number it was given; ``seconds``
    the time :meth:`Measure.prepare` took.
    """

    measure: str
    data: Any
    n_docs: int
    n_input: int
    seconds: float = 0.0

    def __len__(self) -> int:
        return self.n_docs


class Comparison:
    """Two prepared sets, paired: the alignment as a function of per-document weights.

    Subclasses implement :meth:`value`. ``w_candidate`` (length
    ``n_candidate``) and ``w_target`` (length ``n_target``) are non-negative
    document weights, ``None`` meaning all ones; a bootstrap passes the
    multiplicities of a resample with replacement.
    """

    n_candidate: int
    n_target: int

    def value(self, w_candidate: np.ndarray | None = None, w_target: np.ndarray | None = None) -> float:
        raise NotImplementedError

    def values(self, w_candidate: np.ndarray, w_target: np.ndarray) -> np.ndarray:
        """:meth:`value` for each row of two (B, n) weight matrices; subclasses may vectorise it."""
        return np.array([self.value(wc, wt) for wc, wt in zip(w_candidate, w_target, strict=True)])


def weights(w: np.ndarray | None, n: int) -> np.ndarray:
    """``w`` as float weights of length ``n`` (ones when None)."""
    return np.ones(n) if w is None else np.asarray(w, dtype=float)


def check_texts(texts: Any, measure: str, where: str) -> list[str]:
    """``texts`` as a list of strings; a one-line :class:`MeasureInputError` otherwise.

    ``where`` names the set in the message (``set 'bbc_news/train'``).
    """
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise MeasureInputError(f"measure '{measure}', {where}: expected a sequence of strings, "
                                f"got {type(texts).__name__}")
    docs = list(texts)
    if not docs:
        raise MeasureInputError(f"measure '{measure}', {where}: no documents (an empty set)")
    for i, doc in enumerate(docs):
        if not isinstance(doc, str):
            raise MeasureInputError(f"measure '{measure}', {where}: document {i} is "
                                    f"{type(doc).__name__}, not a string")
    return docs


def keep_documents(docs: list[str], max_docs: int, seed: int) -> list[str]:
    """At most ``max_docs`` of ``docs`` (0: all): a seeded sample without replacement, in input order."""
    if max_docs <= 0 or len(docs) <= max_docs:
        return docs
    idx = np.sort(np.random.default_rng(seed).choice(len(docs), size=max_docs, replace=False))
    return [docs[i] for i in idx]


class Measure:
    """Base of the measures: checks, timing and the two-step protocol.

    A subclass is registered with :func:`datalign.measures.registry.register_measure`
    (which sets ``name``, ``description`` and ``options_class``) and implements
    ``_prepare(docs) -> data`` (``len(data)`` documents, after its own caps) and
    ``_compare(candidate, target) -> Comparison``. ``self.options`` is its
    validated option set (or None).
    """

    name: ClassVar[str] = "?"
    description: ClassVar[str] = ""
    options_class: ClassVar[type | None] = None

    def __init__(self, options: Any = None) -> None:
        self.options = options

    def __repr__(self) -> str:
        opts = self.options.to_dict() if self.options is not None else {}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in opts.items())})"

    def options_dict(self) -> dict[str, Any]:
        """The measure's options (defaults filled) as a plain dict."""
        return self.options.to_dict() if self.options is not None else {}

    def setup(self) -> None:
        """Load what the measure needs once (an encoder); :func:`~datalign.measures.table.alignment_table`
        calls it before timing anything, so a pair's cost leaves the one-time set-up out."""

    def prepare(self, texts: Sequence[str], *, where: str = "texts") -> Representation:
        """One set's representation (per document). An empty set or a non-string item is a
        :class:`MeasureInputError` (a ``ValueError``) naming ``where``."""
        docs = check_texts(texts, self.name, where)
        start = time.perf_counter()
        data, n_docs = self._prepare(docs)
        return Representation(self.name, data, n_docs, len(docs), time.perf_counter() - start)

    def compare(self, candidate: Representation, target: Representation) -> Comparison:
        """The two sets paired (the expensive part of measures that look at document pairs)."""
        for role, rep in (("candidate", candidate), ("target", target)):
            if not isinstance(rep, Representation) or rep.measure != self.name:
                got = rep.measure if isinstance(rep, Representation) else type(rep).__name__
                raise MeasureError(f"measure '{self.name}': the {role} was not prepared by it (got {got}); "
                                   f"call prepare() of this measure first")
        return self._compare(candidate, target)

    def alignment(self, candidate: Representation, target: Representation) -> float:
        """Alignment of ``candidate`` with ``target``: higher is more aligned (range: see the measure)."""
        return float(self.compare(candidate, target).value())

    # to implement
    def _prepare(self, docs: list[str]) -> tuple[Any, int]:
        raise NotImplementedError

    def _compare(self, candidate: Representation, target: Representation) -> Comparison:
        raise NotImplementedError
