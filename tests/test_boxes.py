"""Boxes from score maps: hand-computed expectations on small maps (the reference conventions)."""

import numpy as np
import pytest

from camrepro.boxes import (
    ScoremapError,
    boxes_at_level,
    center_box,
    code_heatmap_u8,
    dt_box,
    dt_box_rects,
    five_box_heuristic,
    heuristic_boxes,
    iou_matrix,
    merge_rects,
    resize_box,
    scoremap_boxes,
    threshold_level,
    to_uint8,
)


def boxes(m, theta, strategy="largest", standard="max"):
    return sorted(tuple(int(v) for v in b) for b in scoremap_boxes(m, theta, standard, strategy))


def test_uint8_quantisation_truncates_and_level_is_int_of_theta_times_max():
    u8 = to_uint8(np.array([[0.999, 0.5], [1.0, 0.0039]]))
    assert u8.tolist() == [[254, 127], [255, 0]]
    assert threshold_level(u8, 0.2) == 51  # 0.2 * 255 = 51.000000000000004 -> 51
    assert threshold_level(u8, 0.9) == 229  # 229.5 -> 229


def test_unimodal_box_is_one_pixel_wider_than_the_region_and_threshold_is_strict():
    m = np.zeros((5, 6))
    m[1:4, 2:5] = 0.5  # u8 127
    m[2, 3] = 1.0  # u8 255
    # level 51: the 3x3 block, x 2..4, y 1..3 -> (x, y, x + w, y + h) = (2, 1, 5, 4)
    assert boxes(m, 0.2) == [(2, 1, 5, 4)]
    # level int(0.6 * 255) = 153: only the peak pixel
    assert boxes(m, 0.6) == [(3, 2, 4, 3)]
    # strictly greater: at level 127 the 127-valued block is background
    assert boxes_at_level(to_uint8(m), 127).tolist() == [[3, 2, 4, 3]]
    assert boxes_at_level(to_uint8(m), 126).tolist() == [[2, 1, 5, 4]]


def test_box_is_clipped_to_the_last_column_and_row():
    m = np.zeros((5, 6))
    m[3:5, 4:6] = 1.0  # touches the right and bottom edges
    assert boxes(m, 0.5) == [(4, 3, 5, 4)]


def test_multimodal_largest_area_versus_every_region():
    m = np.zeros((5, 6))
    m[0:2, 0:2] = 1.0  # 2x2: contour area 1
    m[3:5, 3:6] = 0.8  # 2x3: contour area 2 (u8 204)
    assert boxes(m, 0.2) == [(3, 3, 5, 4)]  # the larger region wins though its peak is lower
    assert boxes(m, 0.2, "multi") == [(0, 0, 2, 2), (3, 3, 5, 4)]
    assert boxes(m, 0.9, "multi") == [(0, 0, 2, 2)]  # level 229 > 204


def test_ring_with_a_hole_gives_the_hole_border_box_too():
    m = np.zeros((8, 8))
    m[1:6, 1:6] = 1.0
    m[2:4, 2:4] = 0.0  # 2x2 hole at x, y in 2..3: its border spans 1..4
    assert boxes(m, 0.5) == [(1, 1, 6, 6)]
    assert boxes(m, 0.5, "multi") == [(1, 1, 5, 5), (1, 1, 6, 6)]


def test_all_zero_map_gives_the_empty_box_and_constant_map_the_whole_image():
    assert boxes(np.zeros((4, 7)), 0.2) == [(0, 0, 0, 0)]
    assert boxes(np.zeros((4, 7)), 0.2, "multi") == [(0, 0, 0, 0)]
    assert boxes(np.full((4, 7), 0.5), 0.2) == [(0, 0, 6, 3)]
    # a level at or above the max leaves no foreground
    assert boxes_at_level(to_uint8(np.full((4, 7), 0.5)), 127).tolist() == [[0, 0, 0, 0]]


