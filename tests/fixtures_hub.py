"""Local files shaped like the hub datasets of config/paper.yaml, and what each row must become.

Each :class:`HubFixture` writes a few rows per hub split in the format the hub
serves (parquet export, CSV, JSON Lines) with the columns and types listed in
/shared/HUB.md, including the awkward rows (blank WikiText lines, a LeanDojo
proof without traced tactics). ``expected`` renders a row the way the paper's
text format says it should read, written out by hand here rather than through
the config's template, so a wrong template fails the comparison.
:func:`local_spec` turns a paper.yaml dataset entry into the same entry read
from those files: only ``path``/``name``/``revision`` give way to the file
builder and ``data_files``; template, join, limit, streaming and splits stay.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

Row = dict[str, Any]


@dataclass(frozen=True)
class HubFixture:
    """A stand-in for one hub dataset (and config): file format, rows per split, rendering."""

    fmt: str  # the datasets builder that reads the files: parquet, json or csv
    rows: Callable[[str], list[Row]]  # hub split -> rows
    expected: Callable[[Row], str | None]  # a row's text, None when the row must be dropped


def _pile(subset: str) -> Callable[[str], list[Row]]:
    name = {"uspto": "USPTO Backgrounds", "pubmed": "PubMed Abstracts"}[subset]

    def rows(split: str) -> list[Row]:
        return [
            {"text": f"{name} document {i} of {split}.\nSecond line {i}.",
             "meta": {"pile_set_name": name}}
            for i in range(30)
        ]

    return rows


def _text_rows(kind: str, n: int = 30) -> Callable[[str], list[Row]]:
    def rows(split: str) -> list[Row]:
        return [{"text": f"{kind} {split} text number {i}."} for i in range(n)]

    return rows


def _c4_rows(split: str) -> list[Row]:
    return [
        {"text": f"C4 page {i} ({split}). Some web text.",
         "timestamp": f"2019-04-{10 + i % 18:02d}T12:57:54Z",
         "url": f"https://example.org/{split}/{i}"}
        for i in range(40)
    ]


def _wikitext_rows(split: str) -> list[Row]:
    # WikiText rows are lines: headings, paragraphs and many empty lines.
    rows: list[Row] = []
    for i in range(12):
        rows += [{"text": ""}, {"text": f" = Article {i} ({split}) = \n"}, {"text": ""},
                 {"text": f" Paragraph of article {i} , with @-@ tokens . \n"}]
    return rows


def _proofnet_rows(split: str) -> list[Row]:
    return [
        {"id": f"Rudin|exercise_{split}_{i}",
         "nl_statement": f"Prove that there is no rational number whose square is ${i + 2}$.\n",
         "nl_proof": "\\begin{proof}\n Suppose $m^2 = 12 n^2$ ... \\end{proof}",
         "formal_statement": f"theorem exercise_{i} : \u00ac \u2203 (x : \u211a), ( x ^ 2 = {i + 2} ) :=",
         "src_header": "import .common\n\nopen real complex\n"}
        for i in range(15)
    ]


def _af_rows(split: str) -> list[Row]:
    return [
        {"text": f"The Formal Statement is: theorem t{i} : {i} + 0 = {i} := "
                 f"The Informal Statement is: Adding zero to {i} gives {i} ({split})."}
        for i in range(25)
    ]


def _af_split_rows(split: str) -> list[Row]:
    return [{"Statement:": f"Statement {i}: every group of order {i + 1} is finite ({split})."}
            for i in range(25)]


def _tactic(i: int, k: int) -> Row:
    return {"tactic": f"rw [h{k}]", "annotated_tactic": f"rw [<a>h{k}</a>]",
            "state_before": f"x : \u2115\n\u22a2 x + {i} = {i} + x",
            "state_after": f"goal {k} of proof {i}"}


def _leandojo_rows(split: str) -> list[Row]:
    rows = []
    for i in range(20):
        # every fifth proof has no traced tactics: the authors skip it, so must we
        tactics = [] if i % 5 == 0 else [_tactic(i, k) for k in range(1 + i % 3)]
        rows.append({"url": "https://github.com/leanprover-community/mathlib",
                     "commit": "19c869efa56bbb8b500f2724c0b77261edbfa28c",
                     "file_path": f"src/algebra/file_{i}.lean", "full_name": f"thm_{split}_{i}",
                     "start": [10 + i, 1], "end": [20 + i, 5], "traced_tactics": tactics})
    return rows


def _leandojo_text(row: Row) -> str | None:
    tactics = row["traced_tactics"]
    if not tactics:
        return None
    return " ".join(f"State Before: {t['state_before']} State After: {t['state_after']} "
                    f"Tactic: {t['tactic']}" for t in tactics)


def _docstring_rows(split: str) -> list[Row]:
    rows = []
    for i in range(25):
        doc = f"Return {i} plus the argument."
        code = f"def add_{i}(x):\n    return x + {i}\n"
        rows.append({"body": f'def add_{i}(x):\n    """{doc}"""\n    return x + {i}\n',
                     "body_hash": f"{i:032x}", "docstring": doc, "path": f"pkg/mod_{i}.py",
                     "name": f"add_{i}", "repository_name": f"user/repo{i}", "lang": "Python",
                     "body_without_docstring": code})
    return rows


def _text(row: Row) -> str | None:
    return row["text"] if row["text"].strip() else None


# Keyed by (hub path, config name) as paper.yaml names them.
FIXTURES: dict[tuple[str, str | None], HubFixture] = {
    ("UDACA/PileSubsets", "uspto"): HubFixture("parquet", _pile("uspto"), _text),
    ("UDACA/PileSubsets", "pubmed"): HubFixture("parquet", _pile("pubmed"), _text),
    ("allenai/c4", "en"): HubFixture("json", _c4_rows, _text),
    ("Salesforce/wikitext", "wikitext-103-raw-v1"): HubFixture("parquet", _wikitext_rows, _text),
    ("roneneldan/TinyStories", None): HubFixture("parquet", _text_rows("Once upon a time"), _text),
    ("Skylion007/openwebtext", None): HubFixture("parquet", _text_rows("Web page"), _text),
    ("hoskinson-center/proofnet", "plain_text"): HubFixture(
        "parquet", _proofnet_rows,
        lambda r: f"informal statement {r['nl_statement']} formal statement {r['formal_statement']}"),
    ("UDACA/AF", None): HubFixture("csv", _af_rows, _text),
    ("UDACA/AF-split", None): HubFixture("csv", _af_split_rows, lambda r: r["Statement:"]),
    ("tasksource/leandojo", None): HubFixture("json", _leandojo_rows, _leandojo_text),
    ("calum/the-stack-smol-python-docstrings", None): HubFixture(
        "parquet", _docstring_rows,
        lambda r: f"informal statement {r['docstring']} formal statement {r['body_without_docstring']}"),
}


def fixture_for(spec: dict[str, Any]) -> HubFixture:
    """The fixture standing in for an hf dataset entry (KeyError if there is none)."""
    return FIXTURES[(spec["path"], spec.get("name"))]


def hub_splits(spec: dict[str, Any]) -> list[str]:
    """The hub splits an hf entry reads."""
    return [spec["split"]] if spec.get("split") is not None else sorted(set(spec["splits"].values()))


def write_rows(rows: list[Row], fmt: str, path: Path) -> None:
    """Write rows as the hub serves them: parquet, JSON Lines or CSV."""
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "json":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    elif fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        raise ValueError(fmt)


def local_spec(spec: dict[str, Any], root: Path) -> dict[str, Any]:
    """``spec`` read from fixture files written under ``root`` instead of the hub."""
    fixture = fixture_for(spec)
    root.mkdir(parents=True, exist_ok=True)
    data_files = {}
    for split in hub_splits(spec):
        path = root / f"{split}.{fixture.fmt}"
        write_rows(fixture.rows(split), fixture.fmt, path)
        data_files[split] = str(path)
    local = {k: v for k, v in spec.items() if k not in ("path", "name", "revision")}
    return {**local, "path": fixture.fmt, "data_files": data_files,
            "cache_dir": str(root / "hf-cache")}
