"""Workflow configs: load and validate before any job starts.

The JSON schema (`schemas/config.schema.yaml`) catches unknown keys, wrong types, duplicate or
out-of-range seeds; the checks here catch what a schema cannot: non-finite numbers (JSON schema
compares NaN with nothing, so `.nan` passes every bound), a data_root that is a file, roles naming
datasets that are not configured, unknown synthetic presets or real sources, experiments that do
not exist. `load_yaml` is the one reader of YAML a user writes (configs, `train --config`): it
refuses duplicate keys, which plain YAML loaders silently resolve to the last value.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from camrepro.errors import CamreproError


class ConfigError(CamreproError):
    """A workflow config is invalid."""


MAX_SEED = 2**32 - 1  # numpy's legacy seeding (RandomState) takes 0..2**32-1; the schema says the same


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (merge keys `<<` may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = key in first
            except TypeError:  # unhashable key: SafeLoader's own error says so
                continue
            if seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first on line {first[key] + 1}); keep one of them",
                    key_node.start_mark,
                )  # fmt: skip
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, name: str) -> object:
    """Parse YAML `text` with `UniqueKeyLoader`; errors give `name` with line and column."""
    loader = UniqueKeyLoader(text)
    loader.name = name  # shown in every error mark instead of "<unicode string>"
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name} is not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def load_yaml(path: str | os.PathLike) -> object:
    """Read a user's YAML file: UTF-8, no duplicate keys; ConfigError naming the file otherwise."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8."
        ) from exc
    return parse_yaml(text, str(path))


def _non_finite(value: object, where: str = "") -> tuple[str, float] | None:
    """(dotted key, value) of the first NaN or infinite number in `value`, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "(top level)", value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def schema() -> dict:
    return yaml.safe_load(resources.files("camrepro").joinpath("schemas/config.schema.yaml").read_text())


def validate_config(config: dict, name: str = "config") -> dict:
    """Raise ConfigError naming the config and the offending key; return the config."""
    bad = _non_finite(config)
    if bad is not None:
        raise ConfigError(f"{name}: {bad[0]}: {bad[1]} is not a finite number; give a real value.")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ConfigError(f"{name}: {where}: {e.message}{more}")
    data_root = Path(config.get("data_root", "data"))
    if data_root.exists() and not data_root.is_dir():
        raise ConfigError(f"{name}: data_root: {data_root} exists but is not a folder; "
                          "point data_root at a folder (it is created if missing).")  # fmt: skip
    from camrepro.data.sources import SOURCES
    from camrepro.data.synthetic import PRESETS
    from camrepro.plan import experiment_names

    for ds, spec in config["datasets"].items():
        if "synthetic" in spec and spec["synthetic"]["preset"] not in PRESETS:
            raise ConfigError(f"{name}: datasets.{ds}: unknown preset {spec['synthetic']['preset']!r}; "
                              f"known: {', '.join(PRESETS)}")  # fmt: skip
        if "per_class" in spec and "source" not in spec:
            raise ConfigError(f"{name}: datasets.{ds}.per_class: only a downloaded dataset (source) takes "
                              "it; a synthetic one is sized by its scale.")  # fmt: skip
        if "val_blacklist" in spec and spec.get("source") != "imagenet":
            raise ConfigError(f"{name}: datasets.{ds}.val_blacklist: only an ImageNet dataset (source: "
                              "imagenet) has the devkit's val blacklist.")  # fmt: skip
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
    known = experiment_names()
    for exp in config.get("experiments", []):
        if exp not in known:
            raise ConfigError(f"{name}: experiments: unknown {exp!r}; known: {', '.join(known)}")
    return config


def load_config(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found; pass an existing config (config/config.yaml is the default).")
    config = load_yaml(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level.")
    return validate_config(config, str(path))
