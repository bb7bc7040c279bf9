"""User-facing errors: one line that says what went wrong and where."""

from __future__ import annotations


class DatalignError(Exception):
    """An error caused by the user's config or data, reported as one line.

    Raise it with a message naming the thing at fault (config key, dataset,
    file, step) and the numbers involved; workflow scripts print it without a
    traceback and exit non-zero.
    """


class ConfigError(DatalignError):
    """The config is malformed: a wrong key, a wrong type, a value out of range."""


class DataError(DatalignError):
    """A dataset is missing, empty, unregistered, or too small for what is asked of it."""


class TrainingError(DatalignError):
    """Training or evaluation failed: a NaN loss, a missing checkpoint."""
