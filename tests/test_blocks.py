"""Our copies of torchvision's building blocks: the same parameters and the same outputs as its own
classes (so torchvision's ImageNet weights mean the same thing in them), and no torchvision import
on a job's path."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

from camrepro.models import blocks

# the modules (torchvision.models re-exports functions of the same names)
tv_googlenet, tv_inception, tv_resnet, tv_vgg = (
    importlib.import_module(f"torchvision.models.{name}")
    for name in ("googlenet", "inception", "resnet", "vgg")
)


def _same_module(ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor) -> None:
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in theirs.state_dict().items()}
    for name, value in state.items():
        if name.endswith("running_var"):
            state[name] = value.abs() + 0.1
    theirs.load_state_dict(state)
    ours.load_state_dict(state)
    for mode in (True, False):  # batch statistics, then the running ones
        ours.train(mode)
        theirs.train(mode)
        with torch.no_grad():
            assert torch.allclose(ours(x.clone()), theirs(x.clone()), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tv_module", [tv_googlenet, tv_inception])
def test_basic_conv2d_is_torchvisions(tv_module):
    x = torch.randn(2, 5, 9, 9)
    _same_module(blocks.BasicConv2d(5, 7, kernel_size=3, stride=2, padding=1),
                 tv_module.BasicConv2d(5, 7, kernel_size=3, stride=2, padding=1), x)  # fmt: skip


def test_inception_module_is_torchvisions():
    channels = (6, 4, 3, 5, 2, 3, 4)
    _same_module(blocks.Inception(*channels), tv_googlenet.Inception(*channels), torch.randn(2, 6, 7, 7))


@pytest.mark.parametrize("stride", [1, 2])
def test_bottleneck_is_torchvisions(stride):
    def downsample() -> torch.nn.Sequential:
        return torch.nn.Sequential(
            torch.nn.Conv2d(8, 16, 1, stride=stride, bias=False), torch.nn.BatchNorm2d(16)
        )

    _same_module(blocks.Bottleneck(8, 4, stride, downsample()), tv_resnet.Bottleneck(8, 4, stride, downsample()),
                 torch.randn(2, 8, 9, 9))  # fmt: skip


def test_vgg_layers_are_torchvisions():
    cfg = [4, 4, "M", 6, "M", 8]
    _same_module(blocks.vgg_layers(cfg), tv_vgg.make_layers(cfg), torch.randn(2, 3, 16, 16))


def test_a_jobs_modules_import_no_torchvision():
    """torchvision's import brings torch._dynamo: 1.4 s more start-up for every job."""
    code = ("import sys, camrepro.train, camrepro.extract, camrepro.svm, camrepro.weights; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
