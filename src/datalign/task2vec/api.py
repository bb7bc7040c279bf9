"""Task2Vec on your own texts: texts in, embeddings and coefficients out.

The public entry point of the library outside the workflow (the ``datalign``
command line is built on it)::

    from datalign.task2vec import Task2VecConfig, api

    cfg = Task2VecConfig(batch_size=8, seq_len=64, num_batches=4)
    probe = api.train_probe({"target": target_texts, "mine": my_texts})   # or api.load_probe("gpt2")
    target = api.embed_texts(target_texts, probe=probe, config=cfg, seed=0)
    mine = api.embed_texts(my_texts, probe=probe, config=cfg, seed=0)
    api.alignment(mine, target).value          # 1 - mean normalized-cosine distance
    api.diversity(mine, bootstrap=1000)        # with a bootstrap CI

**The probe.** ``probe`` is a :class:`Probe`, a hub name or a local directory
(:func:`load_probe`: a saved causal LM with its tokenizer), a bare
``transformers`` causal LM (then give ``tokenizer``), or ``None``: a tiny
GPT-2 and byte-level BPE trained on the texts themselves (:func:`train_probe`,
the same library code as the workflow's ``train_tokenizer`` and ``probe``
rules, sized by :class:`TinyProbe` to train in seconds on a CPU).
Coefficients compare embeddings made **with the same probe and settings**
only: a probe trained on one file's texts is another probe than one trained
on another file's, so embed the sets to be compared with one probe
(:func:`embed_sets` trains one on all of them). Each result's metadata
records the probe and its fingerprint (a hash of its weights), and
:func:`alignment` refuses two embeddings whose fingerprints differ.

**Batches.** A set's texts are tokenized (no special tokens), cut into
segments of at most ``config.seq_len`` tokens that never cross a document,
and ``config.num_batches`` batches of ``config.batch_size`` distinct segments
are drawn with ``seed`` (:func:`datalign.lm.tokens.sample_segment_batches`),
exactly as the workflow's ``task2vec`` rule does; batch k's estimator is
seeded by ``batch_seed(seed, k)``. Too little text for that is a one-line
:class:`DataError` saying how many segments and tokens are needed and present.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from datalign.core.errors import ConfigError, DataError
from datalign.task2vec.coefficients import Coefficient
from datalign.task2vec.config import Task2VecConfig
from datalign.task2vec.embed import Task2VecResult

__all__ = [
    "Probe", "TinyProbe", "alignment", "diversity", "embed_sets", "embed_texts", "load_probe",
    "rank", "train_probe",
]

_HUB_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class TinyProbe:
    """Size and pre-training of the probe trained on the texts when no probe is given.

    A byte-level BPE of ``vocab_size`` entries (fewer if the texts have fewer
    merges) trained on at most ``max_chars_per_set`` characters of each set,
    and a GPT-2 of ``n_layer`` x ``n_embd`` (``n_head`` heads,
    ``n_positions`` positions: raised to the Task2Vec ``seq_len`` if that is
    longer) trained for one pass over at most ``tokens_per_set`` tokens of
    each set (fewer where a set has fewer), in chunks of ``seq_len`` tokens,
    ``batch_size`` chunks a step, peak learning rate ``lr``. The defaults
    train in a few seconds on two CPU cores.
    """

    vocab_size: int = 1024
    n_layer: int = 2
    n_embd: int = 64
    n_head: int = 2
    n_positions: int = 128
    tokens_per_set: int = 40_000
    seq_len: int = 64
    batch_size: int = 16
    lr: float = 3.0e-3
    max_chars_per_set: int = 1_000_000


@dataclass
class Probe:
    """A probe network and its tokenizer, with where they came from (``source``).

    ``source`` is ``"hub:<name>"``, ``"dir:<path>"``, ``"trained"`` (by
    :func:`train_probe`) or ``"model"`` (passed in); ``record`` says how it
    was made (JSON-able). :meth:`save` writes it as a directory that
    :func:`load_probe` (and ``--probe DIR`` of the command line) reads back.
    """

    model: Any
    tokenizer: Any
    source: str
    record: dict[str, Any] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the weights (names, shapes, dtypes, bytes) and the vocabulary size."""
        if self._fingerprint is None:
            import torch

            h = hashlib.sha256()
            for name, tensor in sorted(self.model.state_dict().items()):
                t = tensor.detach().cpu().contiguous()
                h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
                h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
            h.update(str(len(self.tokenizer)).encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        """What the metadata of an embedding records about its probe."""
        return {"source": self.source, "fingerprint": self.fingerprint, "class": type(self.model).__name__,
                **({"record": self.record} if self.record else {})}

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Save model, tokenizer and ``datalign_probe.json`` (source, record, fingerprint) to ``out_dir``."""
        from datalign.lm.models import save_checkpoint

        return save_checkpoint(self.model, self.tokenizer, out_dir, extra_files={
            "datalign_probe.json": {"source": self.source, "fingerprint": self.fingerprint, "record": self.record},
        })


# ---------------------------------------------------------------- probes


def _hub_reachable() -> bool:
    """Whether the Hugging Face hub answers a TCP connection (``HF_HUB_OFFLINE`` set: no)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=_HUB_TIMEOUT_S):
            return True
    except OSError:
        return False


