"""Evaluation of an extraction folder: damaged shards are named; every metric equals an independent
oracle (tests/oracles.py)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import oracles
from camrepro.data.metadata import read_split
from camrepro.data.synthetic import generate
from camrepro.errors import CamreproError
from camrepro.evaluate import evaluate
from camrepro.evaluator import reference_sweep_correct
from camrepro.extract import extract
from camrepro.train import TrainConfig, train
from tiny import popen_cli


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    cub = root / "cub"
    generate("synthetic-cub", 0, cub, scale=0.1, progress=False)  # 24 test images
    cfg = TrainConfig(
        model="vgg16-gap", dataset=str(cub), width=0.0625, batch_size=8, resize=56, crop=48, epochs=1
    )
    model = train(cfg, root / "run", progress=False)
    return extract(model, cub, "test", root / "ext", size=48, batch_size=8, shard_size=8, progress=False), cub


@pytest.mark.parametrize("key", ["cams", "top5_scores"])
def test_non_finite_values_in_a_shard_are_an_error_naming_the_shard(extracted, tmp_path, key):
    ext, cub = extracted
    assert evaluate(ext, cub)["images"] == 24  # the extraction as written evaluates
    damaged = tmp_path / "ext"
    shutil.copytree(ext, damaged)
    shard = damaged / "shard-00001.npz"  # images 8..15
    with np.load(shard) as f:
        arrays = {k: f[k] for k in f.files}
    arrays[key][3] = np.nan  # what a model with NaN weights extracts
    np.savez_compressed(shard, **arrays)
    with pytest.raises(CamreproError) as info:
        evaluate(damaged, cub)
    message = str(info.value)
    assert str(shard) in message and key in message and str(arrays["image_ids"][3]) in message, message
    out = tmp_path / "metrics.json"
    proc = subprocess.run(
        [sys.executable, "-m", "camrepro", "evaluate", "--extracted", str(damaged), "--dataset", str(cub),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and str(shard) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()


# --- Against an independent oracle ------------------------------------------------------------------
SETTINGS = {
    "cam20": {"source": "cam", "standard": "max", "theta": 0.2, "strategy": "largest"},
    "heuristic": {"source": "cam", "standard": "max", "theta": 0.2, "strategy": "largest", "heuristic": True},
    "backprop": {"source": "saliency", "standard": "max", "theta": 0.2, "strategy": "largest"},
    "nwc-pas": {"source": "cam_nwc", "standard": "percentile", "theta": 0.35, "percentile": 90.0,
                "strategy": "largest"},
    "multi": {"source": "cam", "standard": "max", "theta": 0.3, "strategy": "multi", "iou_thresholds": (50, 70)},
}  # fmt: skip


def _blobs(rng: np.random.Generator, shape: tuple[int, ...], side: int) -> np.ndarray:
    """Maps of a few Gaussian blobs plus noise: several regions and holes at some thresholds."""
    ys, xs = np.mgrid[0:side, 0:side] / side
    out = rng.normal(0, 0.05, (*shape, side, side))
    for _ in range(3):
        cy, cx = rng.uniform(0, 1, shape)[..., None, None], rng.uniform(0, 1, shape)[..., None, None]
        s = rng.uniform(0.05, 0.3, shape)[..., None, None]
        out += rng.uniform(0.2, 1, shape)[..., None, None] * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / s**2)
    return out


def _handmade_extraction(root: Path, cams: bool = True) -> tuple[Path, Path]:
    """A dataset with boxes, masks and an ignore region, and a two-shard extraction of hand-made maps
    (no model, so the numbers depend on the evaluation code alone)."""
    import cv2

    from camrepro.data.metadata import DatasetInfo, SplitMeta, write_split

    rng = np.random.default_rng(14)
    n, size, classes = 10, 32, ["a", "b", "c", "d", "e", "f"]
    ids = [f"{classes[i % 3]}/img{i}.jpg" for i in range(n)]
    dataset = root / "data"
    meta = SplitMeta(image_ids=ids, labels={i: k % 3 for k, i in enumerate(ids)})
    for k, i in enumerate(ids):
        w, h = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        meta.sizes[i] = (w, h)
        mask = np.zeros((h, w), np.uint8)
        meta.boxes[i] = []
        for _ in range(1 + k % 2):
            x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
            x1, y1 = int(rng.integers(x0 + 5, w)), int(rng.integers(y0 + 5, h))
            meta.boxes[i].append((x0, y0, x1, y1))
            cv2.ellipse(
                mask, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, 255, -1
            )
        (dataset / "masks" / i).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dataset / "masks" / f"{i}.png"), mask)
        meta.masks[i] = [f"{i}.png"]
    ignore = np.zeros(meta.sizes[ids[3]][::-1], np.uint8)
    ignore[:10, :] = 255
    cv2.imwrite(str(dataset / "masks" / "ignore3.png"), ignore)
    meta.ignore[ids[3]] = "ignore3.png"
    write_split(dataset, "test", meta)
    DatasetInfo("handmade", classes, ["test"], mask_root="masks").save(dataset)

    labels = np.array([meta.labels[i] for i in ids])
    top5 = np.stack([rng.permutation(6)[:5] for _ in ids])
    top5[::2, 0] = labels[::2]  # every other image classified right
    top5[::2, 1:] = [[c for c in range(6) if c != label][:4] for label in labels[::2]]
    arrays = {
        "image_ids": np.array(ids), "labels": labels, "top5": top5,
        "top5_scores": np.sort(rng.uniform(0, 1, (n, 5)).astype(np.float32), axis=1)[:, ::-1],
        "cam_classes": np.concatenate([labels[:, None], top5], axis=1),
    }  # fmt: skip
    if cams:
        arrays["cams"] = _blobs(rng, (n, 6), 8).astype(np.float16)
        arrays["cams_nwc"] = np.maximum(arrays["cams"], 0.1)
        arrays["saliency"] = _blobs(rng, (n, 6), size).astype(np.float16)
    ext = root / "ext" / "s0"
    ext.mkdir(parents=True)
    for s, part in enumerate((slice(0, 6), slice(6, n))):
        np.savez_compressed(ext / f"shard-{s:05d}.npz", **{k: v[part] for k, v in arrays.items()})
    manifest = {"split": "test", "images": n, "size": size, "nwc": cams, "saliency": cams, "cams": cams,
                "shards": 2, "classes": classes}  # fmt: skip
    (ext / "extract.json").write_text(json.dumps(manifest))
    return ext, dataset


def _oracle(ext: Path, dataset: Path, opts: dict, interval: float) -> dict:
    """What `evaluate` must give, from the metrics' definitions (tests/oracles.py) one image and one
    threshold at a time: the GT class's map (`to_scoremap`), GT boxes rescaled as the reference does."""
    from camrepro.cam import to_scoremap
    from camrepro.data.metadata import DatasetInfo, read_split
    from camrepro.scoremaps import load_mask
    from camrepro.shards import load_extracted

    manifest, arrays = load_extracted(ext)
    size, meta = manifest["size"], read_split(dataset, manifest["split"])
    labels, top5 = arrays["labels"], arrays["top5"]
    out = {"classification_error": {"top1": 100.0 * np.mean(top5[:, 0] != labels),
                                    "top5": 100.0 * np.mean([lab not in row for lab, row in zip(labels, top5, strict=True)])}}  # fmt: skip
    key = {"cam": "cams", "cam_nwc": "cams_nwc", "saliency": "saliency"}[opts["source"]]
    if key not in arrays:
        return out
    mask_root = dataset / DatasetInfo.load(dataset).mask_root
    maps_and_boxes, maps_and_masks, class_maps = [], [], []
    for n, image_id in enumerate(str(i) for i in arrays["image_ids"]):
        scoremaps = to_scoremap(torch.from_numpy(arrays[key][n].astype(np.float32)), (size, size))
        width, height = meta.sizes[image_id]
        gt = [(int(x0 * size / width), int(y0 * size / height), int(x1 * size / width), int(y1 * size / height))
              for x0, y0, x1, y1 in meta.boxes[image_id]]  # fmt: skip
        maps_and_boxes.append((scoremaps[0], gt))  # the GT class's map
        class_maps.append(scoremaps[1:])  # the maps of the top-5 classes
        mask = load_mask(mask_root, meta.masks[image_id], meta.ignore.get(image_id), (size, size))
        maps_and_masks.append((scoremaps[0].astype(np.float64), mask))
    thresholds = np.arange(0, 1, interval)
    ious = opts.get("iou_thresholds", (30, 50, 70))
    for strategy, name in (("largest", "max_box_acc"), ("multi", "max_box_acc_v2")):
        accuracy = oracles.box_accuracy(maps_and_boxes, thresholds, ious, strategy)
        out[name] = {str(i): float(accuracy[r].max()) for r, i in enumerate(ious)}
        out[f"curve_{strategy}"] = accuracy
    out["pxap"] = oracles.pixel_average_precision(maps_and_masks, thresholds)
    if opts["standard"] == "max" and not opts.get("heuristic"):
        # the GT class's box at theta, right when IoU >= 0.5: the sweep's own test at that one threshold
        right = np.array([reference_sweep_correct(m, gt, [opts["theta"]], (50,), opts["strategy"])[0, 0]
                          for m, gt in maps_and_boxes])  # fmt: skip
        # ILSVRC localization: a top-k class that is the label, with its own map's box right
        guess_right = np.array(
            [[top5[n, k] == labels[n] and reference_sweep_correct(class_maps[n][k], gt, [opts["theta"]], (50,),
                                                                  opts["strategy"])[0, 0]
              for k in range(top5.shape[1])] for n, (_, gt) in enumerate(maps_and_boxes)]
        )  # fmt: skip
        out["gt_known_loc"] = 100.0 * np.mean(right)
        out["top1_loc"] = 100.0 * np.mean(right & (top5[:, 0] == labels))
        out["localization_error"] = {
            "top1": 100.0 * (1 - np.mean(guess_right[:, 0])),
            "top5": 100.0 * (1 - np.mean(guess_right.any(axis=1))),
        }
    return out


