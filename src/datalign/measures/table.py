"""Alignment of every set with every target under one measure, with bootstrap CIs and costs."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from datalign.measures.base import Measure, Representation
from datalign.measures.registry import MeasureError, get_measure

COLUMNS = ("set", "target", "alignment", "ci_low", "ci_high", "seconds", "bias", "n_set", "n_target")


def _pair_seed(seed: int, a: str, b: str) -> int:
    """A seed for one (set, target) pair: the same whatever else is in the table."""
    return int(hashlib.sha256(f"{seed}:{a}:{b}".encode()).hexdigest()[:8], 16)


def bootstrap_weights(rng: np.random.Generator, n: int, bootstrap: int) -> np.ndarray:
    """(bootstrap, n) multiplicities of ``bootstrap`` resamples of n documents drawn with replacement."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=bootstrap).astype(float)


def alignment_table(
    sets: Mapping[str, Sequence[str]],
    targets: Sequence[str],
    measure: Measure | str,
    *,
    bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Alignment of every set in ``sets`` with every target (a name of ``sets``), under ``measure``.

    ``sets`` maps a name to its documents; ``targets`` names the sets the
    others are compared with (a set is compared with itself too). Returns one
    row per (set, target), sets in the order of ``sets``, with the columns

    - ``set``, ``target``: the names;
    - ``alignment``: the measure's point value (higher = more aligned; its
      range is in the measure's documentation);
    - ``ci_low``, ``ci_high``: a bootstrap percentile interval at
      ``confidence``, bias-corrected. Each of ``bootstrap`` resamples draws
      each set's documents (those the measure kept) with replacement; a set
      compared with itself is resampled once and used on both sides, two sets
      independently. With v the point value and v*_1..v*_B the resampled
      values, bias = mean(v*) - v and the interval is
      [q_{a/2}(v*) - bias, q_{1-a/2}(v*) - bias], a = 1 - confidence
      (Efron & Tibshirani 1993, ch. 10 and 13). For a mean over documents or
      pairs (``gzip``, ``embedding_cosine``) the bias is about 0 and this is the
      plain percentile interval; a divergence of pooled counts (``ngram``) grows
      on every resample (fewer distinct documents), and the correction keeps
      the interval around its point value. NaN when ``bootstrap`` is 0. The
      generator is seeded by ``seed`` and the two names, so a pair's interval
      does not depend on the other pairs in the table;
    - ``seconds``: the cost of the pair's point value from raw documents:
      preparing both sets (each set's preparation time, measured once) plus
      pairing them and computing the value. One-time set-up (importing
      libraries, loading an encoder) and the bootstrap are not included;
    - ``bias``: mean(v*) - v (NaN without a bootstrap); ``n_set``,
      ``n_target``: the documents the measure kept of each.

    ``measure`` is a :class:`~datalign.measures.base.Measure` or a registered
    name (default options). ``df.attrs`` records the measure, its options, the
    documents kept per set and the preparation seconds. An unknown target, an
    empty set or a bad argument is a one-line ``ValueError`` naming it.
    """
    m = get_measure(measure) if isinstance(measure, str) else measure
    if not isinstance(m, Measure):
        raise MeasureError(f"alignment_table: measure must be a Measure or a name, got {type(m).__name__}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise MeasureError(f"alignment_table: bootstrap must be an integer >= 0, got {bootstrap!r}")
    if not 0.0 < float(confidence) < 1.0:
        raise MeasureError(f"alignment_table: confidence must lie strictly between 0 and 1, got {confidence!r}")
    if not sets:
        raise MeasureError("alignment_table: no sets given")
    if isinstance(targets, str):
        targets = [targets]
    targets = list(targets)
    if not targets:
        raise MeasureError("alignment_table: no targets given")
    unknown = [t for t in targets if t not in sets]
    if unknown:
        raise MeasureError(f"alignment_table: target(s) {', '.join(map(repr, unknown))} not among the sets "
                           f"({', '.join(map(repr, sets))})")

    reps: dict[str, Representation] = {}
    names = list(sets)
    start = time.perf_counter()
    m.setup()
    setup_seconds = time.perf_counter() - start
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(names) + len(names) * len(targets), desc=f"measure {m.name}")
    for name in names:
        reps[name] = m.prepare(sets[name], where=f"set {name!r}")
        if bar is not None:
            bar.update()

    alpha = 1.0 - float(confidence)
    rows: list[dict[str, Any]] = []
    for name in names:
        for target in targets:
            a, b = reps[name], reps[target]
            start = time.perf_counter()
            comparison = m.compare(a, b)
            value = float(comparison.value())
            pair_seconds = time.perf_counter() - start
            lo = hi = bias = float("nan")
            if bootstrap:
                rng = np.random.default_rng(_pair_seed(seed, name, target))
                wc = bootstrap_weights(rng, a.n_docs, bootstrap)
                wt = wc if name == target else bootstrap_weights(rng, b.n_docs, bootstrap)
                draws = np.asarray(comparison.values(wc, wt), dtype=float)
                draws = draws[np.isfinite(draws)]
                if draws.size:
                    bias = float(draws.mean() - value)
                    q_lo, q_hi = np.quantile(draws, [alpha / 2.0, 1.0 - alpha / 2.0])
                    lo, hi = float(q_lo - bias), float(q_hi - bias)
            rows.append({
                "set": name, "target": target, "alignment": value, "ci_low": lo, "ci_high": hi,
                "seconds": a.seconds + b.seconds + pair_seconds, "bias": bias,
                "n_set": a.n_docs, "n_target": b.n_docs,
            })
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df.attrs.update({
        "measure": m.name,
        "description": m.description,
        "options": m.options_dict(),
        "bootstrap": int(bootstrap),
        "confidence": float(confidence),
        "seed": int(seed),
        "documents": {n: {"kept": reps[n].n_docs, "given": reps[n].n_input} for n in names},
        "prepare_seconds": {n: reps[n].seconds for n in names},
        "setup_seconds": setup_seconds,
    })
    return df
