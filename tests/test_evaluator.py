"""The fast CAM-threshold sweep gives the straightforward loop's numbers exactly; metrics by hand."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from scipy import ndimage

from camrepro.data.metadata import SplitMeta, write_split
from camrepro.evaluator import cam_thresholds, reference_sweep_correct, sweep_correct
from camrepro.metrics import (
    BoxAccuracySweep,
    PxAP,
    classification_errors,
    gt_known_and_top1_loc,
    localization_errors,
)
from camrepro.scoremaps import evaluate_scoremaps
from test_boxes import (
    REFERENCE_MULTIMODAL,
    REFERENCE_MULTIMODAL_BOXES,
    REFERENCE_UNIMODAL,
    REFERENCE_UNIMODAL_BOXES,
)


def smooth_map(rng, height, width):
    small = rng.random((rng.integers(2, 7), rng.integers(2, 7)))
    m = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip((m - m.min()) / (m.max() - m.min() + 1e-12), 0, 1)


def noisy_map(rng, height, width):
    m = 0.6 * smooth_map(rng, height, width) + 0.4 * rng.random((height, width))
    return (m - m.min()) / (m.max() - m.min())


def random_boxes(rng, height, width):
    out = []
    for _ in range(rng.integers(1, 4)):
        x0, x1 = sorted(rng.integers(0, width, 2))
        y0, y1 = sorted(rng.integers(0, height, 2))
        out.append((x0, y0, x1, y1))
    return out


def contour_boxes_by_regions(binary):
    """The claim the fast sweep rests on: RETR_TREE contours = 8-connected regions + enclosed holes."""
    height, width = binary.shape
    out = []
    labels, _ = ndimage.label(binary, structure=np.ones((3, 3)))
    for sy, sx in ndimage.find_objects(labels):
        out.append((sx.start, sy.start, sx.stop - sx.start, sy.stop - sy.start))
    labels, _ = ndimage.label(~binary)  # 4-connected background
    for sy, sx in ndimage.find_objects(labels):
        if sy.start == 0 or sx.start == 0 or sy.stop == height or sx.stop == width:
            continue  # reaches the edge: not a hole
        out.append((sx.start - 1, sy.start - 1, sx.stop - sx.start + 2, sy.stop - sy.start + 2))
    return sorted(out)


def test_opencv_contours_are_exactly_the_regions_and_holes():
    rng = np.random.default_rng(0)
    for _ in range(500):
        h, w = rng.integers(1, 24, 2)
        binary = rng.random((h, w)) < rng.uniform(0.2, 0.8)
        contours = cv2.findContours(binary.astype(np.uint8) * 255, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
        assert sorted(cv2.boundingRect(c) for c in contours) == contour_boxes_by_regions(binary)


@pytest.mark.parametrize("strategy", ["multi", "largest"])
@pytest.mark.parametrize("kind", ["smooth", "noisy"])
def test_fast_sweep_equals_the_straightforward_loop(strategy, kind):
    rng = np.random.default_rng(1 if kind == "smooth" else 2)
    make = smooth_map if kind == "smooth" else noisy_map
    thresholds = cam_thresholds(0.01)
    for _ in range(60):
        h, w = rng.integers(3, 48, 2)
        m, gt = make(rng, h, w), random_boxes(rng, h, w)
        fast = sweep_correct(m, gt, thresholds, (30, 50, 70), strategy)
        slow = reference_sweep_correct(m, gt, thresholds, (30, 50, 70), strategy)
        np.testing.assert_array_equal(fast, slow)


def test_fast_sweep_on_full_size_maps_and_the_fine_interval():
    rng = np.random.default_rng(3)
    thresholds = cam_thresholds(0.001)
    for make in (smooth_map, noisy_map):
        m = make(rng, 224, 224)
        gt = [(40, 30, 180, 200), (100, 100, 130, 140)]
        for strategy in ("multi", "largest"):
            np.testing.assert_array_equal(
                sweep_correct(m, gt, thresholds, (30, 50, 70), strategy),
                reference_sweep_correct(m, gt, thresholds, (30, 50, 70), strategy),
            )


def test_sweep_edge_cases_zero_constant_and_single_pixel_maps():
    thresholds = cam_thresholds(0.05)
    gt = [(0, 0, 0, 0)]
    for m in (np.zeros((6, 6)), np.full((6, 6), 0.7), np.eye(6)[:, ::-1] * 1.0):
        for strategy in ("multi", "largest"):
            np.testing.assert_array_equal(
                sweep_correct(m, gt, thresholds, (30, 50, 70), strategy),
                reference_sweep_correct(m, gt, thresholds, (30, 50, 70), strategy),
            )
    # the all-zero map's (0,0,0,0) box matches a one-pixel GT box at the origin
    assert sweep_correct(np.zeros((6, 6)), gt, thresholds).all()


@pytest.mark.parametrize("which", ["unimodal", "multimodal"])
def test_fast_sweep_finds_the_reference_vectors_boxes(which):
    """The reference's own vectors (clovaai/wsolevaluation evaluation_test.py:101-115 unimodal,
    :117-131 multimodal; see tests/test_boxes.py) through the fast sweep: with the reference's
    box at threshold i as the only GT box and IoU 100 % required, the sweep must call exactly the
    thresholds whose reference box is that box right."""
    m, expected = {
        "unimodal": (REFERENCE_UNIMODAL, REFERENCE_UNIMODAL_BOXES),
        "multimodal": (REFERENCE_MULTIMODAL, REFERENCE_MULTIMODAL_BOXES),
    }[which]
    thresholds = cam_thresholds(0.2)  # np.arange(0, 1, 0.2), the reference test's sweep
    for box in expected:
        correct = sweep_correct(m, [box], thresholds, (100,), "largest")
        assert correct.tolist() == [[other == box for other in expected]], box


def test_max_box_acc_by_hand(tmp_path):
    """Two 20x20 images: the map of the first covers its 10x10 GT box, the second's misses."""
    meta = SplitMeta(
        image_ids=["a.jpg", "b.jpg"],
        labels={"a.jpg": 0, "b.jpg": 1},
        sizes={"a.jpg": (20, 20), "b.jpg": (40, 40)},  # b's boxes are halved to the 20x20 map
        boxes={"a.jpg": [(5, 5, 14, 14)], "b.jpg": [(0, 0, 9, 9)]},
    )
    write_split(tmp_path / "meta", "test", meta)
    maps = tmp_path / "maps"
    maps.mkdir()
    a = np.zeros((20, 20))
    a[5:15, 5:15] = 1.0  # box (5,5,15,15): IoU 100/121 = 0.83 with GT, at every threshold
    b = np.zeros((20, 20))
    b[12:20, 12:20] = 1.0  # far from b's GT box (0,0,4,4)
    np.save(maps / "a.jpg.npy", a)
    np.save(maps / "b.npy", b)  # the extension-less name is found too
    out = tmp_path / "result.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "camrepro",
            "evaluate-scoremaps",
            "--scoremap-root",
            str(maps),
            "--metadata-root",
            str(tmp_path / "meta" / "test"),
            "--cam-curve-interval",
            "0.1",
            "--multi-contour",
            "--out",
            str(out),
            "-q",
        ],
        check=True,
    )
    result = json.loads(out.read_text())
    assert result["max_box_acc"] == {"30": 50.0, "50": 50.0, "70": 50.0}
    assert result["max_box_acc_mean"] == 50.0
    assert result["box_accuracy"]["50"] == [50.0] * 10
    assert len(result["cam_thresholds"]) == 10


