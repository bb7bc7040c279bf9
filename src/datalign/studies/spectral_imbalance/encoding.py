"""The study's encoding step: what the script of si_encode runs (kept apart from the
analysis so that the encoding stage depends on the encoders' code only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datalign.core.errors import DataError
from datalign.core.io import write_json


def encode_step(labelled: str, encoder: str, spec: dict[str, Any], data_dir: str, outputs: Mapping[str, str],
                info_path: str, seed: int, probe_dir: str | None = None, threads: int = 1) -> dict[str, Any]:
    """Fit ``encoder`` on the train split of a prepared labelled dataset, cache both splits' features."""
    import torch

    from datalign.data.labelled.prepare import read_labelled
    from datalign.studies.spectral_imbalance.encoders.features import save_features
    from datalign.studies.spectral_imbalance.encoders.registry import encode_splits

    torch.set_num_threads(max(1, int(threads)))
    if spec["kind"] == "causal_lm" and spec.get("checkpoint") == "probe":
        if probe_dir is None:
            raise DataError(f"encoder {encoder}: checkpoint 'probe' but no probe model among the inputs")
        spec = {**spec, "checkpoint": str(Path(probe_dir).parent)}
    splits = {s: read_labelled(data_dir, s) for s in outputs}
    features, info = encode_splits(encoder, spec, splits, seed, progress=False)
    for split, path in outputs.items():
        save_features(path, features[split])
    info = {**info, "labelled": labelled, "rows": {s: len(d) for s, d in splits.items()}}
    write_json(info_path, info)
    return info
