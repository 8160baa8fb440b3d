"""Backbones truncated for CAM, with torchvision's parameter names kept.

Every backbone module names its layers exactly as the torchvision model it comes from
(``features.28.weight`` for VGG16's conv5_3, ``inception4e.branch1.conv.weight``, ``layer4.2.bn3.*``),
so ImageNet weights load by name into the layers we keep. Layers we add for CAM live under
``extra`` and start from scratch. ``width`` scales every channel count (the embedded benchmark
trains at width 1/8 on two CPU cores); torchvision weights only fit at width 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from camrepro.errors import CamreproError
from camrepro.models.blocks import BasicConv2d, Bottleneck, Inception, vgg_layers


def inception_input(x: torch.Tensor) -> torch.Tensor:
    """Re-normalise an input standardised with ImageNet's mean/std (what the reader gives) to
    (x - 0.5) / 0.5, what torchvision's GoogLeNet weights and timm's MobileNetV1 weights expect."""
    mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x * std + mean - 0.5) / 0.5


def scaled(channels: int, width: float) -> int:
    """A channel count at width multiplier `width` (at least 4)."""
    return max(4, int(round(channels * width)))


def added_convs(cin: int, cout: int, layers: int, groups: int = 1) -> tuple[nn.Sequential, int]:
    """The layers a CAM network adds before pooling: `layers` x (3x3 conv, stride 1, pad 1, ReLU)
    with `cout` channels (the CAM paper's "3x3 conv with 1024 units"), in `groups` groups (the
    released CAM prototxts' `group: 2`). Returns the stack and its output depth (`cin` when there
    are none)."""
    modules: list[nn.Module] = []
    for _ in range(layers):
        modules += [grouped_conv(cin, cout, groups), nn.ReLU(inplace=True)]
        cin = cout
    return nn.Sequential(*modules), cin


def grouped_conv(cin: int, cout: int, groups: int) -> nn.Conv2d:
    """A 3x3, stride 1, pad 1 convolution in `groups` groups (Caffe's `group`)."""
    if cin % groups or cout % groups:
        raise ValueError(f"a conv of {cin} -> {cout} channels cannot be split in {groups} groups; pick a "
                         f"width whose channel counts are multiples of {groups}")  # fmt: skip
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, groups=groups)


@dataclass(frozen=True)
class CaffeInit:
    """A released prototxt's fillers for the layers a CAM network adds: weights N(0, std^2) (Caffe's
    `gaussian` weight_filler), biases `bias` (its `constant` bias_filler). Applied after
    `camrepro.models.init_weights` to every conv of the backbone's `extra`."""

    std: float = 0.01
    bias: float = 0.0

    def apply(self, module: nn.Module) -> None:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, self.std)
                nn.init.constant_(m.bias, self.bias)


def halve_output_stride(backbone: nn.Module, probe: int = 96) -> None:
    """Double the side of a backbone's feature map: its last downsampling step runs at stride 1
    (or the step the backbone names in `halve_at`).

    The embedded default's lever for maps that resolve at a CPU-sized input (8x8 at 64 px instead of
    4x4; the papers' networks give 14x14 at 224 px): not a layer of any paper's network, so only a
    config that asks for it (`models.halve_stride`) gets it, and the report says so. The last step
    that downsamples is found by running a `probe`-pixel input: every conv or max pool with stride
    > 1 that sees the same input size as the last such module run (a ResNet stage's first block has
    two: its 3x3 conv and its shortcut) gets stride 1; a max pool, whose only job there is to
    downsample, becomes the identity. No parameter changes, so ImageNet weights load unchanged.
    """
    seen: list[tuple[str, nn.Module, int]] = []  # (name, module, input side) of each strided module run
    names = {m: n for n, m in backbone.named_modules()}

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], _: torch.Tensor) -> None:
        seen.append((names[module], module, inputs[0].shape[-1]))

    strided = [m for m in backbone.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))
               and max(_pair(m.stride)) > 1]  # fmt: skip
    handles = [m.register_forward_hook(hook) for m in strided]
    was_training = backbone.training
    try:
        with torch.no_grad():
            backbone.eval()(torch.zeros(1, 3, probe, probe))
    finally:
        backbone.train(was_training)
        for h in handles:
            h.remove()
    if not seen:
        raise CamreproError(f"{type(backbone).__name__} never downsamples: there is no stride to halve.")
    named = getattr(backbone, "halve_at", None)
    last_side = next(side for name, _, side in seen if name == named) if named else seen[-1][2]
    for name, module, side in seen:
        if side != last_side:
            continue
        if isinstance(module, nn.MaxPool2d):
            parent, _, child = name.rpartition(".")
            setattr(backbone.get_submodule(parent) if parent else backbone, child, nn.Identity())
        else:
            module.stride = (1, 1)


