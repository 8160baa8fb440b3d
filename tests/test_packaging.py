"""Packaging contracts: one set of pins everywhere, the CLI entry points, the README commands."""

from __future__ import annotations

import re
import shutil
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


def _subcommands(*args: str) -> set[str]:
    """The subcommands argparse lists (one per line, indented by four) in `camrepro ... --help`."""
    res = subprocess.run([sys.executable, "-m", "camrepro", *args, "--help"], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return set(re.findall(r"^    ([a-z][a-z0-9-]*)(?:\s|$)", res.stdout, flags=re.MULTILINE))


def test_cli_help_lists_the_subcommands():
    assert {"data", "train", "extract", "evaluate", "evaluate-scoremaps", "svm", "tables", "report",
            "weights", "pretrain", "workflow"} <= _subcommands()  # fmt: skip
    assert _subcommands("data") >= {"synthetic", "presets", "sources", "download", "prepare", "verify"}


def test_an_installed_wheel_renders_the_report(tmp_path):
    """The package as a user installs it, not this checkout: the report template must ship inside."""
    wheel_dir, target, source = tmp_path / "wheel", tmp_path / "site", tmp_path / "source"
    source.mkdir()  # a copy: building writes build/ and *.egg-info/ beside the sources
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheel_dir), str(source)], check=True, capture_output=True)  # fmt: skip
    wheel = next(wheel_dir.glob("camrepro-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)  # fmt: skip
    config = {"scale": "synthetic", "datasets": {"cub": {"synthetic": {"preset": "synthetic-cub", "seed": 0}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    script = (
        "import sys, yaml, camrepro, camrepro.report as r, camrepro.plan as p\n"
        "print(camrepro.__file__)\n"
        "c = yaml.safe_load(open('config.yaml'))\n"
        "r.render(p.build_plan(c), c, 'config.yaml', 'report.html')\n"
    )
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target)})  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.splitlines()[0].startswith(str(target))  # the installed copy ran
    assert "</html>" in (tmp_path / "report.html").read_text()


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
