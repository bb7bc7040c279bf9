"""Preference pairs from OpenAssistant message trees (OpenAssistant/oasst1).

OASST1 (Köpf et al. 2023, "OpenAssistant Conversations", sec. 3) stores one
row per message: ``message_id``, ``parent_id`` (None for a tree's root),
``text``, ``role`` (``prompter`` or ``assistant``), ``lang``, ``rank`` and
``message_tree_id``. Volunteers ranked the sibling replies to a message;
**rank 0 is the best**, and an unranked reply has rank None.

For every prompter message with at least two ranked assistant replies, the
replies are ordered by (rank, message_id) and paired as ``pairing`` says:

- ``best_vs_rest`` (default): the best reply against each other ranked reply;
- ``best_vs_worst``: the best against the worst, one pair per message;
- ``adjacent``: each reply against the next one in rank order;
- ``all``: every two replies, the better one chosen.

Pairs of equal rank are dropped (no preference). The prompt is the
conversation from the root to the prompter message, rendered in the HH format
(:mod:`.conversation`); the completions are ``" " + reply text``. The group is
the ``message_tree_id``, so a whole tree lands in one split (its prompts share
prefixes). ``lang`` keeps only prompter messages of that language; rows with
``deleted`` true (a column of the hub export) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

from datalign.data.preference.conversation import render_prompt
from datalign.data.preference.records import BadRowError, PreferencePair, require_text
from datalign.data.preference.rows import DropLog

OASST_PAIRINGS = ("best_vs_rest", "best_vs_worst", "adjacent", "all")
ROLES = ("prompter", "assistant")


def _rank(value: Any) -> int | None:
    # Ranks arrive as int (datasets) or, from a pandas-written parquet file, as a
    # float column with NaN for "unranked": accept integral floats, nothing else.
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadRowError("rank", "not an integer", f"got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    raise BadRowError("rank", "not an integer", f"got {type(value).__name__} {value!r}")


def _message(row: Any) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise BadRowError("row", "not an object", f"got {type(row).__name__}")
    parent = row.get("parent_id")
    if parent is not None and not isinstance(parent, str):
        raise BadRowError("parent_id", "not a string", f"got {type(parent).__name__}")
    role = row.get("role")
    if role not in ROLES:
        raise BadRowError("role", "unknown role", f"got {role!r}, expected one of {list(ROLES)}")
    lang = row.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise BadRowError("lang", "not a string", f"got {type(lang).__name__}")
    deleted = row.get("deleted")
    return {
        "id": require_text(row.get("message_id"), "message_id"),
        "parent": parent,
        "text": require_text(row.get("text"), "text"),
        "role": role,
        "lang": lang,
        "rank": _rank(row.get("rank")),
        "tree": require_text(row.get("message_tree_id"), "message_tree_id"),
        "deleted": deleted is True,
    }


def _ranked_pairs(replies: list[dict[str, Any]], pairing: str) -> list[tuple[dict, dict]]:
    if pairing == "best_vs_rest":
        return [(replies[0], r) for r in replies[1:]]
    if pairing == "best_vs_worst":
        return [(replies[0], replies[-1])]
    if pairing == "adjacent":
        return list(zip(replies[:-1], replies[1:], strict=True))
    return list(combinations(replies, 2))


def _chain(message: dict[str, Any], by_id: Mapping[str, dict[str, Any]]) -> list[dict] | None:
    chain = [message]
    while chain[-1]["parent"] is not None:
        parent = by_id.get(chain[-1]["parent"])
        if parent is None or len(chain) > len(by_id):  # missing ancestor, or a cycle
            return None
        chain.append(parent)
    return chain[::-1]


def oasst_pairs(
    rows: Iterable[tuple[str, Any]],
    log: DropLog,
    lang: str | None = None,
    pairing: str = "best_vs_rest",
) -> tuple[list[PreferencePair], dict[str, int]]:
    """Pairs from ``(location, row)`` message rows, and counts of what the trees held.

    Bad rows (a field missing or of the wrong type, a repeated message_id) go
    to ``log.bad``; pairs of tied rank or identical text to ``log.drop``.
    Replies whose ancestors are missing cannot get a prompt and are counted
    (``no_ancestry``). Output order: prompter messages in input order, pairs
    in rank order. Raises ValueError for an unknown pairing.
    """
    if pairing not in OASST_PAIRINGS:
        raise ValueError(f"pairing: expected one of {list(OASST_PAIRINGS)}, got {pairing!r}")
    by_id: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    counts = {"messages": 0, "deleted": 0, "unranked_replies": 0, "other_lang": 0, "no_ancestry": 0}
    for where, row in rows:
        try:
            if isinstance(row, BadRowError):
                raise row
            message = _message(row)
            if message["id"] in by_id:
                raise BadRowError("message_id", "repeated", f"{message['id']!r} seen before")
        except BadRowError as problem:
            log.bad(where, problem)
            continue
        counts["messages"] += 1
        if message["deleted"]:
            counts["deleted"] += 1
            continue
        by_id[message["id"]] = message
        order.append(message["id"])
    replies: dict[str, list[dict[str, Any]]] = {}
    for mid in order:
        message = by_id[mid]
        if message["role"] != "assistant" or message["parent"] is None:
            continue
        if message["rank"] is None:
            counts["unranked_replies"] += 1
            continue
        replies.setdefault(message["parent"], []).append(message)
    pairs: list[PreferencePair] = []
    for mid in order:
        siblings = replies.get(mid)
        parent = by_id[mid]
        if not siblings or len(siblings) < 2 or parent["role"] != "prompter":
            continue
        if lang is not None and parent["lang"] != lang:
            counts["other_lang"] += 1
            continue
        chain = _chain(parent, by_id)
        if chain is None:
            counts["no_ancestry"] += len(siblings)
            continue
        prompt = render_prompt([(m["role"], m["text"]) for m in chain])
        ranked = sorted(siblings, key=lambda m: (m["rank"], m["id"]))
        for better, worse in _ranked_pairs(ranked, pairing):
            if better["rank"] == worse["rank"]:
                log.drop("tied rank")
            elif better["text"] == worse["text"]:
                log.drop("identical chosen and rejected")
            else:
                pairs.append(
                    PreferencePair(prompt, " " + better["text"], " " + worse["text"], parent["tree"])
                )
    return pairs, counts
