"""The dataset reader: decoding any input to RGB, consistent box/mask transforms, clear errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from camrepro.data.metadata import DatasetInfo, SplitMeta, write_split
from camrepro.data.reader import (
    TransformSpec,
    WSOLDataset,
    collate,
    decode_image,
    transform,
)
from camrepro.errors import DataError


def _smooth_rgb(h: int = 48, w: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1).astype(np.uint8)


def _save(img: Image.Image, path: Path, fmt: str, **kw) -> Path:
    img.save(path, fmt, **kw)
    return path


@pytest.mark.parametrize(
    "mode,fmt,ext",
    [
        ("L", "JPEG", "jpg"),
        ("CMYK", "JPEG", "jpg"),
        ("RGB", "PNG", "png"),
        ("RGBA", "PNG", "png"),
        ("P", "PNG", "png"),
        ("I;16", "PNG", "png"),
    ],
)
def test_every_input_decodes_to_rgb_uint8(tmp_path, mode, fmt, ext):
    rgb = _smooth_rgb()
    src = Image.fromarray(rgb)
    if mode == "I;16":
        src = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    elif mode != "RGB":
        src = src.convert(mode)
    path = _save(src, tmp_path / f"x.{ext}", fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    out = decode_image(path)
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    ref = np.asarray(Image.open(path).convert("RGB")) if mode != "I;16" else None
    if ref is not None:
        assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2  # same colours as Pillow
    if mode == "L":
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_truncated_and_corrupt_jpegs_name_the_file(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_smooth_rgb()).save(buf, "JPEG")
    (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(DataError, match=r"trunc\.jpg.*(truncated|corrupt)"):
        decode_image(tmp_path / "trunc.jpg")
    with pytest.raises(DataError, match=r"junk\.jpg"):
        decode_image(tmp_path / "junk.jpg")
    with pytest.raises(DataError, match=r"gone\.jpg is missing"):
        decode_image(tmp_path / "gone.jpg")


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max(), ys.max()


@pytest.mark.parametrize(
    "spec",
    [
        TransformSpec(train=True),
        TransformSpec(train=False),
        TransformSpec(train=False, eval_crop=True),
    ],
)
def test_boxes_and_masks_move_together(spec):
    h, w = 150, 300
    img = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    box = (40, 30, 209, 119)  # inclusive
    mask[box[1] : box[3] + 1, box[0] : box[2] + 1] = 1
    img[mask.astype(bool)] = 255
    flipped = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        out, boxes, m = transform(img, np.array([box], np.float32), mask, spec, rng)
        assert out.shape == (224, 224, 3) and m.shape == (224, 224)
        # image and mask moved together: their object edges agree to within a pixel
        # (area-averaged image vs nearest-neighbour mask differ only on the boundary)
        img_box = np.array(_box_of(out[..., 0] > 127), np.float32)
        assert np.abs(img_box - np.array(_box_of(m), np.float32)).max() <= 1
        assert len(boxes) == 1
        tight = np.array(_box_of(m), np.float32)
        # nearest-neighbour quantisation: each edge within 1.5 px of the exact transformed box
        assert np.abs(boxes[0] - tight).max() <= 1.5, (seed, boxes[0], tight)
        flipped += boxes[0][0] > 224 - 1 - boxes[0][2]  # object moved to the right half
        if not spec.train:
            break
    if spec.train:
        assert 5 < flipped < 25  # random flips happen, about half of the time


def test_eval_resize_scales_boxes_like_the_reference_evaluator():
    img = np.zeros((100, 400, 3), np.uint8)
    _, boxes, _ = transform(img, np.array([[100, 50, 399, 99]], np.float32), None, TransformSpec(train=False))
    np.testing.assert_allclose(
        boxes[0], [100 * 224 / 400, 50 * 224 / 100, 399 * 224 / 400, 99 * 224 / 100], rtol=1e-6
    )


def test_crop_drops_boxes_left_outside():
    img = np.zeros((256, 256, 3), np.uint8)
    boxes = np.array([[0, 0, 10, 10], [100, 100, 150, 150]], np.float32)
    rng = np.random.default_rng(0)
    spec = TransformSpec(train=True, flip=False)
    _, out, _ = transform(img, boxes, None, spec, rng)
    # the first box survives only if the random crop starts within 10 px of the corner
    assert 1 <= len(out) <= 2 and (out >= 0).all() and (out <= 223).all()


def _tiny_dataset(root: Path, n: int = 4) -> Path:
    rgb = _smooth_rgb(40, 60)
    meta = SplitMeta([], {})
    (root / "images").mkdir(parents=True)
    for i in range(n):
        image_id = f"img{i}.jpg"
        Image.fromarray(rgb).save(root / "images" / image_id, "JPEG")
        meta.image_ids.append(image_id)
        meta.labels[image_id] = i % 2
        meta.sizes[image_id] = (60, 40)
        meta.boxes[image_id] = [(5, 6, 30, 35)] * (1 + i % 2)
    write_split(root, "test", meta)
    DatasetInfo(name="tiny", classes=["a", "b"], splits=["test"]).save(root)
    return root


def test_dataset_and_collate(tmp_path):
    ds = WSOLDataset(_tiny_dataset(tmp_path / "d"), "test", TransformSpec(train=False))
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["image"].shape == (4, 3, 224, 224) and batch["image"].dtype == torch.float32
    assert batch["label"].tolist() == [0, 1, 0, 1]
    assert [len(b) for b in batch["boxes"]] == [1, 2, 1, 2]
    raw = WSOLDataset(tmp_path / "d", "test", TransformSpec(train=False), normalize=False)[0]
    assert raw["image"].dtype == torch.uint8


def test_training_samples_are_reproducible_per_seed_and_epoch(tmp_path):
    root = _tiny_dataset(tmp_path / "d")
    a = WSOLDataset(root, "test", TransformSpec(train=True), seed=1)
    b = WSOLDataset(root, "test", TransformSpec(train=True), seed=1)
    assert torch.equal(a[2]["image"], b[2]["image"])
    crops = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        crops.add(tuple(a[2]["boxes"][0].tolist()))
    assert len(crops) > 1


def _epochs(ds: WSOLDataset, epochs: int = 3) -> list[tuple]:
    out = []
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        out += [(ds[i]["image"], ds[i]["boxes"]) for i in range(len(ds))]
    return out


def test_cached_decoding_gives_the_same_samples_and_reads_each_image_once(tmp_path):
    root = _tiny_dataset(tmp_path / "d")
    spec = TransformSpec(train=True, resize=50, crop=40)
    plain = _epochs(WSOLDataset(root, "test", spec, seed=3))
    cached_ds = WSOLDataset(root, "test", spec, seed=3, cache_bytes=1 << 20)
    first = [(cached_ds[i]["image"], cached_ds[i]["boxes"]) for i in range(len(cached_ds))]
    first[0][1].fill_(-7)  # a caller writing into its sample must not reach the cache
    first[0][0].fill_(0)
    for path in (root / "images").iterdir():
        path.unlink()  # every later epoch must come from memory
    cached = _epochs(cached_ds)
    assert len(cached) == len(plain)
    for (img_a, box_a), (img_b, box_b) in zip(plain, cached, strict=True):
        assert torch.equal(img_a, img_b) and torch.equal(box_a, box_b)


def test_a_cache_too_small_for_an_image_decodes_every_time(tmp_path):
    root = _tiny_dataset(tmp_path / "d")
    ds = WSOLDataset(root, "test", TransformSpec(train=True, resize=50, crop=40), cache_bytes=50 * 50 * 3 - 1)
    ds[0]
    (root / "images" / "img0.jpg").unlink()
    with pytest.raises(DataError, match="img0.jpg"):
        ds[0]


def test_missing_metadata_row_names_the_file(tmp_path):
    root = _tiny_dataset(tmp_path / "d")
    labels = root / "test" / "class_labels.txt"
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(DataError, match=r"class_labels\.txt: no label row for image 'img3\.jpg'"):
        WSOLDataset(root, "test", TransformSpec(train=False))


def test_malformed_box_row_names_file_and_line(tmp_path):
    root = _tiny_dataset(tmp_path / "d")
    (root / "test" / "localization.txt").write_text("img0.jpg,5,6,30\n")
    with pytest.raises(DataError, match=r"localization\.txt:1: expected 5"):
        WSOLDataset(root, "test", TransformSpec(train=False))


def test_corrupt_image_in_a_dataset_names_the_file(tmp_path):
    root = _tiny_dataset(tmp_path / "d")
    data = (root / "images" / "img1.jpg").read_bytes()
    (root / "images" / "img1.jpg").write_bytes(data[:200])
    ds = WSOLDataset(root, "test", TransformSpec(train=False))
    ds[0]
    with pytest.raises(DataError, match=r"img1\.jpg"):
        ds[1]


def test_flip_is_exact_in_inclusive_pixel_coordinates():
    img = np.zeros((224, 224, 3), np.uint8)
    mask = np.zeros((224, 224), np.uint8)
    mask[10:51, 0:31] = 1  # inclusive box (0, 10, 30, 50)
    spec = TransformSpec(train=True, resize=224, crop=224)  # no scaling, no crop: only the flip
    seen = set()
    for seed in range(10):
        _, boxes, m = transform(
            img, np.array([[0, 10, 30, 50]], np.float32), mask, spec, np.random.default_rng(seed)
        )
        assert tuple(boxes[0].tolist()) == tuple(float(v) for v in _box_of(m))
        seen.add(tuple(boxes[0].tolist()))
    assert seen == {(0.0, 10.0, 30.0, 50.0), (193.0, 10.0, 223.0, 50.0)}


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("keep", [0.6, 0.9])
def test_truncated_jpeg_with_an_end_marker_appended_is_refused(tmp_path, keep, progressive):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(
        buf, "JPEG", quality=90, progressive=progressive
    )
    data = buf.getvalue()
    (tmp_path / "whole.jpg").write_bytes(data)
    assert decode_image(tmp_path / "whole.jpg", strict=True).shape == (96, 128, 3)
    (tmp_path / "cut.jpg").write_bytes(data[: int(len(data) * keep)] + b"\xff\xd9")
    with pytest.raises(DataError, match=r"cut\.jpg is a truncated or corrupt JPEG"):
        decode_image(tmp_path / "cut.jpg", strict=True)


def test_zero_byte_image_names_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"image .*empty\.jpg is empty \(0 bytes\)"):
        decode_image(tmp_path / "empty.jpg")


def test_reader_refuses_image_ids_outside_the_image_root(tmp_path):
    root = _tiny_dataset(tmp_path / "d")
    Image.fromarray(_smooth_rgb(40, 60)).save(tmp_path / "d" / "secret.jpg", "JPEG")  # beside images/
    ds = WSOLDataset(root, "test", TransformSpec(train=False))
    ds.meta.image_ids[0] = "../secret.jpg"  # metadata built in memory, not read from disk
    with pytest.raises(DataError, match=r"image id '\.\./secret\.jpg'"):
        ds[0]
