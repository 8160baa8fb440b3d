"""dev.py, the set-up-included entry point: the package sources pip is configured with reach uv."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _dev():
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pip_config_list(**pip_env: str) -> str:
    """What this interpreter's real `pip config list` prints given only these PIP_* variables
    (PIP_CONFIG_FILE=os.devnull: no configuration file is read)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, **pip_env)
    return subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], env=env, capture_output=True, text=True, check=True
    ).stdout


def test_pips_sources_from_its_variables_become_uvs():
    listed = _pip_config_list(
        PIP_INDEX_URL="https://mirror.example/simple",
        PIP_EXTRA_INDEX_URL="file:///srv/a/simple file:///srv/b/simple",
        PIP_FIND_LINKS="/srv/wheels",
        PIP_TRUSTED_HOST="mirror.example",
        PIP_CERT="/srv/ca.pem",
        PIP_TIMEOUT="60",
    )
    args, env = _dev().uv_source_args(listed)
    assert args == [
        "--index-url=https://mirror.example/simple",
        "--extra-index-url=file:///srv/a/simple",
        "--extra-index-url=file:///srv/b/simple",
        "--find-links=/srv/wheels",
        "--allow-insecure-host=mirror.example",
    ]
    assert env == {"SSL_CERT_FILE": "/srv/ca.pem"}


def test_a_variable_wins_over_install_which_wins_over_global_as_in_pip():
    listed = (  # `pip config list`'s lines for a pip.conf with both sections and a PIP_FIND_LINKS
        ":env:.find-links='/srv/env-wheels'\n"
        "global.find-links='/srv/global-wheels'\n"
        "global.index-url='https://global.example/simple'\n"
        "install.index-url='https://install.example/simple'\n"
        "wheel.index-url='https://wheel-only.example/simple'\n"
    )
    args, _ = _dev().uv_source_args(listed)
    assert args == ["--index-url=https://install.example/simple", "--find-links=/srv/env-wheels"]


def test_no_pip_configuration_gives_uv_its_defaults():
    assert _dev().uv_source_args(_pip_config_list()) == ([], {})
