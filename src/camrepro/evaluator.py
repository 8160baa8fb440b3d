"""The CAM-threshold sweep behind MaxBoxAcc/MaxBoxAccV2, fast and exact.

The reference evaluator (clovaai/wsolevaluation) thresholds each score map at every CAM
threshold (1000 of them at interval 0.001) and runs an OpenCV contour search each time: 30-50 ms
per 224x224 map. Two facts make that loop unnecessary:

* Thresholds act on the uint8 map through ``level = int(theta * max)``, so there are at most 256
  distinct foregrounds ``u8 > level`` per map, nested in each other.
* The boxes at a level are the bounding boxes of (a) the 8-connected foreground regions and (b)
  the holes, 4-connected background regions that do not reach the image edge (the border of a
  hole spans the hole's extent plus one pixel on each side). That is exactly the set of contours
  ``findContours(RETR_TREE)`` returns, which the tests check against OpenCV on random maps.

So one union-find pass over the pixels in decreasing value (foreground regions merging as the
level falls) and one in increasing value (background regions merging as it rises) give every
region's bounding box at every level in O(pixels). Each pass keeps, per IoU cutoff, how many
current boxes reach it, so a level "passes" a cutoff when that count is non-zero — all in one
compiled kernel (numba, GIL released, so maps are scored on all cores by threads).

For the single-box strategy (largest contour, the original MaxBoxAcc and the CAM paper's box) a
level with one foreground region needs no contour search: holes can never out-area the region's
outer border. Levels with several regions fall back to OpenCV, keeping the numbers identical.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numba
import numpy as np

from camrepro.boxes import EMPTY_BOX, Strategy, boxes_at_level, iou_matrix, to_uint8

NUM_LEVELS = 256


def cam_thresholds(interval: float = 0.001) -> np.ndarray:
    """The reference sweep ``np.arange(0, 1, interval)``, float64."""
    if not 0 < interval < 1:
        raise ValueError(f"CAM curve interval must be in (0, 1), got {interval}")
    return np.arange(0, 1, interval)


def threshold_levels(u8: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``int(theta * max(u8))`` for every theta (float64 product, truncated)."""
    return (np.asarray(thresholds, dtype=np.float64) * np.float64(u8.max())).astype(np.int64)


# Kernel notes: pixel indices are unsigned (numba then skips negative-index wrap-around checks,
# a 3x difference here) and a neighbour already pointing at the current root skips the find.
_U = numba.uint64
# Columns of the per-root record (see _region_sweep).
SIZE, X0, Y0, X1, Y1, EDGE, STATE, STAMP = range(8)


@numba.njit(cache=True, nogil=True, inline="always")
def _find(parent, x):  # noqa: ANN001, ANN202 (numba kernel)
    while parent[_U(x)] != x:
        grand = parent[_U(parent[_U(x)])]
        parent[_U(x)] = grand  # path halving
        x = grand
    return x


@numba.njit(cache=True, nogil=True)
def _pass_bits(x0, y0, x1, y1, gt, cutoffs):  # noqa: ANN001, ANN202 (numba kernel)
    """Bit k set when the box's best IoU over the GT boxes is >= cutoffs[k] (boxes.iou_matrix)."""
    best = 0.0
    area_a = (x1 - x0 + 1) * (y1 - y0 + 1)
    for g in range(gt.shape[0]):
        iw = min(x1, gt[g, 2]) - max(x0, gt[g, 0]) + 1
        ih = min(y1, gt[g, 3]) - max(y0, gt[g, 1]) + 1
        inter = max(iw, 0) * max(ih, 0)
        union = area_a + (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1) - inter
        iou = 0.0 if union <= 0 else inter / union
        best = max(best, iou)
    bits = 0
    for k in range(cutoffs.shape[0]):
        if best >= cutoffs[k]:
            bits |= 1 << k
    return bits


