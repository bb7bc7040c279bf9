"""The files outside the workflow that a dataset is read from.

The workflow makes them inputs of the dataset's preparation, so that editing
one reruns what depends on it (Snakemake compares their times and, for small
files, checksums; DVC hashes them as deps of the data stage through the
``plan.source_files`` parameter). Hub datasets are tracked by their spec (path,
name, revision, row limit: a changed key reruns the preparation), not by
content: hashing a streamed hub corpus would mean downloading it.
"""

from __future__ import annotations

from typing import Any

from datalign.core.errors import DataError


def source_files(name: str, spec: dict[str, Any]) -> list[str]:
    """Paths of the local files dataset ``name`` reads (sorted); ``[]`` for other sources.

    A ``local`` path that names nothing yet is returned as given, so the
    workflow reports it as a missing input naming the file, before any job.
    """
    if spec.get("source") != "local":
        return []
    from datalign.data.local import find_files

    try:
        files, _ = find_files(spec["path"], spec.get("format"), name)
    except DataError:
        return [str(spec["path"])]
    return sorted(str(f) for f in files)
