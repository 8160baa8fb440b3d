"""Metrics of one experiment from its extraction folder (`camrepro.extract`).

Score maps are the stored CAMs (or Backprop saliency maps) upsampled bicubically to the
extraction size and min-max normalised; GT boxes are rescaled from the original image size to
that size (`camrepro.scoremaps.image_targets`). The GT class's map goes through the same
`camrepro.metrics.Evaluator` as `evaluate-scoremaps` (MaxBoxAcc(V2), PxAP); the box settings'
boxes are scored here. Reported, all in percent:

* classification top-1/top-5 error;
* ILSVRC localization top-1/top-5 error, one box per top-5 class at the configured threshold
  standard and theta (and, with `heuristic`, the CAM paper's tight/loose boxes instead). With
  ``generator="dt_box"`` the boxes are the CAM paper's released generator's instead
  (`camrepro.boxes.dt_box`), on the |CAM| heat map resized to each image's own size and scored
  against the GT boxes at that size, as the released script did (box 1 per class; with `heuristic`,
  the released five-box combination);
* GT-known Loc and Top-1 Loc (box of the GT class's map);
* MaxBoxAcc (largest contour) and MaxBoxAccV2 (every contour) over the CAM-threshold sweep;
* PxAP where the split has masks;
* the mean area (% of the image) of the GT-class boxes at this setting and of the GT boxes: the
  diagnostic that shows when a fixed threshold boxes the whole image (flat, low-resolution CAMs).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from camrepro.boxes import (
    EMPTY_BOX,
    code_heatmap_u8,
    dt_box,
    five_box_heuristic,
    heuristic_boxes,
    scoremap_boxes,
)
from camrepro.cam import to_scoremap
from camrepro.data.metadata import BLACKLIST_FILE, DatasetInfo, read_blacklist, read_split
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
from camrepro.testtime import centre_crop_box, centre_crop_mask, merge_ten_crops


def evaluate_settings(
    extract_dir: str | os.PathLike, dataset: str | os.PathLike, settings: dict, empty_box: str = "zero",
    blacklist: bool = False,
) -> dict:  # fmt: skip
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
        seeds[str(seed)] = {name: evaluate(folder, dataset, **opts, empty_box=empty_box, blacklist=blacklist)
                            for name, opts in settings.items()}  # fmt: skip
    return {"settings": settings, "empty_box": empty_box, "blacklist": blacklist, "seeds": seeds}


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
    generator: str = "text",
    empty_box: str = "zero",
    blacklist: bool = False,
) -> dict:
    """One box setting of one extraction. `empty_box` is the box when no region is found: "zero"
    (0, 0, 0, 0), as wsolevaluation, or "full", the whole image, as Rethinking-CAM
    (src/utils/util.py:182 `bbox = [0, 0, 224, 224]`). `blacklist`: leave the split's blacklisted
    images (the ILSVRC devkit's 1,762 val images, `read_blacklist`) out of every localization
    metric, classification still over all images, as the CAM paper's released evaluation does
    (zhoubolei/CAM evaluation/simpleEvaluation.m:91 divides the classification error by every
    image; :102-143 skip the blacklisted ones and divide the localization error by the rest)."""
    manifest, arrays = load_extracted(extract_dir)
    dataset = Path(dataset)
    meta = read_split(dataset, manifest["split"])
    size = manifest["size"]
    transform, resize = manifest.get("transform", "warp"), manifest.get("resize", size)
    if generator not in ("text", "dt_box"):
        raise ValueError(f"unknown box generator {generator!r}; use 'text' or 'dt_box'")
    if generator == "dt_box" and transform == "centercrop":
        raise DataError(f"{extract_dir}: the released CAM box generator needs maps of the whole image; "
                        "extract with --transform warp or tencrop.")  # fmt: skip
    labels, top5 = arrays["labels"], arrays["top5"]
    result: dict = {
        "extract": str(extract_dir), "images": int(len(labels)), "source": source, "theta": theta,
        "standard": standard, "percentile": percentile, "strategy": strategy, "nwc": manifest["nwc"],
        "generator": generator, "transform": transform, "empty_box": empty_box,
        "classification_error": classification_errors(top5, labels),
    }  # fmt: skip
    _require_finite(extract_dir, manifest, arrays, "top5_scores")
    if blacklist:
        arrays = _without_blacklisted(dataset, manifest["split"], arrays)
        labels, top5 = arrays["labels"], arrays["top5"]
        result["blacklisted"] = result["images"] - int(len(labels))
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
    gt, guesses, gt_boxes_pred, code_gt, code_area = [], [], [], [], []
    full = (0, 0, size - 1, size - 1)
    for n, image_id in enumerate(ids):
        raw = torch.from_numpy(maps[n].astype(np.float32))
        ten = raw.dim() == 4  # (6, 10, h, w): the ten crops' CAMs, merged here
        whole = merge_ten_crops(raw, resize, size, absolute=False) if ten else raw
        scoremaps = to_scoremap(whole, (size, size))  # (6, S, S)
        gt_map = scoremaps[0]
        image_gt, mask = _targets(meta, image_id, size, resize, transform, masks)
        gt.append(image_gt)
        evaluator.accumulate(image_id, gt_map, image_gt, mask)
        if generator == "dt_box":
            width, height = meta.sizes[image_id]
            heat = merge_ten_crops(raw, resize, size) if ten else _upsampled_abs(raw, source, size)
            per_class = [_code_boxes(m, width, height, empty_box) for m in heat.numpy()]
            gt_boxes_pred.append(per_class[0][0])
            code_gt.append(np.asarray(meta.boxes[image_id], dtype=np.int64).reshape(-1, 4))
            code_area.append(box_area_percent([per_class[0][0]], width, height))
            if heuristic:
                guesses.append([(int(top5[n, r]), b) for r, b in five_box_heuristic(per_class[1:4])])
            else:
                guesses.append([(int(top5[n, k]), per_class[1 + k][0]) for k in range(top5.shape[1])])
            continue

        def box(scoremap: np.ndarray, theta: float = theta) -> tuple[int, ...]:
            found = tuple(int(v) for v in scoremap_boxes(scoremap, theta, standard, strategy, percentile)[0])
            return full if (found == EMPTY_BOX and empty_box == "full") else found

        gt_boxes_pred.append(box(gt_map))
        if heuristic:
            guesses.append([(int(top5[n, r]), b) for r, b in heuristic_boxes(scoremaps[1:4])])
        else:
            guesses.append([(int(top5[n, k]), box(scoremaps[1 + k])) for k in range(top5.shape[1])])
    if generator == "dt_box":  # boxes and GT at each image's own size
        result["localization_error"] = localization_errors(guesses, labels.tolist(), code_gt)
        result.update(gt_known_and_top1_loc(gt_boxes_pred, top5[:, 0] == labels, code_gt))
        result["box_area"] = float(np.mean(code_area))
    else:
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


def _without_blacklisted(dataset: Path, split: str, arrays: dict) -> dict:
    """The extraction's per-image arrays without the split's blacklisted images."""
    listed = read_blacklist(dataset, split)
    if listed is None:
        raise DataError(
            f"{dataset}/{split} lists no blacklisted images ({BLACKLIST_FILE}): prepare the dataset again "
            "(`camrepro data prepare imagenet`, which reads the devkit's list), or evaluate on every "
            "image (datasets.<name>.val_blacklist: keep)."
        )
    keep = np.array([str(i) not in listed for i in arrays["image_ids"]], dtype=bool)
    out = dict(arrays)
    for key in list(out):  # one array at a time: ImageNet's saliency maps alone are ~30 GB
        out[key] = out[key][keep]  # every array is per image (camrepro.shards)
    return out


def _targets(
    meta: object, image_id: str, size: int, resize: int, transform: str, masks: Path | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """GT boxes (and mask) on the evaluated map: rescaled to it (warp, ten crops: the map covers the
    image), or scaled to resize, shifted and clipped to the centre crop (Rethinking-CAM)."""
    if transform != "centercrop":
        return image_targets(meta, image_id, size, size, masks)
    gt = np.array([centre_crop_box(b, meta.sizes[image_id], resize, size) for b in meta.boxes[image_id]])
    if masks is None:
        return gt, None
    _, mask = image_targets(meta, image_id, resize, resize, masks)
    return gt, centre_crop_mask(mask, size)


def _upsampled_abs(raw: torch.Tensor, source: str, size: int) -> torch.Tensor:
    """|map| at the evaluation size, the heat map of a single (warped) view."""
    if raw.shape[-1] != size:
        raw = F.interpolate(raw[:, None], size=(size, size), mode="bicubic", align_corners=False)[:, 0]
    return raw.abs()


def _code_boxes(heat: np.ndarray, width: int, height: int, empty_box: str) -> list[tuple[int, ...]]:
    """The released generator's boxes of one heat map resized to the image's (width, height)
    (ILSVRC_generate_heatmap.m:123; bicubic, as MATLAB's imresize default), largest first."""
    resized = cv2.resize(heat.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    boxes = [tuple(int(v) for v in b) for b in dt_box(code_heatmap_u8(resized))]
    return boxes or [(0, 0, width - 1, height - 1) if empty_box == "full" else EMPTY_BOX]


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
