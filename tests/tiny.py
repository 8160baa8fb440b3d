"""A tiny training set-up shared by the tests of training, extraction, evaluation and weights: VGG16-GAP
at width 1/16 on 48 px crops of a quarter-size CUB stand-in (fixtures `tiny_cub`, `tiny_trained` in
conftest.py), and the camrepro CLI as a child process."""

from __future__ import annotations

import subprocess
import sys

import torch

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


def randomised(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """`module`'s state_dict with every float tensor drawn at random (BN statistics included), so a
    tensor loaded into the wrong place shows in the forward pass; convs at He scale so activations
    keep their size through the 40 layers."""
    g = torch.Generator().manual_seed(seed)
    state = module.state_dict()
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if value.dim() == 4:
            fresh = torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5
        elif key.endswith(("running_var", "bn.weight")):
            fresh = torch.rand(value.shape, generator=g) * 0.5 + 0.75
        else:
            fresh = torch.randn(value.shape, generator=g) * 0.1
        value.copy_(fresh)
    return state
