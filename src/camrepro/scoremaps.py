"""Evaluate score maps stored the way the reference WSOL evaluator stores them.

Layout (clovaai/wsolevaluation): one ``<scoremap_root>/<image_id>.npy`` per image, a 2-D float
array in [0, 1] at the evaluation size (224x224 there), and metadata in the wsolevaluation
layout (`camrepro.data.metadata`). GT boxes are rescaled from the original image size to the map
size with `camrepro.boxes.resize_box` (`image_targets`, which both evaluation drivers use). The
maps go through `camrepro.metrics.Evaluator`, fed by threads on all cores (the sweep kernel
releases the GIL).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from numpy.lib import format as npy_format
from tqdm import tqdm

from camrepro.boxes import ScoremapError, Strategy, check_scoremap, resize_box
from camrepro.data.metadata import DatasetInfo, SplitMeta, read_split
from camrepro.errors import DataError
from camrepro.metrics import Evaluator
from camrepro.protocol import CAM_CURVE_INTERVAL, IOU_THRESHOLDS

# 16 Mpx (4096 x 4096): over 300 times the reference's 224 x 224 evaluation size, yet small enough
# that the map (64 MiB as float32) and the sweep's per-thread workspace (64 bytes a pixel) fit in
# memory. A header claiming more is refused before numpy allocates for it.
MAX_SCOREMAP_PIXELS = 4096 * 4096


def check_scoremap_header(path: Path) -> None:
    """Refuse a .npy whose header is not a non-empty, sanely sized 2-D float array, before reading it."""
    try:
        with open(path, "rb") as handle:
            version = npy_format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = npy_format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = npy_format.read_array_header_2_0(handle)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported here")
    except (ValueError, OSError) as exc:
        raise DataError(f"{path} is not a readable .npy array ({exc}); write it again.") from exc
    if len(shape) != 2:
        raise ScoremapError(f"{path}: expected a 2-D array (height, width), got {shape}.")
    if 0 in shape:
        raise ScoremapError(f"{path}: the score map is empty ({shape[0]} x {shape[1]}); write the map again.")
    if shape[0] * shape[1] > MAX_SCOREMAP_PIXELS:
        raise ScoremapError(
            f"{path}: the header claims a {shape[0]} x {shape[1]} score map, more than the "
            f"{MAX_SCOREMAP_PIXELS} pixels allowed (camrepro.scoremaps.MAX_SCOREMAP_PIXELS); store maps at "
            "the evaluation size (224 x 224 in wsolevaluation)."
        )
    if not np.issubdtype(dtype, np.floating):
        raise ScoremapError(f"{path}: expected floating-point values in [0, 1], got dtype {dtype}.")


def scoremap_path(root: Path, image_id: str) -> Path:
    """``<root>/<image_id>.npy`` as the reference writes it; ``<root>/<id without suffix>.npy`` too."""
    path = root / f"{image_id}.npy"
    if not path.exists():
        alt = (root / image_id).with_suffix(".npy")
        if alt.exists():
            return alt
    return path


def load_scoremap(root: Path, image_id: str) -> np.ndarray:
    path = scoremap_path(root, image_id)
    if not path.exists():
        raise DataError(
            f"{path} not found: no score map for image {image_id!r}. Write one <image_id>.npy per image "
            "listed in image_ids.txt."
        )
    check_scoremap_header(path)
    try:
        scoremap = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path} is not a readable .npy array ({exc}); write it again.") from exc
    check_scoremap(scoremap, str(path))
    return scoremap


def load_mask(
    mask_root: Path, mask_paths: list[str], ignore_path: str | None, size: tuple[int, int]
) -> np.ndarray:
    """Foreground 1, background 0, ignored 255 at `size` (w, h); nearest resize, > 0.5 as the reference."""

    def read(rel: str) -> np.ndarray:
        path = mask_root / rel
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise DataError(f"{path}: mask missing or unreadable; prepare the dataset again.")
        return cv2.resize(np.float32(image), size, interpolation=cv2.INTER_NEAREST) > 0.5

    foreground = np.stack([read(p) for p in mask_paths]).any(axis=0)
    mask = foreground.astype(np.uint8)
    if ignore_path:
        mask[read(ignore_path) & ~foreground] = 255
    return mask


def image_targets(
    meta: SplitMeta, image_id: str, width: int, height: int, mask_root: Path | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """An image's GT boxes rescaled from its original size to a width x height map (convention 7),
    and, where `mask_root` is given, its mask at that size (`load_mask`)."""
    gt = np.array([resize_box(b, meta.sizes[image_id], (width, height)) for b in meta.boxes[image_id]])
    if mask_root is None:
        return gt, None
    return gt, load_mask(mask_root, meta.masks[image_id], meta.ignore.get(image_id), (width, height))


def _mask_folder(metadata_root: Path, meta: SplitMeta, given: str | os.PathLike | None) -> Path | None:
    """Where the split's masks.txt paths point: `given`, else what dataset.json says (a
    camrepro-prepared dataset knows), else nowhere (no PxAP)."""
    if not meta.has_masks:
        return None
    if given is not None:
        return Path(given)
    try:
        info = DatasetInfo.load(metadata_root.parent)
    except DataError:
        return None
    return metadata_root.parent / info.mask_root if info.mask_root else None


def evaluate_scoremaps(
    scoremap_root: str | os.PathLike,
    metadata_root: str | os.PathLike,
    cam_curve_interval: float = CAM_CURVE_INTERVAL,
    iou_thresholds: tuple[int, ...] = IOU_THRESHOLDS,
    multi_contour: bool = True,
    mask_root: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """MaxBoxAcc(V2) per IoU threshold and per CAM threshold (and PxAP where masks exist)."""
    scoremap_root, metadata_root = Path(scoremap_root), Path(metadata_root)
    meta = read_split(metadata_root.parent, metadata_root.name)
    if not meta.has_boxes:
        raise DataError(f"{metadata_root / 'localization.txt'} not found: box metrics need GT boxes.")
    masks = _mask_folder(metadata_root, meta, mask_root)
    strategy: Strategy = "multi" if multi_contour else "largest"
    evaluator = Evaluator(cam_curve_interval, iou_thresholds, (strategy,), pxap=masks is not None)

    def score(image_id: str) -> None:
        scoremap = load_scoremap(scoremap_root, image_id)
        height, width = scoremap.shape
        evaluator.accumulate(image_id, scoremap, *image_targets(meta, image_id, width, height, masks))

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        done = pool.map(score, meta.image_ids)
        list(tqdm(done, total=len(meta.image_ids), desc="score maps", unit="map", disable=not progress))
    computed = evaluator.compute()
    out = computed[strategy]
    out["scoremap_root"] = str(scoremap_root)
    out["metadata_root"] = str(metadata_root)
    if "pxap" in computed:
        out["pxap"] = computed["pxap"]
    return out


__all__ = [
    "ScoremapError",
    "check_scoremap_header",
    "evaluate_scoremaps",
    "image_targets",
    "load_mask",
    "load_scoremap",
    "scoremap_path",
]
