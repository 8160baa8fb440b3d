#!/usr/bin/env python3
"""Set-up-included entry points: `python3 dev.py demo` and `python3 dev.py test`.

Needs nothing but python3 (>= 3.11). It creates `.venv/` on first use, installs the exact
pinned set (`requirements.lock`) plus this package in editable mode, and reinstalls only when
the lock file or pyproject.toml changes (a hash stamp in the venv records what was installed).

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


def _run(cmd: list[str | os.PathLike], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    rc = subprocess.call([str(c) for c in cmd], env=_env(), **kw)
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
        "Installing pinned dependencies (first run downloads PyTorch; a few minutes) ...",
        flush=True,
    )
    _run(
        [
            py,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            ROOT / "requirements.lock",
        ]
    )
    _run([py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", "-e", ROOT])
    STAMP.write_text(want + "\n")


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