@pytest.mark.parametrize("name", [*SETTINGS, "default", "fc"])
def test_evaluate_equals_the_image_by_image_oracle(tmp_path, name):
    """Every box setting (max and percentile standards, both contour strategies, CAM, NWC and Backprop
    maps), the MaxBoxAcc(V2) curves, PxAP with an ignore region, and an FC extraction: `evaluate` gives
    what the metrics' definitions give, image by image and threshold by threshold."""
    from camrepro.evaluate import evaluate_settings

    ext, dataset = _handmade_extraction(tmp_path, cams=name != "fc")
    if name in SETTINGS:
        opts = SETTINGS[name] | {"cam_curve_interval": 0.05}
        got = evaluate_settings(ext.parent, dataset, {name: opts})["seeds"]["0"][name]
    else:
        opts = {"source": "cam", "standard": "max", "theta": 0.2, "strategy": "largest",
                "cam_curve_interval": 0.001}  # fmt: skip
        got = evaluate(ext, dataset)
    expected = _oracle(ext, dataset, opts, opts["cam_curve_interval"])
    assert got["classification_error"] == pytest.approx(expected["classification_error"])
    assert 0 < expected["classification_error"]["top1"] < 100
    if name == "fc":
        assert "max_box_acc" not in got and "pxap" not in got
        return
    for key in ("max_box_acc", "gt_known_loc", "top1_loc", "localization_error"):
        if key in expected:
            assert got[key] == pytest.approx(expected[key]), key
    assert {k: v for k, v in got["max_box_acc_v2"].items() if k != "mean"} == pytest.approx(expected["max_box_acc_v2"])
    for strategy in ("largest", "multi"):
        curve = got["box_accuracy_curve"][strategy]
        np.testing.assert_allclose([curve[i] for i in expected["max_box_acc"]], expected[f"curve_{strategy}"])
    assert got["pxap"] == pytest.approx(expected["pxap"], abs=1e-9) and 0 < expected["pxap"] < 100
    assert max(expected["max_box_acc_v2"].values()) > 0  # the maps are not all wrong