@numba.njit(cache=True, nogil=True)
def _region_sweep(u8, gt, cutoffs, foreground, work, rec, order_work):  # noqa: ANN001, ANN202 (numba kernel)
    """One union-find pass. Returns (pass (256, K) bool, regions per level, box of a lone region).

    foreground=True: levels t = 254..0, regions of ``u8 > t``, 8-connected, box per convention 5.
    foreground=False: levels t = 0..254, regions of ``u8 <= t``, 4-connected; only regions off the
    image edge (holes) count, with the box of the hole's border.
    `work` (padded pixels), `rec` (padded pixels, 8) and `order_work` (4, pixels) are int32 scratch
    reused across calls:
    fresh large arrays would cost more in page faults than the whole sweep.
    """
    height, width = u8.shape
    n_cut = cutoffs.shape[0]
    # Pixels live in a frame padded by one never-active pixel on each side, so neighbour lookups
    # need no bounds checks: pixel (x, y) has index (y + 1) * stride + x + 1.
    stride = width + 2
    n = (height + 2) * stride
    start = np.zeros(NUM_LEVELS + 1, np.int64)  # counting sort of pixels by value
    for y in range(height):
        for x in range(width):
            start[u8[y, x] + 1] += 1
    for v in range(NUM_LEVELS):
        start[v + 1] += start[v]
    fill = start.copy()
    order = order_work[0]
    order_x = order_work[1]  # coordinates kept: a division per pixel
    order_y = order_work[2]  # would cost more than the union-find itself
    dirty = order_work[3]
    for y in range(height):
        for x in range(width):
            v = u8[y, x]
            i = fill[v]
            order[i] = (y + 1) * stride + x + 1
            order_x[i] = x
            order_y[i] = y
            fill[v] += 1

    # One 32-byte record per pixel, meaningful at roots: size, box x0 y0 x1 y1, touches the image
    # edge, committed pass bits (-1: not counted), last level queued for re-scoring. Keeping a
    # region's fields on one cache line matters: pixels of one value are scattered over the map.
    parent = work  # -1: pixel not (yet) in the foreground/background
    parent[:n] = -1
    count = np.zeros(n_cut, np.int64)
    n_dirty = 0
    passes = np.zeros((NUM_LEVELS, n_cut), np.bool_)
    regions = np.zeros(NUM_LEVELS, np.int64)
    lone_box = np.full((NUM_LEVELS, 4), -1, np.int64)
    n_regions = 0
    first = -1
    if foreground:
        offsets = np.array([-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1])
    else:
        offsets = np.array([-stride, -1, 1, stride])

    for step in range(NUM_LEVELS - 1):
        # foreground: level t gains the pixels of value t + 1; background: gains value t.
        if foreground:
            t = NUM_LEVELS - 2 - step
            v = t + 1
        else:
            t = step
            v = t
        for idx in range(start[v], start[v + 1]):
            p = order[idx]
            x = order_x[idx]
            y = order_y[idx]
            on_edge = 1 if x == 0 or y == 0 or x == width - 1 or y == height - 1 else 0
            if first < 0:
                first = p
            # Join the regions of the active neighbours; a pixel with none starts a new region.
            # Only roots get a record written, so scattered pixels touch little memory.
            root = -1
            for j in range(offsets.shape[0]):
                r = parent[_U(p + offsets[j])]
                if r < 0 or r == root:
                    continue
                other = _find(parent, r)
                if other == root:
                    continue
                if root < 0:
                    root = other
                    continue
                if rec[_U(other), SIZE] > rec[_U(root), SIZE]:
                    root, other = other, root
                ur, uo = _U(root), _U(other)
                parent[uo] = root
                rec[ur, SIZE] += rec[uo, SIZE]
                rec[ur, X0] = min(rec[ur, X0], rec[uo, X0])
                rec[ur, Y0] = min(rec[ur, Y0], rec[uo, Y0])
                rec[ur, X1] = max(rec[ur, X1], rec[uo, X1])
                rec[ur, Y1] = max(rec[ur, Y1], rec[uo, Y1])
                rec[ur, EDGE] |= rec[uo, EDGE]
                if rec[uo, STATE] >= 0:
                    for k in range(n_cut):
                        if rec[uo, STATE] & (1 << k):
                            count[k] -= 1
                    rec[uo, STATE] = -1
                n_regions -= 1
            if root < 0:
                root = p
                up = _U(p)
                rec[up, SIZE] = 1
                rec[up, X0] = x
                rec[up, X1] = x
                rec[up, Y0] = y
                rec[up, Y1] = y
                rec[up, EDGE] = on_edge
                rec[up, STATE] = -1
                rec[up, STAMP] = -1
                n_regions += 1
            else:
                ur = _U(root)
                rec[ur, SIZE] += 1
                rec[ur, X0] = min(rec[ur, X0], x)
                rec[ur, Y0] = min(rec[ur, Y0], y)
                rec[ur, X1] = max(rec[ur, X1], x)
                rec[ur, Y1] = max(rec[ur, Y1], y)
                rec[ur, EDGE] |= on_edge
            parent[_U(p)] = root
            if rec[_U(root), STAMP] != t:
                rec[_U(root), STAMP] = t
                dirty[n_dirty] = root
                n_dirty += 1
        for i in range(n_dirty):
            r = dirty[i]
            ur = _U(r)
            if parent[ur] != r:
                continue
            if foreground:
                bits = _pass_bits(
                    rec[ur, X0],
                    rec[ur, Y0],
                    min(rec[ur, X1] + 1, width - 1),
                    min(rec[ur, Y1] + 1, height - 1),
                    gt,
                    cutoffs,
                )
            elif rec[ur, EDGE] != 0:
                bits = 0
            else:
                bits = _pass_bits(
                    rec[ur, X0] - 1,
                    rec[ur, Y0] - 1,
                    min(rec[ur, X1] + 2, width - 1),
                    min(rec[ur, Y1] + 2, height - 1),
                    gt,
                    cutoffs,
                )
            if rec[ur, STATE] >= 0:
                for k in range(n_cut):
                    if rec[ur, STATE] & (1 << k):
                        count[k] -= 1
            for k in range(n_cut):
                if bits & (1 << k):
                    count[k] += 1
            rec[ur, STATE] = bits
        n_dirty = 0
        for k in range(n_cut):
            passes[t, k] = count[k] > 0
        regions[t] = n_regions
        if foreground and n_regions == 1:
            ur = _U(_find(parent, first))
            lone_box[t, SIZE] = rec[ur, X0]
            lone_box[t, X0] = rec[ur, Y0]
            lone_box[t, Y0] = min(rec[ur, X1] + 1, width - 1)
            lone_box[t, X1] = min(rec[ur, Y1] + 1, height - 1)
    return passes, regions, lone_box


