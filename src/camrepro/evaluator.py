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

For the single-box strategy (largest contour: the original MaxBoxAcc and the CAM paper's box)
the kernel also sums, per region, two quantities that are additive over 2x2 pixel windows: the
area of the region's outer-border polygon (what ``cv2.contourArea`` measures, exact for a region
without holes) and its Euler number (which says whether it has holes). That decides OpenCV's
pick at almost every level; where a region with holes leaves it open, the candidates' exact
areas are measured by a flood fill of their boxes. No level needs OpenCV.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numba
import numpy as np

from camrepro.boxes import EMPTY_BOX, Strategy, boxes_at_level, iou_matrix, to_uint8
from camrepro.protocol import CAM_CURVE_INTERVAL, IOU_THRESHOLDS

NUM_LEVELS = 256


def cam_thresholds(interval: float = CAM_CURVE_INTERVAL) -> np.ndarray:
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
SIZE, X0, Y0, X1, Y1, EDGE, STATE, STAMP, AREA2, EULER4, START, POS, HOLEY = range(13)
FILLED2, FILLED_SIZE, FILLED_OK = range(13, 16)  # last exact outer area measured (see _area_bounds)
RECORD = 16

# Per 2x2 window of pixels (bits: 1 top-left, 2 top-right, 4 bottom-left, 8 bottom-right), what it
# adds to the region its foreground pixels belong to (all of a window's foreground pixels are
# 8-adjacent, so they are in one region):
# * AREA_2X: twice the area of the region's outer-border polygon inside the window (the polygon
#   runs through pixel centres): 3 pixels a half-cell triangle, 4 pixels the whole cell. Summed
#   over a hole-free region this is exactly 2 * cv2.contourArea of its outer contour.
# * EULER_4X: 4 x the Euler number (Gray's bit quads, 8-connected foreground): one pixel +1,
#   three -1, two diagonal -2. A region's Euler number is 1 - (its holes).
_POPCOUNT = np.array([bin(i).count("1") for i in range(16)])
AREA_2X = np.where(_POPCOUNT == 4, 2, np.where(_POPCOUNT == 3, 1, 0)).astype(np.int64)
EULER_4X = np.array(
    [1 if c == 1 else -1 if c == 3 else -2 if i in (0b1001, 0b0110) else 0 for i, c in enumerate(_POPCOUNT)],
    dtype=np.int64,
)


def _neighbourhood_deltas() -> tuple[np.ndarray, np.ndarray]:
    """AREA_2X and EULER_4X gained when a pixel joins, by which of its 8 neighbours are active.

    Neighbour bits follow the kernel's offsets: 0 TL, 1 T, 2 TR, 3 L, 4 R, 5 BL, 6 B, 7 BR. The
    pixel sits in four windows: as bottom-right of (TL, T, L), bottom-left of (T, TR, R),
    top-right of (L, BL, B) and top-left of (R, B, BR).
    """
    windows = [((0, 1, 3), 8), ((1, 2, 4), 4), ((3, 5, 6), 2), ((4, 6, 7), 1)]
    slots = {  # window bit of each neighbour (1 tl, 2 tr, 4 bl, 8 br), per window
        0: {0: 1, 1: 2, 3: 4}, 1: {1: 1, 2: 2, 4: 8}, 2: {3: 1, 5: 4, 6: 8}, 3: {4: 2, 6: 4, 7: 8},
    }  # fmt: skip
    area, euler = np.zeros(256, np.int64), np.zeros(256, np.int64)
    for mask in range(256):
        for w, (members, own_bit) in enumerate(windows):
            before = sum(slots[w][j] for j in members if mask >> j & 1)
            area[mask] += AREA_2X[before | own_bit] - AREA_2X[before]
            euler[mask] += EULER_4X[before | own_bit] - EULER_4X[before]
    return area, euler


JOIN_AREA_2X, JOIN_EULER_4X = _neighbourhood_deltas()


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


@numba.njit(cache=True, nogil=True, inline="always")
def _region_bits(rec, r, width, height, gt, cutoffs):  # noqa: ANN001, ANN202 (numba kernel)
    """Pass bits of a foreground region's box (convention 5: one pixel wider, clipped)."""
    ur = _U(r)
    return _pass_bits(
        rec[ur, X0],
        rec[ur, Y0],
        min(rec[ur, X1] + 1, width - 1),
        min(rec[ur, Y1] + 1, height - 1),
        gt,
        cutoffs,
    )


