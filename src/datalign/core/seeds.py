"""Stage-specific seeds derived from the config's master seed."""

from __future__ import annotations

import hashlib
from typing import Any


def derived_seed(config: dict[str, Any], *parts: str) -> int:
    """A stage-specific seed: the master seed hashed with the stage's name parts.

    Stable across runs and machines (SHA-256 of ``"<seed>:<part>:..."``, first
    32 bits), distinct between stages; ``config["seed"]`` defaults to 0.
    """
    text = ":".join([str(config.get("seed", 0)), *parts])
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