def _pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return value if isinstance(value, tuple) else (value, value)


class Backbone(nn.Module):
    """Base: `forward` gives the feature map the CAM is built from; `out_channels` its depth."""

    out_channels: int
    torchvision_arch: str | None = None  # the torchvision model whose weights fit at width 1.0
    added_init: CaffeInit | None = None  # the released prototxt's fillers for `extra`, if it gives them

    def torchvision_keys(self) -> set[str]:
        """Names of this backbone's parameters/buffers that come from the torchvision model."""
        return {k for k in self.state_dict() if not k.startswith("extra.")}


VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


def vgg16_trunk(width: float = 1.0) -> tuple[nn.Sequential, int]:
    """VGG16's conv layers through conv5_3 + ReLU (torchvision indices 0-29), and their depth."""
    cfg = [c if c == "M" else scaled(c, width) for c in VGG16_CFG]
    return vgg_layers(cfg), cfg[-1]


class VGG16Features(Backbone):
    """VGG16 through conv5_3 + ReLU (pool5 and the FC layers removed): 14x14 at 224 input, + the
    CAM layer (`extra`): a 3x3 conv with 1024 units.

    Rethinking CAM's (`vgg16-gap`): one group, the default init (won-bae/rethinkingCAM
    src/core/models/vgg.py:15, :70-78; wsolevaluation wsol/vgg.py builds the same conv6). The CAM
    paper's (`vgg16-cam`), as released (zhoubolei/CAM models/deploy_vgg16CAM.prototxt:327-341):
    `group: 2`, weights N(0, 0.01), biases 0.
    """

    torchvision_arch = "vgg16"

    def __init__(self, width: float = 1.0, extra_channels: int = 1024, groups: int = 1,
                 added_init: CaffeInit | None = None) -> None:  # fmt: skip
        super().__init__()
        self.features, depth = vgg16_trunk(width)
        self.extra, self.out_channels = added_convs(depth, scaled(extra_channels, width), 1, groups)
        self.added_init = added_init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extra(self.features(x))


