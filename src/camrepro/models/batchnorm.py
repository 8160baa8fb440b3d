"""Train a BatchNorm-free network with BatchNorm, then fold the BatchNorm away.

VGG16 and AlexNet have no BatchNorm. torchvision's ImageNet weights for them were trained for
weeks; the embedded benchmark's stand-in pretraining has minutes, and a thin (width 1/8) VGG16
without normalisation does not leave the ln(C) loss plateau in that time (measured: SGD and
AdamW alike, 8 epochs). Pretraining therefore puts a BatchNorm after every convolution and,
once trained, folds each BatchNorm's running statistics and affine parameters into the
convolution before it: the saved network is the plain architecture, computing exactly what the
trained network with BatchNorm computes in eval mode. Fine-tuning then starts, as in the papers,
from a well-conditioned pretrained plain network.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Module):
    """A convolution followed by BatchNorm; `folded()` gives the equivalent single convolution."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(conv.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    @torch.no_grad()
    def folded(self) -> nn.Conv2d:
        conv, bn = self.conv, self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                        conv.dilation, conv.groups, bias=True).to(conv.weight)  # fmt: skip
        out.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        out.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
        return out


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def insert_batchnorm(model: nn.Module) -> nn.Module:
    """Wrap every Conv2d of `model` in place as ConvBN (for networks with no BatchNorm)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Conv2d):
            setattr(model, name, ConvBN(child))
        else:
            insert_batchnorm(child)
    return model


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every ConvBN of `model` in place by its folded convolution."""
    for name, child in list(model.named_children()):
        if isinstance(child, ConvBN):
            setattr(model, name, child.folded())
        else:
            fold_batchnorm(child)
    return model