def test_percentile_standard_uses_theta_times_the_percentile():
    m = np.zeros((10, 10))
    m[0, 0] = 1.0  # one hot pixel, max 255
    m[2:8, 2:8] = 0.4  # u8 102: 63 zeros, 36 x 102, one 255; the 90th percentile is 102
    u8 = to_uint8(m)
    assert threshold_level(u8, 0.35, "percentile", 90) == 35  # 0.35 * 102 = 35.7
    assert boxes(m, 0.35, standard="percentile") == [(2, 2, 8, 8)]  # PaS keeps the body
    assert boxes(m, 0.5, standard="max") == [(0, 0, 1, 1)]  # max standard keeps only the hot pixel


def test_percentile_standard_interpolates_between_ranks():
    m = np.zeros((3, 10))
    m[1] = (np.arange(0, 100, 10) + 0.5) / 255  # u8 row 0, 10, ..., 90; rows 0 and 2 zero
    # 30 values sorted: 21 zeros, then 10, 20, ..., 90. The 90th percentile sits at rank
    # 0.9 * 29 = 26.1, between 60 (rank 26) and 70 (rank 27): 61. Level int(0.35 * 61) = 21.
    u8 = to_uint8(m)
    assert threshold_level(u8, 0.35, "percentile", 90) == 21
    assert boxes(m, 0.35, standard="percentile") == [(3, 1, 9, 2)]  # u8 > 21: x 3..9 of row 1
    assert threshold_level(u8, 0.35) == 31  # max standard: int(0.35 * 90) = int(31.5)
    assert boxes(m, 0.35) == [(4, 1, 9, 2)]  # u8 > 31: x 4..9


@pytest.mark.parametrize(
    "bad, needle",
    [
        (np.array([[0.1, np.nan]]), "NaN"),
        (np.array([[0.1, 1.5]]), "[0, 1]"),
        (np.array([[-0.1, 0.5]]), "[0, 1]"),
        (np.zeros((2, 2, 2)), "2-D"),
        (np.zeros((2, 2), dtype=np.uint8), "floating"),
        (np.zeros((0, 48)), "empty"),
    ],
)
def test_bad_score_maps_are_refused_with_a_clear_message(bad, needle):
    with pytest.raises(ScoremapError, match=None) as err:
        scoremap_boxes(bad, 0.2)
    assert needle in str(err.value)


def test_iou_counts_pixels_inclusively():
    assert iou_matrix([[0, 0, 1, 1]], [[2, 2, 3, 3]]).tolist() == [[0.0]]  # disjoint
    assert iou_matrix([[0, 0, 9, 9]], [[20, 0, 29, 9]]).tolist() == [[0.0]]
    assert iou_matrix([[0, 0, 1, 1]], [[1, 1, 2, 2]])[0, 0] == pytest.approx(1 / 7)  # one shared pixel
    assert iou_matrix([[3, 4, 3, 4]], [[3, 4, 3, 4]])[0, 0] == 1.0  # a single pixel is area 1
    assert iou_matrix([[0, 0, 9, 9]], [[0, 0, 10, 10]])[0, 0] == 100 / 121


def test_gt_boxes_are_rescaled_with_int_truncation():
    assert resize_box((10, 20, 30, 40), (100, 200), (224, 224)) == (22, 22, 67, 44)
    assert resize_box((0, 0, 99, 199), (100, 200), (224, 224)) == (0, 0, 221, 222)


def test_center_box_baseline():
    assert center_box(224, 224, 0.5) == (56, 56, 167, 167)
    assert center_box(10, 6, 1.0) == (0, 0, 9, 5)


def test_heuristic_gives_tight_and_loose_for_two_classes_and_loose_for_the_third():
    m = np.zeros((20, 20))
    m[4:16, 4:16] = 0.3  # broad body (u8 76): above 20 % of max, below 50 %
    m[8:12, 8:12] = 1.0  # core
    guesses = heuristic_boxes([m, m, m])
    assert [rank for rank, _ in guesses] == [0, 0, 1, 1, 2]
    tight, loose = guesses[0][1], guesses[1][1]
    assert tight == (8, 8, 12, 12) and loose == (4, 4, 16, 16)
    assert guesses[4][1] == loose


