"""Preference data through ``datasets.load_dataset`` (the Hugging Face hub, or local files by builder).

The five hub sets of the efficient-alignment study have known layouts and
splits (KNOWN_HUB; a spec may override either):

=====================================================  ======  ==========================
hub id                                                 layout  splits (train / test)
=====================================================  ======  ==========================
trl-lib/kto-mix-14k                                    kto     train / test
HuggingFaceH4/ultrafeedback_binarized                  pairs   train_prefs / test_prefs
Unified-Language-Model-Alignment/Anthropic_HH_Golden   hh      train / test
Anthropic/hh-rlhf                                      hh      train / test
OpenAssistant/oasst1                                   oasst   train / validation
=====================================================  ======  ==========================

``split: X`` loads one hub split and cuts it into train/test by group hashing
(``test_fraction``); ``splits: {train: X, test: Y}`` uses hub splits as given.
``limit`` keeps the first rows of each hub split (with ``streaming`` only those
are read). A repository that needs a loading script (refused by ``datasets``
4.0 and later) is read once more from the hub's parquet export. The columns
found are logged and recorded in the manifest; a missing column is a one-line
DataError listing those found.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from tqdm import tqdm

from datalign.core.errors import DataError
from datalign.data.hub import is_script_error, parquet_export_url
from datalign.data.preference.oasst import oasst_pairs
from datalign.data.preference.records import Record
from datalign.data.preference.rows import Fields, check_first_row, convert_rows
from datalign.data.preference.source import BuildContext, LoadedPreferences

log = logging.getLogger(__name__)

KNOWN_HUB: dict[str, dict[str, Any]] = {
    "trl-lib/kto-mix-14k": {"layout": "kto", "splits": {"train": "train", "test": "test"}},
    "HuggingFaceH4/ultrafeedback_binarized": {
        "layout": "pairs",
        "splits": {"train": "train_prefs", "test": "test_prefs"},
    },
    "Unified-Language-Model-Alignment/Anthropic_HH_Golden": {
        "layout": "hh",
        "splits": {"train": "train", "test": "test"},
    },
    "Anthropic/hh-rlhf": {"layout": "hh", "splits": {"train": "train", "test": "test"}},
    "OpenAssistant/oasst1": {"layout": "oasst", "splits": {"train": "train", "test": "validation"}},
}
LOAD_KEYS = ("name", "revision", "data_files", "data_dir", "cache_dir")


def with_hub_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with ``layout`` and (when neither ``split`` nor ``splits`` is set)
    ``splits`` filled in from KNOWN_HUB for a known hub id; unchanged otherwise."""
    out = dict(spec)
    known = KNOWN_HUB.get(str(spec.get("path")))
    if known is None:
        return out
    if out.get("layout") is None:
        out["layout"] = known["layout"]
    if out.get("split") is None and out.get("splits") is None:
        out["splits"] = dict(known["splits"])
    return out


def _load_error(dataset: str, path: str, split: str, exc: BaseException) -> DataError:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return DataError(
        f"dataset {dataset}: load_dataset({path!r}, split={split!r}) failed: {type(exc).__name__}: {first_line}"
    )


def load_hub_split(spec: Mapping[str, Any], hub_split: str, dataset: str) -> tuple[Any, bool]:
    """``datasets.load_dataset`` of one hub split (``limit`` applied); on a loading-script
    error, the parquet export once. Returns the dataset and whether the export was used.
    Raises DataError naming the dataset, path and split when loading fails."""
    import datasets

    streaming = bool(spec.get("streaming", False))
    kwargs = {k: spec[k] for k in LOAD_KEYS if spec.get(k) is not None}
    exported = False
    try:
        ds = datasets.load_dataset(spec["path"], split=hub_split, streaming=streaming, **kwargs)
    except Exception as exc:  # datasets raises many types; each is reported or retried here
        if not is_script_error(exc):
            raise _load_error(dataset, spec["path"], hub_split, exc) from exc
        base = re.split(r"[\[+]", hub_split, maxsplit=1)[0].strip()
        url = parquet_export_url(spec["path"], spec.get("name"), base)
        log.warning("dataset %s: %s needs a loading script; trying %s", dataset, spec["path"], url)
        extra = {"cache_dir": spec["cache_dir"]} if spec.get("cache_dir") is not None else {}
        try:
            ds = datasets.load_dataset(
                "parquet", data_files={base: url}, split=hub_split, streaming=streaming, **extra
            )
        except Exception as exc2:
            raise _load_error(dataset, f"{spec['path']} (parquet export)", hub_split, exc2) from exc2
        exported = True
    limit = spec.get("limit")
    if limit is not None:
        ds = ds.take(limit) if streaming else ds.select(range(min(limit, len(ds))))
    return ds, exported


def _records_of_split(
    spec: Mapping[str, Any], hub_split: str, ctx: BuildContext
) -> tuple[list[Record], dict[str, Any]]:
    ds, exported = load_hub_split(spec, hub_split, ctx.name)
    what = f"{spec['path']} split '{hub_split}'"
    layout, fields = spec["layout"], Fields.from_spec(spec)
    total = None if spec.get("streaming") else len(ds)
    iterator = iter(tqdm(ds, total=total, desc=f"{ctx.name} {hub_split}", unit="row", mininterval=2.0))
    first = next(iterator, None)
    columns = list(ds.column_names or (first.keys() if isinstance(first, Mapping) else []))
    log.info("dataset %s: %s has columns %s", ctx.name, what, columns)

    def located() -> Iterator[tuple[str, Any]]:
        if first is None:
            return
        yield f"{what}, row 1", first
        for i, row in enumerate(iterator, 2):
            yield f"{what}, row {i}", row

    if first is not None:
        check_first_row(layout, fields, first, columns, ctx.name, what)
    info: dict[str, Any] = {"hub_split": hub_split, "columns": columns, "parquet_export": exported}
    if layout == "oasst":
        records, info["oasst"] = oasst_pairs(
            located(), ctx.log, spec.get("lang"), spec.get("pairing") or "best_vs_rest"
        )
    else:
        records = convert_rows(located(), layout, fields, ctx.log)
    info["records"] = len(records)
    log.info("dataset %s: %d records from %s", ctx.name, len(records), what)
    return list(records), info


def load_hf_preferences(spec: Mapping[str, Any], ctx: BuildContext) -> LoadedPreferences:
    """Records of one hub split (to be cut by group hashing) or of hub splits as given
    (``splits``); see the module docstring. DataError on a failed load, a missing
    column or (with ``on_bad_row: error``) a bad row."""
    spec = with_hub_defaults(spec)
    if spec.get("split") is not None:
        records, info = _records_of_split(spec, str(spec["split"]), ctx)
        return LoadedPreferences(records=records, details={"layout": spec["layout"], "loaded": {str(spec["split"]): info}})
    presplit: dict[str, list[Record]] = {}
    loaded: dict[str, Any] = {}
    for split, hub_split in spec["splits"].items():
        presplit[split], loaded[split] = _records_of_split(spec, str(hub_split), ctx)
    return LoadedPreferences(presplit=presplit, details={"layout": spec["layout"], "loaded": loaded})
