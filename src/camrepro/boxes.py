"""Boxes from score maps, with the reference WSOL evaluator's conventions to the pixel.

A score map is a 2-D float array in [0, 1] (a CAM upsampled to the evaluation size and min-max
normalised). Boxes are integer ``(x0, y0, x1, y1)`` with x1/y1 *inclusive*, the box convention of
the metadata (`camrepro.data.metadata`). Conventions of clovaai/wsolevaluation, which every number
here must match exactly:

1. **uint8 quantisation.** The map is converted to float64, multiplied by 255 and *truncated* to
   uint8 (``astype``), so 0.999 becomes 254. Everything below works on this uint8 image.
2. **Threshold level.** For a relative threshold theta and the ``max`` standard, the integer level
   is ``int(theta * max(u8))`` (float64 product, truncated). The ``percentile`` standard (PaS, Bae
   et al. 2020 Eq. 6) uses ``int(theta * percentile(u8, p))`` instead (numpy's linear percentile).
3. **Strictly greater.** The foreground is ``u8 > level`` (OpenCV THRESH_BINARY).
4. **Contours.** Every contour OpenCV's ``findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)`` finds:
   the outer border of every 8-connected foreground region *and* the border of every hole (a
   4-connected background region that does not reach the image edge). ``largest`` keeps the
   contour of largest ``contourArea``; ``multi`` keeps all of them (MaxBoxAccV2).
5. **Box of a contour.** ``x, y, w, h = boundingRect``; the box is ``(x, y, min(x + w, W - 1),
   min(y + h, H - 1))``: one pixel wider than the region's inclusive extent, clipped to the image.
   This off-by-one is the reference's and is kept on purpose.
6. **Empty foreground** (all-zero map, or level >= max): the single box ``(0, 0, 0, 0)``.
7. **IoU** counts pixels inclusively: areas ``(x1 - x0 + 1) * (y1 - y0 + 1)``; a non-positive
   union gives IoU 0. Ground-truth boxes are rescaled to the map size with float scaling followed
   by ``int()`` truncation of each coordinate.

The CAM paper's *released* box generator (``dt_box``, its steps and sources in
`camrepro.protocol` CAM_CODE_*) is a second, separate path: it is what the CAM paper's ILSVRC
numbers came from, and it differs from the text's "20 % of the max, largest region" in every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
from scipy import ndimage

from camrepro.errors import CamreproError
from camrepro.protocol import (
    CAM_CODE_DT_KEEP,
    CAM_CODE_EDGE,
    CAM_CODE_OVERLAP,
    CAM_CODE_THRESHOLDS,
    HEURISTIC_LOOSE_THRESHOLD,
    HEURISTIC_TIGHT_THRESHOLD,
    PAS_PERCENTILE,
)

Standard = Literal["max", "percentile"]
Strategy = Literal["largest", "multi"]
EMPTY_BOX = (0, 0, 0, 0)


class ScoremapError(CamreproError):
    """A score map is not a finite 2-D array in [0, 1]."""


def check_scoremap(scoremap: np.ndarray, name: str = "score map") -> None:
    """Raise ScoremapError (naming `name`) unless `scoremap` is a finite 2-D array in [0, 1]."""
    if not isinstance(scoremap, np.ndarray) or scoremap.ndim != 2:
        shape = getattr(scoremap, "shape", type(scoremap).__name__)
        raise ScoremapError(f"{name}: expected a 2-D array (height, width), got {shape}.")
    if not np.issubdtype(scoremap.dtype, np.floating):
        raise ScoremapError(f"{name}: expected floating-point values in [0, 1], got dtype {scoremap.dtype}.")
    if scoremap.size == 0:
        raise ScoremapError(
            f"{name}: the score map is empty (shape {scoremap.shape}); fix the map that produced it."
        )
    if not np.isfinite(scoremap).all():
        raise ScoremapError(f"{name}: contains NaN or infinite values; fix the map that produced it.")
    lo, hi = float(scoremap.min()), float(scoremap.max())
    if lo < 0 or hi > 1:
        raise ScoremapError(
            f"{name}: values must lie in [0, 1] (min {lo:g}, max {hi:g}); min-max normalise it first."
        )


def to_uint8(scoremap: np.ndarray, name: str = "score map") -> np.ndarray:
    """Convention 1: float64 * 255, truncated to uint8 (validated first)."""
    check_scoremap(scoremap, name)
    return (scoremap.astype(np.float64) * 255).astype(np.uint8)


def threshold_level(
    u8: np.ndarray, theta: float, standard: Standard = "max", percentile: float = PAS_PERCENTILE
) -> int:
    """Convention 2: the integer level for relative threshold `theta` under a threshold standard.

    ``max`` is the CAM paper's tau = theta * max (theta = 0.2 there); ``percentile`` is PaS,
    tau = theta * p-th percentile (Bae et al.: p = 90, theta = 0.35).
    """
    if standard == "max":
        reference = np.float64(u8.max())
    elif standard == "percentile":
        reference = np.float64(np.percentile(u8, percentile))
    else:
        raise ValueError(f"unknown threshold standard {standard!r}; use 'max' or 'percentile'")
    return int(np.float64(theta) * reference)


def _contour_box(contour: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x, y, w, h = cv2.boundingRect(contour)
    return (x, y, min(x + w, width - 1), min(y + h, height - 1))  # convention 5


def boxes_at_level(u8: np.ndarray, level: int, strategy: Strategy = "largest") -> np.ndarray:
    """Boxes of the foreground ``u8 > level`` (conventions 3-6), as an int64 array (n, 4).

    This is the straightforward OpenCV path: one threshold and one contour search. It is the
    reference the fast sweep in `camrepro.evaluator` is tested against, and what single-threshold
    protocols (the CAM paper's 20 %, PaS) use directly.
    """
    height, width = u8.shape
    fg = np.where(u8 > level, np.uint8(255), np.uint8(0))
    contours = cv2.findContours(fg, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
    if len(contours) == 0:
        return np.array([EMPTY_BOX], dtype=np.int64)
    if strategy == "largest":
        contours = [max(contours, key=cv2.contourArea)]  # first of equal areas, as the reference
    elif strategy != "multi":
        raise ValueError(f"unknown box strategy {strategy!r}; use 'largest' or 'multi'")
    return np.array([_contour_box(c, width, height) for c in contours], dtype=np.int64)


def scoremap_boxes(
    scoremap: np.ndarray,
    theta: float,
    standard: Standard = "max",
    strategy: Strategy = "largest",
    percentile: float = PAS_PERCENTILE,
) -> np.ndarray:
    """Boxes of one score map at one relative threshold: the whole box pipeline in one call."""
    u8 = to_uint8(scoremap)
    return boxes_at_level(u8, threshold_level(u8, theta, standard, percentile), strategy)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Convention 7: IoU of every box in `boxes_a` (n, 4) with every box in `boxes_b` (m, 4).

    Boxes against the convention (negative, or x1 < x0, y1 < y0) are an error, as in the reference's
    `check_box_convention` (wsolevaluation util.py:93-124): they would otherwise score a silent 0.
    """
    a = _checked_boxes(boxes_a)[:, None, :]
    b = _checked_boxes(boxes_b)[None, :, :]
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    degenerate = union <= 0
    return np.where(degenerate, 0.0, inter / np.where(degenerate, 1, union))


def _checked_boxes(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    bad = (boxes < 0).any(axis=1) | (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise ValueError(f"box {boxes[bad][0].tolist()} breaks the convention 0 <= x0 <= x1, y0 <= y1")
    return boxes


def resize_box(
    box: Sequence[int], image_size: tuple[int, int], target_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Convention 7: rescale an (x0, y0, x1, y1) box from image (w, h) to target (w, h), int()."""
    x0, y0, x1, y1 = map(float, box)
    tw, th = float(target_size[0]), float(target_size[1])
    iw, ih = float(image_size[0]), float(image_size[1])
    # Multiply first, then divide: the reference's order of float operations.
    return (int(x0 * tw / iw), int(y0 * th / ih), int(x1 * tw / iw), int(y1 * th / ih))


def center_box(width: int, height: int, fraction: float = 0.5) -> tuple[int, int, int, int]:
    """The center-box baseline: a box of `fraction` of the image side, centered (no CAM at all)."""
    bw, bh = round(width * fraction), round(height * fraction)
    x0, y0 = (width - bw) // 2, (height - bh) // 2
    return (x0, y0, x0 + bw - 1, y0 + bh - 1)


# The CAM paper's test-set heuristic (Table 3): tight and loose boxes for the top-1 and top-2
# classes, a loose box for the top-3 class; tight/loose thresholds and their sources: camrepro.protocol.


def heuristic_boxes(
    scoremaps_top3: Sequence[np.ndarray],
    tight_theta: float = HEURISTIC_TIGHT_THRESHOLD,
    loose_theta: float = HEURISTIC_LOOSE_THRESHOLD,
) -> list[tuple[int, tuple[int, int, int, int]]]:
    """The five (rank, box) guesses of the heuristic from the score maps of the top-3 classes.

    rank is the 0-based class rank the box is guessed with: tight and loose for ranks 0 and 1,
    loose for rank 2 — five guesses, scored like top-5 localization.
    """
    if len(scoremaps_top3) < 3:
        raise ValueError("the tight/loose heuristic needs the score maps of the top-3 classes")
    guesses = []
    for rank, scoremap in enumerate(scoremaps_top3[:3]):
        thetas = (tight_theta, loose_theta) if rank < 2 else (loose_theta,)
        for theta in thetas:
            box = scoremap_boxes(scoremap, theta, "max", "largest")[0]
            guesses.append((rank, tuple(int(v) for v in box)))
    return guesses


# --- The CAM paper's released box generator (dt_box.cpp); steps and sources: camrepro.protocol.
Rect = tuple[int, int, int, int]  # (x, y, w, h), OpenCV's


def code_heatmap_u8(heatmap: np.ndarray) -> np.ndarray:
    """A heat map divided by its max, as the 8-bit image the released code wrote (MATLAB's
    im2uint8 rounds and saturates: negatives, e.g. bicubic undershoot, become 0). A map with no
    positive value is all zero. The JPEG round trip is not repeated (OUR SIMPLIFICATION)."""
    m = np.asarray(heatmap, dtype=np.float64)
    top = m.max()
    if top <= 0:
        return np.zeros(m.shape, np.uint8)
    return np.floor(np.clip(m / top, 0, 1) * 255 + 0.5).astype(np.uint8)


def _dt_keep(fg: np.ndarray) -> np.ndarray:
    """dt.c dt_binary then `> 10`: distance to the nearest background pixel, scaled so its max is
    255 and rounded; pixels at more than 10 stay. No background (or no foreground): unchanged.

    The distance is exact Euclidean, as dt.c's Felzenszwalb transform (OpenCV's precise mask is the
    same algorithm, six times faster here than scipy's). Squared distances are integers, so the
    rounding test is done on them exactly: round(255 d / d_max) > k <=> 510^2 d^2 >= (2k + 1)^2 d_max^2.
    """
    if fg.all() or not fg.any():
        return fg
    squared = _squared_distances(fg)
    return 510**2 * squared >= (2 * CAM_CODE_DT_KEEP + 1) ** 2 * squared.max()


def _squared_distances(fg: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of each pixel to the nearest background pixel, exact (integers,
    as float64). OpenCV's float32 distances give their integer squares back below 2^22 (maps up to
    about 2,000 px); beyond, scipy's float64 transform does."""
    dist = cv2.distanceTransform(fg.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    squared = np.rint(np.square(dist, dtype=np.float64))
    if squared.max() >= 2**22:
        squared = np.rint(np.square(ndimage.distance_transform_edt(fg)))
    return squared


def dt_box_rects(u8: np.ndarray, thresholds: Sequence[int] = CAM_CODE_THRESHOLDS) -> list[Rect]:
    """Every contour's rect at every threshold, limited inside the edges, before sorting/merging."""
    height, width = u8.shape
    rects = []
    for t in thresholds:
        keep = _dt_keep(u8 > t)
        contours = cv2.findContours(keep.astype(np.uint8) * 255, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)[-2]
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            rects.append((
                min(max(x, 0), width - CAM_CODE_EDGE), min(max(y, 0), height - CAM_CODE_EDGE),
                min(max(w, 0), width - x - CAM_CODE_EDGE), min(max(h, 0), height - y - CAM_CODE_EDGE),
            ))  # fmt: skip
    return rects


def _big_overlap(a: Rect, b: Rect) -> bool:
    limit = int(max(a[2] * a[3], b[2] * b[3]) * CAM_CODE_OVERLAP)
    ox = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    oy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ox * oy > limit


def merge_rects(rects: Sequence[Rect]) -> list[Rect]:
    """Sort by area (largest first; ties keep their order: std::sort's is unspecified) and drop a
    rect overlapping an earlier one too much. As the released loop, the rect that slides into an
    erased slot is not compared with the current one (erase(j), then ++j)."""
    out = sorted(rects, key=lambda r: -r[2] * r[3])
    i = 0
    while i < len(out):
        j = i + 1
        while j < len(out):
            if _big_overlap(out[i], out[j]):
                del out[j]
            j += 1
        i += 1
    return out


def dt_box(u8: np.ndarray, thresholds: Sequence[int] = CAM_CODE_THRESHOLDS) -> np.ndarray:
    """The released generator's boxes of an 8-bit heat map, largest first, as (n, 4) int64
    ``[x, y, x + w, y + h]`` (the off-by-one of convention 5); (0, 4) when nothing is found."""
    rects = merge_rects(dt_box_rects(u8, thresholds))
    return np.array([(x, y, x + w, y + h) for x, y, w, h in rects], dtype=np.int64).reshape(-1, 4)


def five_box_heuristic(boxes_top3: Sequence[np.ndarray]) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Table 3 as the released script combined boxes (ILSVRC_evaluate_bbox.m:109-119, 137): boxes 1
    and 2 of the top-1 and top-2 classes, box 1 of the top-3 class, as (rank, box).

    A class with one box repeats it as its box 2 (OUR CHOICE: the script would stop there); a class
    with none guesses EMPTY_BOX."""
    if len(boxes_top3) < 3:
        raise ValueError("the five-box heuristic needs the boxes of the top-3 classes")
    guesses = []
    for rank, boxes in enumerate(boxes_top3[:3]):
        found = [tuple(int(v) for v in b) for b in np.asarray(boxes).reshape(-1, 4)] or [EMPTY_BOX]
        for k in range(2 if rank < 2 else 1):
            guesses.append((rank, found[min(k, len(found) - 1)]))
    return guesses