def test_box_area_percent_counts_inclusive_pixels():
    from camrepro.metrics import box_area_percent

    assert box_area_percent([(0, 0, 63, 63)], 64, 64) == pytest.approx(100.0)
    assert box_area_percent([(0, 0, 31, 31), (0, 0, 63, 31)], 64, 64) == pytest.approx((25.0 + 50.0) / 2)
    assert box_area_percent([(10, 10, 10, 10)], 10, 10) == pytest.approx(1.0)  # one pixel of 100


# --- The reference evaluator's own test vectors (clovaai/wsolevaluation at 96f4b88,
# evaluation_test.py), as an independent oracle. Maps and expected values are theirs; the
# reference sweeps its CAM thresholds np.arange(0, 1, 0.2) and keeps the largest contour.
REFERENCE_THRESHOLDS = np.arange(0, 1, 0.2)


def reference_sweep_boxes(m):
    return [scoremap_boxes(m, theta, "max", "largest").tolist() for theta in REFERENCE_THRESHOLDS]


# evaluation_test.py:101-115 (test_compute_bboxes_from_scoremaps_unimodal); array[y][x]
REFERENCE_UNIMODAL = np.array(
    [[0.0, 0.0, 0.0, 0.0, 0.0],
     [0.0, 0.4, 0.4, 0.4, 0.6],
     [0.0, 0.4, 1.0, 0.8, 0.6],
     [0.0, 0.4, 0.4, 0.4, 0.6]]
)  # fmt: skip
REFERENCE_UNIMODAL_BOXES = [[1, 1, 4, 3], [1, 1, 4, 3], [2, 1, 4, 3], [2, 2, 4, 3], [2, 2, 3, 3]]
# evaluation_test.py:117-131 (test_compute_bboxes_from_scoremaps_multimodal)
REFERENCE_MULTIMODAL = np.array(
    [[0.4, 0.0, 0.2, 0.2, 0.2],
     [0.4, 0.4, 0.0, 0.4, 0.0],
     [0.0, 0.0, 0.0, 0.4, 0.0],
     [1.0, 0.6, 0.8, 0.2, 0.2]]
)  # fmt: skip
REFERENCE_MULTIMODAL_BOXES = [[0, 0, 4, 3], [0, 0, 2, 2], [0, 3, 3, 3], [2, 3, 3, 3], [0, 3, 1, 3]]


def test_reference_vectors_unimodal_map():
    assert reference_sweep_boxes(REFERENCE_UNIMODAL) == [[b] for b in REFERENCE_UNIMODAL_BOXES]


def test_reference_vectors_multimodal_map():
    assert reference_sweep_boxes(REFERENCE_MULTIMODAL) == [[b] for b in REFERENCE_MULTIMODAL_BOXES]


def test_reference_vectors_all_zero_map():
    # evaluation_test.py:93-99 (test_compute_bboxes_from_scoremaps_degenerate)
    assert reference_sweep_boxes(np.zeros((3, 3))) == [[[0, 0, 0, 0]]] * 5


def test_reference_vectors_nan_map_is_refused():
    # evaluation_test.py:133-138 (test_compute_bboxes_from_scoremaps_nan): the reference raises
    # ValueError; here the same refusal is a ScoremapError
    with pytest.raises(ScoremapError, match="NaN"):
        scoremap_boxes(np.full((3, 3), np.nan), 0.2)


def test_reference_vectors_box_resize():
    # evaluation_test.py:79-84 (test_resize_bbox_case): (w, h) 10 x 20 -> 35 x 10
    assert resize_box((1, 2, 4, 3), (10, 20), (35, 10)) == (3, 1, 14, 1)
    # evaluation_test.py:86-91 (test_resize_bbox_degenerate): same size, one-pixel box
    assert resize_box((1, 2, 1, 2), (3, 3), (3, 3)) == (1, 2, 1, 2)


