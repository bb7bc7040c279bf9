"""The studies, one package each, and what they share: their registry, the
composed config schema, the pipeline table.

A study is a package ``datalign.studies.<name>`` whose ``study`` module defines
``STUDY``, a :class:`Study`: its schema (package data), its rule files, its
artifact families (the DVC stages), the files ``rule all`` needs from it, and
the text datasets it needs prepared. A config enables studies by name
(``studies: [alignment, ...]``). Nothing outside ``datalign.studies`` imports
from it, except the command line and the workflow, which sit above the library.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datalign.core.config import SHARED_SCHEMA, load_yaml, require_registered, validate_config
from datalign.core.errors import ConfigError
from datalign.core.pipeline import Family

#: Every study, in the order their rules are included and their stages listed.
STUDY_NAMES = ("alignment", "efficient_alignment", "spectral_imbalance")


@dataclass(frozen=True)
class Study:
    """What the workflow and the DVC table need to know of one study.

    ``rule_files`` are relative to the repository root and included in order;
    ``families`` its DVC stages (after the shared ones); ``family_targets(name,
    config)`` the files of one family; ``final_targets(config)`` what ``rule
    all`` builds for it; ``text_datasets(config)`` the registered text datasets
    it reads (their mixture components are added by the caller);
    ``tokenized(config)`` the (dataset, split) token files it reads;
    ``check(config)`` raises a one-line :class:`ConfigError` for what the schema
    cannot express (references between keys, sizes known from the config);
    ``needs_probe(config)`` whether it reads the shared probe; ``plan(config)``
    what it derives from the config that its DVC stages depend on (written to
    study.yaml under ``plan``); ``generated_properties()`` config keys whose
    schema a library package generates (the Task2Vec block, from its estimators);
    ``dvc_metrics(config)`` / ``dvc_plots(config)`` the entries of ``dvc.yaml``'s
    top-level ``metrics`` and ``plots`` (``dvc metrics show``, ``dvc plots show``).
    """

    name: str
    schema: Path
    rule_files: tuple[str, ...]
    families: tuple[Family, ...]
    family_targets: Callable[[str, dict[str, Any]], list[str]]
    final_targets: Callable[[dict[str, Any]], list[str]]
    text_datasets: Callable[[dict[str, Any]], list[str]]
    tokenized: Callable[[dict[str, Any]], list[tuple[str, str]]] = field(default=lambda config: [])
    check: Callable[[dict[str, Any]], None] = field(default=lambda config: None)
    needs_probe: Callable[[dict[str, Any]], bool] = field(default=lambda config: False)
    plan: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda config: {})
    generated_properties: Callable[[], dict[str, Any]] = field(default=lambda: {})
    dvc_metrics: Callable[[dict[str, Any]], list[str]] = field(default=lambda config: [])
    dvc_plots: Callable[[dict[str, Any]], list[Any]] = field(default=lambda config: [])


def get_study(name: str) -> Study:
    """The study registered as ``name`` (:class:`ConfigError` if none)."""
    if name not in STUDY_NAMES:
        raise ConfigError(f"config key 'studies': unknown study '{name}' (known: {', '.join(STUDY_NAMES)})")
    return importlib.import_module(f"datalign.studies.{name}.study").STUDY


def enabled_studies(config: dict[str, Any]) -> list[Study]:
    """The studies a (validated) config enables, in :data:`STUDY_NAMES` order."""
    wanted = config.get("studies", ["alignment"])
    return [get_study(n) for n in STUDY_NAMES if n in wanted]


def config_schema(names: Sequence[str] = STUDY_NAMES, required_for: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON schema of a whole config: the shared keys plus every study's keys.

    Every study's keys are known (a config may keep a disabled study's section);
    the keys a study requires are required only for the studies in
    ``required_for``.
    """
    schema = load_yaml(SHARED_SCHEMA)
    schema["properties"]["studies"]["items"]["enum"] = list(STUDY_NAMES)
    for name in names:
        study = get_study(name)
        part = load_yaml(study.schema)
        properties = {**part.get("properties", {}), **study.generated_properties()}
        for key, sub in properties.items():
            if key in schema["properties"]:
                raise ConfigError(f"study '{name}' redefines the config key '{key}'")
            schema["properties"][key] = sub
        schema.setdefault("$defs", {}).update(part.get("$defs", {}))
        if name in required_for:
            schema["required"] = sorted({*schema.get("required", []), *part.get("required", [])})
    return schema


