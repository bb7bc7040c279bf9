"""Benchmark of the Task2Vec estimators: ``paper`` against ``fast`` on the same batches.

For each probe (the default study's trained probe, and a GPT-2-small sized
probe with random weights, 124M parameters) and every embedded set of the
default study (``datalign.studies.alignment.plan.embedding_sets``), it draws the batches the
workflow draws (same sizes and seeds unless sized down) and measures:

- seconds per embedding of each estimator (``embed_batches``'s per-batch times);
- peak memory growth during embedding (CUDA: peak allocated bytes; CPU: peak
  resident set size, ``VmHWM`` reset through ``/proc/self/clear_refs``);
- the floor: one plain forward+backward pass over the same batch (next-token
  loss, every parameter requiring a gradient, same precision as ``fast``);
- agreement: the alignment coefficient of every pair of sets from each
  estimator's embeddings, and the Spearman rank correlation between the two.

It prints a table and writes a JSON with, per probe, ``speedup`` (paper time /
fast time), ``floor_ratio`` (fast time / floor time) and ``spearman``, plus
the details. Run from the repository root after the default study's tokens
and probe exist::

    .venv/bin/python benchmarks/task2vec_bench.py --results results \\
        --out benchmarks/results/task2vec_bench.json

The options size it down for a CPU (see ``--help`` and benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from datalign.core.io import provenance, write_json  # noqa: E402
from datalign.lm.tokens import SequenceBatch, TokenizedSplit, sample_segment_batches  # noqa: E402
from datalign.studies import load_config  # noqa: E402
from datalign.studies.alignment import plan as study  # noqa: E402
from datalign.task2vec import Task2VecConfig, embed_batches, embedding_size  # noqa: E402
from datalign.task2vec.coefficients import alignment  # noqa: E402
from datalign.task2vec.fast import body_autocast, pass_dtypes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def precision(cfg: Task2VecConfig) -> str:
    """The ``fast`` estimator's ``precision`` option in ``cfg`` (``task2vec.fast.precision``)."""
    return cfg.options_for("fast").precision


def with_fast(cfg: Task2VecConfig, **options: Any) -> Task2VecConfig:
    """``cfg`` with the ``fast`` estimator chosen and some of its options changed."""
    return dataclasses.replace(cfg.with_options("fast", **options), estimator="fast")


# ---------------------------------------------------------------- measuring


class PeakMemory:
    """Peak memory growth (bytes) while the context is open; ``None`` where unmeasurable.

    CUDA: ``max_memory_allocated`` after a reset, minus what was allocated on
    entry. CPU (Linux): the process's peak resident set (``VmHWM``), reset to
    the current resident set on entry by writing 5 to ``/proc/self/clear_refs``,
    minus the resident set on entry. Memory the allocator kept from earlier
    calls and reuses is not counted, so CPU numbers are lower bounds.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.bytes: int | None = None

    @staticmethod
    def _status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise OSError(key)

    def __enter__(self) -> PeakMemory:
        self._start: int | None = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
                self._start = self._status("VmRSS")
            except OSError:
                self._start = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._start is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self._start
        else:
            self.bytes = self._status("VmHWM") - self._start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def floor_pass(model: torch.nn.Module, batch: SequenceBatch,
               dtypes: tuple[torch.dtype, torch.dtype] = (torch.float32, torch.float32)) -> float:
    """Seconds of one plain forward+backward pass over ``batch`` (the floor).

    Next-token cross-entropy over real targets (pads labelled -100), every
    parameter requiring a gradient, dropout off; the model's flags are restored.
    ``dtypes = (body, head)`` (:func:`datalign.task2vec.fast.pass_dtypes`): the
    body runs under autocast to the first, the output head's product takes
    operands in the second (float32 accumulation), as ``fast`` runs them.
    """
    device = next(model.parameters()).device
    ids = batch.input_ids.to(device)
    mask = batch.attention_mask.to(device)
    labels = ids.masked_fill(mask == 0, -100)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    training = model.training
    body, head = dtypes
    out = model.get_output_embeddings()
    forward = out.forward
    if head != body:  # the head alone under autocast to its dtype (the body's autocast is turned off in it)
        def head_forward(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast(device_type=device.type, dtype=head, enabled=head != torch.float32):
                return forward(x)
        out.forward = head_forward
    model.eval()
    for p, _ in flags:
        p.requires_grad_(True)
    try:
        sync(device)
        start = time.perf_counter()
        with body_autocast(device, body):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss
        loss.backward()
        sync(device)
        return time.perf_counter() - start
    finally:
        out.forward = forward
        for p, flag in flags:
            p.grad = None
            p.requires_grad_(flag)
        model.train(training)


def minibatch_floor_pass(model: torch.nn.Module, batch: SequenceBatch, dtypes: tuple[torch.dtype, torch.dtype],
                         minibatch: int) -> float:
    """Seconds of one plain forward+backward pass per Fisher mini-batch of ``minibatch`` sequences, summed.

    The Fisher of both estimators squares each mini-batch's own gradient, so
    any estimator of it runs the body once per mini-batch: on short batches
    the smaller matrix products make this floor higher than :func:`floor_pass`.
    """
    n = batch.input_ids.shape[0]
    parts = [SequenceBatch(input_ids=batch.input_ids[i:i + minibatch], attention_mask=batch.attention_mask[i:i + minibatch])
             for i in range(0, n, minibatch)]
    return sum(floor_pass(model, part, dtypes) for part in parts)


def floor_dtypes(device: torch.device, cfg: Task2VecConfig) -> tuple[torch.dtype, torch.dtype]:
    """``(body, head)`` dtypes of ``cfg``'s ``fast`` estimator on ``device``: those its floor pass runs in."""
    return pass_dtypes(device, precision(cfg))