def _pad_like_eos(tokenizer: Any, name: str) -> Any:
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"probe '{name}': its tokenizer has no EOS token; datalign separates documents with it")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_hub(name: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from datalign.lm.models import load_model
    from datalign.lm.tokenizer import load_tokenizer

    try:  # already in the local cache: no network needed
        model = AutoModelForCausalLM.from_pretrained(name, local_files_only=True, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        return model.eval(), _pad_like_eos(tokenizer, name)
    except (OSError, ValueError):
        pass
    if not _hub_reachable():
        raise ConfigError(
            f"probe '{name}': not a local directory, and the hub name cannot be loaded: the Hugging Face "
            f"hub is unreachable (offline) and the model is not in the local cache; pass a local "
            f"directory holding a saved causal LM and its tokenizer instead"
        )
    try:
        return load_model(name), load_tokenizer(name)
    except Exception as exc:  # a hub failure of any kind: one line, bad input
        raise ConfigError(f"probe '{name}': {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def load_probe(name_or_path: str | os.PathLike) -> Probe:
    """A probe from a local directory (a saved causal LM and its tokenizer) or a hub name.

    A name that is an existing path or looks like one (``./x``, ``/x``,
    ``a/b/c``) is a directory; anything else is a hub name, loaded with
    ``from_pretrained`` from the local cache if it is there, else from the
    hub. With no network that is a one-line :class:`ConfigError` saying so
    (found in seconds, not after the hub client's retries).
    """
    from datalign.lm.models import load_model, looks_like_path
    from datalign.lm.tokenizer import load_tokenizer

    name = str(name_or_path)
    path = Path(name).expanduser()
    if isinstance(name_or_path, os.PathLike) or looks_like_path(name) or path.exists():
        if not path.is_dir():
            raise ConfigError(f"probe directory not found: {path}")
        if not (path / "config.json").is_file():
            raise ConfigError(f"probe directory {path} holds no model (no config.json); save one with save_pretrained")
        if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
            raise ConfigError(f"probe directory {path} holds no tokenizer; save the tokenizer next to the model")
        try:
            model, tokenizer = load_model(path), load_tokenizer(path)
        except Exception as exc:
            raise ConfigError(f"probe directory {path}: {str(exc).splitlines()[0]}") from None
        record = {}
        meta = path / "datalign_probe.json"
        if meta.is_file():
            import json

            record = json.loads(meta.read_text()).get("record", {})
        return Probe(model, tokenizer, f"dir:{path}", record)
    model, tokenizer = _load_hub(name)
    return Probe(model, tokenizer, f"hub:{name}")


def train_probe(
    sets: Mapping[str, Sequence[str]],
    settings: TinyProbe | None = None,
    seed: int = 0,
    progress: bool = True,
    seq_len: int | None = None,
    config: Task2VecConfig | None = None,
) -> Probe:
    """A tiny GPT-2 and its byte-level BPE, trained on the texts of ``sets`` (see :class:`TinyProbe`).

    The library code of the workflow's probe: :func:`datalign.lm.tokenizer.train_bpe`,
    :func:`datalign.lm.models.build_gpt2` and
    :func:`datalign.training.causal_lm.train_causal_lm` on packed chunks drawn
    from each set (:func:`datalign.lm.tokens.training_chunks`), all seeded
    with ``seed``: the same texts and seed give the same probe. ``seq_len``
    (the Task2Vec one) raises ``n_positions`` if it is longer. With a
    Task2Vec ``config``, every set is first checked to be large enough for its
    batches (with the trained tokenizer, before the model trains): a too-small
    set fails in seconds with the numbers.
    """
    from datalign.lm.models import build_gpt2
    from datalign.lm.tokenizer import tokenize_texts, train_bpe
    from datalign.lm.tokens import num_packed_chunks, training_chunks
    from datalign.training.causal_lm import train_causal_lm

    s = settings or TinyProbe()
    if not sets:
        raise DataError("train_probe: no texts to train a probe on")
    corpus: list[str] = []
    for texts in sets.values():
        budget = s.max_chars_per_set
        for text in texts:
            if budget <= 0:
                break
            corpus.append(text[:budget])
            budget -= len(text)
    with tempfile.TemporaryDirectory(prefix="datalign-bpe-") as tmp:
        try:
            tokenizer = train_bpe(corpus, vocab_size=s.vocab_size, out_dir=Path(tmp) / "tokenizer", seed=seed)
        except ConfigError as exc:
            chars = sum(len(t) for t in corpus)
            raise DataError(f"too little text to train a probe on ({chars} characters in {len(sets)} set(s): "
                            f"{exc}); give more text or a probe") from None
    chunks = []
    for name, texts in sets.items():
        split = tokenize_texts(tokenizer, list(texts), name=name)
        if config is not None:
            _check_size(split, config, name)
        n = min(s.tokens_per_set // s.seq_len, num_packed_chunks(split, s.seq_len))
        if n > 0:
            chunks.append(training_chunks(split, s.seq_len, n * s.seq_len, seed))
    if not chunks:
        raise DataError(f"train_probe: the texts hold less than one chunk of {s.seq_len} tokens to train on")
    data = np.concatenate(chunks)
    data = data[np.random.default_rng(seed).permutation(len(data))]
    positions = max(s.n_positions, s.seq_len, seq_len or 0)
    architecture = {"n_layer": s.n_layer, "n_embd": s.n_embd, "n_head": s.n_head, "n_positions": positions}
    model = build_gpt2(architecture, vocab_size=len(tokenizer), eos_id=tokenizer.eos_token_id, seed=seed)
    log = train_causal_lm(model, data, batch_size=s.batch_size, lr=s.lr, seed=seed, run_name="probe",
                          progress=progress, log_every=max(1, len(data) // s.batch_size))
    record = {"settings": {**asdict(s), "n_positions": positions}, "seed": int(seed),
              "sets": list(sets), "vocab_size": len(tokenizer), "train_chunks": len(data),
              "final_loss": float(log.final_loss)}
    return Probe(model, tokenizer, "trained", record)


def _resolve_probe(probe: Any, tokenizer: Any, sets: Mapping[str, Sequence[str]] | None,
                   cfg: Task2VecConfig, seed: int, progress: bool, settings: TinyProbe | None) -> Probe:
    if isinstance(probe, Probe):
        return probe
    if probe is None:
        if tokenizer is not None:
            raise ConfigError("a tokenizer was given without a probe model")
        return train_probe(sets or {}, settings, seed=seed, progress=progress, seq_len=cfg.seq_len, config=cfg)
    if isinstance(probe, str | os.PathLike):
        loaded = load_probe(probe)
        if tokenizer is not None:
            loaded.tokenizer = _pad_like_eos(tokenizer, str(probe))
        return loaded
    if tokenizer is None:
        raise ConfigError("a probe model was given without its tokenizer (tokenizer=...)")
    return Probe(probe, _pad_like_eos(tokenizer, type(probe).__name__), "model")


# ---------------------------------------------------------------- embeddings


def _check_size(split: Any, cfg: Task2VecConfig, name: str) -> None:
    from datalign.lm.tokens import segment_bounds

    have = len(segment_bounds(split, cfg.seq_len))
    need = cfg.num_batches * cfg.batch_size
    if have < need:
        raise DataError(
            f"{name}: too small for Task2Vec: {cfg.num_batches} batches x {cfg.batch_size} sequences need "
            f"{need} segments of 2-{cfg.seq_len} tokens (at least {2 * need} tokens, {need * cfg.seq_len} "
            f"to fill them), it has {have} ({split.num_tokens} tokens in {split.num_documents} documents); "
            f"give more text or fewer/smaller batches (num_batches, batch_size, seq_len)"
        )


def embed_texts(
    texts: Sequence[str],
    probe: Any = None,
    tokenizer: Any = None,
    config: Task2VecConfig | None = None,
    seed: int = 0,
    *,
    name: str = "texts",
    progress: bool = True,
    probe_settings: TinyProbe | None = None,
) -> Task2VecResult:
    """Task2Vec embeddings of one set of texts (one row per batch; see the module docstring).

    ``config`` defaults to :class:`Task2VecConfig` (): 8 batches of 32
    sequences of 64 tokens. ``probe=None`` trains a tiny probe on these texts
    alone: fine for :func:`diversity`, but to compare sets use one probe
    (:func:`embed_sets`). ``name`` appears in errors and in the metadata
    (``set``), with ``probe`` (:meth:`Probe.describe`), ``num_batches`` and
    ``tokens_per_batch``.
    """
    from datalign.lm.devices import inference_device
    from datalign.lm.tokenizer import tokenize_texts
    from datalign.lm.tokens import sample_segment_batches
    from datalign.task2vec.embed import embed_batches

    cfg = config or Task2VecConfig()
    texts = [t for t in texts if isinstance(t, str) and t.strip()] if texts is not None else []
    if not texts:
        raise DataError(f"{name}: no texts to embed")
    p = _resolve_probe(probe, tokenizer, {name: texts}, cfg, seed, progress, probe_settings)
    split = tokenize_texts(p.tokenizer, texts, name=name)
    _check_size(split, cfg, name)
    model = p.model.to(inference_device())
    batches = sample_segment_batches(split, cfg.num_batches, cfg.batch_size, cfg.seq_len, seed=seed,
                                     pad_id=model.config.pad_token_id)
    result = embed_batches(model, batches, cfg, seed=seed, progress=progress, strict=True)
    result.metadata.update({
        "set": name,
        "num_batches": len(batches),
        "tokens_per_batch": [b.num_tokens for b in batches],
        "probe": p.describe(),
    })
    return result


def embed_sets(
    sets: Mapping[str, Sequence[str]],
    probe: Any = None,
    tokenizer: Any = None,
    config: Task2VecConfig | None = None,
    seed: int = 0,
    *,
    progress: bool = True,
    probe_settings: TinyProbe | None = None,
) -> tuple[dict[str, Task2VecResult], Probe]:
    """Embed every set of ``sets`` (name -> texts) with one probe; return the results and the probe.

    ``probe=None`` trains one tiny probe on all the sets together. Every set
    is embedded with the same ``seed`` (its own batches, the same estimator
    seeds for batch k), as :func:`embed_texts` would.
    """
    cfg = config or Task2VecConfig()
    p = _resolve_probe(probe, tokenizer, sets, cfg, seed, progress, probe_settings)
    results = {name: embed_texts(texts, p, config=cfg, seed=seed, name=name, progress=progress)
               for name, texts in sets.items()}
    return results, p


# ---------------------------------------------------------------- coefficients


def _matrix(x: Any) -> np.ndarray:
    return np.asarray(x.embeddings if isinstance(x, Task2VecResult) else x)


def _kind(kind: str | None, *xs: Any) -> str:
    if kind is not None:
        return kind
    for x in xs:
        if isinstance(x, Task2VecResult):
            found = x.metadata.get("config", {}).get("distance")
            if found:
                return str(found)
    return "normalized_cosine"


def check_comparable(named: Mapping[str, Any]) -> None:
    """A :class:`DataError` if results in ``named`` were made with different probes or settings.

    Compares the probe fingerprints and the Task2Vec configs recorded in
    :class:`Task2VecResult` metadata; plain arrays (and results without the
    record) are taken on trust.
    """
    seen: dict[str, tuple[str, Any]] = {}
    for label, x in named.items():
        meta = x.metadata if isinstance(x, Task2VecResult) else {}
        fp = (meta.get("probe") or {}).get("fingerprint")
        if fp is not None:
            seen.setdefault("probe", (label, fp))
            first, value = seen["probe"]
            if value != fp:
                raise DataError(f"{label} and {first} were embedded with different probes (fingerprints "
                                f"{fp} and {value}); coefficients compare embeddings of one probe only")
        cfg = meta.get("config")
        if cfg is not None:
            seen.setdefault("config", (label, cfg))
            first, value = seen["config"]
            if value != cfg:
                diff = sorted(k for k in set(cfg) | set(value) if cfg.get(k) != value.get(k))
                raise DataError(f"{label} and {first} were embedded with different Task2Vec settings "
                                f"({', '.join(diff)})")


def alignment(
    a: Any, b: Any, *, kind: str | None = None, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> Coefficient:
    """Alignment ``1 - cross_diversity(a, b)`` of two embedded sets, with a bootstrap CI.

    ``a`` and ``b`` are :class:`Task2VecResult` (checked to share a probe and
    settings) or (batches, P) arrays. ``kind`` defaults to the distance of
    their config (else ``normalized_cosine``); ``bootstrap=0`` skips the
    interval. Same numbers as ``datalign align`` and
    :func:`datalign.task2vec.coefficients.alignment`.
    """
    from datalign.task2vec import coefficients

    check_comparable({"first set": a, "second set": b})
    return coefficients.alignment(_matrix(a), _matrix(b), _kind(kind, a, b), bootstrap, confidence, seed)


def diversity(
    a: Any, *, kind: str | None = None, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0,
) -> Coefficient:
    """Diversity (mean distance over pairs of distinct batches) of one embedded set, with a bootstrap CI."""
    from datalign.task2vec import coefficients

    return coefficients.diversity(_matrix(a), _kind(kind, a), bootstrap, confidence, seed)


def rank(
    target: Any, candidates: Mapping[str, Any], *, kind: str | None = None, bootstrap: int = 1000,
    confidence: float = 0.95, seed: int = 0,
) -> pd.DataFrame:
    """Every candidate's alignment with ``target``, best first.

    Columns: candidate, alignment, ci_low, ci_high, std, n_pairs, n_boot. Row
    ``c`` is :func:`alignment` ``(candidates[c], target)`` with ``seed`` (so
    ``datalign align C TARGET`` prints the same numbers); ties keep the
    candidates' order.
    """
    check_comparable({"target": target, **candidates})
    rows = []
    for name, emb in candidates.items():
        c = alignment(emb, target, kind=_kind(kind, target, emb), bootstrap=bootstrap,
                      confidence=confidence, seed=seed)
        rows.append({"candidate": name, "alignment": c.value, "ci_low": c.ci_low, "ci_high": c.ci_high,
                     "std": c.std, "n_pairs": c.n_pairs, "n_boot": c.n_boot})
    table = pd.DataFrame(rows, columns=["candidate", "alignment", "ci_low", "ci_high", "std", "n_pairs", "n_boot"])
    return table.sort_values("alignment", ascending=False, kind="stable").reset_index(drop=True)
