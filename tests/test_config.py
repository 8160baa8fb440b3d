"""Workflow configs: bad values and bad YAML are refused before any job starts, naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from camrepro import config
from camrepro.cli import main
from camrepro.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
BASE = (ROOT / "config" / "test.yaml").read_text()


def _config(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _replace(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new)


def test_the_base_config_is_valid(tmp_path):
    assert load_config(_config(tmp_path, BASE))["seeds"] == [0]


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("seeds: [0]", "seeds: [0, 1, 0]", r"seeds: \[0, 1, 0\] has non-unique elements"),
        ("seeds: [0]", "seeds: [4294967296]", r"seeds\.0: 4294967296 is greater than the maximum"),
        ("seeds: [0]", "seeds: [100000000000000000000]", r"seeds\.0: 100000000000000000000 is greater"),
        ("preset: synthetic-cub, seed: 0", "preset: synthetic-cub, seed: 4294967296",
         r"datasets\.synthetic-cub\.synthetic\.seed: 4294967296 is greater than the maximum"),
        ("cub: {epochs: 2, batch_size: 8}", "cub: {epochs: 2, batch_size: 8, lr: .inf}",
         r"training\.cub\.lr: inf is not a finite number"),
        ("width: 0.0625", "width: .nan", r"models\.width: nan is not a finite number"),
        ("imagenet: {epochs: 1, batch_size: 8}", "imagenet: {epochs: 1, batch_size: 8, weight_decay: .inf}",
         r"training\.imagenet\.weight_decay: inf is not a finite number"),
        ("imagenet: {epochs: 1, batch_size: 8}", "imagenet: {epochs: 1, batch_size: 8, max_steps: 0}",
         r"training\.imagenet\.max_steps: 0 is less than the minimum of 1"),
        ("preset: synthetic-cub, seed: 0, scale: 0.1}}", "preset: synthetic-cub, seed: 0, scale: {training: 2}}}",
         r"datasets\.synthetic-cub\.synthetic\.scale: Additional properties are not allowed \('training' was "
         r"unexpected\)"),
        ("preset: synthetic-cub, seed: 0, scale: 0.1}}", "preset: synthetic-cub, seed: 0, scale: {train: 0}}}",
         r"datasets\.synthetic-cub\.synthetic\.scale\.train: 0 is less than or equal to the minimum of 0"),
        ("preset: synthetic-cub, seed: 0, scale: 0.1}}", "preset: synthetic-cub, seed: 0, scale: 0.1}, per_class: 2}",
         r"datasets\.synthetic-cub\.per_class: only a downloaded dataset \(source\) takes it"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_naming_the_file_and_key(tmp_path, old, new, needle):
    path = _config(tmp_path, _replace(old, new))
    with pytest.raises(ConfigError, match=rf"^{path}: {needle}"):
        load_config(path)


def test_a_data_root_that_is_a_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("data").write_text("not a folder")
    path = _config(tmp_path, BASE)
    with pytest.raises(ConfigError, match=rf"{path}: data_root: data exists but is not a folder"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        (BASE + "seeds: [1]\n", "seeds", BASE.count("\n") + 1, BASE.splitlines().index("seeds: [0]") + 1),
        (_replace("  cub: {epochs: 2, batch_size: 8}", "  cub: {epochs: 2, batch_size: 8, epochs: 3}"),
         "epochs", BASE.splitlines().index("  cub: {epochs: 2, batch_size: 8}") + 1, None),
    ],
)  # fmt: skip
def test_a_duplicate_key_names_the_file_the_key_and_its_line(tmp_path, text, key, line, first):
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and f"duplicate key {key!r}" in message
    assert f'"{path}", line {line},' in message
    if first is not None:
        assert f"first on line {first}" in message


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = _config(tmp_path, "base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  b: 3\n")
    assert config.load_yaml(path) == {"base": {"a": 1, "b": 2}, "other": {"a": 1, "b": 3}}


def test_a_non_utf8_config_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("# CI's", "# Caf\xe9: CI's").encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{path} is not UTF-8 text \(byte 0xe9 at offset 5\)"):
        load_config(path)


def test_workflow_check_exits_2_naming_the_duplicate(tmp_path, capsys):
    path = _config(tmp_path, BASE + "threads: 2\n")
    with pytest.raises(SystemExit) as info:
        main(["workflow", "check", "--config", str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("camrepro: error: ") and "duplicate key 'threads'" in err and str(path) in err


def test_config_readme_is_what_the_schema_generates():
    from pathlib import Path

    from camrepro.configdocs import config_docs

    committed = (Path(__file__).resolve().parents[1] / "config" / "README.md").read_text()
    assert committed == config_docs(), "run `camrepro workflow config-docs` and commit config/README.md"
    for key in ("`seeds`", "`training.cub.epochs`", "`datasets.<name>.synthetic.preset`", "`roles.transfer`"):
        assert key in committed
