"""camrepro.data.prepare: every source's real archive layout (built in tests/archives.py, fetched through
the real download code from a local server) prepared into the wsolevaluation metadata."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from archives import (
    IMAGENET_HEAD_CLASSES,
    caltech101_zip,
    expected_cub_metadata,
    imagenet_files,
    jpeg_bytes,
    serve_source,
    tgz_bytes,
    zip_bytes,
)
from camrepro.data import prepare as prepare_mod
from camrepro.data import sources
from camrepro.data.download import safe_extract
from camrepro.data.metadata import read_blacklist, read_head_classes, read_split
from camrepro.errors import DataError, DownloadError


def test_good_cub_archive_prepares_expected_metadata(cub_served, tmp_path):
    info = prepare_mod.prepare("cub", root=tmp_path, progress=False)
    out = tmp_path / "prepared" / "cub"
    for split, files in expected_cub_metadata().items():
        for name, text in files.items():
            assert (out / split / name).read_text() == text, f"{split}/{name}"
    assert info.classes == ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["num_classes"] == 2 and doc["splits"] == ["train", "test"]
    # image_root is relative and resolves to the extracted images
    meta = read_split(out, "train")
    assert (out / doc["image_root"] / meta.image_ids[0]).is_file()


def test_imagenet_missing_archives_say_what_to_put_where(tmp_path):
    with pytest.raises(DataError) as err:
        prepare_mod.prepare("imagenet", root=tmp_path, progress=False)
    msg = str(err.value)
    assert str(tmp_path / "downloads" / "imagenet") in msg
    for name in (
        "ILSVRC2012_img_train.tar",
        "ILSVRC2012_img_val.tar",
        "ILSVRC2012_bbox_val_v3.tgz",
        "ILSVRC2012_devkit_t12.tar.gz",
    ):
        assert name in msg


def test_imagenet_archive_checksum_is_verified(tmp_path):
    imagenet_files(tmp_path / "downloads" / "imagenet")
    with pytest.raises(DownloadError, match="ILSVRC2012_img_train.tar has md5"):
        prepare_mod.prepare("imagenet", root=tmp_path, progress=False)


def test_imagenet_prepares_every_val_box(tmp_path, no_imagenet_checksums):
    imagenet_files(tmp_path / "downloads" / "imagenet")
    info = prepare_mod.prepare("imagenet", root=tmp_path, progress=False)
    out = tmp_path / "prepared" / "imagenet"
    assert info.classes == ["n01440764", "n01443537"]
    val = read_split(out, "val")
    assert val.boxes["val/ILSVRC2012_val_00000001.JPEG"] == [(1, 2, 20, 25), (5, 5, 39, 29)]
    assert val.labels == {
        "val/ILSVRC2012_val_00000001.JPEG": 1,
        "val/ILSVRC2012_val_00000002.JPEG": 0,
    }
    assert val.sizes["val/ILSVRC2012_val_00000002.JPEG"] == (30, 40)
    # the devkit's blacklist, as image ids of the val images there are (its 50000 is not among them)
    assert read_blacklist(out, "val") == {"val/ILSVRC2012_val_00000002.JPEG"}
    assert read_blacklist(out, "train") is None
    # the devkit's 1,000 (here 4) classes in sorted-wnid order, the order of a published head
    assert read_head_classes(out) == sorted(IMAGENET_HEAD_CLASSES)
    train = read_split(out, "train")
    assert train.image_ids == [
        "train/n01440764/n01440764_0.JPEG",
        "train/n01440764/n01440764_1.JPEG",
        "train/n01443537/n01443537_0.JPEG",
        "train/n01443537/n01443537_1.JPEG",
    ]
    assert not train.has_boxes
    image_root = out / info.image_root
    assert all((image_root / i).is_file() for i in train.image_ids + val.image_ids)


def test_class_folder_protocol_draws_the_published_counts(file_server, monkeypatch, tmp_path):
    counts = {"bedroom": 103, "coast": 101}
    entries = {
        f"scene_categories/{c}/image_{i:04d}.jpg": jpeg_bytes(8, 8, i) for c, n in counts.items() for i in range(n)
    }
    serve_source(monkeypatch, file_server, "scene15", {"images": zip_bytes(entries)})
    info = prepare_mod.prepare("scene15", root=tmp_path, progress=False, seed=3)
    out = tmp_path / "prepared" / "scene15"
    train, test = read_split(out, "train"), read_split(out, "test")
    assert info.classes == ["bedroom", "coast"]
    assert len(train.image_ids) == 200 and len(test.image_ids) == 4  # 100/class train, rest test
    assert not set(train.image_ids) & set(test.image_ids)
    again = prepare_mod.prepare("scene15", root=tmp_path, out=tmp_path / "again", seed=3, progress=False)
    assert read_split(tmp_path / "again", "train").image_ids == train.image_ids
    assert again.params["seed"] == 3


def test_list_protocol_uses_the_official_split_files(file_server, monkeypatch, tmp_path):
    images = {
        f"JPEGImages/{a}_{i:03d}.jpg": jpeg_bytes(8, 8, i) for a in ("applauding", "cooking") for i in range(1, 4)
    }
    splits = {
        "ImageSplits/applauding_train.txt": b"applauding_001.jpg\napplauding_002.jpg\n",
        "ImageSplits/applauding_test.txt": b"applauding_003.jpg\n",
        "ImageSplits/cooking_train.txt": b"cooking_001.jpg\n",
        "ImageSplits/cooking_test.txt": b"cooking_002.jpg\ncooking_003.jpg\n",
    }
    serve_source(monkeypatch, file_server, "action40", {"images": zip_bytes(images), "splits": zip_bytes(splits)})
    prepare_mod.prepare("action40", root=tmp_path, progress=False)
    test = read_split(tmp_path / "prepared" / "action40", "test")
    assert test.labels == {"applauding_003.jpg": 0, "cooking_002.jpg": 1, "cooking_003.jpg": 1}


def test_sun397_uses_the_first_official_partition(file_server, monkeypatch, tmp_path):
    images = {"SUN397/ClassName.txt": b"/a/abbey\n/b/beach\n"}
    images |= {f"SUN397/{c}/sun_{i}.jpg": jpeg_bytes(8, 8, i) for c in ("a/abbey", "b/beach") for i in range(3)}
    parts = {
        "Partitions/Training_01.txt": b"/a/abbey/sun_0.jpg\n/b/beach/sun_0.jpg\n/b/beach/sun_1.jpg\n",
        "Partitions/Testing_01.txt": b"/a/abbey/sun_1.jpg\n/b/beach/sun_2.jpg\n",
        "Partitions/Training_02.txt": b"/a/abbey/sun_2.jpg\n",
    }
    serve_source(monkeypatch, file_server, "sun397", {"images": tgz_bytes(images), "partitions": zip_bytes(parts)})
    info = prepare_mod.prepare("sun397", root=tmp_path, progress=False)
    out = tmp_path / "prepared" / "sun397"
    assert info.classes == ["a/abbey", "b/beach"]
    assert read_split(out, "train").labels == {
        "a/abbey/sun_0.jpg": 0,
        "b/beach/sun_0.jpg": 1,
        "b/beach/sun_1.jpg": 1,
    }
    assert read_split(out, "test").image_ids == ["a/abbey/sun_1.jpg", "b/beach/sun_2.jpg"]


def test_indoor67_uses_the_official_lists(file_server, monkeypatch, tmp_path):
    images = {f"Images/{c}/{c}_{i}.jpg": jpeg_bytes(8, 8, i) for c in ("bar", "kitchen") for i in range(2)}
    serve_source(
        monkeypatch,
        file_server,
        "indoor67",
        {
            "images": tgz_bytes(images),
            "train_list": b"bar/bar_0.jpg\nkitchen/kitchen_0.jpg\n",
            "test_list": b"bar/bar_1.jpg\nkitchen/kitchen_1.jpg\n",
        },
    )
    prepare_mod.prepare("indoor67", root=tmp_path, progress=False)
    test = read_split(tmp_path / "prepared" / "indoor67", "test")
    assert test.labels == {"bar/bar_1.jpg": 0, "kitchen/kitchen_1.jpg": 1}


def test_sunattribute_is_multilabel_with_two_of_three_votes(file_server, monkeypatch, tmp_path):
    from scipy.io import savemat

    names = [f"a/abbey/sun_{i}.jpg" for i in range(4)]
    votes = np.array([[1.0, 0.0], [0.66, 0.33], [0.33, 1.0], [0.0, 0.0]])

    def mat(**arrays) -> bytes:
        buf = io.BytesIO()
        savemat(buf, arrays)
        return buf.getvalue()

    images = np.empty((4, 1), object)
    images[:, 0] = names
    attrs = np.empty((2, 1), object)
    attrs[:, 0] = ["sailing", "vegetation"]
    labels = {
        "SUNAttributeDB/images.mat": mat(images=images),
        "SUNAttributeDB/attributes.mat": mat(attributes=attrs),
        "SUNAttributeDB/attributeLabels_continuous.mat": mat(labels_cv=votes),
    }
    pics = {f"images/{n}": jpeg_bytes(8, 8, i) for i, n in enumerate(names)}
    serve_source(monkeypatch, file_server, "sunattribute", {"images": tgz_bytes(pics), "labels": tgz_bytes(labels)})
    info = prepare_mod.prepare("sunattribute", root=tmp_path, progress=False)
    assert info.classes == ["sailing", "vegetation"] and info.task == "multilabel"
    out = tmp_path / "prepared" / "sunattribute"
    rows = {}
    for split in ("train", "test"):
        for line in (out / split / "multilabels.txt").read_text().splitlines():
            image_id, present = line.split(",")
            rows[image_id] = present
    assert rows == {names[0]: "0", names[1]: "0", names[2]: "1", names[3]: ""}


@pytest.mark.parametrize("annotations_first", [True, False])
def test_caltech101_prepares_from_the_real_archive_in_either_member_order(
    file_server, monkeypatch, tmp_path, annotations_first
):
    serve_source(monkeypatch, file_server, "caltech101", {"images": caltech101_zip(annotations_first)})
    info = prepare_mod.prepare("caltech101", root=tmp_path, progress=False)
    assert info.classes == ["accordion", "airplanes"]  # BACKGROUND_Google excluded, Annotations ignored
    train = read_split(tmp_path / "prepared" / "caltech101", "train")
    assert len(train.image_ids) == 60  # 30 per class
    # a rerun (another output folder) finds the same extraction in raw/
    prepare_mod.prepare("caltech101", root=tmp_path, out=tmp_path / "again", progress=False)
    assert read_split(tmp_path / "again", "train").image_ids == train.image_ids


def test_caltech101_rerun_after_a_failed_run_is_not_poisoned_by_its_extraction(file_server, monkeypatch, tmp_path):
    serve_source(monkeypatch, file_server, "caltech101", {"images": caltech101_zip(True)})
    paths = prepare_mod.fetch(sources.SOURCES["caltech101"], tmp_path, progress=False)
    # what a failed run left: the annotations extracted beside their archive, taken for the images
    inner = paths["images"] / "caltech-101"
    safe_extract(inner / "Annotations.tar", inner / "Annotations")
    info = prepare_mod.prepare("caltech101", root=tmp_path, progress=False)
    assert info.classes == ["accordion", "airplanes"]


def test_per_class_caps_every_split_of_random_and_listed_protocols(file_server, monkeypatch, tmp_path):
    """The size override (`datasets.<name>.per_class`): a random-split protocol draws that many
    train and test images per class instead of its published counts (Scene15: 100 train, which
    these 4-image classes could not give); a listed split keeps its first ones per class."""
    entries = {f"scene_categories/{c}/image_{i:04d}.jpg": jpeg_bytes(8, 8, i) for c in ("bedroom", "coast")
               for i in range(4)}  # fmt: skip
    serve_source(monkeypatch, file_server, "scene15", {"images": zip_bytes(entries)})
    with pytest.raises(DataError, match="more than 100"):
        prepare_mod.prepare("scene15", root=tmp_path, progress=False)
    info = prepare_mod.prepare("scene15", root=tmp_path, progress=False, per_class=2)
    out = tmp_path / "prepared" / "scene15"
    train, test = read_split(out, "train"), read_split(out, "test")
    assert sorted(train.labels.values()) == sorted(test.labels.values()) == [0, 0, 1, 1]
    assert not set(train.image_ids) & set(test.image_ids)
    assert info.params["per_class"] == 2
    assert json.loads((out / "dataset.json").read_text())["params"]["per_class"] == 2

    images = {f"Images/{c}/{c}_{i}.jpg": jpeg_bytes(8, 8, i) for c in ("bar", "kitchen") for i in range(4)}
    serve_source(monkeypatch, file_server, "indoor67", {
        "images": tgz_bytes(images),
        "train_list": b"bar/bar_2.jpg\nbar/bar_0.jpg\nkitchen/kitchen_0.jpg\n",
        "test_list": b"bar/bar_1.jpg\nbar/bar_3.jpg\nkitchen/kitchen_1.jpg\nkitchen/kitchen_3.jpg\n",
    })  # fmt: skip
    prepare_mod.prepare("indoor67", root=tmp_path, progress=False, per_class=1)
    out = tmp_path / "prepared" / "indoor67"
    assert read_split(out, "train").image_ids == ["bar/bar_2.jpg", "kitchen/kitchen_0.jpg"]
    assert read_split(out, "test").labels == {"bar/bar_1.jpg": 0, "kitchen/kitchen_1.jpg": 1}


def test_imagenet_devkit_blacklist_lines_must_be_val_image_numbers(tmp_path, no_imagenet_checksums):
    imagenet_files(tmp_path / "downloads" / "imagenet", blacklist="2\nILSVRC2012_val_00000001\n")
    with pytest.raises(DataError, match=r"ILSVRC2012_validation_blacklist.txt:2: expected a 1-based val image"):
        prepare_mod.prepare("imagenet", root=tmp_path, progress=False)