def test_reference_vectors_iou():
    # evaluation_test.py:37-46: all-zero boxes are one pixel each, so every pair has IoU 1
    ious = iou_matrix(np.zeros((3, 4), dtype=np.int64), np.zeros((5, 4), dtype=np.int64))
    assert ious.shape == (3, 5) and (ious == 1.0).all()
    # evaluation_test.py:57-67: two disjoint boxes against themselves give the identity
    pair = [[1, 1, 3, 3], [4, 4, 5, 5]]
    assert (iou_matrix(pair, pair) == np.eye(2)).all()
    # evaluation_test.py:69-77: a realistic overlap, 8 / 27
    assert iou_matrix([[1, 2, 5, 6]], [[3, 1, 4, 5]])[0, 0] == pytest.approx(8 / 27, abs=1e-6)


@pytest.mark.parametrize("bad", [[1, 1, 0, 0], [2, 1, 1, 3], [-1, 0, 2, 2]])
def test_reference_vectors_iou_refuses_boxes_against_the_convention(bad):
    # evaluation_test.py:48-55 (test_calculate_multiple_iou_box_convention) and util.py:93-124
    # (check_box_convention): an inverted or negative box is an error, not an IoU of 0
    with pytest.raises(ValueError, match="0 <= x0 <= x1, y0 <= y1"):
        iou_matrix(np.array([bad]), np.array([[1, 1, 2, 2]]))
    with pytest.raises(ValueError, match="0 <= x0 <= x1, y0 <= y1"):
        iou_matrix(np.array([[1, 1, 2, 2]]), np.array([bad]))


# The CAM paper's released box generator (dt_box.cpp, ILSVRC_evaluate_bbox.m). Every expected box
# is worked out by hand from the released code's steps (see the comments).


def test_dt_step_erodes_thin_parts_and_every_threshold_adds_its_contours():
    h, w = 100, 80
    u8 = np.zeros((h, w), np.uint8)
    u8[10:70, 10:70] = 200  # A: 60x60 block, distance to background peaks at 30 (rows/cols 39, 40)
    u8[80:83, 2:5] = 60  # B: 3x3 block, only above threshold 20; its centre is at distance 2
    u8[5, 20:41] = 60  # a 1-pixel line: distance 1 everywhere
    # dt_binary scales distances by 255 / 30 = 8.5: distance 1 -> round(8.5) = 9 <= 10, dropped;
    # distance 2 -> 17 > 10, kept. So A loses its 1-pixel border ring (rows/cols 11..68 stay),
    # B shrinks to its centre pixel (3, 81), the line vanishes.
    # Contours: threshold 20 -> A', B'; 100 -> A'; 110 -> A'. Rects (x, y, w, h):
    # A' = (11, 11, 58, 58) (x limit 80 - 5, w limit 80 - 11 - 5 = 64: unclipped), B' = (3, 81, 1, 1).
    assert sorted(dt_box_rects(u8)) == sorted([(11, 11, 58, 58)] * 3 + [(3, 81, 1, 1)])
    # Sorted by area: A', A', A', B'. Merge: i=0, j=1 overlaps (3364 > 1682): erased, j moves on
    # to 2 and so skips the A' that slid into slot 1; A' vs B' do not overlap. i=1: A' vs B' no.
    # Left: A', A', B' -> boxes [x, y, x + w, y + h] (ILSVRC_evaluate_bbox.m:97).
    assert dt_box(u8).tolist() == [[11, 11, 69, 69], [11, 11, 69, 69], [3, 81, 4, 82]]


def test_rects_are_limited_five_pixels_inside_the_right_and_bottom_edges():
    u8 = np.zeros((20, 30), np.uint8)
    u8[12:20, 20:30] = 255  # touches the right and bottom edges; max distance 8 (to the left/top)
    # distance-1 pixels: round(255 / 8) = 32 > 10, so nothing is eroded (dmax < 25.5).
    # boundingRect (20, 12, 10, 8): x = LIMIT(20, 0, 25) = 20, y = LIMIT(12, 0, 15) = 12,
    # w = LIMIT(10, 0, 30 - 20 - 5) = 5, h = LIMIT(8, 0, 20 - 12 - 5) = 3.
    assert set(dt_box_rects(u8)) == {(20, 12, 5, 3)}


