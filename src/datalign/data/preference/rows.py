"""Table rows -> preference records, by layout, with bad rows raised or counted.

Layouts of a row (column names configurable, defaults in FIELD_DEFAULTS):

- ``kto``: ``prompt``, ``completion``, ``label`` (a boolean). Prompt and
  completion are both strings (used as they are) or both message lists
  (trl-lib/kto-mix-14k; rendered by :mod:`.conversation`).
- ``pairs``: ``prompt``, ``chosen``, ``rejected``. Strings: the prompt and
  the two completions as they are. Message lists: the conversation is the
  prompt's messages (when the prompt column holds a list) followed by the
  chosen / rejected messages; both conversations must agree on everything but
  their last message, which must be the assistant's. A string prompt next to
  message lists is not used (HuggingFaceH4/ultrafeedback_binarized repeats the
  first user turn there, inside ``chosen`` and ``rejected``).
- ``hh``: ``chosen`` and ``rejected`` are whole HH transcripts; the prompt is
  the shared prefix up to the last Assistant turn (the two prefixes must be
  equal), the completions the final replies.
- ``oasst``: OpenAssistant message trees (see :mod:`.oasst`), not row by row.

A record's group is ``str(row[group_field])`` when ``group_field`` is set,
else :func:`.records.prompt_group` of its prompt.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from datalign.core.errors import DataError
from datalign.data.preference.conversation import (
    check_messages,
    render_completion,
    render_prompt,
    split_transcript,
)
from datalign.data.preference.records import (
    BadRowError,
    KTORow,
    PreferencePair,
    Record,
    prompt_group,
    require_label,
    require_text,
)
from datalign.data.records import check_columns

LAYOUTS = ("kto", "pairs", "hh", "oasst")
ROW_LAYOUTS = ("kto", "pairs", "hh")
FIELD_DEFAULTS: dict[str, str] = {
    "prompt_field": "prompt",
    "completion_field": "completion",
    "label_field": "label",
    "chosen_field": "chosen",
    "rejected_field": "rejected",
}
ON_BAD_ROW = ("error", "skip")
# The OpenAssistant message columns the oasst layout reads (see .oasst).
OASST_COLUMNS = ("message_id", "parent_id", "text", "role", "rank", "message_tree_id")
MAX_EXAMPLES = 10
INDEX = re.compile(r"\[\d+\]")  # element indices in field names: chosen[1].content


@dataclass(frozen=True)
class Fields:
    """The column names a layout reads (``group`` None: group by prompt)."""

    prompt: str = "prompt"
    completion: str = "completion"
    label: str = "label"
    chosen: str = "chosen"
    rejected: str = "rejected"
    group: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Fields:
        """The fields named by a dataset spec's ``*_field`` keys (defaults for the rest)."""
        names = {k: spec.get(k) or v for k, v in FIELD_DEFAULTS.items()}
        return cls(
            prompt=names["prompt_field"],
            completion=names["completion_field"],
            label=names["label_field"],
            chosen=names["chosen_field"],
            rejected=names["rejected_field"],
            group=spec.get("group_field"),
        )


