"""One forward pass over an evaluation split: predictions, CAMs and feature vectors, sharded.

Per image: top-5 classes and softmax scores; CAMs at feature resolution (float16) for the GT class
and the top-5 classes, from the features of the same pass (no second pass); the pooled feature
vector the SVM experiments need (the GAP/GMP/TAP output of a CAM network, GoogLeNet's average
pool; fc7 of the FC originals). Optionally Backprop saliency maps for the same six classes.

Output folder (replaced atomically, so a half-done extraction never looks finished)::

    extract.json          what was extracted (model, dataset, split, sizes, options)
    shard-00000.npz ...   compressed arrays, `shard_size` images each:
                          image_ids, labels, top5, top5_scores, cam_classes (N, 6),
                          cams (N, 6, h, w) float16, cams_nwc (with `nwc`), features (N, D)
                          float32, saliency (N, 6, H, W) (with `saliency`)

`transform` (`camrepro.testtime`): ``warp`` resizes images straight to `size` x `size` (the
reference WSOL evaluator); ``centercrop`` resizes to 8/7 of it and cuts the centre (Rethinking-CAM);
``tencrop`` (the CAM code) runs the ten crops of the 8/7 warp, averages their softmax scores and
stores each crop's CAM: cams (N, 6, 10, h, w), merged at evaluation; saliency maps are merged here,
(N, 6, R, R) at the warp size R; features are the mean over the crops.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from camrepro.cam import backprop_saliency, class_activation_maps
from camrepro.data.reader import TransformSpec, WSOLDataset, collate
from camrepro.fsutil import atomic_dir
from camrepro.layout import AS_IS_SEED, model_file, seed_dir
from camrepro.models.io import load_as_is, load_trained, pick_device
from camrepro.protocol import resize_for
from camrepro.shards import load_extracted  # noqa: F401 (re-exported)
from camrepro.testtime import N_CROPS, TRANSFORMS, merge_ten_crops, ten_crops


def extract(
    model_path: str | os.PathLike | None,
    dataset: str | os.PathLike,
    split: str,
    out_dir: str | os.PathLike,
    size: int = 224,
    batch_size: int = 64,
    nwc: bool = False,  # also store CAMs with negative weights clamped (`cams_nwc`)
    saliency: bool = False,
    shard_size: int = 1024,
    device: str = "auto",
    workers: int = 0,
    progress: bool = True,
    transform: str = "warp",
    as_is: tuple[str, str | os.PathLike] | None = None,
) -> Path:
    """`as_is` = (registry model, ImageNet weights file): extract that network as it is, untrained
    here (`camrepro.models.io.load_as_is`), instead of the trained `model_path`."""
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown test-time transform {transform!r}; use one of {', '.join(TRANSFORMS)}")
    dev = pick_device(device)
    if as_is is not None:
        model, meta = load_as_is(*as_is, dataset, dev)
        model_path = as_is[1]
    else:
        model, meta = load_trained(model_path, dev)
    model.to(memory_format=torch.channels_last)  # NHWC: 1.2-1.8x faster forward passes on CPU too
    resize = resize_for(size)
    spec = {"warp": TransformSpec(train=False, crop=size, flip=False),
            "centercrop": TransformSpec(train=False, resize=resize, crop=size, eval_crop=True, flip=False),
            "tencrop": TransformSpec(train=False, crop=resize, flip=False)}[transform]  # fmt: skip
    data = WSOLDataset(dataset, split, spec)
    # ten crops per image: as many crops per forward pass as `batch_size` images otherwise
    per_batch = max(1, batch_size // N_CROPS) if transform == "tencrop" else batch_size
    loader = torch.utils.data.DataLoader(
        data, batch_size=per_batch, shuffle=False, num_workers=workers, collate_fn=collate
    )
    out_dir = Path(out_dir)
    shards: list[int] = []  # images per written shard
    current: dict[str, list[np.ndarray]] = {}  # batches of the shard being filled
    n_images = in_shard = 0

    def flush(folder: Path) -> None:
        if in_shard:
            arrays = {k: np.concatenate(v) for k, v in current.items()}
            np.savez_compressed(folder / f"shard-{len(shards):05d}.npz", **arrays)
            shards.append(in_shard)
            current.clear()

    with atomic_dir(out_dir) as tmp:
        for batch in tqdm(loader, desc=f"extract {split}", unit="batch", disable=not progress):
            images = batch["image"].to(dev)
            labels = torch.as_tensor(batch["label"]).to(dev)
            n = len(labels)
            crops = N_CROPS if transform == "tencrop" else 1
            if crops > 1:
                images = ten_crops(images, size)
            images = images.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                logits, vectors, feats = model.outputs(images)
            probs = logits.softmax(1).reshape(n, crops, -1).mean(1)  # the CAM code averages the crops
            vectors = vectors.reshape(n, crops, -1).mean(1)
            scores, top5 = probs.topk(min(5, logits.shape[1]), dim=1)
            classes = torch.cat([labels[:, None], top5], dim=1)
            per_crop = classes.repeat_interleave(crops, 0)
            record = {
                "image_ids": [np.array(batch["image_id"])],
                "labels": [labels.cpu().numpy()],
                "top5": [top5.cpu().numpy()],
                "top5_scores": [scores.float().cpu().numpy()],
                "cam_classes": [classes.cpu().numpy()],
                "features": [vectors.float().cpu().numpy()],
            }
            if model.has_cam:
                weights, _ = model.classifier_weights()
                with torch.no_grad():
                    cams = class_activation_maps(feats, weights, per_crop)
                    record["cams"] = [_by_image(cams, n, crops)]
                    if nwc:  # same features, negative weights clamped (Bae et al.)
                        cams = class_activation_maps(feats, weights, per_crop, nwc=True)
                        record["cams_nwc"] = [_by_image(cams, n, crops)]
            if saliency:
                maps = torch.stack([backprop_saliency(model, images, per_crop[:, j])
                                    for j in range(per_crop.shape[1])], 1)  # fmt: skip
                if crops > 1:
                    maps = merge_ten_crops(_crops_second(maps, n), resize, size)
                record["saliency"] = [maps.to(torch.float16).cpu().numpy()]
            for key, value in record.items():
                current.setdefault(key, []).extend(value)
            n_images += len(labels)
            in_shard += len(labels)
            if in_shard >= shard_size:
                flush(tmp)
                in_shard = 0
        flush(tmp)
        manifest = {
            "model": str(model_path), "architecture": meta["config"]["model"], "dataset": str(dataset),
            "split": split, "images": n_images, "size": size, "nwc": nwc, "saliency": saliency,
            "cams": model.has_cam, "shards": len(shards), "classes": meta["classes"],
            "transform": transform, "resize": resize,
        }  # fmt: skip
        (tmp / "extract.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return out_dir


def _crops_second(maps: torch.Tensor, n: int) -> torch.Tensor:
    """(n * crops, classes, h, w) -> (n, classes, crops, h, w)."""
    return maps.reshape(n, -1, *maps.shape[1:]).transpose(1, 2)


def _by_image(cams: torch.Tensor, n: int, crops: int) -> np.ndarray:
    """Per-crop CAMs as stored: (n, classes, h, w), or (n, classes, 10, h, w) for ten crops."""
    out = _crops_second(cams, n) if crops > 1 else cams
    return out.to(torch.float16).cpu().numpy()


def extract_seeds(
    run_dir: str | os.PathLike, seeds: list[int], out_dir: str | os.PathLike, **options: object
) -> Path:
    """`extract` for each seed's model of a run into the seed's folder of `out_dir` (camrepro.layout).

    The folder appears only when every seed is done (one atomic rename).
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for seed in seeds:
            extract(model_file(run_dir, seed), out_dir=seed_dir(tmp, seed), **options)
    return out_dir


def extract_as_is(
    arch: str, weights: str | os.PathLike, out_dir: str | os.PathLike, **options: object
) -> Path:
    """`extract` of a network used as it is (no training, so one instance) into `out_dir`/s0, the
    layout of a run's extraction with its one network as seed 0."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        extract(None, out_dir=seed_dir(tmp, AS_IS_SEED), as_is=(arch, weights), **options)
    return out_dir
