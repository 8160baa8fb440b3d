"""Packaging contracts: one set of pins everywhere, the CLI entry points, the README commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)")


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if m := PIN.match(line.strip()):
            out[m.group(1).lower()] = m.group(2)
    return out


def test_environment_yml_matches_pip_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {}
    for line in pip_section:
        m = PIN.match(line)
        assert m, f"environment.yml pip entry {line!r} is not an exact pin"
        conda_pins[m.group(1).lower()] = m.group(2)
    pip_pins = _pins(ROOT / "requirements.txt") | _pins(ROOT / "requirements-dev.txt")
    assert conda_pins == pip_pins


def test_lock_file_holds_every_direct_pin_at_the_same_version():
    lock = _pins(ROOT / "requirements.lock")
    direct = _pins(ROOT / "requirements.txt") | _pins(ROOT / "requirements-dev.txt")
    assert {k: lock.get(k) for k in direct} == direct


def test_torch_and_torchvision_are_a_matched_pair():
    pins = _pins(ROOT / "requirements.txt")
    torch_minor = int(pins["torch"].split(".")[1])
    vision_minor = int(pins["torchvision"].split(".")[1])
    assert vision_minor == torch_minor + 15  # torchvision 0.(N+15) is built against torch 2.N


def test_cli_help_lists_the_subcommands():
    res = subprocess.run(
        [sys.executable, "-m", "camrepro", "--help"], capture_output=True, text=True, check=True
    )
    assert "data" in res.stdout
    res = subprocess.run(
        [sys.executable, "-m", "camrepro", "data", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for action in ("synthetic", "presets", "sources", "download", "prepare", "verify"):
        assert action in res.stdout


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:15])
    assert "python3 dev.py demo" in head and "python3 dev.py test" in head
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text()


def test_code_is_ruff_clean():
    res = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "bench", "dev.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout[-3000:]
