"""evaluate-scoremaps: a bad .npy is refused naming the file, before it is read; the metrics equal an
independent oracle (tests/oracles.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

import oracles
from camrepro.cli import main
from camrepro.data.metadata import DatasetInfo, SplitMeta, read_split, write_split
from camrepro.errors import CamreproError
from camrepro.scoremaps import evaluate_scoremaps, load_mask


def _dataset(tmp_path: Path) -> tuple[Path, Path]:
    meta = SplitMeta(
        image_ids=["a.jpg", "b.jpg"],
        labels={"a.jpg": 0, "b.jpg": 0},
        sizes={"a.jpg": (48, 48), "b.jpg": (48, 48)},
        boxes={"a.jpg": [(4, 4, 30, 30)], "b.jpg": [(10, 10, 40, 40)]},
    )
    write_split(tmp_path, "val", meta)
    maps = tmp_path / "maps"
    maps.mkdir()
    for image_id in meta.image_ids:
        np.save(maps / f"{image_id}.npy", np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48))
    return maps, tmp_path / "val"


def _header_only(path: Path, shape: tuple[int, ...], descr: str = "<f4", data: bytes = b"\0" * 16) -> None:
    """A .npy whose header claims `shape`, followed by only `data` (the array itself is never written)."""
    with open(path, "wb") as handle:
        npy_format.write_array_header_1_0(handle, {"descr": descr, "fortran_order": False, "shape": shape})
        handle.write(data)


def test_good_maps_evaluate(tmp_path):
    maps, meta = _dataset(tmp_path)
    result = evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)
    assert set(result["max_box_acc"]) == {"30", "50", "70"}


def test_an_empty_score_map_names_the_file(tmp_path):
    maps, meta = _dataset(tmp_path)
    np.save(maps / "b.jpg.npy", np.zeros((0, 48), np.float32))
    with pytest.raises(CamreproError, match=rf"{maps / 'b.jpg.npy'}: the score map is empty \(0 x 48\)"):
        evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)


def test_a_header_claiming_200k_by_200k_is_refused_before_any_allocation(tmp_path):
    maps, meta = _dataset(tmp_path)
    _header_only(maps / "a.jpg.npy", (200_000, 200_000))
    with pytest.raises(
        CamreproError, match=rf"{maps / 'a.jpg.npy'}: the header claims a 200000 x 200000 score map"
    ):
        evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.full((48, 48, 3), 0.5, np.float32), r"expected a 2-D array \(height, width\), got \(48, 48, 3\)"),
        (np.zeros((48, 48), np.int64), r"expected floating-point values in \[0, 1\], got dtype int64"),
        (np.full((48, 48), 1.5, np.float32), r"values must lie in \[0, 1\] \(min 1.5, max 1.5\)"),
    ],
)
def test_a_map_of_the_wrong_kind_names_the_file_and_what_is_wrong(tmp_path, array, needle):
    maps, meta = _dataset(tmp_path)
    np.save(maps / "a.jpg.npy", array)
    with pytest.raises(CamreproError, match=rf"{maps / 'a.jpg.npy'}: {needle}"):
        evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)


def test_a_truncated_map_names_the_file(tmp_path):
    maps, meta = _dataset(tmp_path)
    _header_only(maps / "a.jpg.npy", (48, 48), data=b"\0" * 100)
    with pytest.raises(CamreproError, match=rf"{maps / 'a.jpg.npy'} is not a readable .npy array"):
        evaluate_scoremaps(maps, meta, 0.1, workers=1, progress=False)


def test_the_cli_exits_2_on_an_empty_map(tmp_path, capsys):
    maps, meta = _dataset(tmp_path)
    np.save(maps / "a.jpg.npy", np.zeros((48, 0), np.float32))
    argv = ["evaluate-scoremaps", "--scoremap-root", str(maps), "--metadata-root", str(meta),
            "--out", str(tmp_path / "out.json"), "-q", "--workers", "1"]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"{maps / 'a.jpg.npy'}: the score map is empty (48 x 0)" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


# --- Against an independent oracle ------------------------------------------------------------------
def _handmade_scoremaps(root: Path) -> tuple[Path, Path, Path, Path]:
    """Score maps of several sizes (blobs and noise) for a split with one or two boxes per image, object
    masks and an ignore region; the split again without dataset.json, and without masks."""
    import cv2

    rng = np.random.default_rng(6)
    ids = [f"img{i}.jpg" for i in range(9)]
    meta = SplitMeta(image_ids=ids, labels=dict.fromkeys(ids, 0))
    maps = root / "maps"
    maps.mkdir()
    for k, i in enumerate(ids):
        w, h = int(rng.integers(30, 120)), int(rng.integers(30, 120))
        meta.sizes[i] = (w, h)
        mask = np.zeros((h, w), np.uint8)
        meta.boxes[i] = []
        for _ in range(1 + k % 2):
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            x1, y1 = int(rng.integers(x0 + 4, w)), int(rng.integers(y0 + 4, h))
            meta.boxes[i].append((x0, y0, x1, y1))
            mask[y0 : y1 + 1, x0 : x1 + 1] = 255
        cv2.imwrite(str(root / f"{i}.png"), mask)
        meta.masks[i] = [f"{i}.png"]
        mh, mw = int(rng.integers(20, 70)), int(rng.integers(20, 70))  # maps at their own size
        ys, xs = np.mgrid[0:mh, 0:mw]
        m = rng.uniform(0, 0.3, (mh, mw))
        for _ in range(3):
            cy, cx, s = rng.uniform(0, mh), rng.uniform(0, mw), rng.uniform(3, 15)
            m += rng.uniform(0.3, 1) * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / s**2)
        m = (m - m.min()) / (m.max() - m.min())
        np.save(maps / f"{i}.npy", m.astype(np.float32 if k % 2 else np.float64))
    ignore = np.zeros(meta.sizes[ids[2]][::-1], np.uint8)
    ignore[:, : meta.sizes[ids[2]][0] // 3] = 255
    cv2.imwrite(str(root / "ignore2.png"), ignore)
    meta.ignore[ids[2]] = "ignore2.png"
    write_split(root / "data", "val", meta)
    DatasetInfo("handmade", ["a"], ["val"], mask_root="..").save(root / "data")
    write_split(root / "given", "val", meta)  # masks, but no dataset.json to say where they are
    write_split(root / "bare", "val", SplitMeta(ids, meta.labels, meta.sizes, meta.boxes))
    return maps, root / "data" / "val", root / "given" / "val", root / "bare" / "val"


def _oracle(maps: Path, split: Path, interval: float, iou_thresholds, strategy, mask_root: Path | None):
    """The same numbers from `tests/oracles.py`: each map read with np.load, each GT box rescaled to the
    map's size as the reference does (int(x * w / W)), each mask read at that size."""
    meta = read_split(split.parent, split.name)
    thresholds = np.arange(0, 1, interval)
    maps_and_boxes, maps_and_masks = [], []
    for image_id in meta.image_ids:
        scoremap = np.load(maps / f"{image_id}.npy")
        (h, w), (width, height) = scoremap.shape, meta.sizes[image_id]
        gt = [(int(x0 * w / width), int(y0 * h / height), int(x1 * w / width), int(y1 * h / height))
              for x0, y0, x1, y1 in meta.boxes[image_id]]  # fmt: skip
        maps_and_boxes.append((scoremap, gt))
        if mask_root is not None:
            mask = load_mask(mask_root, meta.masks[image_id], meta.ignore.get(image_id), (w, h))
            maps_and_masks.append((scoremap.astype(np.float64), mask))
    accuracy = oracles.box_accuracy(maps_and_boxes, thresholds, iou_thresholds, strategy)
    out = {
        "max_box_acc": {str(i): float(accuracy[r].max()) for r, i in enumerate(iou_thresholds)},
        "box_accuracy": {str(i): accuracy[r].tolist() for r, i in enumerate(iou_thresholds)},
    }
    if maps_and_masks:
        out["pxap"] = oracles.pixel_average_precision(maps_and_masks, thresholds)
    return out