@numba.njit(cache=True, nogil=True)
def _filled_area2(parent, rec, r, stride, mark, stack, stamp):  # noqa: ANN001, ANN202 (numba kernel)
    """Twice the exact area inside region r's outer border (its pixels plus its holes).

    Flood the region's box, grown by one pixel, from its rim through pixels not in r
    (4-connected): what the flood cannot reach is inside the outer border. Then sum AREA_2X over
    the windows of that filled set. `mark` holds per-pixel stamps (no clearing between calls).
    """
    ur = _U(r)
    x0, y0, x1, y1 = rec[ur, X0] - 1, rec[ur, Y0] - 1, rec[ur, X1] + 1, rec[ur, Y1] + 1
    top = 0
    for y in range(y0, y1 + 1):  # seed the rim (never in r: it lies outside the region's box)
        for x in range(x0, x1 + 1):
            if y == y0 or y == y1 or x == x0 or x == x1:  # noqa: SIM109 (plain compares in numba)
                q = (y + 1) * stride + x + 1
                mark[_U(q)] = stamp
                stack[top] = q
                top += 1
    while top > 0:
        top -= 1
        q = stack[top]
        for d in (-stride, -1, 1, stride):
            nq = q + d
            yy = nq // stride - 1
            xx = nq - (yy + 1) * stride - 1
            if xx <= x0 or xx >= x1 or yy <= y0 or yy >= y1 or mark[_U(nq)] == stamp:
                continue
            pr = parent[_U(nq)]
            if pr >= 0 and _find(parent, pr) == r:
                continue
            mark[_U(nq)] = stamp
            stack[top] = nq
            top += 1
    area2 = 0
    for y in range(y0, y1):  # windows by their top-left pixel
        for x in range(x0, x1):
            q = (y + 1) * stride + x + 1
            bits = 0
            if mark[_U(q)] != stamp:
                bits |= 1
            if mark[_U(q + 1)] != stamp:
                bits |= 2
            if mark[_U(q + stride)] != stamp:
                bits |= 4
            if mark[_U(q + stride + 1)] != stamp:
                bits |= 8
            area2 += AREA_2X[bits]
    return area2


@numba.njit(cache=True, nogil=True, inline="always")
def _area_bounds(rec, r):  # noqa: ANN001, ANN202 (numba kernel)
    """(low, high) bounds of twice a region's outer-border area; equal for a hole-free region.

    With holes the area is at least the window sum and the last exact measure (the filled set
    only grows), and at most (w - 1) * (h - 1). While no merge and no new hole happened since the
    last measure, each pixel added since raises the area by at most 4 (in halves): one window
    step of at most a half-cell for each of its four windows.
    """
    ur = _U(r)
    if rec[ur, HOLEY] == 0:
        return rec[ur, AREA2], rec[ur, AREA2]
    low = max(rec[ur, AREA2], rec[ur, FILLED2])
    high = 2 * (rec[ur, X1] - rec[ur, X0]) * (rec[ur, Y1] - rec[ur, Y0])
    if rec[ur, FILLED_OK] == 1:
        high = min(high, rec[ur, FILLED2] + 4 * (rec[ur, SIZE] - rec[ur, FILLED_SIZE]))
    return low, high


@numba.njit(cache=True, nogil=True)
def _exact_area2(parent, rec, r, stride, mark, stack, stamp):  # noqa: ANN001, ANN202 (numba kernel)
    """Twice the exact outer-border area of region r (measured, or known); returns (area, stamp)."""
    ur = _U(r)
    low, high = _area_bounds(rec, r)
    if low == high:
        return low, stamp
    area = _filled_area2(parent, rec, r, stride, mark, stack, stamp)
    rec[ur, FILLED2] = area
    rec[ur, FILLED_SIZE] = rec[ur, SIZE]
    rec[ur, FILLED_OK] = 1
    return area, stamp + 1


