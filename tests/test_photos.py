"""The real-photo WSOL set from scikit-image's bundled photos: the wsolevaluation layout, hand-drawn
boxes inside their images, ImageNet labels, self-contained images."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from camrepro.data.metadata import DatasetInfo, read_split
from camrepro.data.photos import PHOTOS, imagenet_classes, read_allowed
from camrepro.data.prepare import prepare
from camrepro.data.reader import TransformSpec, WSOLDataset
from camrepro.errors import DataError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare("skimage-photos", root=root, progress=False)
    return root / "prepared" / "skimage-photos"


def test_photos_are_prepared_in_the_wsol_layout_with_imagenet_labels(prepared):
    info = DatasetInfo.load(prepared)
    assert info.splits == ["test"] and info.task == "wsol" and info.num_classes == 1000
    classes = imagenet_classes()
    assert info.classes == classes and classes[281] == "tabby" and classes[967] == "espresso"
    meta = read_split(prepared, "test")
    assert meta.image_ids == [p.file for p in PHOTOS]
    allowed = read_allowed(prepared / "test")
    for photo in PHOTOS:
        width, height = Image.open(prepared / info.image_root / photo.file).size
        assert meta.sizes[photo.file] == (width, height)
        (x0, y0, x1, y1), = meta.boxes[photo.file]
        assert 0 <= x0 < x1 < width and 0 <= y0 < y1 < height  # inclusive corners inside the image
        assert meta.labels[photo.file] in allowed[photo.file] == photo.allowed


def test_prepared_photos_are_self_contained(prepared, tmp_path):
    """The images are copied into the prepared folder: moved elsewhere, it still reads."""
    moved = tmp_path / "elsewhere"
    shutil.copytree(prepared, moved)
    data = WSOLDataset(moved, "test", TransformSpec(train=False, crop=64, flip=False))
    sample = data[0]
    assert sample["image"].shape == (3, 64, 64) and sample["label"] == PHOTOS[0].label


def test_missing_allowed_classes_file_says_how_to_prepare_again(prepared, tmp_path):
    copy = tmp_path / "p"
    shutil.copytree(prepared, copy)
    (copy / "test" / "allowed_classes.txt").unlink()
    with pytest.raises(DataError, match="camrepro data prepare skimage-photos"):
        read_allowed(copy / "test")
