"""Metrics of one experiment from its extraction folder (`camrepro.extract`).

Score maps are the stored CAMs (or Backprop saliency maps) upsampled bicubically to the
extraction size and min-max normalised; GT boxes are rescaled from the original image size to
that size (`camrepro.scoremaps.image_targets`). The GT class's map goes through the same
`camrepro.metrics.Evaluator` as `evaluate-scoremaps` (MaxBoxAcc(V2), PxAP); the box settings'
boxes are scored here. Reported, all in percent:

* classification top-1/top-5 error;
* ILSVRC localization top-1/top-5 error, one box per top-5 class at the configured threshold
  standard and theta (and, with `heuristic`, the CAM paper's tight/loose boxes instead);
* GT-known Loc and Top-1 Loc (box of the GT class's map);
* MaxBoxAcc (largest contour) and MaxBoxAccV2 (every contour) over the CAM-threshold sweep;
* PxAP where the split has masks;
* the mean area (% of the image) of the GT-class boxes at this setting and of the GT boxes: the
  diagnostic that shows when a fixed threshold boxes the whole image (flat, low-resolution CAMs).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from camrepro.boxes import heuristic_boxes, scoremap_boxes
from camrepro.cam import to_scoremap
from camrepro.data.metadata import DatasetInfo, read_split
from camrepro.errors import DataError
from camrepro.layout import seed_dirs
from camrepro.metrics import (
    Evaluator,
    box_area_percent,
    classification_errors,
    gt_known_and_top1_loc,
    localization_errors,
)
from camrepro.protocol import CAM_CURVE_INTERVAL, CAM_THRESHOLD, IOU_THRESHOLDS, PAS_PERCENTILE
from camrepro.scoremaps import image_targets
from camrepro.shards import load_extracted


def evaluate_settings(extract_dir: str | os.PathLike, dataset: str | os.PathLike, settings: dict) -> dict:
    """Metrics per seed and per named box setting (`camrepro.plan.SETTINGS`) of a run's extraction.

    `extract_dir` holds one extraction per seed (`s<seed>/`, `camrepro.extract.extract_seeds`).
    """
    extract_dir = Path(extract_dir)
    folders = {seed: d for seed, d in seed_dirs(extract_dir).items() if (d / "extract.json").exists()}
    if not folders:
        raise DataError(
            f"{extract_dir} has no s<seed>/extract.json: run `camrepro extract --seeds ...` first."
        )
    seeds = {}
    for seed, folder in folders.items():
        seeds[str(seed)] = {name: evaluate(folder, dataset, **opts) for name, opts in settings.items()}
    return {"settings": settings, "seeds": seeds}


def evaluate(
    extract_dir: str | os.PathLike,
    dataset: str | os.PathLike,
    theta: float = CAM_THRESHOLD,
    standard: str = "max",
    percentile: float = PAS_PERCENTILE,
    strategy: str = "largest",
    source: str = "cam",
    heuristic: bool = False,
    iou_thresholds: tuple[int, ...] = IOU_THRESHOLDS,
    cam_curve_interval: float = CAM_CURVE_INTERVAL,
) -> dict:
    manifest, arrays = load_extracted(extract_dir)
    dataset = Path(dataset)
    meta = read_split(dataset, manifest["split"])
    size = manifest["size"]
    labels, top5 = arrays["labels"], arrays["top5"]
    result: dict = {
        "extract": str(extract_dir), "images": int(len(labels)), "source": source, "theta": theta,
        "standard": standard, "percentile": percentile, "strategy": strategy, "nwc": manifest["nwc"],
        "classification_error": classification_errors(top5, labels),
    }  # fmt: skip
    _require_finite(extract_dir, manifest, arrays, "top5_scores")
    key = {"cam": "cams", "cam_nwc": "cams_nwc", "saliency": "saliency"}[source]
    if key not in arrays:
        if source == "cam" and not manifest["cams"]:
            return result  # an FC network: classification only (its localization is Backprop)
        raise DataError(f"{extract_dir} has no {source} maps; extract again with the matching option.")
    if not meta.has_boxes:
        return result
    _require_finite(extract_dir, manifest, arrays, key)
    maps = arrays[key]
    ids = [str(i) for i in arrays["image_ids"]]
    info = DatasetInfo.load(dataset)
    masks = dataset / info.mask_root if (meta.has_masks and info.mask_root) else None
    evaluator = Evaluator(cam_curve_interval, iou_thresholds, ("largest", "multi"), pxap=masks is not None)
    gt, guesses, gt_boxes_pred = [], [], []
    for n, image_id in enumerate(ids):
        scoremaps = to_scoremap(torch.from_numpy(maps[n].astype(np.float32)), (size, size))  # (6, S, S)
        gt_map = scoremaps[0]
        image_gt, mask = image_targets(meta, image_id, size, size, masks)
        gt.append(image_gt)
        evaluator.accumulate(image_id, gt_map, image_gt, mask)
        gt_boxes_pred.append(scoremap_boxes(gt_map, theta, standard, strategy, percentile)[0])
        if heuristic:
            guesses.append([(int(top5[n, r]), box) for r, box in heuristic_boxes(scoremaps[1:4])])
        else:
            guesses.append(
                [
                    (
                        int(top5[n, k]),
                        scoremap_boxes(scoremaps[1 + k], theta, standard, strategy, percentile)[0],
                    )
                    for k in range(top5.shape[1])
                ]  # fmt: skip
            )
    result["localization_error"] = localization_errors(guesses, labels.tolist(), gt)
    result.update(gt_known_and_top1_loc(gt_boxes_pred, top5[:, 0] == labels, gt))
    result["box_area"] = box_area_percent(gt_boxes_pred, size, size)
    result["gt_box_area"] = float(np.mean([box_area_percent(g, size, size) for g in gt]))
    computed = evaluator.compute()
    v1, v2 = computed["largest"], computed["multi"]
    result["max_box_acc"] = v1["max_box_acc"]
    result["box_accuracy_curve"] = {"cam_thresholds": v2["cam_thresholds"], "largest": v1["box_accuracy"],
                                    "multi": v2["box_accuracy"]}  # fmt: skip
    result["max_box_acc_v2"] = v2["max_box_acc"] | {"mean": v2["max_box_acc_mean"]}
    if "pxap" in computed:
        result["pxap"] = computed["pxap"]
    return result


def _require_finite(extract_dir: str | os.PathLike, manifest: dict, arrays: dict, key: str) -> None:
    """NaN/inf maps or scores (a model that diverged, a damaged file) are an error naming the shard,
    not a failure deep in the box search or a silently wrong metric."""
    values = arrays[key]
    bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if not bad.any():
        return
    first = int(np.argmax(bad))
    start = 0  # find the shard holding image `first` (the error path alone reopens the shards)
    for i in range(manifest["shards"]):
        shard = Path(extract_dir) / f"shard-{i:05d}.npz"
        with np.load(shard) as f:
            count = len(f["labels"])
        if first < start + count:
            break
        start += count
    raise DataError(
        f"{shard}: {key} of image {arrays['image_ids'][first]} (and {int(bad.sum()) - 1} more in the "
        "extraction) are NaN or infinite: the model that extracted them diverged in training, or the "
        "file is damaged. Train the model again (a lower lr) and extract again."
    )