def test_evaluate_cli_writes_the_metrics(tiny_cub, tiny_trained, tmp_path):
    ext = extract(tiny_trained, tiny_cub, "test", tmp_path / "ext", size=64, saliency=True, progress=False)
    for source in ("cam", "saliency"):
        out = tmp_path / f"{source}.json"
        proc = popen_cli(
            "evaluate", "--extracted", str(ext), "--dataset", str(tiny_cub), "--out", str(out), "--source", source
        )
        assert proc.wait(timeout=300) == 0
        result = json.loads(out.read_text())
        assert set(result) >= {
            "classification_error",
            "localization_error",
            "gt_known_loc",
            "top1_loc",
            "max_box_acc",
            "max_box_acc_v2",
            "pxap",
        }
        assert result["images"] == 48
        # Top-1 Loc can never exceed GT-known Loc, nor top-1 localization beat classification
        assert result["top1_loc"] <= result["gt_known_loc"]
        assert result["localization_error"]["top1"] >= result["classification_error"]["top1"]
        assert 0.0 < result["box_area"] <= 100.0
        # GT box area from the metadata, rescaled to the 64 px evaluation size with +1 pixel areas
        meta = read_split(tiny_cub, "test")
        areas = []
        for image_id in meta.image_ids:
            w, h = meta.sizes[image_id]
            scaled = [
                [int(v * 64 / (w if k % 2 == 0 else h)) for k, v in enumerate(b)]
                for b in meta.boxes[image_id]
            ]
            areas.append(np.mean([(b[2] - b[0] + 1) * (b[3] - b[1] + 1) / 64**2 * 100 for b in scaled]))
        assert result["gt_box_area"] == pytest.approx(np.mean(areas))