def test_evaluate_scoremaps_equals_the_reference_loop_and_reports_missing_maps(tmp_path):
    rng = np.random.default_rng(4)
    ids = [f"img{i}.jpg" for i in range(12)]
    meta = SplitMeta(
        image_ids=ids,
        labels=dict.fromkeys(ids, 0),
        sizes={i: (int(rng.integers(50, 300)), int(rng.integers(50, 300))) for i in ids},
        boxes={},
    )
    for i in ids:
        w, h = meta.sizes[i]
        meta.boxes[i] = random_boxes(rng, h, w)
    write_split(tmp_path, "val", meta)
    maps = tmp_path / "maps"
    maps.mkdir()
    thresholds = cam_thresholds(0.01)
    expected = BoxAccuracySweep(thresholds, (30, 50, 70), "multi")
    from camrepro.boxes import resize_box

    for n, i in enumerate(ids):
        m = (smooth_map if n % 2 else noisy_map)(rng, 32, 32)
        np.save(maps / f"{i}.npy", m)
        gt = [resize_box(b, meta.sizes[i], (32, 32)) for b in meta.boxes[i]]
        expected.add(reference_sweep_correct(m, gt, thresholds, (30, 50, 70), "multi"))
    got = evaluate_scoremaps(maps, tmp_path / "val", 0.01, multi_contour=True, workers=2, progress=False)
    assert got["box_accuracy"] == expected.result()["box_accuracy"]
    (maps / "img3.jpg.npy").unlink()
    with pytest.raises(Exception, match="img3.jpg.npy not found"):
        evaluate_scoremaps(maps, tmp_path / "val", 0.01, progress=False)


