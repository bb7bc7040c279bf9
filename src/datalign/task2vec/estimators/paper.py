"""Registers the ``paper`` estimator: the authors' procedure with its defects fixed.

The implementation is :mod:`datalign.task2vec.paper`, imported (with torch) only
when the estimator is first used: planning a study looks estimators up to
validate the config and must stay light.
"""

from __future__ import annotations

from datalign.task2vec.registry import register_lazy_estimator

register_lazy_estimator(
    "paper",
    "datalign.task2vec.paper:PaperEstimator",
    summary="The authors' procedure, defects fixed (no options of its own).",
)
