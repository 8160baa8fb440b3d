"""The real download and prepare code against a local HTTP server serving archives built here."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camrepro.data import prepare as prepare_mod
from camrepro.data import sources
from camrepro.data.download import download, safe_extract
from camrepro.data.metadata import read_split
from camrepro.errors import DataError, DownloadError, UnsafeArchiveError

# CUB rows: (class folder, file, is_train, (x, y, w, h), image size)
CUB_ROWS = [
    (
        "001.Black_footed_Albatross",
        "Black_Footed_Albatross_0001_1.jpg",
        1,
        (10.0, 20.0, 30.5, 40.0),
        (64, 80),
    ),
    (
        "001.Black_footed_Albatross",
        "Black_Footed_Albatross_0002_2.jpg",
        0,
        (0.0, 0.0, 63.0, 47.0),
        (64, 48),
    ),
    ("002.Laysan_Albatross", "Laysan_Albatross_0001_3.jpg", 1, (5.7, 6.2, 20.1, 11.9), (50, 40)),
    ("002.Laysan_Albatross", "Laysan_Albatross_0002_4.jpg", 0, (1.0, 2.0, 3.0, 4.0), (32, 32)),
]


def _jpeg(w: int, h: int, seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def build_cub_archive() -> bytes:
    """A tiny archive in the layout of the real CUB_200_2011.tgz."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        _add(tf, "attributes.txt", b"1 has_bill_shape::curved\n")
        root = "CUB_200_2011"
        classes = sorted({c for c, *_ in CUB_ROWS})
        _add(
            tf,
            f"{root}/classes.txt",
            "".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)).encode(),
        )
        images, labels, split, boxes = [], [], [], []
        for i, (cls, fname, is_train, (x, y, w, h), (iw, ih)) in enumerate(CUB_ROWS, 1):
            images.append(f"{i} {cls}/{fname}\n")
            labels.append(f"{i} {classes.index(cls) + 1}\n")
            split.append(f"{i} {is_train}\n")
            boxes.append(f"{i} {x} {y} {w} {h}\n")
            _add(tf, f"{root}/images/{cls}/{fname}", _jpeg(iw, ih, i))
        for name, rows in (
            ("images.txt", images),
            ("image_class_labels.txt", labels),
            ("train_test_split.txt", split),
            ("bounding_boxes.txt", boxes),
        ):
            _add(tf, f"{root}/{name}", "".join(rows).encode())
    return buf.getvalue()


def expected_cub_metadata() -> dict[str, dict[str, str]]:
    """What the prepared files must contain, written out independently of the preparer."""
    return {
        "train": {
            "image_ids.txt": "001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg\n"
            "002.Laysan_Albatross/Laysan_Albatross_0001_3.jpg\n",
            "class_labels.txt": "001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg,0\n"
            "002.Laysan_Albatross/Laysan_Albatross_0001_3.jpg,1\n",
            "image_sizes.txt": "001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg,64,80\n"
            "002.Laysan_Albatross/Laysan_Albatross_0001_3.jpg,50,40\n",
            # x1 = int(x + w), y1 = int(y + h): 10+30.5 -> 40; 5.7+20.1 -> 25; 6.2+11.9 -> 18
            "localization.txt": "001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg,10,20,40,60\n"
            "002.Laysan_Albatross/Laysan_Albatross_0001_3.jpg,5,6,25,18\n",
        },
        "test": {
            "image_ids.txt": "001.Black_footed_Albatross/Black_Footed_Albatross_0002_2.jpg\n"
            "002.Laysan_Albatross/Laysan_Albatross_0002_4.jpg\n",
            "class_labels.txt": "001.Black_footed_Albatross/Black_Footed_Albatross_0002_2.jpg,0\n"
            "002.Laysan_Albatross/Laysan_Albatross_0002_4.jpg,1\n",
            "image_sizes.txt": "001.Black_footed_Albatross/Black_Footed_Albatross_0002_2.jpg,64,48\n"
            "002.Laysan_Albatross/Laysan_Albatross_0002_4.jpg,32,32\n",
            "localization.txt": "001.Black_footed_Albatross/Black_Footed_Albatross_0002_2.jpg,0,0,63,47\n"
            "002.Laysan_Albatross/Laysan_Albatross_0002_4.jpg,1,2,4,6\n",
        },
    }


@pytest.fixture
def cub_served(file_server, monkeypatch):
    """Serve a CUB-layout archive and point the registry's CUB entry at it."""
    data = build_cub_archive()
    file_server.files["CUB_200_2011.tgz"] = data
    src = sources.SOURCES["cub"]
    archive = dataclasses.replace(
        src.archives[0], url=file_server.url("CUB_200_2011.tgz"), md5=hashlib.md5(data).hexdigest()
    )
    monkeypatch.setitem(sources.SOURCES, "cub", dataclasses.replace(src, archives=(archive,)))
    return file_server, data


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


