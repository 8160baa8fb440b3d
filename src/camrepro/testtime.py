"""The papers' test-time transforms: what the network sees at evaluation and where GT boxes land.

* ``warp``: the image resized straight to the evaluation size (the reference WSOL evaluator, and
  this project before; GT boxes rescale, `camrepro.boxes.resize_box`).
* ``tencrop``: the CAM paper's released code. The image is warped to resize x resize (256 for 224
  crops), cut into the four corner crops and the centre crop, each also mirrored; the class scores
  are averaged over the ten crops and the ten CAMs are put back where their crops came from and
  summed (caffe's matcaffe prepare_image; zhoubolei/CAM ILSVRC_generate_heatmap.m:102-105, 121;
  mergeTenCrop.m:11-37, which sums |CAM|). The merged map covers the whole warped image.
* ``centercrop``: Rethinking-CAM's released code. Resize((256, 256)) then CenterCrop(224)
  (won-bae/rethinkingCAM src/builders/dataloader_builder.py:57-61); GT boxes are scaled, shifted by
  (256 - 224) // 2 and clipped to the crop (src/core/datasets.py:24, 47-56, 149-160).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

TRANSFORMS = ("warp", "tencrop", "centercrop")
N_CROPS = 10


def ten_crop_offsets(resize: int, crop: int) -> list[tuple[int, int, bool]]:
    """(x offset, y offset, mirrored) of the ten crops, in caffe's order: corners with x outer,
    y inner, then the centre (offset floor((resize - crop) / 2)); the same five mirrored."""
    far, centre = resize - crop, (resize - crop) // 2
    five = [(x, y) for x in (0, far) for y in (0, far)] + [(centre, centre)]
    return [(x, y, False) for x, y in five] + [(x, y, True) for x, y in five]


def ten_crops(images: torch.Tensor, crop: int) -> torch.Tensor:
    """(N, C, R, R) warped images -> (N * 10, C, crop, crop), the ten crops of each image in turn."""
    crops = []
    for x, y, mirrored in ten_crop_offsets(images.shape[-1], crop):
        c = images[..., y : y + crop, x : x + crop]
        crops.append(c.flip(-1) if mirrored else c)
    return torch.stack(crops, 1).flatten(0, 1)


def merge_ten_crops(maps: torch.Tensor, resize: int, crop: int, absolute: bool = True) -> torch.Tensor:
    """(..., 10, h, w) maps of the ten crops -> (..., resize, resize): each map upsampled to the crop
    size (bicubic), un-mirrored, placed where its crop came from, summed (|map| with `absolute`, as
    mergeTenCrop.m). Pixels outside a crop get nothing from it, so borders sum fewer crops."""
    lead, (h, w) = maps.shape[:-3], maps.shape[-2:]
    if maps.shape[-3] != N_CROPS:
        raise ValueError(f"expected {N_CROPS} crop maps, got {maps.shape[-3]}")
    flat = maps.reshape(-1, N_CROPS, h, w).float()
    offsets = ten_crop_offsets(resize, crop)
    up = flat if (h, w) == (crop, crop) else F.interpolate(flat, size=(crop, crop), mode="bicubic",
                                                           align_corners=False)  # fmt: skip
    if absolute:
        up = up.abs()
    canvas = torch.zeros(flat.shape[0], resize, resize, dtype=up.dtype, device=up.device)
    for k, (x, y, mirrored) in enumerate(offsets):
        piece = up[:, k].flip(-1) if mirrored else up[:, k]
        canvas[:, y : y + crop, x : x + crop] += piece
    return canvas.reshape(*lead, resize, resize)


def centre_crop_box(
    box: Sequence[float], image_size: tuple[int, int], resize: int, crop: int
) -> tuple[int, int, int, int]:
    """A GT box (x0, y0, x1, y1) of an image of (w, h) after Resize((resize, resize)) and
    CenterCrop(crop), as Rethinking-CAM computes it: x / w * resize - shift, int(), clipped."""
    w, h = float(image_size[0]), float(image_size[1])
    shift = (resize - crop) // 2
    x0, y0, x1, y1 = map(float, box)
    return (
        max(int(x0 / w * resize - shift), 0), max(int(y0 / h * resize - shift), 0),
        min(int(x1 / w * resize - shift), crop - 1), min(int(y1 / h * resize - shift), crop - 1),
    )  # fmt: skip


def centre_crop_mask(mask: np.ndarray, crop: int) -> np.ndarray:
    """A mask already at resize x resize, cut to the centre crop (torchvision's CenterCrop offset)."""
    top = int(round((mask.shape[0] - crop) / 2.0))
    left = int(round((mask.shape[1] - crop) / 2.0))
    return mask[top : top + crop, left : left + crop]
