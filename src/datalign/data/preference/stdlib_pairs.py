"""Docstring -> code preference pairs from Python's standard library (offline, real text).

The prompt is a documented function's docstring (rendered by
``prompt_template``, default ``"{nl}\\n"``), the chosen completion the
function's true source without its docstring, both extracted exactly as the
text dataset ``stdlib`` with ``kind: docstring_pairs`` does
(:func:`datalign.data.stdlib.function_pairs`, same files, same length limits).
The rejected completion, by ``negative``:

- ``other_function`` (default): the code of another function drawn uniformly
  from the **same split** (so a test function's code never becomes a training
  rejection), with a code text different from the true one;
- ``corrupted``: the true code with one token mutated (:mod:`.corrupt`), a
  hard negative that still parses.

A function with no usable negative (no distinct function in its split; no
mutable token) is dropped and counted. Every draw uses a generator seeded by
(seed, dataset, module, function, occurrence), so a pair does not change when
other files are added or left out. Groups are top-level modules.
"""

from __future__ import annotations

import logging
import platform
import tokenize
from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from datalign.core.errors import DataError
from datalign.data.preference.corrupt import corrupt_code
from datalign.data.preference.records import PreferencePair
from datalign.data.preference.source import BuildContext, LoadedPreferences
from datalign.data.split import seed_from
from datalign.data.stdlib import (
    PAIR_LIMITS,
    function_pairs,
    is_generated,
    module_group,
    stdlib_files,
    stdlib_root,
)

log = logging.getLogger(__name__)

NEGATIVES = ("other_function", "corrupted")
PROMPT_FIELDS = ("nl", "qualname", "module")
DEFAULT_PROMPT_TEMPLATE = "{nl}\n"
MAX_DRAWS = 20


def stdlib_functions(spec: Mapping[str, Any], dataset: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Documented standard-library functions ``{module, file, qualname, nl, code, key}``
    in sorted file order, and counts of what was read.

    ``max_files`` keeps the first files, ``exclude`` adds glob patterns, the
    ``PAIR_LIMITS`` keys bound docstring and code lengths (characters).
    Raises DataError when no file is found.
    """
    root = stdlib_root()
    files = stdlib_files(root, spec.get("exclude"))
    if spec.get("max_files") is not None:
        files = files[: int(spec["max_files"])]
    if not files:
        raise DataError(f"dataset {dataset}: no standard-library files found under {root}")
    limits = {k: int(spec.get(k, v)) for k, v in PAIR_LIMITS.items()}
    items: list[dict[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    counts = {"files_read": 0, "files_skipped": 0, "filtered_by_length": 0}
    for rel in tqdm(files, desc=f"{dataset}: stdlib files", unit="file", mininterval=2.0):
        try:
            with tokenize.open(root / rel) as fh:  # honours PEP 263 encoding cookies
                source = fh.read()
            if is_generated(source):
                counts["files_skipped"] += 1
                continue
            pairs = function_pairs(source)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
            log.warning("dataset %s: skipping %s: %s", dataset, rel, exc)
            counts["files_skipped"] += 1
            continue
        counts["files_read"] += 1
        for qualname, nl, code in pairs:
            if not (
                limits["min_nl_chars"] <= len(nl) <= limits["max_nl_chars"]
                and limits["min_formal_chars"] <= len(code) <= limits["max_formal_chars"]
            ):
                counts["filtered_by_length"] += 1
                continue
            occurrence = seen[(str(rel), qualname)] = seen.get((str(rel), qualname), -1) + 1
            items.append(
                {
                    "module": module_group(rel),
                    "file": str(rel),
                    "qualname": qualname,
                    "nl": nl,
                    "code": code,
                    "key": f"{rel}:{qualname}:{occurrence}",
                }
            )
    details = {
        "stdlib_root": str(root),
        "python": platform.python_version(),
        "length_limits": limits,
        **counts,
        "functions": len(items),
    }
    return items, details


def _other_function(i: int, pool: list[int], items: list[dict[str, str]], rng: np.random.Generator) -> str | None:
    if len(pool) < 2:
        return None
    for _ in range(MAX_DRAWS):
        j = pool[int(rng.integers(len(pool)))]
        if j != i and items[j]["code"] != items[i]["code"]:
            return items[j]["code"]
    return None


def build_stdlib_pairs(spec: Mapping[str, Any], ctx: BuildContext) -> LoadedPreferences:
    """Docstring -> code pairs (see the module docstring), to be split by module."""
    items, details = stdlib_functions(spec, ctx.name)
    negative = spec.get("negative") or "other_function"
    template = spec.get("prompt_template") or DEFAULT_PROMPT_TEMPLATE
    split = [ctx.split_of(item["module"]) for item in items]
    pools: dict[str, list[int]] = {}
    for i, s in enumerate(split):
        pools.setdefault(s, []).append(i)
    pairs: list[PreferencePair] = []
    for i, item in enumerate(items):
        rng = np.random.default_rng(seed_from(ctx.seed, ctx.name, "negative", item["key"]))
        if negative == "corrupted":
            rejected = corrupt_code(item["code"], rng)
            why = "no mutable token in the code"
        else:
            rejected = _other_function(i, pools[split[i]], items, rng)
            why = "no other function with different code in its split"
        if rejected is None:
            ctx.log.drop(why)
            continue
        prompt = template.format(nl=item["nl"], qualname=item["qualname"], module=item["module"])
        pairs.append(PreferencePair(prompt, item["code"], rejected, item["module"]))
    details["negative"] = negative
    log.info("dataset %s: %d docstring -> code pairs (%s negatives)", ctx.name, len(pairs), negative)
    return LoadedPreferences(records=pairs, details=details)