def validate_study_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate a whole config in place: schema (defaults filled), shared and study references.

    Raises :class:`ConfigError` with a one-line message naming the key.
    """
    wanted = config.get("studies", ["alignment"])
    validate_config(config, config_schema(required_for=wanted if isinstance(wanted, list) else ()))
    expand_study_sets(config)
    for study in enabled_studies(config):
        study.check(config)
    return config


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Load a YAML config file and validate it (see :func:`validate_study_config`)."""
    return validate_study_config(load_yaml(path))


#: The value of ``tokenizer.train_on`` / ``probe.pretrain.datasets`` that names the study's own sets.
STUDY_SETS = "study_sets"


def study_sets(config: dict[str, Any]) -> list[str]:
    """Every text dataset the enabled studies train or evaluate on, each mixture replaced
    by its components (recursively, positive shares), in registry order."""
    wanted: set[str] = set()
    for study in enabled_studies(config):
        wanted.update(study.text_datasets(config))
    pure: set[str] = set()
    frontier = list(wanted)
    while frontier:
        name = frontier.pop()
        spec = config["datasets"].get(name)
        if spec is None:  # unregistered: the study's check names it in one line
            continue
        if spec["source"] == "mixture":
            frontier += [c for c, share in spec["components"].items() if share > 0]
        else:
            pure.add(name)
    return [name for name in config["datasets"] if name in pure]


def expand_study_sets(config: dict[str, Any]) -> None:
    """Replace ``study_sets`` in ``tokenizer.train_on`` and ``probe.pretrain.datasets`` by
    :func:`study_sets` (in place), so that every rule sees, and reruns on, the actual list."""
    tokenizer, probe = config.get("tokenizer") or {}, config.get("probe") or {}
    for key, holder, field_name in (
        ("tokenizer.train_on", tokenizer, "train_on"),
        ("probe.pretrain.datasets", probe.get("pretrain") or {}, "datasets"),
    ):
        if holder.get(field_name) == STUDY_SETS:
            names = study_sets(config)
            if not names:
                raise ConfigError(
                    f"config key '{key}': study_sets names no dataset (no enabled study trains or "
                    "evaluates on a registered text dataset); list the datasets instead"
                )
            holder[field_name] = names


def mixture_closure(config: dict[str, Any], names: Sequence[str]) -> list[str]:
    """``names`` plus every mixture component they need, recursively, sorted."""
    needed = set(names)
    frontier = list(needed)
    while frontier:
        spec = config["datasets"][frontier.pop()]
        for comp in spec.get("components", {}) if spec["source"] == "mixture" else {}:
            if comp not in needed:
                needed.add(comp)
                frontier.append(comp)
    return sorted(needed)


def lm_datasets(config: dict[str, Any]) -> list[str]:
    """Datasets the shared language-model layer reads: the BPE's and the probe's training sets."""
    names: list[str] = []
    tokenizer, probe = config.get("tokenizer"), config.get("probe")
    if tokenizer and tokenizer["kind"] == "bpe":
        names += tokenizer["train_on"]
    if probe and probe.get("pretrained") is None and any(s.needs_probe(config) for s in enabled_studies(config)):
        names += probe["pretrain"]["datasets"]
    return names


def datasets_used(config: dict[str, Any]) -> list[str]:
    """Every registered text dataset the enabled studies need prepared (components included)."""
    names = list(lm_datasets(config))
    for study in enabled_studies(config):
        names += study.text_datasets(config)
    return mixture_closure(config, names)


__all__ = [
    "STUDY_NAMES",
    "Study",
    "config_schema",
    "datasets_used",
    "enabled_studies",
    "get_study",
    "load_config",
    "mixture_closure",
    "require_registered",
    "validate_study_config",
]
