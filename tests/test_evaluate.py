"""Evaluation of an extraction folder: damaged shards are named."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from camrepro.data.synthetic import generate
from camrepro.errors import CamreproError
from camrepro.evaluate import evaluate
from camrepro.extract import extract
from camrepro.train import TrainConfig, train


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


# --- Identity with the recorded results --------------------------------------------------------------
# tests/golden/evaluate.json holds what `evaluate` returned on the hand-made extraction below before
# the two evaluation drivers were moved onto one evaluator (camrepro.scoring, commit 1b60722's code).
# A change of any number there is a change of the metrics: regenerate only on purpose, with
# CAMREPRO_WRITE_GOLDEN=1, and say why in the commit.
GOLDEN = Path(__file__).parent / "golden" / "evaluate.json"
GOLDEN_SETTINGS = {
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


def _golden_results(root: Path) -> dict:
    from camrepro.evaluate import evaluate_settings

    ext, dataset = _handmade_extraction(root / "cam")
    settings = {name: opts | {"cam_curve_interval": 0.05} for name, opts in GOLDEN_SETTINGS.items()}
    fc_ext, fc_dataset = _handmade_extraction(root / "fc", cams=False)
    results = {
        "settings": evaluate_settings(ext.parent, dataset, settings),
        "default_interval": evaluate(ext, dataset),
        "fc": evaluate(fc_ext, fc_dataset),
    }
    # JSON as the CLI writes it (tuples become lists), with the temporary folder taken out
    return json.loads(json.dumps(results).replace(str(root), "<tmp>"))


# Keys added after the golden file was recorded: they name the setting (box generator, test-time
# transform, empty-box rule), every number beside them must be unchanged.
DESCRIPTIVE_SINCE_GOLDEN = {"generator", "transform", "empty_box"}


def _without(doc: object, keys: set[str]) -> object:
    if isinstance(doc, dict):
        return {k: _without(v, keys) for k, v in doc.items() if k not in keys}
    return [_without(v, keys) for v in doc] if isinstance(doc, list) else doc


def test_evaluate_gives_the_recorded_results(tmp_path):
    """Every number of `evaluate` (all box settings, MaxBoxAcc(V2) curves, PxAP with an ignore region,
    an FC extraction) is what the code gave before the drivers shared one evaluator."""
    got = _without(_golden_results(tmp_path), DESCRIPTIVE_SINCE_GOLDEN)
    if os.environ.get("CAMREPRO_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert got["default_interval"]["pxap"] > 0 and len(got["settings"]["seeds"]["0"]) == len(GOLDEN_SETTINGS)
    for key in expected:
        assert got[key] == expected[key], key
    assert got == expected
