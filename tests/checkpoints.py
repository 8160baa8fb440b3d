"""Published checkpoints' file layouts, rebuilt with random values (test_weights, test_rehearsal).

The source layouts come from their documented architectures: Cadene's pretrainedmodels senet.py
(se_resnet50: SENet(SEResNetBottleneck, [3, 4, 6, 3], reduction 16, inplanes 64, 7x7 stem, 1x1
downsample)), timm's efficientnet.py (_gen_mobilenet_v1: stem 32, 'dsa' blocks r1 c64 / r2 s2 c128 /
r2 s2 c256 / r6 s2 c512 / r2 s2 c1024, no head conv) and torchvision's own models.
"""

from __future__ import annotations

import torch
import torchvision


def _bn(state: dict, prefix: str, c: int, g: torch.Generator) -> None:
    state[prefix + "weight"] = torch.rand(c, generator=g) + 0.5
    state[prefix + "bias"] = torch.randn(c, generator=g) * 0.1
    state[prefix + "running_mean"] = torch.randn(c, generator=g) * 0.1
    state[prefix + "running_var"] = torch.rand(c, generator=g) + 0.5
    state[prefix + "num_batches_tracked"] = torch.tensor(7)


def _conv(state: dict, key: str, cout: int, cin: int, k: int, g: torch.Generator, bias: bool = False) -> None:
    state[key + "weight"] = torch.randn(cout, cin, k, k, generator=g) * (2.0 / (cin * k * k)) ** 0.5
    if bias:
        state[key + "bias"] = torch.randn(cout, generator=g) * 0.1


SENET_BLOCKS = (3, 4, 6, 3)


def senet_se_resnet50_state() -> dict[str, torch.Tensor]:
    """A state_dict in the layout and shapes of Cadene's se_resnet50-ce0d4300.pth."""
    g = torch.Generator().manual_seed(0)
    s: dict[str, torch.Tensor] = {}
    _conv(s, "layer0.conv1.", 64, 3, 7, g)
    _bn(s, "layer0.bn1.", 64, g)
    cin = 64
    for n, (planes, blocks) in enumerate(zip((64, 128, 256, 512), SENET_BLOCKS, strict=True), 1):
        for b in range(blocks):
            p = f"layer{n}.{b}."
            _conv(s, p + "conv1.", planes, cin, 1, g)
            _bn(s, p + "bn1.", planes, g)
            _conv(s, p + "conv2.", planes, planes, 3, g)
            _bn(s, p + "bn2.", planes, g)
            _conv(s, p + "conv3.", planes * 4, planes, 1, g)
            _bn(s, p + "bn3.", planes * 4, g)
            _conv(s, p + "se_module.fc1.", planes * 4 // 16, planes * 4, 1, g, bias=True)
            _conv(s, p + "se_module.fc2.", planes * 4, planes * 4 // 16, 1, g, bias=True)
            if b == 0:
                _conv(s, p + "downsample.0.", planes * 4, cin, 1, g)
                _bn(s, p + "downsample.1.", planes * 4, g)
            cin = planes * 4
    s["last_linear.weight"] = torch.randn(1000, 2048, generator=g) * 0.01
    s["last_linear.bias"] = torch.zeros(1000)
    return s


TIMM_STAGES = ((64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 6, 2), (1024, 2, 2))  # (channels, blocks, stride)


def timm_mobilenetv1_state() -> dict[str, torch.Tensor]:
    """A state_dict in the layout and shapes of timm's mobilenetv1_100 checkpoints."""
    g = torch.Generator().manual_seed(1)
    s: dict[str, torch.Tensor] = {}
    _conv(s, "conv_stem.", 32, 3, 3, g)
    _bn(s, "bn1.", 32, g)
    cin = 32
    for stage, (cout, blocks, _) in enumerate(TIMM_STAGES):
        for b in range(blocks):
            p = f"blocks.{stage}.{b}."
            s[p + "conv_dw.weight"] = torch.randn(cin, 1, 3, 3, generator=g) * 0.4
            _bn(s, p + "bn1.", cin, g)
            _conv(s, p + "conv_pw.", cout, cin, 1, g)
            _bn(s, p + "bn2.", cout, g)
            cin = cout
    s["classifier.weight"] = torch.randn(1000, 1024, generator=g) * 0.01
    s["classifier.bias"] = torch.zeros(1000)
    return s


def torchvision_state(arch: str) -> dict[str, torch.Tensor]:
    """A random state_dict in the layout of torchvision's released file for `arch`."""
    if arch == "googlenet":  # the released files keep the auxiliary classifiers
        return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
    if arch == "inception-v3":
        return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    return torchvision.models.get_model(arch, weights=None).state_dict()


# arch (camrepro.weights.CHECKPOINTS) -> a random state_dict in its published file's layout
def checkpoint_state(arch: str) -> dict[str, torch.Tensor]:
    if arch == "se-resnet50":
        return senet_se_resnet50_state()
    if arch == "mobilenet-v1":
        return timm_mobilenetv1_state()
    return torchvision_state(arch)