@numba.njit(cache=True, nogil=True)
def _largest_region_bits(
    parent, rec, roots, n_roots, best, n_holey, width, height, gt, cutoffs, mark, stack, stamp
):  # noqa: ANN001, ANN202, E501
    """Pass bits of the box of the contour OpenCV's "largest contour" picks.

    OpenCV keeps the first contour of largest contourArea. Holes and nested regions never beat
    the region around them, so the pick is the region of largest outer-border area, and on a tie
    the one whose first pixel comes last in raster order (RETR_TREE lists top-level contours in
    reverse order of discovery). Window sums give the area of a hole-free region exactly; for a
    region with holes `_area_bounds` brackets it, and where the brackets leave the pick open (and
    the boxes in question score differently) the exact areas are measured by `_filled_area2`.
    `best` ranks first by (window-sum area, first pixel); `n_holey` counts regions with holes.
    Returns (bits, next stamp).
    """
    bits = _region_bits(rec, best, width, height, gt, cutoffs)
    if n_holey == 0 or (n_holey == 1 and rec[_U(best), HOLEY] == 1):
        return bits, stamp  # every other region's area is exact and ranks below best
    low, _ = _area_bounds(rec, best)
    start = rec[_U(best), START]
    open_pick = False
    for i in range(n_roots):
        r = roots[i]
        if r == best or rec[_U(r), HOLEY] == 0:
            continue  # hole-free regions are exact and ranked below best
        _, high = _area_bounds(rec, r)
        if (high > low or (high == low and rec[_U(r), START] > start)) and (
            _region_bits(rec, r, width, height, gt, cutoffs) != bits
        ):
            open_pick = True  # it might win, and its box would score differently
            break
    if not open_pick:
        return bits, stamp
    # Measure the leader first (its exact area can only raise the bar), then every region whose
    # bound still reaches it, and rank again.
    best_area, stamp = _exact_area2(parent, rec, best, width + 2, mark, stack, stamp)
    for i in range(n_roots):
        r = roots[i]
        ur = _U(r)
        if r == best or rec[ur, HOLEY] == 0:
            continue
        _, high = _area_bounds(rec, r)
        if high < best_area or (high == best_area and rec[ur, START] < rec[_U(best), START]):
            continue
        area, stamp = _exact_area2(parent, rec, r, width + 2, mark, stack, stamp)
        if area > best_area or (area == best_area and rec[ur, START] > rec[_U(best), START]):
            best, best_area = r, area
    return _region_bits(rec, best, width, height, gt, cutoffs), stamp