def floor_label(dtypes: tuple[torch.dtype, torch.dtype]) -> str:
    """``body`` or ``body/head`` (e.g. ``float32/bfloat16``): the key of a floor time in the JSON."""
    body, head = (str(d).removeprefix("torch.") for d in dtypes)
    return body if body == head else f"{body}/{head}"


def measure_memory(
    model: torch.nn.Module, batch: SequenceBatch, variants: list[Variant], device: torch.device
) -> dict[str, float | None]:
    """Peak memory growth (MiB) of one floor pass and one embedding per variant, on ``batch``."""
    out: dict[str, float | None] = {}
    dtypes = floor_dtypes(device, variants[1].cfg)
    floor_pass(model, batch, dtypes)  # warm-up: one-time allocations are not counted
    with PeakMemory(device) as mem:
        floor_pass(model, batch, dtypes)
    out["floor"] = None if mem.bytes is None else mem.bytes / 2**20
    for v in variants:
        with PeakMemory(device) as mem:
            embed_batches(model, [batch], v.cfg, seed=1, progress=False)
        out[v.label] = None if mem.bytes is None else mem.bytes / 2**20
    return out


def memory_usage(args: argparse.Namespace, probe: str, build: Any, device: torch.device) -> dict[str, float | None]:
    """Peak memory per run on the probe's first batch.

    On CUDA it is measured here. On a CPU it is measured in a child process
    whose allocator returns every large block to the system when it is freed
    (``MALLOC_MMAP_THRESHOLD_``), so that the resident set follows the live
    tensors; timings are not taken there (that setting slows small allocations).
    """
    if device.type == "cuda":
        model, cfg, variants, sets, pad, _ = build(probe)
        return measure_memory(model, first_batch(args, sets, cfg, pad), variants, device)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    cmd = [sys.executable, str(Path(__file__).resolve()), *(args.argv or []), "--memory-child", probe]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_batch(args: argparse.Namespace, sets: list[study.EmbeddingSet], cfg: Task2VecConfig, pad: int) -> SequenceBatch:
    es = sets[0]
    config = load_config(args.config)
    split = TokenizedSplit.load(args.results / "tokens" / es.dataset / f"{es.split}.npz", name=es.label)
    seed = study.derived_seed(config, "task2vec", es.dataset, es.split)
    return sample_segment_batches(split, 1, cfg.batch_size, cfg.seq_len, seed=seed, pad_id=pad)[0]


# ---------------------------------------------------------------- probes


