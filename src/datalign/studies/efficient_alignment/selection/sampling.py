"""Seeded weighted sampling without replacement as a ranking (Gumbel-top-k).

Drawing k rows one after another, each with probability proportional to its
weight among the rows not yet drawn ("successive sampling"), has the same
distribution as keeping the k largest keys ``log w_i + G_i`` with G_i i.i.d.
standard Gumbel (Efraimidis & Spirakis 2006, "Weighted random sampling with a
reservoir", Inf. Process. Lett. 97(5); the Gumbel form: Vieira 2014, Kool et
al. 2019 "Stochastic Beams and Where to Find Them", ICML, eq. 5). The keys give
every row a score, the order in which it would have been drawn, and nested
samples: the first k of one draw are a valid sample of size k.
"""

from __future__ import annotations

import numpy as np


def gumbel_keys(log_weights: np.ndarray, seed: int) -> np.ndarray:
    """Sampling keys ``log w_i + G_i`` for (n,) unnormalised log-weights; (n,) float64.

    Ranking rows by decreasing key is successive sampling without replacement
    with probability proportional to ``exp(log_weights)``. Working with
    log-weights keeps weights that differ by hundreds of nats (densities in
    high dimensions) exact, where ``w / w.sum()`` would underflow. ``-inf``
    marks a row that is never drawn before a finite one.
    """
    log_w = np.asarray(log_weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return log_w + rng.gumbel(size=log_w.shape)
