"""One training run, in this process or under ``accelerate launch`` with N processes.

A :class:`TrainJob` says everything a run needs (where its tokens, tokenizer
and base come from, the token budget and optimiser settings, where the
checkpoint goes) as plain JSON-able values, so that the very same job can be
run here (:func:`run_train_job`) or handed to ``N`` worker processes::

    python -m accelerate.commands.launch --multi_gpu --num_processes N \\
        --module datalign.training.launch JOB.json

A job names its training objective (``objective``, default ``"causal_lm"``);
:func:`run_train_job` runs the function registered under that name
(:mod:`datalign.training.objectives`) on the job's JSON. Every process builds
the same model from the same seed and computes the same data; the objective
(e.g. :func:`datalign.training.causal_lm.train_causal_lm`) splits each global
batch across the processes and averages their gradients, so 1 and N processes
solve the same optimisation problem. Only the main process writes the checkpoint.

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
from datalign.lm.devices import cuda_devices
from datalign.training.objectives import objective_runner, run_objective

__all__ = ["TrainJob", "launch_command", "launch_env", "launch_train_job", "main", "run_train_job"]

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
    bases too large to train in float32. ``objective`` names the registered
    training objective that runs the job (:mod:`datalign.training.objectives`;
    ``"causal_lm"``: next-token cross-entropy on the token chunks), and
    ``options`` holds that objective's own settings (JSON-able; the causal-LM
    objective takes none).
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
    objective: str = "causal_lm"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.base is None) == (self.architecture is None):
            raise ConfigError(
                f"training job '{self.run_name}': give a base model or an architecture, one of them"
            )
        if not isinstance(self.objective, str) or not self.objective:
            raise ConfigError(f"training job '{self.run_name}': objective must be a name, "
                              f"got {self.objective!r}")
        if not isinstance(self.options, dict):
            raise ConfigError(f"training job '{self.run_name}': options must be a mapping, "
                              f"got {type(self.options).__name__}")

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


def run_train_job(job: TrainJob) -> dict[str, Any]:
    """Train one model as ``job`` says and return its training record.

    Runs the objective registered as ``job.objective``
    (:func:`datalign.training.objectives.run_objective`) on ``job.to_json()``
    and ``job.out_dir``: it trains, saves the checkpoint with
    ``train_log.json`` = the training log's JSON plus ``job.record`` on the
    main process only, and returns that record. Called by every process of a
    multi-process launch; the record returned is the same on all of them. An
    unknown objective is a :class:`ConfigError`.
    """
    return run_objective(job.to_json(), job.out_dir)


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
    objective_runner(job.objective)  # an unknown objective fails here, before any launch
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