ALEXNET_SPECS = [(64, 11, 4, 2), "M", (192, 5, 1, 2), "M", (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]


class AlexNetFeatures(Backbone):
    """torchvision's AlexNet, truncated, + the CAM layers (`extra`).

    `alexnet-gap` (Zhou et al. Sec. 3.1: "we removed the layers after conv5 ... 13x13", "+ a 3x3
    conv with 1024 units"): conv1-conv5 + ReLU, then that conv. No released prototxt exists for it
    (zhoubolei/CAM ships AlexNet*-GAP's only), so OUR ASSUMPTION: its CAM conv is built as the
    released AlexNet*-GAP's added convs are, `group: 2`, N(0, 0.01), bias 1.

    `alexnet*-gap` (`star`), as released in models/deploy_alexnetplusCAM_imagenet.prototxt: conv1-4
    as AlexNet's, then conv5 at 384 units in 2 groups (:170-190, where AlexNet's conv5 has 256, so
    this conv5 is a new layer, not torchvision's), pool5 a 3x3 max pool at stride 1 (:200-208: 13x13
    -> 11x11 at 224 px), two 3x3/512 convs in 2 groups (conv6 :211-231, conv7 :241-261), every one
    N(0, 0.01) with bias 1. (The backbone before conv5 is torchvision's AlexNet, not the Caffe one
    the prototxt describes: 64 conv1 units, no groups, no LRN.)
    """

    torchvision_arch = "alexnet"

    def __init__(self, width: float = 1.0, extra_layers: int = 1, extra_channels: int = 1024,
                 star: bool = False) -> None:  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for spec in ALEXNET_SPECS[:-1] if star else ALEXNET_SPECS:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
                continue
            cout, k, s, p = spec
            cout = scaled(cout, width)
            layers += [nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=p), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        if star:
            conv5, c5 = added_convs(cin, scaled(384, width), 1, groups=2)
            convs, self.out_channels = added_convs(c5, scaled(512, width), 2, groups=2)
            self.extra = nn.Sequential(*conv5, nn.MaxPool2d(kernel_size=3, stride=1), *convs)
        else:
            self.extra, self.out_channels = added_convs(cin, scaled(extra_channels, width), extra_layers, 2)
        self.added_init = CaffeInit(0.01, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extra(self.features(x))


# torchvision's GoogLeNet inception configs (in, 1x1, 3x3red, 3x3, 5x5red, 5x5, pool proj).
INCEPTIONS = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNetFeatures(Backbone):
    """torchvision's GoogLeNet (BN variant), truncated.

    until="inception4e": the CAM paper's GoogLeNet-GAP/GMP, 14x14 at 224 input, + the 3x3/1024
    conv as released (zhoubolei/CAM models/train_val_googlenetCAM.prototxt:1703-1730: `group: 2`,
    weights N(0, 0.01), bias 1; GMP: no prototxt released, taken to be the same).
    until="inception5b": the original GoogLeNet, 7x7, whose own average pool + classifier give
    its CAM (no extra layer); maxpool4 is torchvision's, 2x2 at stride 2 (ceil mode), so the
    network is torchvision's (torchvision/models/googlenet.py: `self.maxpool4 = nn.MaxPool2d(2, 2,
    ceil_mode=True)`).
    transform_input: torchvision's re-normalisation that its ImageNet weights expect.
    """

    torchvision_arch = "googlenet"
    # `halve_output_stride`: maxpool3, in the original too (whose last pool is maxpool4), so that the
    # GoogLeNet pretrained in the embedded default runs inception4a-4e at the scale GoogLeNet-GAP/GMP
    # fine-tune them at
    halve_at = "maxpool3"

    def __init__(
        self,
        width: float = 1.0,
        until: str = "inception4e",
        extra_layers: int = 1,
        extra_channels: int = 1024,
        keep_maxpool4: bool = False,
        transform_input: bool = False,
    ) -> None:
        super().__init__()
        self.transform_input = transform_input
        self.conv1 = BasicConv2d(3, scaled(64, width), kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(scaled(64, width), scaled(64, width), kernel_size=1)
        self.conv3 = BasicConv2d(scaled(64, width), scaled(192, width), kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.blocks = []
        cin = scaled(192, width)
        for name, (_, *chs) in INCEPTIONS.items():
            if name in ("inception4a", "inception5a"):
                pool = "maxpool3" if name == "inception4a" else "maxpool4"
                if pool == "maxpool3" or keep_maxpool4:
                    size = 3 if pool == "maxpool3" else 2
                    setattr(self, pool, nn.MaxPool2d(size, stride=2, ceil_mode=True))
                    self.blocks.append(pool)
            chs = [scaled(c, width) for c in chs]
            setattr(self, name, Inception(cin, *chs))
            self.blocks.append(name)
            cin = chs[0] + chs[2] + chs[4] + chs[5]
            if name == until:
                break
        self.extra, self.out_channels = added_convs(cin, scaled(extra_channels, width), extra_layers, 2)
        self.added_init = CaffeInit(0.01, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform_input:
            x = inception_input(x)
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        for name in self.blocks:
            x = getattr(self, name)(x)
        return self.extra(x)


def _v3_conv(cin: int, cout: int, kernel: int | tuple[int, int], **kw) -> BasicConv2d:
    """Inception-v3's conv + BN (eps 1e-3) + ReLU, torchvision's `BasicConv2d` (keys conv.*, bn.*)."""
    return BasicConv2d(cin, cout, kernel_size=kernel, **kw)


class InceptionV3A(nn.Module):
    """Inception-v3's 35x35 block (torchvision InceptionA: the same layers and names), width-scaled."""

    def __init__(self, cin: int, pool_features: int, width: float) -> None:
        super().__init__()
        c = [scaled(n, width) for n in (64, 48, 64, 96, pool_features)]
        self.branch1x1 = _v3_conv(cin, c[0], 1)
        self.branch5x5_1, self.branch5x5_2 = _v3_conv(cin, c[1], 1), _v3_conv(c[1], c[2], 5, padding=2)
        self.branch3x3dbl_1 = _v3_conv(cin, c[0], 1)
        self.branch3x3dbl_2 = _v3_conv(c[0], c[3], 3, padding=1)
        self.branch3x3dbl_3 = _v3_conv(c[3], c[3], 3, padding=1)
        self.branch_pool = _v3_conv(cin, c[4], 1)
        self.out_channels = c[0] + c[2] + c[3] + c[4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(nn.functional.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)), dbl, pool], 1)


class InceptionV3B(nn.Module):
    """Inception-v3's grid reduction (torchvision InceptionB), here at stride 1 with padding 1 as
    SPG builds Mixed_6a (wsolevaluation wsol/inception.py:71-89, :150), so the map stays 14x14."""

    def __init__(self, cin: int, width: float) -> None:
        super().__init__()
        c384, c64, c96 = (scaled(n, width) for n in (384, 64, 96))
        self.branch3x3 = _v3_conv(cin, c384, 3, padding=1)
        self.branch3x3dbl_1 = _v3_conv(cin, c64, 1)
        self.branch3x3dbl_2 = _v3_conv(c64, c96, 3, padding=1)
        self.branch3x3dbl_3 = _v3_conv(c96, c96, 3, padding=1)
        self.out_channels = c384 + c96 + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), dbl, nn.functional.max_pool2d(x, 3, stride=1, padding=1)], 1)


