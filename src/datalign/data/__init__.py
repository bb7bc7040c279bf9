"""Dataset registry: sources, deterministic splits, mixtures, prepared-data I/O.

Each registry entry (``datasets.<name>`` in the config) has a ``source``:
``stdlib`` (Python's standard library: code, or docstring -> code pairs),
``package`` (text inside an installed package), ``local`` (a user's files),
``hf`` (``datasets.load_dataset``) or ``mixture`` (prepared datasets mixed by
character share). :func:`prepare_dataset` writes a directory with
``{train,validation,test}.jsonl`` and ``manifest.json``; :func:`read_split`
reads a split's texts back.
"""

from datalign.data.prepare import (
    mixture_components,
    prepare_dataset,
    read_documents,
    read_split,
    validate_spec,
)
from datalign.data.records import Document
from datalign.data.split import SPLITS

__all__ = [
    "SPLITS",
    "Document",
    "mixture_components",
    "prepare_dataset",
    "read_documents",
    "read_split",
    "validate_spec",
]