class DropLog:
    """Bad rows and dropped records of one dataset.

    ``on_bad_row="error"``: :meth:`bad` raises a one-line DataError naming the
    dataset, the location (file or hub split, row) and the field.
    ``"skip"``: it counts the row under ``"<field>: <kind>"`` (element indices
    blanked: ``chosen[].content: empty``) and keeps the first messages as
    examples. :meth:`drop` always counts: records that are valid but unusable
    (identical chosen and rejected, a group also in the test split, ...).
    """

    def __init__(self, dataset: str, on_bad_row: str = "error") -> None:
        if on_bad_row not in ON_BAD_ROW:
            raise ValueError(f"on_bad_row: expected one of {list(ON_BAD_ROW)}, got {on_bad_row!r}")
        self.dataset, self.on_bad_row = dataset, on_bad_row
        self.bad_rows: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.examples: list[str] = []

    def bad(self, where: str, problem: BadRowError) -> None:
        """Raise (mode error) or count (mode skip) a bad row at ``where``."""
        message = f"dataset {self.dataset}: {where}, {problem}"
        if self.on_bad_row == "error":
            raise DataError(message)
        field = INDEX.sub("[]", problem.field)
        self.bad_rows[f"{field}: {problem.kind}"] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(message)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records dropped for ``reason`` (never an error)."""
        if n:
            self.dropped[reason] += n

    def as_dict(self) -> dict[str, Any]:
        """``{on_bad_row, bad_rows_skipped, bad_rows: {reason: n}, records: {reason: n},
        examples: [...]}`` for a manifest (``records``: valid records dropped, by reason)."""
        return {
            "on_bad_row": self.on_bad_row,
            "bad_rows_skipped": sum(self.bad_rows.values()),
            "bad_rows": dict(sorted(self.bad_rows.items())),
            "records": dict(sorted(self.dropped.items())),
            "examples": list(self.examples),
        }


def needed_columns(layout: str, fields: Fields, first: Mapping[str, Any]) -> list[str]:
    """The columns a layout needs, given the first row (a pairs layout of strings needs a prompt)."""
    if layout == "kto":
        needed = [fields.prompt, fields.completion, fields.label]
    elif layout == "pairs":
        needed = [fields.chosen, fields.rejected]
        if isinstance(first.get(fields.chosen), str):
            needed.insert(0, fields.prompt)
    elif layout == "oasst":
        return list(OASST_COLUMNS)
    else:
        needed = [fields.chosen, fields.rejected]
    return needed + ([fields.group] if fields.group else [])


def _group(row: Mapping[str, Any], fields: Fields, prompt: str) -> str:
    if not fields.group:
        return prompt_group(prompt)
    value = row.get(fields.group)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadRowError(fields.group, "missing")
    return str(value)


def kto_record(row: Mapping[str, Any], fields: Fields) -> KTORow:
    """A KTO row from a ``kto``-layout row; BadRowError for a bad field (see the module docstring)."""
    label = require_label(row.get(fields.label), fields.label)
    prompt_v, completion_v = row.get(fields.prompt), row.get(fields.completion)
    if isinstance(prompt_v, list) or isinstance(completion_v, list):
        prompt = render_prompt(check_messages(prompt_v, fields.prompt))
        completion = render_completion(
            check_messages(completion_v, fields.completion), fields.completion
        )
    else:
        prompt = require_text(prompt_v, fields.prompt)
        completion = require_text(completion_v, fields.completion)
    return KTORow(prompt, completion, label, _group(row, fields, prompt))


def _conversation_pair(row: Mapping[str, Any], fields: Fields) -> tuple[str, str, str]:
    prompt_v = row.get(fields.prompt)
    head = check_messages(prompt_v, fields.prompt) if isinstance(prompt_v, list) else []
    chosen = head + check_messages(row.get(fields.chosen), fields.chosen)
    rejected = head + check_messages(row.get(fields.rejected), fields.rejected)
    for name, conv in ((fields.chosen, chosen), (fields.rejected, rejected)):
        if len(conv) < 2:
            raise BadRowError(name, "no prompt turn before the reply")
        if conv[-1][0] != "assistant":
            raise BadRowError(name, "last message not by the assistant", f"got {conv[-1][0]!r}")
    if chosen[:-1] != rejected[:-1]:
        raise BadRowError(fields.rejected, "prompt differs from the chosen one")
    return (
        render_prompt(chosen[:-1]),
        render_completion(chosen[-1:], fields.chosen),
        render_completion(rejected[-1:], fields.rejected),
    )


def pair_record(row: Mapping[str, Any], fields: Fields) -> PreferencePair:
    """A pair from a ``pairs``-layout row (strings or message lists); BadRowError for a bad field."""
    chosen_v, rejected_v = row.get(fields.chosen), row.get(fields.rejected)
    if isinstance(chosen_v, list) or isinstance(rejected_v, list):
        prompt, chosen, rejected = _conversation_pair(row, fields)
    else:
        prompt = require_text(row.get(fields.prompt), fields.prompt)
        chosen = require_text(chosen_v, fields.chosen)
        rejected = require_text(rejected_v, fields.rejected)
    return PreferencePair(prompt, chosen, rejected, _group(row, fields, prompt))


def hh_record(row: Mapping[str, Any], fields: Fields) -> PreferencePair:
    """A pair from two HH transcripts sharing their prompt; BadRowError for a bad field."""
    prompt, chosen = split_transcript(row.get(fields.chosen), fields.chosen)
    other, rejected = split_transcript(row.get(fields.rejected), fields.rejected)
    if other != prompt:
        raise BadRowError(fields.rejected, "prompt differs from the chosen one")
    return PreferencePair(prompt, chosen, rejected, _group(row, fields, prompt))


CONVERTERS = {"kto": kto_record, "pairs": pair_record, "hh": hh_record}


def convert_rows(
    rows: Iterable[tuple[str, Any]], layout: str, fields: Fields, log: DropLog
) -> list[Record]:
    """Records from ``(location, row)`` items (a row may be a BadRowError raised while reading it).

    Bad rows go to ``log.bad``; a pair whose chosen and rejected texts are
    identical is dropped and counted (``log.drop``), since it states no
    preference.
    """
    convert = CONVERTERS[layout]
    records: list[Record] = []
    for where, row in rows:
        try:
            if isinstance(row, BadRowError):
                raise row
            if not isinstance(row, Mapping):
                raise BadRowError("row", "not an object", f"got {type(row).__name__}")
            record = convert(row, fields)
        except BadRowError as problem:
            log.bad(where, problem)
            continue
        if isinstance(record, PreferencePair) and record.chosen == record.rejected:
            log.drop("identical chosen and rejected")
            continue
        records.append(record)
    return records


def check_first_row(
    layout: str, fields: Fields, first: Any, columns: Iterable[str], dataset: str, what: str
) -> None:
    """DataError when the data lacks a column the layout needs (checked once, on the first row)."""
    if isinstance(first, Mapping):
        check_columns(needed_columns(layout, fields, first), columns, dataset, f"layout {layout} of {what}")