def test_wrong_checksum_is_a_clear_error_and_leaves_no_output(cub_served, tmp_path, monkeypatch):
    server, data = cub_served
    src = sources.SOURCES["cub"]
    bad = dataclasses.replace(src.archives[0], md5="0" * 32)
    monkeypatch.setitem(sources.SOURCES, "cub", dataclasses.replace(src, archives=(bad,)))
    with pytest.raises(DownloadError, match="checksum mismatch.*CUB_200_2011.tgz"):
        prepare_mod.prepare("cub", root=tmp_path, progress=False)
    assert not (tmp_path / "prepared" / "cub").exists()
    assert not (tmp_path / "downloads" / "cub" / "CUB_200_2011.tgz").exists()
    assert not (tmp_path / "raw" / "cub").exists()


def test_truncated_download_errors_then_resumes(file_server, tmp_path):
    data = build_cub_archive()
    file_server.files["a.tgz"] = data
    file_server.truncate_next["a.tgz"] = 1
    dest = tmp_path / "a.tgz"
    md5 = hashlib.md5(data).hexdigest()
    with pytest.raises(DownloadError, match="interrupted.*run again to resume"):
        download(file_server.url("a.tgz"), dest, md5=md5, retries=0, progress=False)
    assert not dest.exists()  # nothing under the final name
    part = tmp_path / "a.tgz.part"
    assert 0 < part.stat().st_size < len(data)
    have = part.stat().st_size
    download(file_server.url("a.tgz"), dest, md5=md5, retries=0, progress=False)
    assert dest.read_bytes() == data
    assert file_server.requests[-1] == ("a.tgz", f"bytes={have}-")  # resumed, not restarted
    assert not part.exists()


def test_flaky_server_completes_within_one_call_with_retries(file_server, tmp_path):
    data = b"x" * 5000 + b"y" * 5000
    file_server.files["f.bin"] = data
    file_server.truncate_next["f.bin"] = 2
    out = download(
        file_server.url("f.bin"),
        tmp_path / "f.bin",
        sha256=hashlib.sha256(data).hexdigest(),
        retries=3,
        progress=False,
    )
    assert out.read_bytes() == data


def test_unknown_checksum_is_pinned_on_first_download(file_server, tmp_path):
    file_server.files["g.bin"] = b"first version"
    dest = tmp_path / "g.bin"
    download(file_server.url("g.bin"), dest, progress=False)
    pin = tmp_path / "g.bin.sha256"
    assert pin.read_text().split()[0] == hashlib.sha256(b"first version").hexdigest()
    dest.write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="g.bin has sha256"):
        download(file_server.url("g.bin"), dest, progress=False)


def test_offline_error_names_url_and_where_to_put_the_file(tmp_path):
    # port 9 on loopback: nothing listens, the connection is refused at once
    with pytest.raises(DownloadError, match=r"cannot reach http://127.0.0.1:9/x.tgz.*place it at"):
        download("http://127.0.0.1:9/x.tgz", tmp_path / "x.tgz", retries=0, progress=False)


def _tar_with(members: list[tarfile.TarInfo], path: Path) -> Path:
    with tarfile.open(path, "w") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"evil") if m.isfile() else None)
    return path


def _file_member(name: str) -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.size = 4
    return m


@pytest.mark.parametrize("bad", ["../escape.txt", "ok/../../escape.txt", "{tmp}/abs_escape.txt"])
def test_escaping_tar_member_is_refused_and_nothing_written(tmp_path, bad):
    work = tmp_path / "work"
    work.mkdir()
    bad = bad.format(tmp=tmp_path)  # an absolute member name pointing into this test's own folder
    archive = _tar_with([_file_member("good.txt"), _file_member(bad)], work / "a.tar")
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        safe_extract(archive, work / "out")
    assert not (work / "out").exists()
    # every target the members aim at (work/escape.txt, tmp_path/escape.txt, tmp_path/abs_escape.txt)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
    assert [p.name for p in work.iterdir()] == ["a.tar"]  # no temp folder left behind


def test_link_out_of_target_is_refused(tmp_path):
    link = tarfile.TarInfo("inner/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../outside"
    archive = _tar_with([link], tmp_path / "l.tar")
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_member_escaping_is_refused(tmp_path):
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr("../zip_escape.txt", "evil")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "zip_escape.txt").exists()


def test_safe_archive_extracts(tmp_path):
    archive = _tar_with([_file_member("a/b.txt")], tmp_path / "ok.tar")
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"evil"