_scratch = threading.local()


def _workspace(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-thread scratch arrays for `_region_sweep`, grown on demand and then reused."""
    padded, pixels = (height + 2) * (width + 2), height * width
    work = getattr(_scratch, "work", None)
    if work is None or work.shape[0] < padded or _scratch.order.shape[1] < pixels:
        _scratch.work = np.empty(padded, np.int32)
        _scratch.rec = np.empty((padded, 8), np.int32)
        _scratch.order = np.empty((4, pixels), np.int32)
    return _scratch.work, _scratch.rec, _scratch.order


def _as_gt(gt_boxes: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    gt = np.ascontiguousarray(np.asarray(gt_boxes, dtype=np.int64).reshape(-1, 4))
    if len(gt) == 0:
        raise ValueError("an image needs at least one ground-truth box to be scored")
    return gt


def level_passes(
    u8: np.ndarray,
    gt_boxes: Sequence[Sequence[int]] | np.ndarray,
    cutoffs: Sequence[float],
    levels: np.ndarray,
    strategy: Strategy = "multi",
) -> np.ndarray:
    """For each level in `levels`: does the best box there reach each IoU cutoff? (len, K) bool."""
    gt = _as_gt(gt_boxes)
    cut = np.ascontiguousarray(np.asarray(cutoffs, dtype=np.float64))
    if len(cut) > 30:
        raise ValueError("at most 30 IoU cutoffs at once")
    u8 = np.ascontiguousarray(u8, dtype=np.uint8)
    top = int(u8.max())
    empty_pass = iou_matrix(np.array([EMPTY_BOX]), gt).max() >= cut  # convention 6
    work, rec, order = _workspace(*u8.shape)
    fg_pass, regions, lone_box = _region_sweep(u8, gt, cut, True, work, rec, order)
    table = np.empty((NUM_LEVELS, len(cut)), dtype=bool)
    if strategy == "multi":
        bg_pass, _, _ = _region_sweep(u8, gt, cut, False, work, rec, order)
        table[:] = fg_pass | bg_pass
    elif strategy == "largest":
        for t in np.unique(levels):
            if t < top and regions[t] == 1:
                table[t] = iou_matrix(lone_box[t], gt).max() >= cut
            elif t < top:  # several regions: OpenCV decides which contour is the largest
                table[t] = iou_matrix(boxes_at_level(u8, int(t), "largest"), gt).max() >= cut
    else:
        raise ValueError(f"unknown box strategy {strategy!r}; use 'largest' or 'multi'")
    table[top:] = empty_pass
    return table[np.asarray(levels, dtype=np.int64)]


def sweep_correct(
    scoremap: np.ndarray,
    gt_boxes: Sequence[Sequence[int]] | np.ndarray,
    thresholds: np.ndarray,
    iou_thresholds: Sequence[int] = (30, 50, 70),
    strategy: Strategy = "multi",
) -> np.ndarray:
    """(len(iou_thresholds), len(thresholds)) bool: is the map's box right at each CAM threshold?

    IoU thresholds are percentages; a box is right when IoU >= iou / 100, as in the reference.
    """
    u8 = to_uint8(scoremap)
    cutoffs = [iou / 100 for iou in iou_thresholds]
    return level_passes(u8, gt_boxes, cutoffs, threshold_levels(u8, thresholds), strategy).T


def reference_sweep_correct(
    scoremap: np.ndarray,
    gt_boxes: Sequence[Sequence[int]] | np.ndarray,
    thresholds: np.ndarray,
    iou_thresholds: Sequence[int] = (30, 50, 70),
    strategy: Strategy = "multi",
) -> np.ndarray:
    """`sweep_correct` the straightforward way: one threshold and contour search per CAM threshold.

    Kept as the executable specification: tests and bench/evaluator_speed.py compare against it.
    """
    u8 = to_uint8(scoremap)
    gt = _as_gt(gt_boxes)
    cutoffs = np.array([iou / 100 for iou in iou_thresholds])
    top = np.max(u8)
    per_threshold = [boxes_at_level(u8, int(theta * top), strategy) for theta in thresholds]
    # One IoU computation over every box of every threshold, then the best box per threshold.
    ious = iou_matrix(np.concatenate(per_threshold), gt).max(axis=1)
    ends = np.cumsum([len(b) for b in per_threshold])
    best = np.maximum.reduceat(ious, np.concatenate([[0], ends[:-1]]))
    return best[None, :] >= cutoffs[:, None]
