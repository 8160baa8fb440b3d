"""Class activation maps and Backprop saliency.

CAM (Zhou et al. 2016, Eq. 2 of Bae et al.): M_c = sum_k w_ck F_k, from the feature map F of the
same forward pass that produced the logits (no second pass) and the weights of any linear
classifier on the pooled features: the network's own, or a linear SVM's (CUB and transfer
experiments). No bias: it is constant over positions and vanishes in min-max normalisation.
NWC (Bae et al. Eq. 5) clamps the weights to max(w, 0) before the sum.

Maps are kept at feature resolution; `to_scoremap` upsamples (bicubic) to the evaluation size and
min-max normalises to [0, 1] at evaluation time.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def class_activation_maps(
    features: torch.Tensor,
    weights: torch.Tensor | np.ndarray,
    classes: torch.Tensor,
    nwc: bool = False,
) -> torch.Tensor:
    """CAMs of several classes per image in one batched operation.

    features: (N, K, h, w); weights: (C, K) classifier weights (rows = classes);
    classes: (N, m) class indices per image (GT, top-k, ...). Returns (N, m, h, w).
    """
    weights = torch.as_tensor(weights, dtype=features.dtype, device=features.device)
    if weights.shape[1] != features.shape[1]:
        raise ValueError(f"weights have {weights.shape[1]} inputs, features {features.shape[1]} channels")
    classes = classes.reshape(features.shape[0], -1).to(features.device)
    selected = weights[classes]  # (N, m, K)
    if nwc:
        selected = selected.clamp_min(0)
    return torch.einsum("nmk,nkhw->nmhw", selected, features)


def to_scoremap(cam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(h, w) or (N, h, w) maps -> float32 score maps of `size` (height, width) in [0, 1].

    Bicubic upsampling (align_corners=False), then per-map min-max normalisation; a constant map
    becomes all zeros (nothing to localize).
    """
    single = cam.dim() == 2
    maps = cam.reshape(-1, 1, *cam.shape[-2:]).float()
    # Constancy is judged before upsampling: bicubic interpolation of a constant map wobbles by
    # float rounding, which min-max normalisation would blow up into a spurious [0, 1] pattern.
    flat = maps.flatten(1)
    constant = (flat.max(dim=1).values - flat.min(dim=1).values) <= 1e-6 * flat.abs().max(dim=1).values
    up = F.interpolate(maps, size=size, mode="bicubic", align_corners=False).flatten(1)
    lo = up.min(dim=1, keepdim=True).values
    span = (up.max(dim=1, keepdim=True).values - lo).clamp_min(torch.finfo(torch.float32).tiny)
    norm = torch.where(constant[:, None], torch.zeros_like(up), (up - lo) / span)
    out = norm.clamp_(0, 1).reshape(-1, *size).cpu().numpy()
    return out[0] if single else out


def backprop_saliency(model: nn.Module, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Simonyan et al. 2014: |d score_c / d image|, max over colour channels. (N, H, W).

    The CAM paper's Backprop baseline; boxes then follow the same pipeline as CAMs.
    """
    was_training = model.training
    model.eval()
    try:
        images = images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = model(images)
            score = logits.gather(1, classes.reshape(-1, 1).to(logits.device)).sum()
            (grad,) = torch.autograd.grad(score, images)
    finally:
        model.train(was_training)
    return grad.abs().amax(dim=1)