@numba.njit(cache=True, nogil=True)
def _region_sweep(u8, gt, cutoffs, foreground, largest, work, rec, order_work):  # noqa: ANN001, ANN202
    """One union-find pass over the pixels; returns (pass (256, K) bool, largest-box bits (256,)).

    foreground=True: levels t = 254..0, regions of ``u8 > t``, 8-connected, box per convention 5.
    Every region's box counts (multi-contour); with largest=True, the second output holds per
    level the pass bits of the largest contour's box (-1 where the foreground is empty).
    foreground=False: levels t = 0..254, regions of ``u8 <= t``, 4-connected; only regions off the
    image edge (holes) count, with the box of the hole's border.
    `work` (3, padded pixels), `rec` (padded pixels, RECORD) and `order_work` (5, pixels) are int32
    scratch reused across calls: fresh large arrays would cost more in page faults than the sweep.
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
    roots = order_work[4]
    for y in range(height):
        for x in range(width):
            v = u8[y, x]
            i = fill[v]
            order[i] = (y + 1) * stride + x + 1
            order_x[i] = x
            order_y[i] = y
            fill[v] += 1

    # One record per pixel, meaningful at roots (columns SIZE ... POS above). Keeping a region's
    # fields together matters: pixels of one value are scattered over the map.
    parent = work[0]  # -1: pixel not (yet) in the foreground/background
    parent[:n] = -1
    mark = work[1]  # flood-fill stamps (largest strategy)
    stack = work[2]
    stamp = 0
    if largest:
        mark[:n] = -1
    count = np.zeros(n_cut, np.int64)
    n_dirty = 0
    n_roots = 0
    best = -1  # largest strategy: the region ranking first by (AREA2, START), and its key
    best_area = -1
    best_start = -1
    n_holey = 0  # regions with holes
    passes = np.zeros((NUM_LEVELS, n_cut), np.bool_)
    largest_bits = np.full(NUM_LEVELS, -1, np.int64)
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
            # Join the regions of the active neighbours; a pixel with none starts a new region.
            # Only roots get a record written, so scattered pixels touch little memory.
            root = -1
            active = 0  # which neighbours are in the foreground/background already
            for j in range(offsets.shape[0]):
                r = parent[_U(p + offsets[j])]
                if r < 0:
                    continue
                active |= 1 << j
                if r == root:
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
                if largest:
                    rec[ur, FILLED2] = max(rec[ur, FILLED2], rec[uo, FILLED2])
                    rec[ur, FILLED_OK] = 0
                    rec[ur, AREA2] += rec[uo, AREA2]
                    rec[ur, EULER4] += rec[uo, EULER4]
                    rec[ur, START] = min(rec[ur, START], rec[uo, START])
                    last = roots[n_roots - 1]
                    roots[rec[uo, POS]] = last
                    rec[_U(last), POS] = rec[uo, POS]
                    n_roots -= 1
                    n_holey -= rec[uo, HOLEY]
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
                rec[up, AREA2] = 0
                rec[up, EULER4] = 0
                rec[up, START] = p
                rec[up, POS] = n_roots
                rec[up, HOLEY] = 0
                rec[up, FILLED2] = 0
                rec[up, FILLED_OK] = 0
                roots[n_roots] = p
                n_roots += 1
            else:
                ur = _U(root)
                rec[ur, SIZE] += 1
                rec[ur, X0] = min(rec[ur, X0], x)
                rec[ur, Y0] = min(rec[ur, Y0], y)
                rec[ur, X1] = max(rec[ur, X1], x)
                rec[ur, Y1] = max(rec[ur, Y1], y)
                rec[ur, EDGE] |= on_edge
                rec[ur, START] = min(rec[ur, START], p)
            if largest:  # the four windows around p gain a pixel
                rec[_U(root), AREA2] += JOIN_AREA_2X[active]
                rec[_U(root), EULER4] += JOIN_EULER_4X[active]
                if JOIN_EULER_4X[active] < 0:  # a new hole may enclose area: bound no longer holds
                    rec[_U(root), FILLED_OK] = 0
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
                bits = _region_bits(rec, r, width, height, gt, cutoffs)
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
        for k in range(n_cut):
            passes[t, k] = count[k] > 0
        if largest and n_roots > 0:
            # Areas only grow, so the leader can only change to a region that changed at this
            # level, unless the leader itself was absorbed or its key fell: then rank them all.
            full = best < 0 or parent[_U(best)] != best
            if not full:
                ub = _U(best)
                full = rec[ub, AREA2] == best_area and rec[ub, START] < best_start
            candidates = roots if full else dirty
            n_candidates = n_roots if full else n_dirty
            for i in range(n_candidates):
                r = candidates[i]
                ur = _U(r)
                if parent[ur] != r:
                    continue
                holey = 1 if rec[ur, EULER4] != 4 else 0
                n_holey += holey - rec[ur, HOLEY]
                rec[ur, HOLEY] = holey
                if (
                    best < 0
                    or parent[_U(best)] != best
                    or rec[ur, AREA2] > rec[_U(best), AREA2]
                    or (rec[ur, AREA2] == rec[_U(best), AREA2] and rec[ur, START] > rec[_U(best), START])
                ):
                    best = r
            best_area, best_start = rec[_U(best), AREA2], rec[_U(best), START]
            largest_bits[t], stamp = _largest_region_bits(
                parent, rec, roots, n_roots, best, n_holey, width, height, gt, cutoffs, mark, stack, stamp
            )
        n_dirty = 0
    return passes, largest_bits


_scratch = threading.local()


def _workspace(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-thread scratch arrays for `_region_sweep`, grown on demand and then reused."""
    padded, pixels = (height + 2) * (width + 2), height * width
    work = getattr(_scratch, "work", None)
    if work is None or work.shape[1] < padded or _scratch.order.shape[1] < pixels:
        _scratch.work = np.empty((3, padded), np.int32)
        _scratch.rec = np.empty((padded, RECORD), np.int32)
        _scratch.order = np.empty((5, pixels), np.int32)
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
    largest = strategy == "largest"
    if strategy not in ("largest", "multi"):
        raise ValueError(f"unknown box strategy {strategy!r}; use 'largest' or 'multi'")
    fg_pass, largest_bits = _region_sweep(u8, gt, cut, True, largest, work, rec, order)
    table = np.empty((NUM_LEVELS, len(cut)), dtype=bool)
    if not largest:
        bg_pass, _ = _region_sweep(u8, gt, cut, False, False, work, rec, order)
        table[:] = fg_pass | bg_pass
    else:
        table[:] = (largest_bits[:, None] >> np.arange(len(cut))) & 1 == 1
    table[top:] = empty_pass
    return table[np.asarray(levels, dtype=np.int64)]


def sweep_correct(
    scoremap: np.ndarray,
    gt_boxes: Sequence[Sequence[int]] | np.ndarray,
    thresholds: np.ndarray,
    iou_thresholds: Sequence[int] = IOU_THRESHOLDS,
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
    iou_thresholds: Sequence[int] = IOU_THRESHOLDS,
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
