"""camrepro.metrics.Evaluator: the one per-image accumulation behind `evaluate` and `evaluate-scoremaps`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from camrepro.metrics import Evaluator


def _two_blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 20x20 map: the object (a 6x6 GT box) scored 0.5, a bigger false blob scored 1.0."""
    scoremap = np.zeros((20, 20))
    scoremap[2:8, 2:8] = 0.5
    scoremap[10:20, 10:20] = 1.0
    mask = np.zeros((20, 20), np.uint8)
    mask[2:8, 2:8] = 1
    return scoremap, np.array([[2, 2, 7, 7]]), mask


def test_largest_contour_misses_where_every_contour_finds_the_object_and_pxap_by_hand():
    scoremap, gt, mask = _two_blobs()
    evaluator = Evaluator(0.1, (30, 50, 70), pxap=True)
    evaluator.accumulate("a", scoremap, gt, mask)
    result = evaluator.compute()
    # The largest contour is always the false blob; every contour includes the object's box
    # (2, 2, 8, 8), IoU 36/49, while the object is in the foreground: u8 127 > int(theta * 255), theta <= 0.4.
    assert result["largest"]["max_box_acc"] == {"30": 0.0, "50": 0.0, "70": 0.0}
    assert result["multi"]["box_accuracy"]["70"] == [100.0] * 5 + [0.0] * 5
    assert result["multi"]["max_box_acc_mean"] == 100.0
    assert result["multi"]["best_cam_threshold"]["50"] == 0.0
    # Ranked by score: 100 background pixels at 1.0, then the 36 object pixels: AP = 36 / 136.
    assert result["pxap"] == pytest.approx(100 * 36 / 136)


def test_images_count_alike_in_any_order_and_from_several_threads():
    rng = np.random.default_rng(3)
    images = []
    for n in range(12):
        m = rng.uniform(0, 1, (24, 30)) ** 3
        x0, y0 = rng.integers(0, 15, 2)
        images.append((f"i{n}", m, np.array([[x0, y0, x0 + 10, y0 + 8]]), (m > 0.5).astype(np.uint8)))
    ordered = Evaluator(0.02, pxap=True)
    for image in images:
        ordered.accumulate(*image)
    threaded = Evaluator(0.02, pxap=True)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda image: threaded.accumulate(*image), images[::-1]))
    expected = ordered.compute()
    assert expected["multi"]["images"] == 12 and 0 < expected["multi"]["max_box_acc"]["30"] < 100
    assert threaded.compute() == expected


def test_an_image_twice_or_a_mask_that_does_not_fit_the_request_is_refused():
    scoremap, gt, mask = _two_blobs()
    evaluator = Evaluator(0.1, strategies=("multi",))
    evaluator.accumulate("a.jpg", scoremap, gt)
    with pytest.raises(ValueError, match="'a.jpg' was accumulated twice"):
        evaluator.accumulate("a.jpg", scoremap, gt)
    with pytest.raises(ValueError, match="'b.jpg': a mask was given, PxAP was not asked for"):
        evaluator.accumulate("b.jpg", scoremap, gt, mask)
    with pytest.raises(ValueError, match="'c.jpg': PxAP needs its mask"):
        Evaluator(0.1, pxap=True).accumulate("c.jpg", scoremap, gt)
    assert evaluator.compute()["multi"]["images"] == 1 and "pxap" not in evaluator.compute()
