"""One training run, in this process or under ``accelerate launch`` with N processes.

A :class:`TrainJob` says everything a run needs (where its tokens, tokenizer
and base come from, the token budget and optimiser settings, where the
checkpoint goes) as plain JSON-able values, so that the very same job can be
run here (:func:`run_train_job`) or handed to ``N`` worker processes::

    python -m accelerate.commands.launch --multi_gpu --num_processes N \\
        --module datalign.training.launch JOB.json

Every process builds the same model from the same seed and computes the same
chunks; :func:`datalign.training.causal_lm.train_causal_lm` splits each global batch
across the processes and averages their gradients, so 1 and N processes solve
the same optimisation problem. Only the main process writes the checkpoint.

On GPUs the processes talk over NCCL, one GPU each. Without CUDA they run on
the CPU and talk over gloo: ``accelerate`` has no multi-process CPU launcher
of its own (``--cpu`` starts a single process unless MPI is set up), so the
multi-GPU launcher (``torch.distributed.run`` underneath) is used with
``ACCELERATE_USE_CPU=1``, which makes every worker pick the CPU and gloo.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from datalign.core.errors import ConfigError, TrainingError

log = logging.getLogger(__name__)

# Lines of a failed launch's output repeated in the error (the full output is in the log).
_TAIL_LINES = 20
# How a worker reports a DatalignError (see main()).
_WORKER_ERROR = "datalign error (rank"


@dataclass(frozen=True)
class TrainJob:
    """One training run as JSON-able values.

    Exactly one of ``base`` (a checkpoint directory or hub name to fine-tune)
    and ``architecture`` (a from-scratch GPT-2, see
    :func:`datalign.lm.models.gpt2_config`) is set. ``tokens`` is a tokenized
    split (``.npz``), or a list of them mixed equally, whose chunks of
    ``seq_len`` tokens are drawn for ``token_budget`` tokens with ``seed``
    (:func:`datalign.lm.tokens.mixed_training_chunks`); ``out_dir`` receives the checkpoint
    with ``train_log.json`` (the training log plus ``record``).
    ``base_dtype`` (e.g. ``"bfloat16"``) casts a base's weights on load, for
    bases too large to train in float32.
    """

    run_name: str
    tokens: str | list[str]
    tokenizer: str
    out_dir: str
    seq_len: int
    token_budget: int
    batch_size: int
    lr: float
    seed: int
    base: str | None = None
    architecture: dict[str, Any] | None = None
    base_dtype: str | None = None
    weight_decay: float = 0.01
    warmup_frac: float = 0.05
    grad_clip: float = 1.0
    mixed_precision: str = "no"
    threads: int = 1
    record: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.base is None) == (self.architecture is None):
            raise ConfigError(
                f"training job '{self.run_name}': give a base model or an architecture, one of them"
            )

    def to_json(self) -> dict[str, Any]:
        """The job as a JSON-serialisable dict (:meth:`from_json` reads it back)."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrainJob:
        """Rebuild a job from :meth:`to_json` output; unknown keys are a ConfigError."""
        unknown = sorted(set(obj) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"training job: unknown key(s) {unknown}")
        return cls(**obj)


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def run_train_job(job: TrainJob) -> dict[str, Any]:
    """Train one model as ``job`` says and return its training record.

    Builds the model (fresh GPT-2 from ``architecture`` with ``seed``, or
    ``base`` loaded), takes :func:`datalign.lm.tokens.training_chunks` of the
    tokenized split, runs :func:`datalign.training.causal_lm.train_causal_lm`, and, on the
    main process only, saves the checkpoint with ``train_log.json`` =
    the training log's JSON plus ``job.record``. Called by every process of a
    multi-process launch; the record returned is the same on all of them.
    """
    from datalign.lm.models import build_gpt2, load_model, save_checkpoint
    from datalign.lm.tokenizer import load_tokenizer
    from datalign.lm.tokens import TokenizedSplit, mixed_training_chunks
    from datalign.training.causal_lm import train_causal_lm

    tokenizer = load_tokenizer(job.tokenizer)
    if job.architecture is not None:
        model = build_gpt2(job.architecture, vocab_size=len(tokenizer),
                           eos_id=tokenizer.eos_token_id, seed=job.seed)
    else:
        model = load_model(str(job.base), dtype=job.base_dtype)
    files = [job.tokens] if isinstance(job.tokens, str) else list(job.tokens)
    splits = [TokenizedSplit.load(f, name=f"{Path(f).parent.name}/{Path(f).stem}") for f in files]
    chunks = mixed_training_chunks(splits, job.seq_len, job.token_budget, job.seed)
    log.info("%s: %d chunks of %d tokens from %s", job.run_name, len(chunks), job.seq_len,
             ", ".join(s.name for s in splits))
    train_log = train_causal_lm(
        model, chunks, batch_size=job.batch_size, lr=job.lr, seed=job.seed,
        weight_decay=job.weight_decay, warmup_frac=job.warmup_frac, grad_clip=job.grad_clip,
        mixed_precision=job.mixed_precision, run_name=job.run_name,
    )
    record = train_log.to_json()
    record.update(job.record)
    if _is_main_process():
        save_checkpoint(model, tokenizer, job.out_dir, extra_files={"train_log.json": record})
    return record


