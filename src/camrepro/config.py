"""Workflow configs: load and validate before any job starts.

The JSON schema (`schemas/config.schema.yaml`) catches unknown keys and wrong types; the checks
here catch what a schema cannot: roles naming datasets that are not configured, unknown synthetic
presets or real sources, experiments that do not exist.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from camrepro.errors import CamreproError


class ConfigError(CamreproError):
    """A workflow config is invalid."""


def schema() -> dict:
    return yaml.safe_load(resources.files("camrepro").joinpath("schemas/config.schema.yaml").read_text())


def validate_config(config: dict, name: str = "config") -> dict:
    """Raise ConfigError naming the config and the offending key; return the config."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ConfigError(f"{name}: {where}: {e.message}{more}")
    from camrepro.data.sources import SOURCES
    from camrepro.data.synthetic import PRESETS
    from camrepro.plan import EXPERIMENTS, SVM_EXPERIMENTS

    for ds, spec in config["datasets"].items():
        if "synthetic" in spec and spec["synthetic"]["preset"] not in PRESETS:
            raise ConfigError(f"{name}: datasets.{ds}: unknown preset {spec['synthetic']['preset']!r}; "
                              f"known: {', '.join(PRESETS)}")  # fmt: skip
        if "source" in spec and spec["source"] not in SOURCES:
            raise ConfigError(
                f"{name}: datasets.{ds}: unknown source {spec['source']!r}; known: {', '.join(SOURCES)}"
            )
    roles = dict(config.get("roles", {}))
    transfer = roles.pop("transfer", {})
    for role, ds in [*roles.items(), *((f"transfer.{k}", v) for k, v in transfer.items())]:
        if ds not in config["datasets"]:
            raise ConfigError(f"{name}: roles.{role}: dataset {ds!r} is not configured under datasets "
                              f"({', '.join(config['datasets'])})")  # fmt: skip
    known = [*EXPERIMENTS, *SVM_EXPERIMENTS]
    for exp in config.get("experiments", []):
        if exp not in known:
            raise ConfigError(f"{name}: experiments: unknown {exp!r}; known: {', '.join(known)}")
    return config


def load_config(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found; pass an existing config (config/config.yaml is the default).")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level.")
    return validate_config(config, str(path))