def test_nan_score_map_names_the_file(tmp_path):
    meta = SplitMeta(
        image_ids=["x.jpg"], labels={"x.jpg": 0}, sizes={"x.jpg": (4, 4)}, boxes={"x.jpg": [(0, 0, 1, 1)]}
    )
    write_split(tmp_path, "val", meta)
    (tmp_path / "maps").mkdir()
    np.save(tmp_path / "maps" / "x.jpg.npy", np.full((4, 4), np.nan))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "camrepro",
            "evaluate-scoremaps",
            "--scoremap-root",
            str(tmp_path / "maps"),
            "--metadata-root",
            str(tmp_path / "val"),
            "--out",
            str(tmp_path / "r.json"),
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "x.jpg.npy" in proc.stderr and "NaN" in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_pxap_by_hand():
    thresholds = cam_thresholds(0.01)
    perfect = PxAP(thresholds)
    perfect.add(np.array([[0.9, 0.1], [0.6, 0.3]]), np.array([[1, 0], [1, 0]]))
    assert perfect.value() == pytest.approx(100.0)
    # one foreground pixel scored 0.8 below one background pixel scored 0.9: precision 1/2 at recall 1
    flipped = PxAP(thresholds)
    flipped.add(np.array([[0.8, 0.9]]), np.array([[1, 0]]))
    assert flipped.value() == pytest.approx(50.0)
    # ignored pixels (255) count for neither side
    ignored = PxAP(thresholds)
    ignored.add(np.array([[0.8, 0.9]]), np.array([[1, 255]]))
    assert ignored.value() == pytest.approx(100.0)


def test_classification_and_localization_errors_by_hand():
    topk = np.array([[3, 1, 2, 0, 4], [0, 3, 1, 2, 4], [4, 3, 2, 1, 0]])
    labels = np.array([3, 3, 9])
    assert classification_errors(topk, labels) == {
        "top1": pytest.approx(200 / 3),
        "top5": pytest.approx(100 / 3),
    }
    gt = [np.array([[0, 0, 9, 9]])] * 3
    good, bad = (0, 0, 9, 9), (50, 50, 60, 60)
    guesses = [
        [(3, bad), (1, good)],  # right class with a wrong box: no
        [(0, good), (3, good)],  # right class at rank 2 with a right box: top-5 only
        [(4, good), (9, good)],
    ]
    errors = localization_errors(guesses, [3, 3, 9], gt)
    assert errors == {"top1": 100.0, "top5": pytest.approx(100 / 3)}
    loc = gt_known_and_top1_loc([good, bad, good], np.array([True, False, False]), gt)
    assert loc == {"gt_known_loc": pytest.approx(200 / 3), "top1_loc": pytest.approx(100 / 3)}


def _window_sums(region, table):
    """Sum a per-2x2-window table over the windows of a binary region (padded by one pixel)."""
    m = np.pad(region.astype(np.int64), 1)
    bits = m[:-1, :-1] | (m[:-1, 1:] << 1) | (m[1:, :-1] << 2) | (m[1:, 1:] << 3)
    return int(table[bits].sum())


def test_window_sums_give_opencvs_contour_area_and_the_holes():
    """The largest-contour shortcut: per region, twice the outer-border area is the sum of AREA_2X
    over its windows when it has no holes, and EULER_4X sums to 4 * (1 - holes)."""
    from camrepro.evaluator import AREA_2X, EULER_4X

    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(800):
        h, w = rng.integers(1, 18, 2)
        binary = rng.random((h, w)) < rng.uniform(0.2, 0.8)
        labels, n = ndimage.label(binary, structure=np.ones((3, 3)))
        contours, hierarchy = cv2.findContours(
            binary.astype(np.uint8) * 255, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE
        )[-2:]
        for i in range(1, n + 1):
            region = labels == i
            holes = ndimage.label(ndimage.binary_fill_holes(region) & ~region)[1]
            assert _window_sums(region, EULER_4X) == 4 * (1 - holes)
            if holes == 0:
                first = np.flatnonzero(region.ravel())[0]
                outer = [c for c, hh in zip(contours, hierarchy[0], strict=True)
                         if hh[3] < 0 or hierarchy[0][hh[3]][3] >= 0  # an outer border: top level or inside a hole
                         if c[0, 0, 1] * w + c[0, 0, 0] == first]  # fmt: skip
                assert 2 * cv2.contourArea(outer[0]) == _window_sums(region, AREA_2X)
                checked += 1
    assert checked > 1000