def cuda_devices() -> int:
    """Number of CUDA devices this process sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def inference_device() -> Any:
    """The device a single-process job (evaluation, Task2Vec) should use: the first
    visible GPU (``cuda:0``, i.e. the one SLURM or ``CUDA_VISIBLE_DEVICES`` gave the
    job), else the CPU."""
    import torch

    return torch.device("cuda:0") if cuda_devices() else torch.device("cpu")


def launch_command(
    job_file: str | os.PathLike, num_processes: int, mixed_precision: str = "no"
) -> list[str]:
    """The ``accelerate launch`` command line that runs ``job_file`` on ``num_processes`` processes.

    ``--multi_gpu`` selects accelerate's torchrun-based launcher (on CPU too,
    see the module docstring); port 0 lets it pick a free rendezvous port, so
    concurrent jobs on one machine do not collide.
    """
    if num_processes < 2:
        raise ConfigError(f"launch_command needs num_processes >= 2, got {num_processes}")
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes", str(num_processes),
        "--num_machines", "1",
        "--mixed_precision", mixed_precision,
        "--dynamo_backend", "no",
        "--main_process_port", "0",
        "--module", "datalign.training.launch", str(job_file),
    ]


def launch_env(num_processes: int, threads: int, on_cpu: bool) -> dict[str, str]:
    """The environment of the launched processes.

    ``ACCELERATE_USE_CPU`` picks CPU + gloo; each process gets
    ``max(1, threads // num_processes)`` intra-op threads so that N processes
    use the job's ``threads`` cores, not N times as many; the library's
    ``src`` directory goes on ``PYTHONPATH`` so ``-m datalign.training.launch`` resolves
    to this checkout.
    """
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    env["OMP_NUM_THREADS"] = str(max(1, threads // num_processes))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if on_cpu:
        env["ACCELERATE_USE_CPU"] = "1"
    else:
        env.pop("ACCELERATE_USE_CPU", None)
    return env


def launch_train_job(
    job: TrainJob,
    num_processes: int = 1,
    *,
    on_cpu: bool | None = None,
    stream: IO[str] | None = None,
) -> dict[str, Any]:
    """Run ``job`` on ``num_processes`` processes; return the training record it saved.

    One process: :func:`run_train_job` here. N > 1: ``accelerate launch``
    (:func:`launch_command`) on the GPUs, one each, or on the CPU when
    ``on_cpu`` (default: when no CUDA device is visible). Fewer visible GPUs
    than processes is a :class:`ConfigError`. The workers' output is copied
    line by line to ``stream`` (default ``sys.stderr``, i.e. the rule's log);
    a failed launch is a :class:`TrainingError` quoting its last lines, and
    leaves no checkpoint behind (only the main process writes one, atomically,
    after training).
    """
    if num_processes < 1:
        raise ConfigError(f"training '{job.run_name}': num_processes must be >= 1, got {num_processes}")
    if num_processes == 1:
        return run_train_job(job)
    gpus = cuda_devices()
    if on_cpu is None:
        on_cpu = gpus == 0
    if not on_cpu and gpus < num_processes:
        raise ConfigError(
            f"training '{job.run_name}': num_processes = {num_processes} but only {gpus} GPU(s) "
            f"are visible (one process per GPU); lower num_processes or ask for more GPUs"
        )
    out = stream if stream is not None else sys.stderr
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="datalign-launch-") as tmp:
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(job.to_json()))
        cmd = launch_command(job_file, num_processes, job.mixed_precision)
        log.info("launching %s on %d %s processes: %s", job.run_name, num_processes,
                 "CPU (gloo)" if on_cpu else "GPU (nccl)", " ".join(cmd))
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        worker_errors: list[str] = []
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=launch_env(num_processes, job.threads, on_cpu),
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                tail.append(line.rstrip())
                if line.startswith(_WORKER_ERROR):
                    worker_errors.append(line.strip())
            code = proc.wait()
    if code != 0:
        # A worker's own one-line error says more than the launcher's report around it.
        why = worker_errors[0] if worker_errors else " | ".join(t for t in tail if t)[-1500:]
        raise TrainingError(
            f"training '{job.run_name}' on {num_processes} processes failed (exit code {code}): {why}"
        )
    log_file = Path(job.out_dir) / "train_log.json"
    # A log older than this launch is a previous run's, not this one's.
    if not log_file.is_file() or log_file.stat().st_mtime < started - 1:
        raise TrainingError(f"training '{job.run_name}' ended without writing {log_file}")
    return json.loads(log_file.read_text())


def main(argv: Sequence[str] | None = None) -> int:
    """Worker entry point: ``python -m datalign.training.launch JOB.json`` runs one process's share."""
    from datalign.core.errors import DatalignError
    from datalign.core.runner import configure_logging

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m datalign.training.launch JOB.json", file=sys.stderr)
        return 2
    configure_logging(None)
    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        # One copy of the progress log is enough; the other ranks report only problems.
        logging.getLogger().setLevel(logging.WARNING)
    try:
        job = TrainJob.from_json(json.loads(Path(args[0]).read_text()))
        import torch

        # The N processes share the job's cores (WORLD_SIZE is set by the launcher).
        world = max(1, int(os.environ.get("WORLD_SIZE", "1")))
        torch.set_num_threads(max(1, job.threads // world))
        run_train_job(job)
    except DatalignError as err:
        print(f"datalign error (rank {rank}): {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
