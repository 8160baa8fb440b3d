"""The report's figures: which images they show and which maps they draw, on a real extraction."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from camrepro.config import load_config
from camrepro.extract import extract
from camrepro.figures import Extraction, cam_gallery, extraction_folder, gallery_picks, side_by_side
from camrepro.layout import AS_IS_SEED
from camrepro.plan import build_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def extracted(tiny_cub, tiny_trained, tmp_path_factory):
    out = extract(tiny_trained, tiny_cub, "test", tmp_path_factory.mktemp("ext"), size=64, batch_size=16,
                  saliency=True, progress=False)  # fmt: skip
    return Extraction(out, tiny_cub)


def test_gallery_picks_half_right_half_wrong_one_per_class_first():
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    top1 = np.array([0, 0, 1, 0, 0, 2, 1, 1])  # right: 0, 1, 2, 5; wrong: 3, 4, 6, 7
    assert gallery_picks(labels, top1, 4) == [0, 2, 3, 4]  # classes 0, 1 right; classes 1, 2 wrong
    assert gallery_picks(labels, top1, 6) == [0, 2, 5, 3, 4, 6]  # every class once before a repeat
    # too few wrong ones: the right ones fill the gallery, and the other way round
    assert gallery_picks(labels, labels, 3) == [0, 2, 4]
    assert gallery_picks(labels, (labels + 1) % 4, 3) == [0, 2, 4]


def _overlay(ax) -> np.ndarray:  # noqa: ANN001
    """The map drawn over the image in one panel (the second image of the axis)."""
    return np.asarray(ax.images[1].get_array())


def test_the_gallery_marks_right_and_wrong_and_overlays_the_gt_class_cam(extracted):
    labels, top1 = extracted.arrays["labels"], extracted.arrays["top5"][:, 0]
    picks = gallery_picks(labels, top1, 8)
    fig = cam_gallery(extracted, "t")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == len(picks)
    for ax, n in zip(panels, picks, strict=True):
        right = int(top1[n]) == int(labels[n])
        assert ax.get_title().splitlines()[1].startswith("RIGHT" if right else "WRONG")
        assert ax.get_title().splitlines()[0] == f"GT: {extracted.class_name(labels[n])}"
        np.testing.assert_allclose(_overlay(ax), extracted.scoremap(n, 0))  # the GT class, slot 0
    plt.close(fig)


def test_side_by_side_rows_show_the_same_images_matched_by_id(extracted):
    # the second row's extraction holds the same images in reverse order
    reordered = Extraction.__new__(Extraction)
    reordered.__dict__ = dict(extracted.__dict__)
    order = np.arange(len(extracted.ids))[::-1]
    reordered.arrays = {k: (v[order] if len(v) == len(order) else v) for k, v in extracted.arrays.items()}
    reordered.ids = [extracted.ids[n] for n in order]
    fig = side_by_side([("CAM", extracted, "cams"), ("Backprop", reordered, "saliency")], "t", count=3)
    top, bottom = fig.axes[:3], fig.axes[3:6]
    for a, b in zip(top, bottom, strict=True):
        np.testing.assert_array_equal(a.images[0].get_array(), b.images[0].get_array())  # same image
        n = next(i for i in range(len(extracted.ids)) if np.array_equal(extracted.image(i), a.images[0].get_array()))
        np.testing.assert_allclose(_overlay(b), extracted.scoremap(n, 0, "saliency"))
    plt.close(fig)


def test_a_network_used_as_it_is_is_read_from_its_one_folder_whatever_the_seeds():
    """The originals have one instance (AS_IS_SEED's folder): a config whose seeds do not start at
    0 must still find it (else the Backprop figure would silently vanish)."""
    config = load_config(ROOT / "config" / "config.yaml") | {"seeds": [1, 2], "seeds_by_experiment": {},
                                                                 "seeds_by_model": {}}
    plan = build_plan(config)
    original = next(r for r in plan.runs.values() if r.as_is)
    trained = next(r for r in plan.runs.values() if not r.as_is and plan.extraction_of(r.id))
    assert extraction_folder(plan, plan.extraction_of(original.id), 1).name == f"s{AS_IS_SEED}"
    assert extraction_folder(plan, plan.extraction_of(trained.id), 1).name == "s1"