def test_blacklisted_images_leave_localization_and_only_localization(extracted, tmp_path):
    """The CAM paper's released ILSVRC evaluation (zhoubolei/CAM evaluation/simpleEvaluation.m):
    classification error over every val image (:91), localization error over the images the devkit
    does not blacklist (:102-143). Oracle: the same extraction with those images cut out by hand."""
    from camrepro.data.metadata import write_blacklist
    from camrepro.shards import load_extracted

    ext, cub = extracted
    data = tmp_path / "cub"
    shutil.copytree(cub, data, symlinks=True)
    manifest, arrays = load_extracted(ext)
    ids = [str(i) for i in arrays["image_ids"]]
    listed = ids[::3]
    keep = np.array([i not in listed for i in ids])
    cut = tmp_path / "cut"
    cut.mkdir()
    np.savez_compressed(cut / "shard-00000.npz", **{k: v[keep] for k, v in arrays.items()})
    (cut / "extract.json").write_text(json.dumps(manifest | {"shards": 1, "images": int(keep.sum())}))
    with pytest.raises(CamreproError, match="val_blacklist: keep"):
        evaluate(ext, data, blacklist=True)  # the split lists none yet
    write_blacklist(data, "test", listed)
    for options in ({}, {"generator": "dt_box"}):
        full = evaluate(ext, data, **options)
        left_out = evaluate(ext, data, blacklist=True, **options)
        oracle = evaluate(cut, data, **options)
        assert left_out["blacklisted"] == len(listed) and left_out["images"] == len(ids)
        assert left_out["classification_error"] == full["classification_error"]  # every image
        for key in ("localization_error", "gt_known_loc", "top1_loc", "box_area", "gt_box_area", "max_box_acc"):
            assert left_out[key] == oracle[key], (options, key)
