"""The model registry: every network of both papers, built by name.

    build_model("vgg16-gap", num_classes=200, pretrained="data/weights/vgg16.pth", width=1.0)

CAM networks (`CAMNet`) are a backbone giving a feature map F, a global pooling head (GAP, GMP or
TAP) and a linear classifier W; the CAM of class c is sum_k W[c, k] F_k (camrepro.cam). The
original VGG16 and AlexNet keep their FC layers (`FCNet`): they classify, and localize only by
Backprop saliency, as in the CAM paper's baselines. The original GoogLeNet is a CAMNet already
(average pool + classifier), at 7x7.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from camrepro.errors import CamreproError
from camrepro.models.backbones import (
    AlexNetFeatures,
    Backbone,
    GoogLeNetFeatures,
    MobileNetV1Features,
    ResNet50SEFeatures,
    VGG16Features,
    scaled,
    vgg16_trunk,
)
from camrepro.models.heads import POOLS, GlobalPool


class CAMNet(nn.Module):
    """Backbone -> global pooling -> linear classifier; `forward` can return the features too."""

    def __init__(
        self, backbone: Backbone, num_classes: int, pool: str = "gap", theta_tap: float = 0.0
    ) -> None:
        super().__init__()
        self.features = backbone
        self.pool = GlobalPool(pool, theta_tap)
        self.classifier = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False):  # noqa: ANN201
        features = self.features(x)
        logits = self.classifier(self.pool(features))
        return (logits, features) if return_features else logits


class FCNet(nn.Module):
    """The original VGG16/AlexNet: conv features, adaptive average pool, FC classifier.

    Parameter names are torchvision's (features.N, classifier.N) so its weights load directly.
    """

    def __init__(self, arch: str, num_classes: int, width: float = 1.0) -> None:
        super().__init__()
        if arch == "vgg16":
            trunk, _ = vgg16_trunk(width)
            self.features = nn.Sequential(*trunk, nn.MaxPool2d(2, 2))
            channels, pooled, hidden, drop_at = scaled(512, width), 7, scaled(4096, width), (2, 5)
        elif arch == "alexnet":
            backbone = AlexNetFeatures(width, extra_layers=0)
            self.features = nn.Sequential(*backbone.features, nn.MaxPool2d(3, 2))
            channels, pooled, hidden, drop_at = scaled(256, width), 6, scaled(4096, width), (0, 3)
        else:
            raise ValueError(arch)
        self.avgpool = nn.AdaptiveAvgPool2d(pooled)
        layers: list[nn.Module] = []
        dims = [channels * pooled * pooled, hidden, hidden]
        for i in range(2):
            block = [nn.Linear(dims[i], dims[i + 1]), nn.ReLU(inplace=True), nn.Dropout(0.5)]
            layers += [block[2], block[0], block[1]] if drop_at[0] == 0 else block
        layers.append(nn.Linear(hidden, num_classes))
        self.classifier = nn.Sequential(*layers)
        self.torchvision_arch = arch

    def torchvision_keys(self) -> set[str]:
        return {k for k in self.state_dict() if not k.startswith("classifier.6")}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    paper: str
    description: str
    build: Callable[..., nn.Module]
    default_pool: str = "gap"
    feature_stride: int = 16


def _cam(backbone_factory: Callable[..., Backbone], pool: str):  # noqa: ANN202
    def build(num_classes: int, width: float, pool: str = pool, theta_tap: float = 0.0, **kw) -> CAMNet:
        return CAMNet(backbone_factory(width, **kw), num_classes, pool, theta_tap)

    return build


def _fc(arch: str):  # noqa: ANN202
    def build(num_classes: int, width: float, **_: object) -> FCNet:
        return FCNet(arch, num_classes, width)

    return build


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("vgg16-gap", "CAM, Rethinking CAM", "VGG16 to conv5_3, + 3x3 conv 1024, GAP/TAP, linear",
                  _cam(VGG16Features, "gap")),
        ModelSpec("googlenet-gap", "CAM", "GoogLeNet to inception4e, + 3x3 conv 1024, GAP, linear",
                  _cam(GoogLeNetFeatures, "gap")),
        ModelSpec("googlenet-gmp", "CAM", "googlenet-gap with global max pooling",
                  _cam(GoogLeNetFeatures, "gmp"), default_pool="gmp"),
        ModelSpec("alexnet-gap", "CAM", "AlexNet to conv5, + 3x3 conv 1024, GAP, linear",
                  _cam(lambda w: AlexNetFeatures(w, extra_layers=1), "gap"), feature_stride=17),
        ModelSpec("alexnet*-gap", "CAM", "alexnet-gap with two more conv layers before GAP",
                  _cam(lambda w: AlexNetFeatures(w, extra_layers=3), "gap"), feature_stride=17),
        ModelSpec("googlenet", "CAM", "original GoogLeNet; CAM at 7x7 from its own avg pool + classifier",
                  _cam(lambda w, **kw: GoogLeNetFeatures(w, until="inception5b", extra_layers=0,
                                                        keep_maxpool4=True, **kw), "gap"),
                  feature_stride=32),
        ModelSpec("vgg16", "CAM", "original VGG16 with FC layers (Backprop saliency baseline)", _fc("vgg16"),
                  default_pool="none", feature_stride=32),
        ModelSpec("alexnet", "CAM", "original AlexNet with FC layers (Backprop saliency baseline)",
                  _fc("alexnet"), default_pool="none", feature_stride=32),
        ModelSpec("resnet50-se", "Rethinking CAM", "ResNet50 + SE blocks, layer4 at stride 1, GAP/TAP",
                  _cam(ResNet50SEFeatures, "gap")),
        ModelSpec("mobilenet-v1", "Rethinking CAM", "MobileNetV1, last stride removed, GAP/TAP",
                  _cam(MobileNetV1Features, "gap")),
        ModelSpec("googlenet-2conv", "Rethinking CAM", "GoogLeNet, last inception block -> two 3x3 conv 1024",
                  _cam(lambda w, **kw: GoogLeNetFeatures(w, until="inception5a", extra_layers=2, **kw),
                       "gap")),
    ]
}  # fmt: skip


def init_weights(model: nn.Module) -> None:
    """torchvision's initialisation for VGG/ResNet, applied to every network we build.

    Convolutions: Kaiming normal (fan-out, ReLU); batch norm: identity; linear layers: N(0, 0.01).
    PyTorch's default (Kaiming uniform with a = sqrt(5)) lets plain deep stacks like VGG16 without
    batch norm stall at chance level when trained from scratch (the embedded pretraining).
    Pretrained weights, when given, replace all of it in the backbone.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def build_model(
    name: str,
    num_classes: int,
    pretrained: str | os.PathLike | None = None,
    width: float = 1.0,
    pool: str | None = None,
    theta_tap: float = 0.0,
    transform_input: bool | None = None,
) -> nn.Module:
    """Build a registered network; optionally load ImageNet weights into its backbone.

    `pretrained` is a weights file (`camrepro.models.pretrained`): torchvision's state_dict for the
    backbone's architecture, or one camrepro wrote. The classifier always starts from scratch.
    `transform_input` (GoogLeNet family): apply torchvision's input re-normalisation; by default
    on exactly when the weights file says its weights expect it (torchvision's GoogLeNet weights do).
    """
    from camrepro.models.pretrained import load_state_into, read_weights

    if name not in MODELS:
        raise CamreproError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    if width <= 0:
        raise CamreproError(f"width multiplier must be positive, got {width}")
    spec = MODELS[name]
    state, expects_transform = read_weights(pretrained) if pretrained is not None else (None, False)
    kwargs: dict = {}
    if pool is not None and spec.default_pool != "none":
        if pool not in POOLS:
            raise CamreproError(f"unknown pooling {pool!r}; use one of {', '.join(POOLS)}")
        kwargs["pool"] = pool
    if spec.default_pool != "none":
        kwargs["theta_tap"] = theta_tap
    if name.startswith("googlenet"):
        kwargs["transform_input"] = expects_transform if transform_input is None else transform_input
    model = spec.build(num_classes, width, **kwargs)
    init_weights(model)
    if state is not None:
        load_state_into(model, state, str(pretrained))
    return model


__all__ = ["MODELS", "CAMNet", "FCNet", "GlobalPool", "ModelSpec", "build_model"]