# ----------------------------------------------------------------------------- ImageNet


def _imagenet_files(folder: Path) -> None:
    """Tiny ILSVRC2012 train/val/bbox archives in the real layout."""
    folder.mkdir(parents=True)
    wnids = ["n01440764", "n01443537"]
    with tarfile.open(folder / "ILSVRC2012_img_train.tar", "w") as outer:
        for k, w in enumerate(wnids):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tf:
                for j in range(2):
                    _add(tf, f"{w}_{j}.JPEG", _jpeg(20, 16, 10 * k + j))
            _add(outer, f"{w}.tar", inner.getvalue())
    with tarfile.open(folder / "ILSVRC2012_img_val.tar", "w") as tf:
        _add(tf, "ILSVRC2012_val_00000001.JPEG", _jpeg(40, 30, 100))
        _add(tf, "ILSVRC2012_val_00000002.JPEG", _jpeg(30, 40, 101))
    xml = (
        "<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height>"
        "</size>{objs}</annotation>"
    )
    obj = (
        "<object><name>{wnid}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
        "<ymax>{d}</ymax></bndbox></object>"
    )
    with tarfile.open(folder / "ILSVRC2012_bbox_val_v3.tgz", "w:gz") as tf:
        _add(
            tf,
            "val/ILSVRC2012_val_00000001.xml",
            xml.format(
                name="ILSVRC2012_val_00000001",
                w=40,
                h=30,
                objs=obj.format(wnid=wnids[1], a=1, b=2, c=20, d=25)
                + obj.format(wnid=wnids[1], a=5, b=5, c=39, d=29),
            ).encode(),
        )
        _add(
            tf,
            "val/ILSVRC2012_val_00000002.xml",
            xml.format(
                name="ILSVRC2012_val_00000002",
                w=30,
                h=40,
                objs=obj.format(wnid=wnids[0], a=0, b=0, c=29, d=39),
            ).encode(),
        )


@pytest.fixture
def no_imagenet_checksums(monkeypatch):
    src = sources.SOURCES["imagenet"]
    archives = tuple(dataclasses.replace(a, md5=None) for a in src.archives)
    monkeypatch.setitem(sources.SOURCES, "imagenet", dataclasses.replace(src, archives=archives))


def test_imagenet_missing_archives_say_what_to_put_where(tmp_path):
    with pytest.raises(DataError) as err:
        prepare_mod.prepare("imagenet", root=tmp_path, progress=False)
    msg = str(err.value)
    assert str(tmp_path / "downloads" / "imagenet") in msg
    for name in (
        "ILSVRC2012_img_train.tar",
        "ILSVRC2012_img_val.tar",
        "ILSVRC2012_bbox_val_v3.tgz",
    ):
        assert name in msg


def test_imagenet_archive_checksum_is_verified(tmp_path):
    _imagenet_files(tmp_path / "downloads" / "imagenet")
    with pytest.raises(DownloadError, match="ILSVRC2012_img_train.tar has md5"):
        prepare_mod.prepare("imagenet", root=tmp_path, progress=False)


def test_imagenet_prepares_every_val_box(tmp_path, no_imagenet_checksums):
    _imagenet_files(tmp_path / "downloads" / "imagenet")
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


# ----------------------------------------------------------------------------- transfer sets


def _serve_source(monkeypatch, server, name: str, payloads: dict[str, bytes]) -> None:
    src = sources.SOURCES[name]
    archives = []
    for a in src.archives:
        server.files[a.filename] = payloads[a.key]
        archives.append(dataclasses.replace(a, url=server.url(a.filename), md5=None, sha256=None))
    monkeypatch.setitem(sources.SOURCES, name, dataclasses.replace(src, archives=tuple(archives)))


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_class_folder_protocol_draws_the_published_counts(file_server, monkeypatch, tmp_path):
    counts = {"bedroom": 103, "coast": 101}
    entries = {
        f"scene_categories/{c}/image_{i:04d}.jpg": _jpeg(8, 8, i) for c, n in counts.items() for i in range(n)
    }
    _serve_source(monkeypatch, file_server, "scene15", {"images": _zip(entries)})
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
        f"JPEGImages/{a}_{i:03d}.jpg": _jpeg(8, 8, i) for a in ("applauding", "cooking") for i in range(1, 4)
    }
    splits = {
        "ImageSplits/applauding_train.txt": b"applauding_001.jpg\napplauding_002.jpg\n",
        "ImageSplits/applauding_test.txt": b"applauding_003.jpg\n",
        "ImageSplits/cooking_train.txt": b"cooking_001.jpg\n",
        "ImageSplits/cooking_test.txt": b"cooking_002.jpg\ncooking_003.jpg\n",
    }
    _serve_source(monkeypatch, file_server, "action40", {"images": _zip(images), "splits": _zip(splits)})
    prepare_mod.prepare("action40", root=tmp_path, progress=False)
    test = read_split(tmp_path / "prepared" / "action40", "test")
    assert test.labels == {"applauding_003.jpg": 0, "cooking_002.jpg": 1, "cooking_003.jpg": 1}


