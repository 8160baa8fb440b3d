"""The model registry: every network of both papers, built by name.

    build_model("vgg16-gap", num_classes=200, pretrained="data/weights/vgg16.pth", width=1.0)

CAM networks (`CAMNet`) are a backbone giving a feature map F, a global pooling head (GAP, GMP or
TAP) and a linear classifier W; the CAM of class c is sum_k W[c, k] F_k (camrepro.cam). The
original VGG16 and AlexNet keep their FC layers (`FCNet`): they classify, and localize only by
Backprop saliency, as in the CAM paper's baselines. The original GoogLeNet is a CAMNet already
(average pool + classifier), at 7x7.

Both kinds answer the same questions (`WSOLModel`): `has_cam`, `outputs` (logits, the pooled
vector the SVM experiments use, the CAM features), `cam_features` / `classifier_weights` (CAM
networks only), `fc7` (FC originals), the part ImageNet weights fill. Callers ask these, never
the attributes. Reading a trained model file and choosing the device: `camrepro.models.io`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import nn

from camrepro.errors import CamreproError
from camrepro.models.backbones import (
    AlexNetFeatures,
    Backbone,
    CaffeInit,
    GoogLeNetFeatures,
    InceptionV3SPGFeatures,
    MobileNetV1Features,
    ResNet50SEFeatures,
    VGG16Features,
    halve_output_stride,
    scaled,
    vgg16_trunk,
)
from camrepro.models.heads import POOLS, GlobalPool


class Outputs(NamedTuple):
    """What one forward pass gives: the logits, the pooled feature vector the linear-SVM
    experiments use (the GAP/GMP/TAP output of a CAM network, fc7 of an FC original) and, for a
    CAM network, the feature map before pooling (None otherwise)."""

    logits: torch.Tensor
    pooled: torch.Tensor
    features: torch.Tensor | None


class WSOLModel(Protocol):
    """What extraction, the SVM experiments, training and the weights code may ask of a network.

    `has_cam`: whether it localizes by CAM (a CAMNet: GAP/GMP/TAP head + linear classifier); only
    then are `cam_features` and `classifier_weights` defined. `outputs` gives logits, pooled vector
    and (CAM networks) features of one pass. `pretrained_module` is the part ImageNet weights fill
    (its `torchvision_keys()` the names they fill); `pretrained_names` the same names in the whole
    network's state_dict. `transform_input`: whether it applies torchvision's GoogLeNet input
    re-normalisation.
    """

    has_cam: bool
    transform_input: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
    def outputs(self, x: torch.Tensor) -> Outputs: ...
    def pooled_features(self, x: torch.Tensor) -> torch.Tensor: ...
    def cam_features(self, x: torch.Tensor) -> torch.Tensor: ...
    def classifier_weights(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def pretrained_module(self) -> nn.Module: ...
    def pretrained_names(self) -> set[str]: ...


class CAMNet(nn.Module):
    """Backbone -> global pooling -> linear classifier; `forward` can return the features too."""

    has_cam = True

    def __init__(
        self, backbone: Backbone, num_classes: int, pool: str = "gap", theta_tap: float = 0.0,
        dropout: float = 0.0, classifier_init: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.features = backbone
        self.pool = GlobalPool(pool, theta_tap)
        # a released prototxt's dropout between the pooled vector and the classifier (training only:
        # no parameters, so the CAM, sum_k W[c, k] F_k, is unchanged)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.classifier = nn.Linear(backbone.out_channels, num_classes)
        self.classifier_init = classifier_init  # "xavier": Caffe's xavier filler; None: init_weights'

    def init_added_layers(self) -> None:
        """The released prototxt's fillers for the layers CAM adds, after `init_weights`: the
        backbone's `extra` convs (`Backbone.added_init`) and, where it says so, the classifier
        (Caffe's xavier: U(-a, a), a = sqrt(3 / fan_in), bias 0)."""
        if self.features.added_init is not None:
            self.features.added_init.apply(self.features.extra)
        if self.classifier_init == "xavier":
            bound = (3.0 / self.classifier.in_features) ** 0.5
            nn.init.uniform_(self.classifier.weight, -bound, bound)
            nn.init.zeros_(self.classifier.bias)

    def outputs(self, x: torch.Tensor) -> Outputs:
        features = self.features(x)
        pooled = self.pool(features)
        return Outputs(self.classifier(self.dropout(pooled)), pooled, features)

    def forward(self, x: torch.Tensor, return_features: bool = False):  # noqa: ANN201
        logits, _, features = self.outputs(x)
        return (logits, features) if return_features else logits

    def cam_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map F before pooling, (N, K, h, w): the CAM is sum_k W[c, k] F_k."""
        return self.features(x)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x))

    def classifier_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, b) of the linear classifier on the pooled features: (classes, K) and (classes,)."""
        return self.classifier.weight, self.classifier.bias

    def pretrained_module(self) -> nn.Module:
        return self.features

    def pretrained_names(self) -> set[str]:
        return {f"features.{k}" for k in self.features.torchvision_keys()}

    @property
    def transform_input(self) -> bool:
        return bool(getattr(self.features, "transform_input", False))  # the GoogLeNet family's option


class FCNet(nn.Module):
    """The original VGG16/AlexNet: conv features, adaptive average pool, FC classifier.

    Parameter names are torchvision's (features.N, classifier.N) so its weights load directly.
    No CAM (`has_cam` False): they localize by Backprop saliency only; their pooled vector is fc7.
    """

    has_cam = False
    transform_input = False

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
        # fc7 is the output of the classifier's last ReLU: the layers up to it, and those after
        last_relu = max(i for i, m in enumerate(layers) if isinstance(m, nn.ReLU))
        self._fc7_end = last_relu + 1

    def torchvision_keys(self) -> set[str]:
        return {k for k in self.state_dict() if not k.startswith("classifier.6")}

    def outputs(self, x: torch.Tensor) -> Outputs:
        fc7 = self.fc7(x)
        return Outputs(self.classifier[self._fc7_end :](fc7), fc7, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    def fc7(self, x: torch.Tensor) -> torch.Tensor:
        """The second FC layer's activations (after its ReLU): the CAM paper's fc7 features."""
        return self.classifier[: self._fc7_end](torch.flatten(self.avgpool(self.features(x)), 1))

    pooled_features = fc7

    def cam_features(self, x: torch.Tensor) -> torch.Tensor:
        raise CamreproError(f"{self.torchvision_arch} (the FC original) has no CAM: use Backprop saliency.")

    def classifier_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise CamreproError(f"{self.torchvision_arch} (the FC original) has no CAM classifier.")

    def pretrained_module(self) -> nn.Module:
        return self

    def pretrained_names(self) -> set[str]:
        return self.torchvision_keys()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., nn.Module]
    default_pool: str = "gap"  # "none": an FC original, no pooling head


def _cam(backbone_factory: Callable[..., Backbone], pool: str, dropout: float = 0.0,  # noqa: ANN202
         classifier_init: str | None = None):  # fmt: skip
    def build(num_classes: int, width: float, pool: str = pool, theta_tap: float = 0.0, **kw) -> CAMNet:
        return CAMNet(backbone_factory(width, **kw), num_classes, pool, theta_tap, dropout, classifier_init)

    return build


def _fc(arch: str):  # noqa: ANN202
    def build(num_classes: int, width: float, **_: object) -> FCNet:
        return FCNet(arch, num_classes, width)

    return build


def _efficientnet_lite0(num_classes: int, width: float, pool: str = "gap", theta_tap: float = 0.0,
                        **kw) -> nn.Module:  # fmt: skip
    from camrepro.models.efficientnet import EfficientNetLite0  # imports Outputs from this module

    return EfficientNetLite0(num_classes, width, pool, theta_tap, **kw)


# Each comment: the paper a network comes from (CAM: Zhou et al. 2016; Rethinking CAM: Bae et al.
# 2020) and its architecture.
MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        # Rethinking CAM: VGG16 to conv5_3, + 3x3 conv 1024, GAP/TAP, linear
        ModelSpec("vgg16-gap", _cam(VGG16Features, "gap")),
        # CAM (VGGnet-GAP as released, models/deploy_vgg16CAM.prototxt:327-373): the same with the
        # conv in 2 groups, N(0, 0.01), bias 0, and dropout 0.5 before the classifier
        ModelSpec("vgg16-cam", _cam(lambda w: VGG16Features(w, groups=2, added_init=CaffeInit(0.01, 0.0)),
                                    "gap", dropout=0.5)),
        # CAM: GoogLeNet to inception4e, + 3x3 conv 1024 in 2 groups, GAP (GMP), linear with Caffe's
        # xavier filler (models/train_val_googlenetCAM.prototxt:1703-1770; no dropout there)
        ModelSpec("googlenet-gap", _cam(GoogLeNetFeatures, "gap", classifier_init="xavier")),
        ModelSpec("googlenet-gmp", _cam(GoogLeNetFeatures, "gmp", classifier_init="xavier"),
                  default_pool="gmp"),
        # CAM: AlexNet to conv5, + 3x3 conv 1024 in 2 groups (alexnet*: conv5 at 384, pool5 3x3/1, two
        # 3x3/512 convs, models/deploy_alexnetplusCAM_imagenet.prototxt), dropout 0.5 (:282-288), linear
        ModelSpec("alexnet-gap", _cam(lambda w: AlexNetFeatures(w, extra_layers=1), "gap", dropout=0.5)),
        ModelSpec("alexnet*-gap", _cam(lambda w: AlexNetFeatures(w, star=True), "gap", dropout=0.5)),
        # CAM: the original GoogLeNet; its CAM at 7x7 from its own average pool + classifier
        ModelSpec("googlenet", _cam(lambda w, **kw: GoogLeNetFeatures(w, until="inception5b", extra_layers=0,
                                                                     keep_maxpool4=True, **kw), "gap")),
        # CAM: the original VGG16 and AlexNet with their FC layers (the Backprop saliency baselines)
        ModelSpec("vgg16", _fc("vgg16"), default_pool="none"),
        ModelSpec("alexnet", _fc("alexnet"), default_pool="none"),
        # Rethinking CAM: ResNet50 + SE blocks, layer4 at stride 1; MobileNetV1, last stride removed;
        # "GoogleNet": SPG's Inception-v3 to Mixed_6e (6a at stride 1), + two 3x3 conv 1024. GAP/TAP.
        ModelSpec("resnet50-se", _cam(ResNet50SEFeatures, "gap")),
        ModelSpec("mobilenet-v1", _cam(MobileNetV1Features, "gap")),
        ModelSpec("inception-v3-spg", _cam(InceptionV3SPGFeatures, "gap")),
        # Beside the papers: EfficientNet-Lite0, a real ImageNet GAP network whose weights a package
        # ships (models/efficientnet.py); its own names, ImageNet classifier included
        ModelSpec("efficientnet-lite0", _efficientnet_lite0),
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
    halve_stride: bool = False,
) -> nn.Module:
    """Build a registered network; optionally load ImageNet weights into its backbone.

    `pretrained` is a weights file (`camrepro.models.pretrained`): torchvision's state_dict for the
    backbone's architecture, or one camrepro wrote. The classifier starts from scratch, except
    efficientnet-lite0's built with ImageNet's 1000 classes (its file's classifier is the network's).
    `transform_input` (GoogLeNet family, Inception-v3, MobileNetV1): re-normalise the input to
    (x - 0.5) / 0.5; by default on exactly when the weights file says its weights expect it
    (torchvision's GoogLeNet and Inception-v3 weights and timm's MobileNetV1 weights do).
    `halve_stride`: the backbone's last downsampling at stride 1, maps of twice the side (the
    embedded default's lever, `camrepro.models.backbones.halve_output_stride`; CAM networks only).
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
    if name.startswith(("googlenet", "mobilenet", "inception")):
        kwargs["transform_input"] = expects_transform if transform_input is None else transform_input
    model = spec.build(num_classes, width, **kwargs)
    if halve_stride:
        if not isinstance(model, CAMNet):
            raise CamreproError(f"{name} is not a CAM network: only a CAM network's stride can be halved.")
        halve_output_stride(model.features)
    init_weights(model)
    if isinstance(model, CAMNet):
        model.init_added_layers()
    if state is not None:
        load_state_into(model, state, str(pretrained))
    return model


__all__ = ["MODELS", "CAMNet", "FCNet", "GlobalPool", "ModelSpec", "Outputs", "WSOLModel", "build_model"]
