"""A tiny training set-up shared by the tests of training, extraction, evaluation and weights: VGG16-GAP
at width 1/16 on 48 px crops of a quarter-size CUB stand-in (fixtures `tiny_cub`, `tiny_trained` in
conftest.py), and the camrepro CLI as a child process."""

from __future__ import annotations

import subprocess
import sys

TINY_RUN = {
    "model": "vgg16-gap",
    "width": 0.0625,
    "batch_size": 8,
    "resize": 56,
    "crop": 48,
    "lr": 0.01,
    "log_every": 1,
}


def popen_cli(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "camrepro", *args], **kw)


def set_args(cfg: dict) -> list[str]:
    """`--set key=value` for every training option."""
    out = []
    for k, v in cfg.items():
        out += ["--set", f"{k}={v}"]
    return out