class InceptionV3C(nn.Module):
    """Inception-v3's 17x17 block with factorised 7x7 convs (torchvision InceptionC), width-scaled."""

    def __init__(self, cin: int, channels_7x7: int, width: float) -> None:
        super().__init__()
        c7, c192 = scaled(channels_7x7, width), scaled(192, width)
        row, col = {"padding": (0, 3)}, {"padding": (3, 0)}
        self.branch1x1 = _v3_conv(cin, c192, 1)
        self.branch7x7_1 = _v3_conv(cin, c7, 1)
        self.branch7x7_2 = _v3_conv(c7, c7, (1, 7), **row)
        self.branch7x7_3 = _v3_conv(c7, c192, (7, 1), **col)
        self.branch7x7dbl_1 = _v3_conv(cin, c7, 1)
        self.branch7x7dbl_2 = _v3_conv(c7, c7, (7, 1), **col)
        self.branch7x7dbl_3 = _v3_conv(c7, c7, (1, 7), **row)
        self.branch7x7dbl_4 = _v3_conv(c7, c7, (7, 1), **col)
        self.branch7x7dbl_5 = _v3_conv(c7, c192, (1, 7), **row)
        self.branch_pool = _v3_conv(cin, c192, 1)
        self.out_channels = 4 * c192

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = layer(d)
        pool = self.branch_pool(nn.functional.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), b7, d, pool], 1)


class InceptionV3SPGFeatures(Backbone):
    """Rethinking CAM's "GoogleNet": SPG's Inception-v3 as wsolevaluation builds it for CAM
    (wsol/inception.py:134-207, InceptionCam). The paper's text (rethinking_cam_bae_2020.md:166)
    cites GoogLeNet [32] but builds it "based on SPG [39]", whose network is Inception-v3: the stem,
    Mixed_5b-5d, a 3x3/2 max pool (:184; large_feature_map False, the default, config.py:204-205),
    Mixed_6a at stride 1 (:150), Mixed_6b-6e; Mixed_7* (the last inception blocks) replaced by two
    3x3/1024 conv + ReLU (:156-163), with dropout 0.5 before each and after (:192-196).

    Maps: 14x14 at 224 px (28x28 only with large_feature_map True, which the pool at :184 skips);
    4x4 at the demo's 64 px; it runs from 15 px up (1x1 maps; measured), below the schema's 32 px
    minimum, so the demo runs it as it is. Layer names are torchvision's inception_v3 (weights
    IMAGENET1K_V1), so its tensors load through Mixed_6e (camrepro.weights.inception_v3_keys).
    Kept as SPG differs from torchvision's Inception3: Conv2d_1a at padding 1 (:140), the stem pools
    with padding 1 in ceil mode (:175, :178). Input: SPG feeds ImageNet mean/std (data_loaders.py);
    we re-normalise to (x - 0.5) / 0.5 when the weights expect it (`transform_input`), as for
    torchvision's GoogLeNet: OUR CHOICE, the weights' own input. Initialisation of the added convs and
    the classifier: PyTorch's default (Kaiming uniform), where wsolevaluation's InceptionCam uses
    xavier (wsol/inception.py:167, initialize_weights(init_mode='xavier')): an assumption left
    different (both scale with fan-in; the layers are trained from them either way).
    """

    torchvision_arch = "inception-v3"

    def __init__(self, width: float = 1.0, extra_channels: int = 1024, transform_input: bool = False) -> None:
        super().__init__()
        self.transform_input = transform_input
        c = {n: scaled(n, width) for n in (32, 64, 80, 192)}
        self.Conv2d_1a_3x3 = _v3_conv(3, c[32], 3, stride=2, padding=1)
        self.Conv2d_2a_3x3 = _v3_conv(c[32], c[32], 3)
        self.Conv2d_2b_3x3 = _v3_conv(c[32], c[64], 3, padding=1)
        self.Conv2d_3b_1x1 = _v3_conv(c[64], c[80], 1)
        self.Conv2d_4a_3x3 = _v3_conv(c[80], c[192], 3)
        # the stem's pools (:175, :178) and the one before Mixed_6a (:184); modules, not functions,
        # so that `halve_output_stride` finds them (no parameters: the state_dict is unchanged)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        cin = c[192]
        self.blocks: list[str] = []
        for name, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
            setattr(self, name, InceptionV3A(cin, pool_features, width))
            cin = getattr(self, name).out_channels
        self.Mixed_6a = InceptionV3B(cin, width)
        cin = self.Mixed_6a.out_channels
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            setattr(self, name, InceptionV3C(cin, c7, width))
            cin = getattr(self, name).out_channels
        convs, self.out_channels = added_convs(cin, scaled(extra_channels, width), 2)
        drop = [nn.Dropout(0.5)]
        self.extra = nn.Sequential(*drop, *convs[:2], nn.Dropout(0.5), *convs[2:], nn.Dropout(0.5))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """Through Mixed_6e (768 channels at width 1)."""
        if self.transform_input:
            x = inception_input(x)
        x = self.maxpool1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        x = self.Mixed_6a(self.maxpool3(x))
        return self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extra(self.trunk(x))