@pytest.mark.parametrize(
    "interval, iou_thresholds, multi_contour, masks, workers",
    [(0.01, (30, 50, 70), True, "dataset.json", 3), (0.02, (30, 50, 70), False, "dataset.json", 1),
     (0.001, (50,), True, "dataset.json", None), (0.05, (30, 50, 70), True, "given", 2),
     (0.05, (30, 70), True, None, 2)],
)  # fmt: skip
def test_evaluate_scoremaps_equals_the_threshold_by_threshold_oracle(
    tmp_path, interval, iou_thresholds, multi_contour, masks, workers
):
    """Every number of `evaluate_scoremaps` (both contour strategies, several intervals, PxAP with masks
    found through dataset.json or given, an ignore region, no masks) equals the metric's definition
    computed map by map and threshold by threshold."""
    maps, split, given, bare = _handmade_scoremaps(tmp_path)
    split = {"dataset.json": split, "given": given, None: bare}[masks]
    got = evaluate_scoremaps(
        maps, split, interval, iou_thresholds, multi_contour, mask_root=tmp_path if masks == "given" else None,
        workers=workers, progress=False,
    )  # fmt: skip
    expected = _oracle(
        maps, split, interval, iou_thresholds, "multi" if multi_contour else "largest",
        tmp_path if masks else None,
    )  # fmt: skip
    assert got["max_box_acc"] == expected["max_box_acc"]
    assert got["box_accuracy"].keys() == expected["box_accuracy"].keys()
    for iou, curve in expected["box_accuracy"].items():
        np.testing.assert_allclose(got["box_accuracy"][iou], curve, atol=1e-9)
    assert 0 < max(expected["max_box_acc"].values()) < 100  # the maps are neither all right nor all wrong
    if masks:
        assert 0 < expected["pxap"] < 100 and got["pxap"] == pytest.approx(expected["pxap"], abs=1e-9)
    else:
        assert "pxap" not in got