def load_default_probe(results: Path, device: torch.device) -> torch.nn.Module:
    from datalign.lm.models import load_model

    return load_model(str(results / "probe")).to(device)


def gpt2_small_probe(device: torch.device, seed: int) -> torch.nn.Module:
    """GPT-2 small (124M parameters, tied head, vocabulary 50257) with random weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config()).to(device).eval()


def gpt2_50k_tiny_probe(device: torch.device, seed: int) -> torch.nn.Module:
    """A tiny GPT-2 (2 layers x 128, tied head) with GPT-2's 50257-token vocabulary, random weights.

    Its head (6.4M of its 7.0M parameters) dominates every pass: the probe
    on which the estimator's head work shows most.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=128, n_head=4)).to(device).eval()


PROBES = ("default", "gpt2", "gpt2_50k_tiny")


def build_probe(
    probe: str, results: Path, device: torch.device, base: Task2VecConfig, on_gpu: bool, seed: int,
    batch_size: int | None = None, seq_len: int | None = None,
) -> tuple[torch.nn.Module, Task2VecConfig]:
    """A benchmark probe and the Task2Vec config it is run with.

    ``default``: the study's probe and config. ``gpt2``: 124M, random, batches of
    ``batch_size`` x ``seq_len`` (16 x 16 on a CPU, the config's on a GPU).
    ``gpt2_50k_tiny``: the tiny 50k-vocabulary probe with the config's batches.
    """
    if probe == "default":
        return load_default_probe(results, device), base
    if probe == "gpt2":
        cfg = dataclasses.replace(
            base,
            batch_size=batch_size or (base.batch_size if on_gpu else 16),
            seq_len=seq_len or (base.seq_len if on_gpu else 16),
        )
        return gpt2_small_probe(device, seed), cfg
    if probe == "gpt2_50k_tiny":
        return gpt2_50k_tiny_probe(device, seed), base
    raise SystemExit(f"unknown probe '{probe}' (known: {', '.join(PROBES)})")


# ---------------------------------------------------------------- one probe


@dataclasses.dataclass(frozen=True)
class Variant:
    """One estimator configuration to time and compare."""

    label: str
    cfg: Task2VecConfig
    seed_offset: int = 0


def paired_median(seconds: list[float], floors: list[float]) -> float:
    """Median over batches of a run's time over the same batch's floor time."""
    return float(np.median(np.array(seconds) / np.array(floors)))


def alignment_values(embeddings: dict[str, np.ndarray], labels: list[str], kind: str) -> np.ndarray:
    """alignment(D_i, D_j) = 1 - mean_{a in D_i, b in D_j} d(a, b) over pairs i < j (in order)."""
    return np.array([
        alignment(embeddings[a], embeddings[b], kind=kind, bootstrap=0).value
        for i, a in enumerate(labels) for b in labels[i + 1:]
    ])