class SEBottleneck(Bottleneck):
    """A ResNet bottleneck with a squeeze-excitation gate before the residual add, as SENet's
    authors built it (Hu et al. 2018, released as Caffe models and ported by Cadene's
    pretrainedmodels, whose ImageNet weights we load): the stride sits on the first 1x1 conv, not
    on the 3x3 one as in torchvision's ResNet."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 reduction: int = 16) -> None:  # fmt: skip
        super().__init__(inplanes, planes, 1, downsample)
        self.conv1.stride = (stride, stride)
        channels = planes * self.expansion
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, max(1, channels // reduction), kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(max(1, channels // reduction), channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out * self.se(out) + identity)


class ResNet50SEFeatures(Backbone):
    """SE-ResNet50 with layer4 at stride 1 (14x14), as ADL and Rethinking CAM build ResNet50-SE for
    WSOL. Every layer, the SE gates included, takes SENet's ImageNet weights (`camrepro weights
    se-resnet50`; key map in camrepro.weights); its stem pools as SENet's does (3x3, stride 2,
    ceil mode, no padding)."""

    torchvision_arch = "se-resnet50"

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.inplanes = scaled(64, width)
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
        self.layer1 = self._make_layer(scaled(64, width), 3, 1)
        self.layer2 = self._make_layer(scaled(128, width), 4, 2)
        self.layer3 = self._make_layer(scaled(256, width), 6, 2)
        self.layer4 = self._make_layer(scaled(512, width), 3, 1)
        self.extra = nn.Identity()
        self.out_channels = self.inplanes

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [SEBottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [SEBottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _dw_separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU6(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


MOBILENET_V1 = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 1), (1024, 1)]
)


class MobileNetV1Features(Backbone):
    """MobileNetV1 (Howard et al. 2017) with the last stride-2 layer at stride 1 (14x14), the
    WSOL variant of ADL/Rethinking CAM. ReLU6 as in the reference (TF-slim) network and the timm
    ImageNet weights we load (`camrepro weights mobilenet-v1`; key map in camrepro.weights), which
    expect inputs normalised to (x - 0.5) / 0.5 (`transform_input`)."""

    torchvision_arch = "mobilenet-v1"

    def __init__(self, width: float = 1.0, transform_input: bool = False) -> None:
        super().__init__()
        self.transform_input = transform_input
        cin = scaled(32, width)
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, cin, 3, 2, 1, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True))
        ]
        for cout, stride in MOBILENET_V1:
            layers.append(_dw_separable(cin, scaled(cout, width), stride))
            cin = scaled(cout, width)
        self.features = nn.Sequential(*layers)
        self.extra = nn.Identity()
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(inception_input(x) if self.transform_input else x)