def test_merge_drops_a_smaller_rect_overlapping_more_than_half_the_larger():
    big, inside, apart = (0, 0, 10, 10), (0, 0, 8, 7), (20, 20, 7, 7)  # areas 100, 56, 49
    assert merge_rects([big, inside, apart]) == [big, apart]  # overlap 56 > int(100 * 0.5)
    half = (0, 0, 10, 5)  # overlap 50 is not > 50: kept
    assert merge_rects([big, half]) == [big, half]


def test_merge_skips_the_rect_after_an_erased_one_as_the_released_loop_does():
    big, second, third = (0, 0, 10, 10), (0, 0, 9, 9), (0, 0, 8, 8)  # overlaps 81 and 64 > 50
    # erase(j) then ++j: `third` slides into the erased slot and is never compared with `big`.
    assert merge_rects([big, second, third]) == [big, third]
    # sorted by area (largest first) before merging, whatever the input order
    assert merge_rects([third, big, second]) == [big, third]


def test_heatmap_is_the_map_over_its_max_rounded_to_uint8():
    m = np.array([[0.0, 1.0], [2.0, 4.0]])
    # / max -> 0, .25, .5, 1 -> * 255 -> 0, 63.75, 127.5, 255 -> rounded (im2uint8): 0, 64, 128, 255
    assert code_heatmap_u8(m).tolist() == [[0, 64], [128, 255]]
    assert code_heatmap_u8(np.zeros((2, 3))).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_all_zero_heatmap_gives_no_box():
    assert dt_box(np.zeros((10, 10), np.uint8)).shape == (0, 4)


def test_five_box_heuristic_takes_two_boxes_of_the_top_two_and_one_of_the_third():
    a1, a2, b1, b2, c1, c2 = ((i, i, i + 1, i + 1) for i in range(6))
    per_class = [np.array([a1, a2, (9, 9, 9, 9)]), np.array([b1, b2]), np.array([c1, c2])]
    guesses = five_box_heuristic(per_class)
    assert guesses == [(0, a1), (0, a2), (1, b1), (1, b2), (2, c1)]
    # a class with one box: its second guess repeats it (the released script would stop there)
    single = five_box_heuristic([np.array([a1]), np.array([b1, b2]), np.array([c1])])
    assert single == [(0, a1), (0, a1), (1, b1), (1, b2), (2, c1)]


def test_dt_step_keeps_the_pixels_scipys_exact_distance_transform_keeps():
    """The distance step against an independent exact Euclidean transform (scipy's), on blobs of
    every size up to the stand-ins' 320 px, touching the edges or not."""
    import cv2
    from scipy import ndimage

    from camrepro.boxes import _dt_keep

    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(8, 330, 2))
        smooth = cv2.GaussianBlur(rng.random((h, w)), (0, 0), float(rng.uniform(1, 20)))
        fg = smooth > np.quantile(smooth, rng.uniform(0.1, 0.97))
        dist = ndimage.distance_transform_edt(fg)
        expected = np.floor(dist * (255.0 / dist.max()) + 0.5) > 10 if 0 < fg.sum() < fg.size else fg
        assert np.array_equal(_dt_keep(fg), expected)


def test_squared_distances_are_exact_on_maps_over_2000_px():
    """A photo's map is resized to the photo (some ImageNet photos are 3,000 px and more), where a
    float32 distance no longer gives its integer square back."""
    from camrepro.boxes import _squared_distances

    fg = np.ones((40, 3100), bool)
    fg[0, 0] = False  # the one background pixel: the squared distance of (y, x) is y^2 + x^2
    yy, xx = np.mgrid[0:40, 0:3100]
    assert np.array_equal(_squared_distances(fg), (yy**2 + xx**2).astype(np.float64))
