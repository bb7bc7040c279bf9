"""The embedding files: written as the workflow always wrote them, read back by the same library code."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from datalign.core.errors import DataError
from datalign.core.io import atomic_path, write_json
from datalign.task2vec import (
    Task2VecResult,
    load_embeddings,
    load_result,
    save_embeddings,
    sidecar_path,
)
from datalign.task2vec.artifacts import RESULT_KEYS


def a_result() -> Task2VecResult:
    rng = np.random.default_rng(0)
    return Task2VecResult(
        embeddings=rng.random((3, 7)).astype(np.float32),
        parameter_names=["transformer.wte.weight", "transformer.h.0.ln_1.weight"],
        parameter_sizes=[4, 3],
        seconds_per_batch=[0.5, 0.25, 0.125],
        metadata={
            "estimator": "paper",
            "config": {"estimator": "paper", "seq_len": 12, "head_lr": 5e-05},
            "seed": 3,
            "batch_seeds": [np.int64(11), 12, 13],
            "num_batches": 3,
            "per_batch": {"head_steps": [2, 2, 2], "head_loss_first_epoch": [1.5, 1.25, None]},
        },
    )


def written_as_the_workflow_did(result: Task2VecResult, npz, meta_path, extra) -> None:
    """workflow/scripts/task2vec.py's own writing code, before the library took it over."""
    with atomic_path(npz) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, embeddings=result.embeddings)
    meta = dict(result.metadata)
    meta.update(extra)
    write_json(meta_path, meta)


EXTRA = {"set": "bbc_news/train", "num_batches": 3, "tokens_per_batch": [40, 38, 41],
         "provenance": {"config": {"estimator": "paper"}, "seed": 3}}


def test_the_npz_is_the_workflows_byte_for_byte_and_the_sidecar_only_gains_three_keys(tmp_path):
    result = a_result()
    written_as_the_workflow_did(result, tmp_path / "old.npz", tmp_path / "old.json", EXTRA)
    save_embeddings(result, tmp_path / "new.npz", tmp_path / "new.json", extra=EXTRA)
    old, new = (zipfile.ZipFile(tmp_path / f"{n}.npz") for n in ("old", "new"))
    with old, new:
        assert old.namelist() == new.namelist() == ["embeddings.npy"]
        assert [i.compress_type for i in old.infolist()] == [i.compress_type for i in new.infolist()]
        assert old.read("embeddings.npy") == new.read("embeddings.npy")
    # zip members carry their write time: equal up to it, the sizes are
    assert (tmp_path / "old.npz").stat().st_size == (tmp_path / "new.npz").stat().st_size
    old_text, new_text = (tmp_path / "old.json").read_text(), (tmp_path / "new.json").read_text()
    assert old_text.endswith("\n}\n")
    assert new_text.startswith(old_text[: -len("\n}\n")] + ",\n")  # the same keys, values and layout first
    meta = json.loads(new_text)
    assert list(meta)[-3:] == list(RESULT_KEYS)
    assert {k: v for k, v in meta.items() if k not in RESULT_KEYS} == json.loads(old_text)


def test_round_trip_and_default_sidecar(tmp_path):
    result = a_result()
    path = tmp_path / "d" / "train.npz"
    save_embeddings(result, path, extra=EXTRA)
    assert sidecar_path(path) == tmp_path / "d" / "train.json" and sidecar_path(path).exists()
    back = load_result(path)
    np.testing.assert_array_equal(back.embeddings, result.embeddings)
    assert back.embeddings.dtype == np.float32
    assert (back.parameter_names, back.parameter_sizes, back.seconds_per_batch) == (
        result.parameter_names, result.parameter_sizes, result.seconds_per_batch)
    assert back.metadata["set"] == "bbc_news/train" and back.metadata["batch_seeds"] == [11, 12, 13]
    assert back.metadata["config"] == result.metadata["config"]
    assert back.slices() == result.slices()
    np.testing.assert_array_equal(load_embeddings(path), result.embeddings)
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.json", "train.npz"]  # no temporary left


def test_load_embeddings_reads_any_embeddings_npz_and_names_what_is_wrong(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.savez(tmp_path / "plain.npz", embeddings=a)  # what the CLI is given
    np.testing.assert_array_equal(load_embeddings(tmp_path / "plain.npz"), a)
    with pytest.raises(DataError, match="embedding file not found"):
        load_embeddings(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=a)
    with pytest.raises(DataError, match=r"no 'embeddings' array \(has x\)"):
        load_embeddings(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not an embedding .npz"):
        load_embeddings(tmp_path / "text.npz")


def test_load_result_needs_the_sidecar(tmp_path):
    np.savez(tmp_path / "e.npz", embeddings=np.ones((2, 7), dtype=np.float32))
    with pytest.raises(DataError, match="embedding metadata not found"):
        load_result(tmp_path / "e.npz")
    write_json(tmp_path / "e.json", {"estimator": "paper"})
    with pytest.raises(DataError, match="not a Task2Vec embedding sidecar"):
        load_result(tmp_path / "e.npz")
    write_json(tmp_path / "e.json", {"parameter_names": ["a"], "parameter_sizes": [6], "seconds_per_batch": [1.0]})
    with pytest.raises(DataError, match="sum to 6"):
        load_result(tmp_path / "e.npz")
    with pytest.raises(ValueError, match="written from the result"):
        save_embeddings(a_result(), tmp_path / "f.npz", extra={"parameter_names": []})
