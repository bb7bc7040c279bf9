"""The ``task2vec`` block of the config: one definition, checked in Python and written out as JSON schema.

The keys every estimator shares are the :func:`~datalign.task2vec.options.option`
fields of :class:`Task2VecConfig` (type, bounds, default, description); an
estimator's own keys are its options class (see
:mod:`datalign.task2vec.registry`) and sit in a sub-mapping named after it::

    task2vec:
      estimator: fast
      seq_len: 64
      fast: {head_fit: frozen, precision: auto, retain_graph: true}

:meth:`Task2VecConfig.from_dict` is the typed entry point (one-line
:class:`ConfigError` naming the key); :func:`task2vec_schema` generates the
block's JSON schema from the same definitions, for the study's config schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from datalign.core.errors import ConfigError
from datalign.task2vec.options import Options, option, option_specs, options_schema
from datalign.task2vec.registry import available_estimators, estimator_options, estimator_summary

PARAMETER_SETS = ("all_but_head", "last_k_blocks")
DISTANCE_KINDS = ("normalized_cosine", "cosine")


@dataclass(frozen=True)
class Task2VecConfig(Options):
    """How Task2Vec embeddings are computed (see PAPERS.md part 1).

    ``batch_size``, ``seq_len`` and ``num_batches`` say how the caller draws
    batches (``datalign.lm.tokens.sample_segment_batches``); the rest say what is
    done with each batch. Defaults are the paper's values where it has one.
    ``options`` maps an estimator's name to its options (an instance of its
    options class, or a mapping checked into one); the chosen estimator's are
    always there (defaults if not given): read them with :meth:`options_for`.
    """

    section = "task2vec"

    estimator: str = option(
        "paper", "which estimator computes the Fisher of each batch", enum=available_estimators)
    batch_size: int = option(32, "sequences per batch (paper 512)", minimum=1)
    seq_len: int = option(64, "tokens per sequence (paper 128)", minimum=4)
    num_batches: int = option(8, "batches (embeddings) per dataset", minimum=2)
    head_epochs: int = option(5, "epochs of head fine-tuning per batch", minimum=0)
    head_lr: float = option(5.0e-5, "learning rate of head fine-tuning (AdamW)", exclusive_minimum=0)
    head_minibatch: int = option(
        8, "sequences per head fine-tuning and Fisher mini-batch", minimum=1)
    weight_decay: float = option(1.0e-4, "AdamW weight decay of head fine-tuning", minimum=0)
    adam_eps: float = option(1.0e-8, "AdamW epsilon of head fine-tuning", exclusive_minimum=0)
    parameters: str = option(
        "all_but_head", "which weights enter the embedding", enum=PARAMETER_SETS)
    last_k: int = option(1, "blocks used with parameters: last_k_blocks", minimum=1)
    distance: str = option(
        "normalized_cosine", "distance between embeddings", enum=DISTANCE_KINDS)
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        super().__post_init__()  # the common keys
        given = self.options
        if not isinstance(given, Mapping):
            raise ConfigError(f"task2vec: options must map estimator names to options, got {given!r}")
        checked: dict[str, Options] = {}
        for name, value in given.items():
            cls = _options_class(name)
            if cls is None:
                raise ConfigError(f"task2vec.{name}: estimator '{name}' has no options")
            checked[name] = value if isinstance(value, cls) else cls.from_dict(value, f"task2vec.{name}")
        chosen = estimator_options(self.estimator)
        if chosen is not None and self.estimator not in checked:
            checked[self.estimator] = chosen()
        object.__setattr__(self, "options", dict(sorted(checked.items())))

    def options_for(self, name: str) -> Any:
        """The options of estimator ``name``: those configured, else its defaults."""
        cls = estimator_options(name)
        if cls is None:
            raise ConfigError(f"task2vec.{name}: estimator '{name}' has no options")
        opts = self.options.get(name)
        return cls() if opts is None else opts

    def with_options(self, name: str, **changes: Any) -> Task2VecConfig:
        """This config with some options of estimator ``name`` changed, the others kept.

        Checked as any config: an unknown option or a bad value is a :class:`ConfigError`.
        """
        merged = {**self.options_for(name).to_dict(), **changes}
        return dataclasses.replace(self, options={**self.options, name: merged})

    @classmethod
    def from_dict(cls, block: Any, path: str | None = None) -> Task2VecConfig:
        """Build from the config's ``task2vec`` mapping; unknown keys are a :class:`ConfigError`."""
        block = {} if block is None else block
        if not isinstance(block, Mapping):
            raise ConfigError(f"task2vec: must be a mapping, got {block!r}")
        common = {spec.name for spec in option_specs(cls)}
        sections = _sections()
        unknown = sorted(set(block) - common - sections, key=str)
        if unknown:
            raise ConfigError(
                f"task2vec: unknown key(s) {', '.join(map(str, unknown))} "
                f"(known: {', '.join(sorted(common | sections))})"
            )
        values = {k: v for k, v in block.items() if k in common}
        return cls(**values, options={k: v for k, v in block.items() if k in sections})

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict, as the config writes it (for metadata and provenance)."""
        out = {spec.name: getattr(self, spec.name) for spec in option_specs(type(self))}
        out.update({name: opts.to_dict() for name, opts in self.options.items()})
        return out


def _options_class(name: Any) -> type | None:
    if not isinstance(name, str) or name not in available_estimators():
        raise ConfigError(
            f"task2vec: unknown estimator options {name!r} (estimators: {', '.join(available_estimators())})"
        )
    return estimator_options(name)


def _sections() -> set[str]:
    """The estimators with options of their own: the sub-mappings the block may hold."""
    common = {f.name for f in dataclasses.fields(Task2VecConfig)}
    out = set()
    for name in available_estimators():
        if estimator_options(name) is not None:
            if name in common:
                raise ConfigError(f"task2vec: estimator '{name}' has options and the name of a common key")
            out.add(name)
    return out


def task2vec_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of the ``task2vec`` block, generated.

    Every common key of :class:`Task2VecConfig` (type, bounds or allowed
    values, default, description) and one sub-mapping per registered estimator
    with options (``fast: {...}``, each key likewise, no default for the
    sub-mapping itself, so configs that do not use it stay as written). It
    accepts exactly the blocks :meth:`Task2VecConfig.from_dict` accepts
    (non-finite numbers aside, see :mod:`datalign.task2vec.options`); the
    study's config schema embeds it under ``task2vec``.
    """
    schema = options_schema(Task2VecConfig, "Task2Vec embeddings, one per batch of sequences.")
    props = schema["properties"]
    props["estimator"]["description"] += " (" + "; ".join(
        f"{name}: {estimator_summary(name).rstrip('.')}" for name in available_estimators()) + ")"
    for name in sorted(_sections()):
        cls = estimator_options(name)
        assert cls is not None
        props[name] = options_schema(cls, f"options of the {name} estimator (read when estimator: {name})")
    return schema