def _tgz(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries.items():
            _add(tf, name, data)
    return buf.getvalue()


def test_sun397_uses_the_first_official_partition(file_server, monkeypatch, tmp_path):
    images = {"SUN397/ClassName.txt": b"/a/abbey\n/b/beach\n"}
    images |= {f"SUN397/{c}/sun_{i}.jpg": _jpeg(8, 8, i) for c in ("a/abbey", "b/beach") for i in range(3)}
    parts = {
        "Partitions/Training_01.txt": b"/a/abbey/sun_0.jpg\n/b/beach/sun_0.jpg\n/b/beach/sun_1.jpg\n",
        "Partitions/Testing_01.txt": b"/a/abbey/sun_1.jpg\n/b/beach/sun_2.jpg\n",
        "Partitions/Training_02.txt": b"/a/abbey/sun_2.jpg\n",
    }
    _serve_source(monkeypatch, file_server, "sun397", {"images": _tgz(images), "partitions": _zip(parts)})
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
    images = {f"Images/{c}/{c}_{i}.jpg": _jpeg(8, 8, i) for c in ("bar", "kitchen") for i in range(2)}
    _serve_source(
        monkeypatch,
        file_server,
        "indoor67",
        {
            "images": _tgz(images),
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
    pics = {f"images/{n}": _jpeg(8, 8, i) for i, n in enumerate(names)}
    _serve_source(monkeypatch, file_server, "sunattribute", {"images": _tgz(pics), "labels": _tgz(labels)})
    info = prepare_mod.prepare("sunattribute", root=tmp_path, progress=False)
    assert info.classes == ["sailing", "vegetation"] and info.task == "multilabel"
    out = tmp_path / "prepared" / "sunattribute"
    rows = {}
    for split in ("train", "test"):
        for line in (out / split / "multilabels.txt").read_text().splitlines():
            image_id, present = line.split(",")
            rows[image_id] = present
    assert rows == {names[0]: "0", names[1]: "0", names[2]: "1", names[3]: ""}


def test_per_class_caps_every_split_of_random_and_listed_protocols(file_server, monkeypatch, tmp_path):
    """The size override (`datasets.<name>.per_class`): a random-split protocol draws that many
    train and test images per class instead of its published counts (Scene15: 100 train, which
    these 4-image classes could not give); a listed split keeps its first ones per class."""
    entries = {f"scene_categories/{c}/image_{i:04d}.jpg": _jpeg(8, 8, i) for c in ("bedroom", "coast")
               for i in range(4)}  # fmt: skip
    _serve_source(monkeypatch, file_server, "scene15", {"images": _zip(entries)})
    with pytest.raises(DataError, match="more than 100"):
        prepare_mod.prepare("scene15", root=tmp_path, progress=False)
    info = prepare_mod.prepare("scene15", root=tmp_path, progress=False, per_class=2)
    out = tmp_path / "prepared" / "scene15"
    train, test = read_split(out, "train"), read_split(out, "test")
    assert sorted(train.labels.values()) == sorted(test.labels.values()) == [0, 0, 1, 1]
    assert not set(train.image_ids) & set(test.image_ids)
    assert info.params["per_class"] == 2
    assert json.loads((out / "dataset.json").read_text())["params"]["per_class"] == 2

    images = {f"Images/{c}/{c}_{i}.jpg": _jpeg(8, 8, i) for c in ("bar", "kitchen") for i in range(4)}
    _serve_source(monkeypatch, file_server, "indoor67", {
        "images": _tgz(images),
        "train_list": b"bar/bar_2.jpg\nbar/bar_0.jpg\nkitchen/kitchen_0.jpg\n",
        "test_list": b"bar/bar_1.jpg\nbar/bar_3.jpg\nkitchen/kitchen_1.jpg\nkitchen/kitchen_3.jpg\n",
    })  # fmt: skip
    prepare_mod.prepare("indoor67", root=tmp_path, progress=False, per_class=1)
    out = tmp_path / "prepared" / "indoor67"
    assert read_split(out, "train").image_ids == ["bar/bar_2.jpg", "kitchen/kitchen_0.jpg"]
    assert read_split(out, "test").labels == {"bar/bar_1.jpg": 0, "kitchen/kitchen_1.jpg": 1}
