#!/usr/bin/env python3
"""Set-up-included entry points: `python3 dev.py demo` and `python3 dev.py test`.

Needs nothing but python3 (>= 3.11). It creates `.venv/` on first use, installs the exact
pinned set (`requirements.lock`) plus this package in editable mode, and reinstalls only when
the lock file or pyproject.toml changes (a hash stamp in the venv records what was installed).
The install runs through uv (pinned below, fetched by pip from the same package sources pip is
configured with), which installs the lock several times faster than pip (bench/README.md,
"Set-up"); where uv cannot be had or fails, pip installs it as before.

    python3 dev.py demo [snakemake args...]   run the workflow on the embedded synthetic benchmark
    python3 dev.py test [pytest args...]      run the test suite
    python3 dev.py setup                      only create/refresh the environment
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("CAMREPRO_VENV", ROOT / ".venv"))
STAMP = VENV / ".camrepro-installed"
LOCK_INPUTS = ("requirements.lock", "pyproject.toml")
REPORT = ROOT / "reports" / "replication.html"
UV = "uv==0.13.10"  # the installer; a set-up tool, not a dependency of the project
# pip options that name where packages come from, and uv's flag for each: uv reads no pip.conf.
PIP_SOURCES = {"index-url": "--index-url", "extra-index-url": "--extra-index-url",
               "find-links": "--find-links", "trusted-host": "--allow-insecure-host"}  # fmt: skip


def _bin(name: str) -> Path:
    sub = "Scripts" if os.name == "nt" else "bin"
    return VENV / sub / name


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in LOCK_INPUTS:
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def _env() -> dict[str, str]:
    """The environment with the venv first on PATH (workflow rules call `camrepro`)."""
    env = dict(os.environ)
    env["PATH"] = str(_bin("python").parent) + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(VENV)
    return env


def _call(cmd: list[str | os.PathLike], env: dict[str, str] | None = None, **kw) -> int:
    """Run `cmd`, echoed, with the venv first on PATH (or `env`); its exit status."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], env=env or _env(), **kw)


def _run(cmd: list[str | os.PathLike], **kw) -> None:
    rc = _call(cmd, **kw)
    if rc:
        sys.exit(rc)


def setup() -> None:
    """Create the virtual environment and install the pinned dependencies if needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under whatever python3 is
        sys.exit(f"camrepro needs Python >= 3.11; this is {sys.version.split()[0]}.")
    want = _fingerprint()
    if STAMP.exists() and STAMP.read_text().strip() == want and _bin("python").exists():
        return
    if not _bin("python").exists():
        print(f"Creating virtual environment in {VENV} ...", flush=True)
        try:
            venv.EnvBuilder(with_pip=True, upgrade_deps=False).create(VENV)
        except Exception as exc:  # ensurepip missing on some distro Pythons
            sys.exit(
                f"Could not create a virtual environment in {VENV}: {exc}\n"
                "On Debian/Ubuntu install the venv module first: apt-get install python3-venv"
            )
    py = _bin("python")
    print(
        "Installing pinned dependencies (the first run fetches PyTorch, about 4 GB) ...",
        flush=True,
    )
    if not _install_with_uv(py):
        pip_install = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run([*pip_install, "-r", ROOT / "requirements.lock"])
        _run([*pip_install, "--no-deps", "-e", ROOT])
    STAMP.write_text(want + "\n")


def uv_source_args(pip_config: str) -> tuple[list[str], dict[str, str]]:
    """uv's arguments and environment for the package sources in `pip config list`'s output.

    Each line is `<section>.<option>='<value>'`; as in pip, a PIP_* variable (section `:env:`)
    wins over the `install` section, which wins over `global`, and a list option holds values
    separated by whitespace. pip's `cert` becomes SSL_CERT_FILE, which uv reads.
    """
    rank = {"global": 0, "install": 1, ":env:": 2}
    chosen: dict[str, tuple[int, str]] = {}
    for line in pip_config.splitlines():
        name, sep, value = line.partition("=")
        section, _, option = name.rpartition(".")
        if sep and section in rank and rank[section] >= chosen.get(option, (-1, ""))[0]:
            chosen[option] = (rank[section], value.strip().strip("'\""))
    args = [
        f"{flag}={v}" for option, flag in PIP_SOURCES.items() for v in chosen.get(option, (0, ""))[1].split()
    ]
    env = {"SSL_CERT_FILE": chosen["cert"][1]} if chosen.get("cert", (0, ""))[1] else {}
    return args, env


def _install_with_uv(py: Path) -> bool:
    """Install the lock and this package with uv; False (and a line why) where that did not work."""
    env = _env()
    pip = [py, "-m", "pip", "--disable-pip-version-check"]
    if _call([*pip, "install", "-q", UV], env) != 0:
        print(f"Could not install {UV}; installing with pip instead (slower).", flush=True)
        return False
    config = subprocess.run(
        [str(c) for c in [*pip, "config", "list"]], env=env, capture_output=True, text=True
    )
    sources, source_env = uv_source_args(config.stdout)
    env = {**source_env, **env}  # an SSL_CERT_FILE the user set wins over pip's cert
    # pip treats all indexes alike; uv, by default, takes a package from the first index that has it.
    uv = [_bin("uv"), "pip", "install", "--python", py, "--index-strategy", "unsafe-best-match", *sources]
    # Byte-compiled here, once: where PYTHONDONTWRITEBYTECODE is set, jobs would compile on each start.
    installed = _call([*uv, "-q", "--compile-bytecode", "-r", ROOT / "requirements.lock"], env) == 0
    if installed and _call([*uv, "-q", "--no-deps", "-e", ROOT], env) == 0:
        return True
    print("uv could not install the pinned set (above); installing with pip instead (slower).", flush=True)
    return False


def demo(args: list[str]) -> None:
    """Run the default workflow (embedded synthetic benchmark) and say where the result is."""
    cores = os.environ.get("CAMREPRO_CORES", "all")
    _run([_bin("snakemake"), "--cores", cores, *args], cwd=ROOT)
    if REPORT.exists():
        print(f"\nReport: {REPORT}  (open it in a browser; tables in results/tables/)")
    elif "-n" not in args and "--dry-run" not in args:
        print(f"\nThe workflow finished without writing {REPORT.relative_to(ROOT)}: see the log above.")


def test(args: list[str]) -> None:
    _run([_bin("python"), "-m", "pytest", *args], cwd=ROOT)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "setup"}:
        print(__doc__)
        sys.exit(2)
    cmd, rest = sys.argv[1], sys.argv[2:]
    setup()
    if cmd == "demo":
        demo(rest)
    elif cmd == "test":
        test(rest)


if __name__ == "__main__":
    main()
