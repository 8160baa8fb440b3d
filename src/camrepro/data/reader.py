"""One reader for every prepared dataset: images, labels, GT boxes and masks, transformed together.

Decoding uses OpenCV (libjpeg-turbo; several times Pillow's speed, see bench/reader_throughput.py)
with EXIF orientation *ignored*, because the annotations of CUB and ImageNet are in stored-pixel
coordinates (Pillow, which the reference evaluator uses, does not rotate either). Every image comes
out RGB uint8, whatever it was on disk (grayscale, CMYK JPEG, palette/alpha/16-bit PNG).

Transforms (the papers' and the reference code's, configurable):

* train: warp-resize to `resize` x `resize` (256), random `crop` x `crop` crop (224), random flip;
* eval, `eval_crop=False`: warp-resize straight to `crop` x `crop` (wsolevaluation's test transform);
* eval, `eval_crop=True`: warp-resize to `resize` then centre-crop `crop` (the 10-crop-free Caffe way).

Boxes follow the evaluator's convention (x1/y1 inclusive). Resizing scales coordinates by the size
ratio (`x * new_w / w`, exactly as the evaluator's `resize_bbox` does before truncating), crops shift
and clip them and drop boxes left outside, flips map x to `W - 1 - x`. Boxes stay float here; the
evaluator applies its own integer convention. Masks (union of the image's object masks) are resized
with nearest neighbour and cropped/flipped identically.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from camrepro.data.metadata import DatasetInfo, SplitMeta, check_relative, read_split
from camrepro.errors import DataError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
_STDERR_LOCK = threading.Lock()
# a fork waits for a decode that has fd 2 redirected, so no child starts with stderr captured
os.register_at_fork(
    before=_STDERR_LOCK.acquire, after_in_parent=_STDERR_LOCK.release, after_in_child=_STDERR_LOCK.release
)


def _imdecode_with_warnings(data: bytes) -> tuple[np.ndarray | None, str]:
    """cv2.imdecode, and what its libjpeg printed meanwhile.

    libjpeg reports a JPEG whose data stops early but ends in an end-of-image marker only as a
    warning ("Corrupt JPEG data: premature end of data segment") and fills the rest of the image
    with grey; neither OpenCV nor Pillow raises. The warning goes straight to file descriptor 2, so
    it is captured there (under a lock; other text captured meanwhile is passed on unchanged).
    """
    buf = np.frombuffer(data, np.uint8)
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr to capture: decode without the check
            return cv2.imdecode(buf, _FLAGS), ""
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            bgr = cv2.imdecode(buf, _FLAGS)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        printed = capture.read()
    if printed and b"premature end" not in printed.lower():
        os.write(2, printed)
    return bgr, printed.decode("utf-8", "replace")


def decode_image(path: str | Path, strict: bool = False) -> np.ndarray:
    """Decode an image file to an RGB uint8 array (H, W, 3); DataError if missing or broken.

    `strict` also catches a truncated JPEG that ends in an appended end marker, from libjpeg's
    warning (`_imdecode_with_warnings`): it serialises decoding in the process, so `camrepro data
    verify` (which every training job waits for) uses it and the DataLoaders do not.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"image {path} is missing. It is listed in the dataset's image_ids.txt: restore the "
            "file or prepare the dataset again."
        ) from None
    if not data:
        raise DataError(
            f"image {path} is empty (0 bytes). Download/extract it again or remove it from the "
            "dataset's metadata."
        )
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    if is_jpeg and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        # No end-of-image marker: truncated, or trailing bytes after the marker. Older OpenCV
        # decodes truncated JPEGs into grey-padded images without complaint, so ask Pillow,
        # which is strict about truncation, before trusting the file.
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        except Exception as exc:
            raise DataError(
                f"image {path} is a truncated or corrupt JPEG ({exc}). Download/extract it again "
                "or remove it from the dataset's metadata."
            ) from None
    try:
        if is_jpeg and strict:
            bgr, warnings = _imdecode_with_warnings(data)
        else:
            bgr, warnings = cv2.imdecode(np.frombuffer(data, np.uint8), _FLAGS), ""
    except cv2.error as exc:
        reason = getattr(exc, "err", None) or exc
        raise DataError(
            f"image {path} cannot be decoded ({reason}); it is corrupt or not an image."
        ) from None
    if "premature end" in warnings.lower():
        raise DataError(
            f"image {path} is a truncated or corrupt JPEG ({warnings.strip()}). Download/extract it "
            "again or remove it from the dataset's metadata."
        )
    if bgr is None:
        raise DataError(
            f"image {path} cannot be decoded: it is corrupt, truncated or not an image. "
            "Download/extract it again or remove it from the dataset's metadata."
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class TransformSpec:
    train: bool
    resize: int = 256
    crop: int = 224
    eval_crop: bool = False  # eval: resize+centre-crop instead of resizing straight to `crop`
    flip: bool = True

    @property
    def out_size(self) -> int:
        return self.crop


def _resize(img: np.ndarray, w: int, h: int, nearest: bool = False) -> np.ndarray:
    if nearest:
        interp = cv2.INTER_NEAREST
    elif w < img.shape[1] or h < img.shape[0]:
        interp = cv2.INTER_AREA  # shrinking: area averaging, no aliasing (like PIL antialias)
    else:
        interp = cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def resize_step(
    image: np.ndarray, boxes: np.ndarray, mask: np.ndarray | None, spec: TransformSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The deterministic first step of `transform`: the resize, boxes scaled with the image."""
    h, w = image.shape[:2]
    boxes = boxes.astype(np.float32).reshape(-1, 4).copy()
    size = spec.resize if (spec.train or spec.eval_crop) else spec.crop
    image = _resize(image, size, size)
    if mask is not None:
        mask = _resize(mask, size, size, nearest=True)
    boxes[:, [0, 2]] *= size / w
    boxes[:, [1, 3]] *= size / h
    return image, boxes, mask


def crop_flip_step(
    image: np.ndarray,
    boxes: np.ndarray,
    mask: np.ndarray | None,
    spec: TransformSpec,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The rest of `transform` after `resize_step`: crop (random or centred) and random flip.
    Never writes into its inputs (a dataset's cache holds them), always returns new arrays."""
    if spec.train or spec.eval_crop:
        size, c = image.shape[0], spec.crop
        if spec.train:
            if rng is None:
                raise ValueError("training transforms need an rng")
            ox, oy = int(rng.integers(0, size - c + 1)), int(rng.integers(0, size - c + 1))
        else:
            ox = oy = int(round((size - c) / 2.0))
        image = image[oy : oy + c, ox : ox + c]
        if mask is not None:
            mask = mask[oy : oy + c, ox : ox + c]
        boxes = boxes - np.array([ox, oy, ox, oy], np.float32)
        inside = (boxes[:, 2] >= 0) & (boxes[:, 3] >= 0) & (boxes[:, 0] <= c - 1) & (boxes[:, 1] <= c - 1)
        boxes = np.clip(boxes[inside], 0, c - 1)

    if spec.train and spec.flip and rng is not None and rng.random() < 0.5:
        out_w = image.shape[1]
        image = image[:, ::-1]
        if mask is not None:
            mask = mask[:, ::-1]
        boxes = (
            np.stack([out_w - 1 - boxes[:, 2], boxes[:, 1], out_w - 1 - boxes[:, 0], boxes[:, 3]], 1)
            if len(boxes)
            else boxes
        )
    return image.copy(), boxes.copy(), None if mask is None else mask.copy()


def transform(
    image: np.ndarray,
    boxes: np.ndarray,
    mask: np.ndarray | None,
    spec: TransformSpec,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Apply `spec` to an RGB image, its (N, 4) float boxes and optional (H, W) mask."""
    return crop_flip_step(*resize_step(image, boxes, mask, spec), spec, rng)


def to_tensor(image: np.ndarray, normalize: bool = True) -> torch.Tensor:
    """HWC uint8 RGB -> CHW tensor; float normalised with ImageNet statistics, or uint8 as is.

    Keeping uint8 lets a GPU trainer move 4x fewer bytes and normalise on the device.
    """
    if not normalize:
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    x = (image.astype(np.float32) * (1.0 / 255.0) - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


# What a training run without DataLoader workers keeps of its decoded, resized images: the whole
# demo stand-ins (a few MiB at 73 px), part of a real dataset (CUB's train split at 256 px: 1.2 GB).
DECODED_CACHE_BYTES = 1 << 30


class WSOLDataset(torch.utils.data.Dataset):
    """A split of a prepared dataset as (image, label, boxes, mask, image_id) samples.

    Randomness (crop, flip) comes from a generator seeded by (seed, epoch, index), so a run is
    reproducible whatever the number of DataLoader workers; call `set_epoch` between epochs.
    `cache_bytes`: keep up to that many bytes of decoded, resized images (`resize_step`) in memory,
    so that a training run without DataLoader workers (on CPU) decodes each image once, not once
    an epoch: decoding is 20-70 % of a demo-scale training step on one core (bench/README.md).
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        split: str,
        spec: TransformSpec,
        with_masks: bool = False,
        normalize: bool = True,
        seed: int = 0,
        cache_bytes: int = 0,
    ) -> None:
        self.root = Path(dataset_dir)
        self.info = DatasetInfo.load(self.root)
        if split not in self.info.splits:
            raise DataError(
                f"{self.root}: no split {split!r}; this dataset has {', '.join(self.info.splits)}."
            )
        self.meta: SplitMeta = read_split(self.root, split)
        self.split = split
        self.spec = spec
        self.normalize = normalize
        self.seed = seed
        self.epoch = 0
        self.image_root = (self.root / self.info.image_root).resolve()
        self.with_masks = with_masks
        if with_masks and not (self.meta.has_masks and self.info.mask_root):
            raise DataError(f"{self.root}/{split}: masks requested but the dataset has none.")
        self.mask_root = (self.root / self.info.mask_root).resolve() if with_masks else None
        self._cache: dict[int, tuple] = {}
        self._cache_left = cache_bytes

    def __len__(self) -> int:
        return len(self.meta.image_ids)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def labels(self) -> list[int]:
        return [self.meta.labels[i] for i in self.meta.image_ids]

    def load_mask(self, image_id: str, shape: tuple[int, int]) -> np.ndarray:
        union = np.zeros(shape, np.uint8)
        for rel in self.meta.masks.get(image_id, []):
            path = self.mask_root / check_relative(
                rel, f"{self.root / self.split / 'masks.txt'}", "mask path"
            )
            m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if m is None:
                raise DataError(f"mask {path} is missing or corrupt; prepare the dataset again.")
            if m.shape != shape:
                raise DataError(f"mask {path} is {m.shape[::-1]} but its image is {shape[::-1]}.")
            union |= (m > 127).astype(np.uint8)
        return union

    def _resized(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        image_id = self.meta.image_ids[index]
        where = f"{self.root / self.split / 'image_ids.txt'}"
        image = decode_image(self.image_root / check_relative(image_id, where))
        boxes = np.array(self.meta.boxes.get(image_id, []), np.float32).reshape(-1, 4)
        mask = self.load_mask(image_id, image.shape[:2]) if self.with_masks else None
        resized = resize_step(image, boxes, mask, self.spec)
        nbytes = sum(a.nbytes for a in resized if a is not None)
        if nbytes <= self._cache_left:
            self._cache[index] = resized
            self._cache_left -= nbytes
        return resized

    def __getitem__(self, index: int) -> dict:
        image_id = self.meta.image_ids[index]
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.spec.train else None
        image, boxes, mask = crop_flip_step(*self._resized(index), self.spec, rng)
        sample = {
            "image": to_tensor(image, self.normalize),
            "label": self.meta.labels[image_id],
            "boxes": torch.from_numpy(boxes),
            "image_id": image_id,
            "index": index,
        }
        if mask is not None:
            sample["mask"] = torch.from_numpy(mask)
        return sample


def collate(batch: list[dict]) -> dict:
    """Stack images and labels; keep per-image boxes (and masks) as lists (counts differ)."""
    out = {
        "image": torch.stack([b["image"] for b in batch]),
        "label": torch.tensor([b["label"] for b in batch], dtype=torch.long),
        "index": torch.tensor([b["index"] for b in batch], dtype=torch.long),
        "boxes": [b["boxes"] for b in batch],
        "image_id": [b["image_id"] for b in batch],
    }
    if "mask" in batch[0]:
        out["mask"] = torch.stack([b["mask"] for b in batch])
    return out
