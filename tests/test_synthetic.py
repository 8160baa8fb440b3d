"""The embedded synthetic benchmark: determinism, exact annotations, the class model, CLI errors."""

from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from camrepro.data.metadata import DatasetInfo, read_split
from camrepro.data.synthetic import PRESETS, REAL_BOX_STATS, SIZE_RANGE, class_specs, generate
from camrepro.errors import CamreproError


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_imagenet(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "imnet"
    generate("synthetic-imagenet", 7, out, scale=0.25, progress=False)
    return out


def test_same_seed_gives_identical_bytes(small_imagenet, tmp_path):
    again = tmp_path / "again"
    generate("synthetic-imagenet", 7, again, scale=0.25, progress=False)
    a, b = _tree_digest(small_imagenet), _tree_digest(again)
    assert len(a) > 100 and a == b


def test_other_seed_gives_other_images_of_the_same_classes(small_imagenet, tmp_path):
    other = tmp_path / "other"
    generate("synthetic-imagenet", 8, other, scale=0.25, progress=False)
    a, b = _tree_digest(small_imagenet), _tree_digest(other)
    jpegs = [k for k in a if k.endswith(".jpg")]
    assert sum(a[k] == b.get(k) for k in jpegs) == 0
    assert DatasetInfo.load(other).classes == DatasetInfo.load(small_imagenet).classes


def test_boxes_lie_inside_images_and_tightly_cover_their_masks(small_imagenet):
    info = DatasetInfo.load(small_imagenet)
    assert info.num_classes >= 20 and info.splits == ["train", "val", "test"]
    multi = 0
    for split in info.splits:
        meta = read_split(small_imagenet, split)
        parts = {}
        for line in (small_imagenet / split / "parts.txt").read_text().splitlines():
            image_id, *coords = line.split(",")
            parts.setdefault(image_id, []).append(tuple(map(int, coords)))
        for image_id in meta.image_ids:
            w, h = meta.sizes[image_id]
            assert SIZE_RANGE[0] <= max(w, h) <= SIZE_RANGE[1] and min(w, h) >= SIZE_RANGE[0] // 2
            img = cv2.imread(str(small_imagenet / "images" / image_id))
            assert img.shape[:2] == (h, w)
            boxes, masks = meta.boxes[image_id], meta.masks[image_id]
            assert len(boxes) == len(masks) == len(parts[image_id])
            multi += len(boxes) > 1
            for (x0, y0, x1, y1), mask_rel, (px0, py0, px1, py1) in zip(
                boxes, masks, parts[image_id], strict=True
            ):
                assert 0 <= x0 <= x1 <= w - 1 and 0 <= y0 <= y1 <= h - 1
                m = cv2.imread(str(small_imagenet / "masks" / mask_rel), cv2.IMREAD_GRAYSCALE) > 0
                ys, xs = np.nonzero(m)
                # the box covers the mask, and is tight: every edge touches the mask
                assert (xs.min(), ys.min(), xs.max(), ys.max()) == (x0, y0, x1, y1)
                # the discriminative part lies within the object and is small
                assert x0 <= px0 <= px1 <= x1 and y0 <= py0 <= py1 <= y1
                assert (px1 - px0 + 1) * (py1 - py0 + 1) < 0.5 * (x1 - x0 + 1) * (y1 - y0 + 1)
    assert multi > 0, "some synthetic-imagenet images should hold several objects"


def test_fine_grained_classes_differ_only_in_the_part_colour_and_pattern():
    specs = class_specs(PRESETS["synthetic-cub"])
    assert len({s.shape for s in specs}) == 1
    assert len({(s.color, s.pattern) for s in specs}) == len(specs)


def test_imagenet_stand_in_classes_differ_in_two_of_the_parts_traits_at_least():
    """Coarse-grained: any two classes differ in the part's colour or pattern, and a colour's
    classes differ in pattern and shape too (not in shape alone, which the networks did not read)."""
    coarse = class_specs(PRESETS["synthetic-imagenet"])
    assert len({(s.color, s.pattern) for s in coarse}) == len(coarse) == 24
    for a, b in itertools.combinations(coarse, 2):
        assert sum(x != y for x, y in ((a.shape, b.shape), (a.color, b.color), (a.pattern, b.pattern))) >= 2


def test_transfer_presets_have_their_own_classes():
    transfer = [p for p in PRESETS.values() if p.name not in {"synthetic-imagenet", "synthetic-cub"}]
    assert len(transfer) == 8
    names = {p.name: [s.name for s in class_specs(p)] for p in transfer}
    assert len({tuple(v) for v in names.values()}) == 8


def _cli(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m camrepro data synthetic ARGS` as a user would."""
    cmd = [sys.executable, "-m", "camrepro", "data", "synthetic", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_unknown_preset_is_a_clear_cli_error(tmp_path):
    with pytest.raises(CamreproError, match="unknown synthetic preset 'nope'.*synthetic-cub"):
        generate("nope", 0, tmp_path / "x")
    res = _cli("--preset", "nope", "--out", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "unknown synthetic preset 'nope'" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "x").exists()


def test_cli_generates_a_dataset(tmp_path):
    res = _cli(
        "--preset", "synthetic-event8", "--seed", "1", "--scale", "0.2", "-q", "--out", str(tmp_path / "ev")
    )
    assert res.returncode == 0, res.stderr
    assert read_split(tmp_path / "ev", "test").image_ids


def test_a_per_split_scale_adds_training_images_and_keeps_the_others(small_imagenet, tmp_path):
    """scale: {train: k} multiplies only the train split; every image of the smaller dataset is in the
    larger one, byte for byte (image j of a class and split is drawn from its own seed)."""
    more = tmp_path / "more"
    generate("synthetic-imagenet", 7, more, scale={"train": 0.5, "val": 0.25, "test": 0.25}, progress=False)
    small, large = _tree_digest(small_imagenet), _tree_digest(more)
    classes = DatasetInfo.load(more).num_classes
    assert len(read_split(small_imagenet, "train").image_ids) == 8 * classes  # round(30 x 0.25) a class
    assert len(read_split(more, "train").image_ids) == 15 * classes  # round(30 x 0.5)
    for split in ("val", "test"):
        assert read_split(more, split).image_ids == read_split(small_imagenet, split).image_ids
    images = [k for k in small if k.startswith("images/")]
    assert images and all(large[k] == small[k] for k in images)
    assert DatasetInfo.load(more).params["scale"] == {"train": 0.5, "val": 0.25, "test": 0.25}


def test_a_split_left_out_of_a_per_split_scale_keeps_the_presets_count(tmp_path):
    out = tmp_path / "ev"
    generate("synthetic-event8", 0, out, scale={"train": 0.1}, progress=False)
    per_class = PRESETS["synthetic-event8"].per_class
    classes = DatasetInfo.load(out).num_classes
    assert len(read_split(out, "train").image_ids) == max(1, round(per_class["train"] * 0.1)) * classes
    assert len(read_split(out, "test").image_ids) == per_class["test"] * classes


@pytest.mark.parametrize(
    ("scale", "needle"),
    [({"training": 2}, r"scale: no split 'training' in synthetic-imagenet \(its splits: train, val, test\)"),
     ({"train": 0}, r"scale of split train must be positive, got 0"),
     (-1.0, r"scale must be positive, got -1.0")],
)  # fmt: skip
def test_a_bad_scale_is_refused_before_anything_is_written(tmp_path, scale, needle):
    with pytest.raises(CamreproError, match=needle):
        generate("synthetic-imagenet", 0, tmp_path / "x", scale=scale, progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_takes_a_per_split_scale(tmp_path):
    res = _cli("--preset", "synthetic-event8", "--seed", "1", "--scale", "train=0.2,test=0.1", "-q",
               "--out", str(tmp_path / "ev"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert DatasetInfo.load(tmp_path / "ev").params["scale"] == {"train": 0.2, "test": 0.1}
    bad = _cli("--preset", "synthetic-event8", "--scale", "train=two", "-q", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--scale" in bad.stderr and "train=2" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_part_shapes_stay_distinct_under_rotation():
    """Classes differ by their part's shape, and parts are drawn at a random rotation: no two shapes
    may be (nearly) rotations of each other, as a square and a 45-degree diamond, or a hexagon and a
    disc, would be (best-rotation IoU 0.92 and 0.86)."""
    from camrepro.data.synthetic import SHAPES, _shape_mask

    rotations = np.linspace(0, 2 * np.pi, 73)
    for first, second in itertools.combinations(SHAPES, 2):
        a = _shape_mask(first, 101, 101, 50, 50, 30, 0.0)
        best = max(
            (a & b).sum() / (a | b).sum()
            for b in (_shape_mask(second, 101, 101, 50, 50, 30, r) for r in rotations)
        )
        assert best < 0.8, f"{first} and {second} overlap with IoU {best:.2f} at some rotation"


def _ks_distance(sample: list[float], quantiles: list[float]) -> float:
    """Two-sample KS distance between a sample and the distribution given by its 0..100th percentiles."""
    x = np.sort(sample)
    cdf = np.interp(x, quantiles, np.arange(101) / 100)
    n = len(x)
    return float(max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max()))


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset, scale", [("synthetic-cub", 1.0), ("synthetic-imagenet", 0.5), ("synthetic-sun397", 2.5)]
)
def test_layouts_match_the_real_datasets_box_statistics(tmp_path, preset, scale):
    """Box area / image area (every box, and each image's largest), boxes per image and the share of
    images with several boxes, from the generated metadata, against the real test sets' figures
    (clovaai/wsolevaluation metadata)."""
    out = tmp_path / preset
    generate(preset, 3, out, scale=scale, progress=False)
    real = REAL_BOX_STATS[PRESETS[preset].calibrated_to]
    areas, largest, counts = [], [], []
    for split in DatasetInfo.load(out).splits:
        meta = read_split(out, split)
        for image_id in meta.image_ids:
            w, h = meta.sizes[image_id]
            fractions = [(x1 - x0 + 1) * (y1 - y0 + 1) / (w * h) for x0, y0, x1, y1 in meta.boxes[image_id]]
            areas += fractions
            largest.append(max(fractions))
            counts.append(len(fractions))
    assert len(counts) >= 400
    assert _ks_distance(largest, real["largest_box_area_fraction_quantiles"]) <= 0.1
    if PRESETS[preset].several_objects:
        assert _ks_distance(areas, real["box_area_fraction_quantiles"]) <= 0.1
        per_image = real["boxes"] / real["images"]
        several = 1 - real["boxes_per_image"]["1"] / real["images"]
        assert abs(np.mean(counts) - per_image) <= 0.2, (np.mean(counts), per_image)
        assert abs(np.mean(np.array(counts) > 1) - several) <= 0.06, (np.mean(np.array(counts) > 1), several)
    else:
        assert set(counts) == {1}


def test_the_transcribed_statistics_are_the_published_ones():
    """real_box_stats.json against the figures the issue quotes from the wsolevaluation metadata."""
    cub, ilsvrc = REAL_BOX_STATS["CUB-200-2011 test"], REAL_BOX_STATS["ILSVRC2012 val"]
    deciles = lambda q: [round(q[k], 2) for k in range(10, 100, 10)]  # noqa: E731
    assert deciles(cub["box_area_fraction_quantiles"]) == [0.14, 0.18, 0.23, 0.27, 0.31, 0.36, 0.42, 0.49, 0.59]
    assert deciles(ilsvrc["largest_box_area_fraction_quantiles"]) == [
        0.07, 0.15, 0.24, 0.32, 0.41, 0.50, 0.61, 0.73, 0.87
    ]  # fmt: skip
    assert round(ilsvrc["box_area_fraction_quantiles"][50], 2) == 0.21
    assert round(ilsvrc["boxes"] / ilsvrc["images"], 2) == 1.61
    assert round(1 - ilsvrc["boxes_per_image"]["1"] / ilsvrc["images"], 2) == 0.23