def run_probe(
    name: str,
    model: torch.nn.Module,
    sets: list[study.EmbeddingSet],
    results: Path,
    config: dict[str, Any],
    base: Task2VecConfig,
    variants: list[Variant],
    pad_id: int,
    device: torch.device,
    log: Any,
    memory: dict[str, float | None],
    num_batches: int,
) -> dict[str, Any]:
    """Embed every set with every variant on ``num_batches`` batches each: timings and agreement.

    The batch count is the benchmark's own (it may be 1, which a study's
    ``task2vec.num_batches`` may not), not ``base.num_batches``.

    ``memory`` (MiB per run label and ``floor``) is measured separately, see
    :func:`memory_usage`, and only copied into the result.
    """
    cfg = base
    kinds = {floor_dtypes(device, v.cfg) for v in variants if v.cfg.estimator == "fast"}
    base_kind = floor_dtypes(device, base)
    kinds |= {base_kind, (torch.float32, torch.float32)}  # float32: the floor of issue 14's table
    seconds: dict[str, list[float]] = {v.label: [] for v in variants}
    floors: dict[str, list[float]] = {floor_label(d): [] for d in kinds}
    minibatch_floors: list[float] = []
    embeddings: dict[str, dict[str, np.ndarray]] = {v.label: {} for v in variants}
    tokens_per_batch: list[int] = []
    for es in sets:
        split = TokenizedSplit.load(results / "tokens" / es.dataset / f"{es.split}.npz", name=es.label)
        seed = study.derived_seed(config, "task2vec", es.dataset, es.split)
        batches = sample_segment_batches(split, num_batches, cfg.batch_size, cfg.seq_len, seed=seed, pad_id=pad_id)
        tokens_per_batch += [b.num_tokens for b in batches]
        # Paired timing: the floor pass of every batch of the set, every variant on the whole
        # list (one call, as the workflow makes it: per-call work is spread over the set's
        # batches), then the floor passes again; batch k's floor is the mean of its two
        # passes, so a load change during the run moves both sides of each ratio alike.
        before = {d: [floor_pass(model, b, d) for b in batches] for d in kinds}
        mb_before = [minibatch_floor_pass(model, b, base_kind, cfg.head_minibatch) for b in batches]
        for v in variants:
            res = embed_batches(model, batches, v.cfg, seed=seed + v.seed_offset, progress=False, strict=False)
            sync(device)
            seconds[v.label] += res.seconds_per_batch
            embeddings[v.label][es.label] = res.embeddings
        for d in kinds:
            after = [floor_pass(model, b, d) for b in batches]
            floors[floor_label(d)] += [(x + y) / 2 for x, y in zip(before[d], after, strict=True)]
        mb_after = [minibatch_floor_pass(model, b, base_kind, cfg.head_minibatch) for b in batches]
        minibatch_floors += [(x + y) / 2 for x, y in zip(mb_before, mb_after, strict=True)]
        log(f"  [{name}] {es.label}: " + ", ".join(
            f"{v.label} {np.mean(seconds[v.label][-num_batches:]):.3f}s" for v in variants))

    labels = [es.label for es in sets]
    kind = cfg.distance
    aligns = {v.label: alignment_values(embeddings[v.label], labels, kind) for v in variants}
    paper_s = float(np.mean(seconds["paper"]))
    out_variants: dict[str, Any] = {}
    for v in variants:
        mean_s = float(np.mean(seconds[v.label]))
        entry: dict[str, Any] = {
            "estimator": v.cfg.estimator,
            "seconds_per_embedding": mean_s,
            "seconds_median": float(np.median(seconds[v.label])),
            "peak_memory_mib": memory.get(v.label),
            "speedup": paper_s / mean_s,
        }
        if v.cfg.estimator == "fast":
            fdt = floor_label(floor_dtypes(device, v.cfg))
            entry.update({
                "head_fit": v.cfg.options_for("fast").head_fit,
                "precision": fdt,
                "floor_ratio": mean_s / float(np.mean(floors[fdt])),
                # the same batch's fast time over its floor time (the mean of its floor passes
                # just before and after the set's runs), median over batches: robust to a
                # machine whose load changes during the run
                "floor_ratio_paired_median": paired_median(seconds[v.label], floors[fdt]),
                "floor_ratio_paired_median_float32": paired_median(seconds[v.label], floors["float32"]),
            })
            if fdt == floor_label(base_kind):
                entry["minibatch_floor_ratio_paired_median"] = paired_median(seconds[v.label], minibatch_floors)
        if v.label != "paper" and len(labels) > 2:
            rho = stats.spearmanr(aligns["paper"], aligns[v.label])
            entry["spearman"] = float(rho.statistic)
            entry["pearson"] = float(stats.pearsonr(aligns["paper"], aligns[v.label]).statistic)
            entry["max_abs_alignment_difference"] = float(np.max(np.abs(aligns["paper"] - aligns[v.label])))
        out_variants[v.label] = entry
    main = out_variants["fast"]
    base_dtype = floor_label(base_kind)
    return {
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "embedding_size": embedding_size(model, cfg),
        "vocab_size": int(model.get_output_embeddings().weight.shape[0]),
        "batch_size": cfg.batch_size,
        "seq_len": cfg.seq_len,
        "head_minibatch": cfg.head_minibatch,
        "head_epochs": cfg.head_epochs,
        "num_batches_per_set": num_batches,
        "mean_tokens_per_batch": float(np.mean(tokens_per_batch)),
        "sets": labels,
        "n_pairs": len(aligns["paper"]),
        "seconds_per_embedding": {"paper": paper_s, "fast": main["seconds_per_embedding"]},
        "floor_seconds": float(np.mean(floors[base_dtype])),
        "floor_seconds_by_precision": {k: float(np.mean(x)) for k, x in floors.items()},
        "minibatch_floor_seconds": float(np.mean(minibatch_floors)),
        "peak_memory_mib": {
            "paper": memory.get("paper"),
            "fast": memory.get("fast"),
            "floor": memory.get("floor"),
        },
        "speedup": main["speedup"],
        "floor_ratio": main["floor_ratio"],
        "floor_ratio_paired_median": main["floor_ratio_paired_median"],
        "floor_ratio_paired_median_float32": main["floor_ratio_paired_median_float32"],
        "minibatch_floor_ratio_paired_median": main["minibatch_floor_ratio_paired_median"],
        "spearman": main.get("spearman"),
        "variants": out_variants,
        "alignment": {v.label: aligns[v.label].tolist() for v in variants},
        "pairs": [[a, b] for i, a in enumerate(labels) for b in labels[i + 1:]],
    }


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=ROOT / "results", help="the default study's results folder (tokens/, probe/)")
    p.add_argument("--config", type=Path, default=ROOT / "config" / "config.yaml", help="the default study's config")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "task2vec_bench.json")
    p.add_argument("--probes", default="default,gpt2,gpt2_50k_tiny",
                   help="comma-separated: default, gpt2, gpt2_50k_tiny")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--num-batches", type=int, default=None, help="batches per set, default probe (config's num_batches)")
    p.add_argument("--variants", default="exact,bfloat16,reseed",
                   help="extra runs on the default probe: exact (fast: {head_fit: exact}), bfloat16 "
                        "(fast: {precision: bfloat16}), reseed (paper again with another seed: the noise ceiling)")
    p.add_argument("--gpt2-batch-size", type=int, default=None, help="sequences per batch on the 124M probe (default: 16 on CPU, the config's on GPU)")
    p.add_argument("--gpt2-seq-len", type=int, default=None, help="tokens per sequence on the 124M probe (default: 16 on CPU, the config's on GPU)")
    p.add_argument("--gpt2-num-batches", type=int, default=None, help="batches per set on the 124M probe (default: 1 on CPU, 2 on GPU)")
    p.add_argument("--gpt2-sets", type=int, default=None,
                   help="use only the first N embedding sets on the 124M and the tiny 50k-vocabulary probes")
    p.add_argument("--tiny-num-batches", type=int, default=None,
                   help="batches per set on the tiny 50k-vocabulary probe (default: 1 on CPU, 2 on GPU)")
    p.add_argument("--gpt2-variants", default="reseed",
                   help="extra runs on the 124M and tiny 50k-vocabulary probes (as --variants)")
    p.add_argument("--seed", type=int, default=0, help="seed of the 124M probe's random weights")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory measurement")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = [a for a in (sys.argv[1:] if argv is None else argv)]
    return args


def make_variants(base: Task2VecConfig, extra: str) -> list[Variant]:
    variants = [Variant("paper", dataclasses.replace(base, estimator="paper")),
                Variant("fast", with_fast(base))]
    for name in [x for x in extra.split(",") if x]:
        if name == "exact":
            variants.append(Variant("fast_exact", with_fast(base, head_fit="exact")))
        elif name == "bfloat16":
            variants.append(Variant("fast_bfloat16", with_fast(base, precision="bfloat16")))
        elif name == "float32":
            variants.append(Variant("fast_float32", with_fast(base, precision="float32")))
        elif name == "reseed":
            variants.append(Variant("paper_reseeded", dataclasses.replace(base, estimator="paper"), seed_offset=7919))
        else:
            raise SystemExit(f"unknown variant '{name}' (known: exact, bfloat16, float32, reseed)")
    return variants


def machine(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "device": str(device),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def print_table(report: dict[str, Any]) -> None:
    """One row per run: seconds, speed-up over paper, fast / floor (mean; paired median against the floor
    in fast's precisions, the float32 floor and the per-mini-batch floor), Spearman against paper, memory."""
    head = (f"{'probe':13} {'run':15} {'s/embedding':>12} {'speedup':>8} {'/floor':>7} {'paired':>7} "
            f"{'/f32':>6} {'/minib':>7} {'spearman':>9} {'peak MiB':>9}")
    print(head)
    print("-" * len(head))

    def num(x: float | None, fmt: str = ".2f") -> str:
        return "" if x is None else format(x, fmt)

    for probe, r in report["probes"].items():
        for label, v in r["variants"].items():
            print(f"{probe:13} {label:15} {v['seconds_per_embedding']:12.3f} {v['speedup']:8.2f} "
                  f"{num(v.get('floor_ratio')):>7} {num(v.get('floor_ratio_paired_median')):>7} "
                  f"{num(v.get('floor_ratio_paired_median_float32')):>6} "
                  f"{num(v.get('minibatch_floor_ratio_paired_median')):>7} {num(v.get('spearman'), '.3f'):>9} "
                  f"{num(v.get('peak_memory_mib'), '.0f'):>9}")
        print(f"{probe:13} {'floor':15} {r['floor_seconds']:12.3f} {'':>8} {'1.00':>7} {'':>7} {'':>6} {'':>7} {'':>9} "
              f"{num(r['peak_memory_mib']['floor'], '.0f'):>9}")
        print(f"{probe:13} {'minibatch floor':15} {r['minibatch_floor_seconds']:12.3f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from accelerate import PartialState

    device = PartialState().device
    on_gpu = device.type == "cuda"
    config = load_config(args.config)
    base = Task2VecConfig.from_dict(config["task2vec"])
    sets = study.embedding_sets(config)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def build(probe: str) -> tuple[torch.nn.Module, Task2VecConfig, list[Variant], list[study.EmbeddingSet], int, int]:
        model, cfg = build_probe(probe, args.results, device, base, on_gpu, args.seed,
                                 batch_size=args.gpt2_batch_size, seq_len=args.gpt2_seq_len)
        if probe == "default":
            num_batches = args.num_batches or base.num_batches
            variants = make_variants(cfg, args.variants)
            probe_sets = sets
        else:
            num_batches = (args.tiny_num_batches if probe == "gpt2_50k_tiny" else args.gpt2_num_batches) or (
                2 if on_gpu else 1)
            variants = make_variants(cfg, args.gpt2_variants)
            probe_sets = sets[: args.gpt2_sets] if args.gpt2_sets else sets
        pad = model.config.pad_token_id if model.config.pad_token_id is not None else model.config.eos_token_id
        return model, cfg, variants, probe_sets, int(pad), num_batches

    if args.memory_child:
        model, cfg, variants, probe_sets, pad, _ = build(args.memory_child)
        print(json.dumps(measure_memory(model, first_batch(args, probe_sets, cfg, pad), variants, device)))
        return 0

    report: dict[str, Any] = {"machine": machine(device), "probes": {}}
    for probe in [x for x in args.probes.split(",") if x]:
        memory = memory_usage(args, probe, build, device) if args.memory else {}
        model, cfg, variants, probe_sets, pad, num_batches = build(probe)
        log(f"probe {probe}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
            f"{len(probe_sets)} sets x {num_batches} batches of {cfg.batch_size} x {cfg.seq_len}, "
            f"runs: {', '.join(v.label for v in variants)}; peak memory (MiB): "
            + ", ".join(f"{k} {v:.0f}" for k, v in memory.items() if v is not None))
        report["probes"][probe] = run_probe(
            probe, model, probe_sets, args.results, config, cfg, variants, pad, device, log, memory, num_batches)
        del model
    report["seconds_total"] = time.perf_counter() - started
    report["provenance"] = provenance(
        {"task2vec": base.to_dict(), "argv": sys.argv[1:] if argv is None else argv}, seed=args.seed)
    write_json(args.out, report)
    print_table(report)
    print(f"\nwritten {args.out} ({report['seconds_total']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