@pytest.mark.parametrize("strategy", ["largest", "multi"])
def test_fast_sweep_on_few_level_maps_full_of_ties(strategy):
    """Maps with 3-5 distinct values: many equal-area regions, so OpenCV's tie order matters."""
    rng = np.random.default_rng(6)
    thresholds = cam_thresholds(0.02)
    for _ in range(300):
        h, w = rng.integers(2, 16, 2)
        m = rng.integers(0, rng.integers(2, 5), (h, w)) / 4.0
        gt = random_boxes(rng, h, w)
        np.testing.assert_array_equal(
            sweep_correct(m, gt, thresholds, (30, 50, 70), strategy),
            reference_sweep_correct(m, gt, thresholds, (30, 50, 70), strategy),
        )


def test_ground_truth_masks_as_score_maps_score_perfectly_on_a_synthetic_dataset(tmp_path):
    """End to end on a prepared dataset: masks.txt, mask root from dataset.json, PxAP and boxes."""
    from camrepro.data.metadata import DatasetInfo, read_split
    from camrepro.data.synthetic import generate

    dataset = tmp_path / "cub"
    generate("synthetic-cub", 3, dataset, scale=0.1, progress=False)
    meta = read_split(dataset, "test")
    info = DatasetInfo.load(dataset)
    maps = tmp_path / "maps"
    for image_id in meta.image_ids:
        mask = cv2.imread(str(dataset / info.mask_root / meta.masks[image_id][0]), cv2.IMREAD_GRAYSCALE)
        scoremap = cv2.resize((mask > 127).astype(np.float64), (224, 224), interpolation=cv2.INTER_NEAREST)
        (maps / image_id).parent.mkdir(parents=True, exist_ok=True)
        np.save(maps / f"{image_id}.npy", scoremap)
    result = evaluate_scoremaps(maps, dataset / "test", 0.01, multi_contour=False, progress=False)
    assert result["pxap"] == pytest.approx(100.0)
    assert result["max_box_acc"]["50"] == 100.0
    assert result["images"] == len(meta.image_ids)


def test_center_baseline_finds_centered_boxes_and_misses_corner_ones():
    from camrepro.metrics import center_baseline, center_gaussian_scoremap

    m = center_gaussian_scoremap(40, 60)
    assert m.max() == 1.0 and m.min() == 0.0 and m[20, 30] > 0.99
    centered = [np.array([[15, 10, 44, 29]])]  # a centered 30x20 box
    corner = [np.array([[0, 0, 9, 6]])]
    assert center_baseline(centered, 0.01, size=(40, 60))["max_box_acc"]["70"] == 100.0
    assert center_baseline(corner, 0.01, size=(40, 60))["max_box_acc"]["30"] == 0.0


def test_ignore_masks_round_trip_and_take_pixels_out_of_pxap(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    fg = np.zeros((8, 8), np.uint8)
    fg[:4, :4] = 255
    ignore = np.zeros((8, 8), np.uint8)
    ignore[6:, 6:] = 255
    cv2.imwrite(str(masks / "a_fg.png"), fg)
    cv2.imwrite(str(masks / "a_ignore.png"), ignore)
    scoremap = np.where(fg > 0, 0.9, 0.1)
    scoremap[7, 7] = 1.0  # a background pixel scored above the object, inside the ignore region
    (tmp_path / "maps").mkdir()
    np.save(tmp_path / "maps" / "a.jpg.npy", scoremap)
    for name, ignore_map in (("with", {"a.jpg": "a_ignore.png"}), ("without", {})):
        meta = SplitMeta(["a.jpg"], {"a.jpg": 0}, {"a.jpg": (8, 8)}, {"a.jpg": [(0, 0, 3, 3)]},
                         {"a.jpg": ["a_fg.png"]}, ignore_map)  # fmt: skip
        write_split(tmp_path / name, "val", meta)
        from camrepro.data.metadata import read_split

        assert read_split(tmp_path / name, "val").ignore == ignore_map
        result = evaluate_scoremaps(
            tmp_path / "maps", tmp_path / name / "val", 0.01, mask_root=masks, progress=False
        )
        if name == "with":
            assert result["pxap"] == pytest.approx(100.0)
        else:
            assert result["pxap"] < 100.0
