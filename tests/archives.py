"""Archives in the real datasets' layouts, built in memory for the download and prepare tests (served
by conftest's 127.0.0.1 file server). CUB_ROWS: (class folder, file, is_train, (x, y, w, h), image size)."""

from __future__ import annotations

import dataclasses
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from camrepro.data import sources

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


def jpeg_bytes(w: int, h: int, seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def add_member(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def build_cub_archive() -> bytes:
    """A tiny archive in the layout of the real CUB_200_2011.tgz."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        add_member(tf, "attributes.txt", b"1 has_bill_shape::curved\n")
        root = "CUB_200_2011"
        classes = sorted({c for c, *_ in CUB_ROWS})
        add_member(
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
            add_member(tf, f"{root}/images/{cls}/{fname}", jpeg_bytes(iw, ih, i))
        for name, rows in (
            ("images.txt", images),
            ("image_class_labels.txt", labels),
            ("train_test_split.txt", split),
            ("bounding_boxes.txt", boxes),
        ):
            add_member(tf, f"{root}/{name}", "".join(rows).encode())
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


def tar_with(members: list[tarfile.TarInfo], path: Path) -> Path:
    with tarfile.open(path, "w") as tf:
        for m in members:
            tf.addfile(m, io.BytesIO(b"evil") if m.isfile() else None)
    return path


def file_member(name: str) -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.size = 4
    return m


IMAGENET_BLACKLIST = "2\n50000\n"  # val image 2 and one beyond the tiny val set
# the leaf synsets of the tiny devkit's meta.mat (a head's classes), in the devkit's own (unsorted) order
IMAGENET_HEAD_CLASSES = ["n01443537", "n01530575", "n01440764", "n01484850"]


def devkit_meta_mat(wnids: list[str]) -> bytes:
    """The devkit's data/meta.mat: a `synsets` struct array (ILSVRC2012_ID, WNID, words, gloss,
    num_children, ...), here the leaf synsets `wnids` and one parent synset (children: not a class)."""
    from scipy.io import savemat

    dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O")]
    rows = [(i + 1, w, w, "", 0) for i, w in enumerate(wnids)] + [(len(wnids) + 1, "n00001740", "entity", "", 3)]
    synsets = np.array(rows, dtype=dtype).reshape(-1, 1)
    buf = io.BytesIO()
    savemat(buf, {"synsets": synsets})
    return buf.getvalue()


def imagenet_files(folder: Path, blacklist: str = IMAGENET_BLACKLIST) -> None:
    """Tiny ILSVRC2012 train/val/bbox archives and devkit in the real layout (the devkit's
    data/ILSVRC2012_validation_blacklist.txt: one 1-based val image number a line)."""
    folder.mkdir(parents=True)
    with tarfile.open(folder / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tf:
        add_member(tf, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_blacklist.txt", blacklist.encode())
        add_member(tf, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", b"2\n1\n")
        add_member(tf, "ILSVRC2012_devkit_t12/data/meta.mat", devkit_meta_mat(IMAGENET_HEAD_CLASSES))
    wnids = ["n01440764", "n01443537"]
    with tarfile.open(folder / "ILSVRC2012_img_train.tar", "w") as outer:
        for k, w in enumerate(wnids):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tf:
                for j in range(2):
                    add_member(tf, f"{w}_{j}.JPEG", jpeg_bytes(20, 16, 10 * k + j))
            add_member(outer, f"{w}.tar", inner.getvalue())
    with tarfile.open(folder / "ILSVRC2012_img_val.tar", "w") as tf:
        add_member(tf, "ILSVRC2012_val_00000001.JPEG", jpeg_bytes(40, 30, 100))
        add_member(tf, "ILSVRC2012_val_00000002.JPEG", jpeg_bytes(30, 40, 101))
    xml = (
        "<annotation><filename>{name}</filename><size><width>{w}</width><height>{h}</height>"
        "</size>{objs}</annotation>"
    )
    obj = (
        "<object><name>{wnid}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
        "<ymax>{d}</ymax></bndbox></object>"
    )
    with tarfile.open(folder / "ILSVRC2012_bbox_val_v3.tgz", "w:gz") as tf:
        add_member(
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
        add_member(
            tf,
            "val/ILSVRC2012_val_00000002.xml",
            xml.format(
                name="ILSVRC2012_val_00000002",
                w=30,
                h=40,
                objs=obj.format(wnid=wnids[0], a=0, b=0, c=29, d=39),
            ).encode(),
        )


def serve_source(monkeypatch, server, name: str, payloads: dict[str, bytes]) -> None:
    src = sources.SOURCES[name]
    archives = []
    for a in src.archives:
        server.files[a.filename] = payloads[a.key]
        archives.append(dataclasses.replace(a, url=server.url(a.filename), md5=None, sha256=None))
    monkeypatch.setitem(sources.SOURCES, name, dataclasses.replace(src, archives=tuple(archives)))


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(entries: dict[str, bytes], mode: str = "w") -> bytes:
    """A tar archive of `entries` (name -> bytes), in their order; mode "w:gz" compresses it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in entries.items():
            add_member(tf, name, data)
    return buf.getvalue()


def tgz_bytes(entries: dict[str, bytes]) -> bytes:
    return tar_bytes(entries, "w:gz")


def caltech101_zip(annotations_first: bool) -> bytes:
    """caltech-101.zip in the real layout: a folder holding 101_ObjectCategories.tar.gz (class
    folders of JPEGs, BACKGROUND_Google among them) and Annotations.tar (class folders of .mat
    files, no images), in the given member order."""
    images = {f"101_ObjectCategories/{c}/image_{i:04d}.jpg": jpeg_bytes(8, 8, i)
              for c in ("BACKGROUND_Google", "accordion", "airplanes") for i in range(1, 33)}  # fmt: skip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for c in ("accordion", "airplanes"):
            add_member(tf, f"Annotations/{c}/annotation_0001.mat", b"MATLAB 5.0 MAT-file")
    members = [("caltech-101/101_ObjectCategories.tar.gz", tgz_bytes(images)),
               ("caltech-101/Annotations.tar", buf.getvalue()), ("caltech-101/show_annotation.m", b"%")]  # fmt: skip
    return zip_bytes(dict(members[::-1] if annotations_first else members))
