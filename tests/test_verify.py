"""`camrepro data verify`: a prepared dataset with one bad file is refused, naming the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camrepro.data.metadata import DatasetInfo, SplitMeta, write_split
from camrepro.data.verify import verify_dataset
from camrepro.errors import DataError


def _jpeg(w: int = 64, h: int = 48) -> bytes:
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _dataset(root: Path) -> Path:
    ids = [f"img{i}.jpg" for i in range(3)]
    (root / "images").mkdir(parents=True)
    for i in ids:
        (root / "images" / i).write_bytes(_jpeg())
    meta = SplitMeta(ids, {i: k % 2 for k, i in enumerate(ids)}, {i: (64, 48) for i in ids})
    meta.boxes = {i: [(0, 0, 63, 47)] for i in ids}
    write_split(root, "test", meta)
    DatasetInfo(name="tiny", classes=["a", "b"], splits=["test"]).save(root)
    return root


def test_a_good_dataset_verifies(tmp_path):
    report = verify_dataset(_dataset(tmp_path / "d"), progress=False)
    assert report["splits"]["test"] == {"images": 3, "boxes": 3, "masks": 0, "decoded": True}


def test_box_outside_the_image_fails_verification(tmp_path):
    root = _dataset(tmp_path / "d")
    loc = root / "test" / "localization.txt"
    loc.write_text(loc.read_text().replace("img1.jpg,0,0,63,47", "img1.jpg,0,0,64,47"))
    with pytest.raises(DataError, match=r"localization\.txt:2: box 0,0,64,47 of image 'img1\.jpg'.*64x48"):
        verify_dataset(root, progress=False)


def test_unlabelled_image_in_a_wsol_split_fails_verification(tmp_path):
    root = _dataset(tmp_path / "d")
    labels = root / "test" / "class_labels.txt"
    labels.write_text(labels.read_text().replace("img2.jpg,0", "img2.jpg,-1"))
    with pytest.raises(DataError, match=r"class_labels\.txt:3: label -1 of image 'img2\.jpg'"):
        verify_dataset(root, progress=False)


def test_truncated_jpeg_with_an_end_marker_fails_verification(tmp_path):
    root = _dataset(tmp_path / "d")
    data = (root / "images" / "img1.jpg").read_bytes()
    (root / "images" / "img1.jpg").write_bytes(data[: len(data) * 3 // 4] + b"\xff\xd9")
    with pytest.raises(DataError, match=r"img1\.jpg.*truncated"):
        verify_dataset(root, progress=False)


def test_zero_byte_image_fails_verification(tmp_path):
    root = _dataset(tmp_path / "d")
    (root / "images" / "img2.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"img2\.jpg is empty"):
        verify_dataset(root, progress=False)
