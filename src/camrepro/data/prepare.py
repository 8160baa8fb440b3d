"""Fetch the real datasets and prepare them into the uniform metadata layout (see metadata.py).

Folders under the data root (default `data/`):

    downloads/<source>/<archive file>   verified archives (ImageNet's are placed here by the user)
    raw/<source>/<archive key>/         extracted archives (never modified after extraction)
    prepared/<source>/                  metadata; `image_root` in dataset.json points into raw/

Every step is idempotent: verified downloads and finished extractions are kept, and the prepared
folder is written atomically, so an interrupted run is simply run again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from camrepro.data.download import ARCHIVE_SUFFIXES, download, safe_extract, verify
from camrepro.data.metadata import (
    IMAGENET_CLASSES_FILE,
    DatasetInfo,
    SplitMeta,
    read_split,
    write_blacklist,
    write_split,
)
from camrepro.data.photos import prepare_photos
from camrepro.data.sources import Source, get_source
from camrepro.errors import DataError
from camrepro.fsutil import atomic_dir, atomic_write_text

log = logging.getLogger(__name__)
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff"}


def fetch(source: Source, root: Path, progress: bool = True) -> dict[str, Path]:
    """Download/verify every archive of `source` and extract it; return key -> extracted path."""
    downloads = root / "downloads" / source.name
    raw = root / "raw" / source.name
    missing = [a for a in source.archives if a.manual and not (downloads / a.filename).exists()]
    if missing:
        names = ", ".join(a.filename for a in missing)
        raise DataError(
            f"{source.title}: missing {names} in {downloads}/. "
            + source.manual_help.format(folder=f"{downloads}/")
        )
    paths: dict[str, Path] = {}
    for a in source.archives:
        dest = downloads / a.filename
        target = raw / a.key
        if a.manual:
            verify(dest, a.md5, a.sha256)
        elif not target.exists():
            download(a.url, dest, md5=a.md5, sha256=a.sha256, progress=progress)
        if not a.extract:
            paths[a.key] = dest
            continue
        if not target.exists():
            if a.filename.endswith(".rar"):
                raise DataError(
                    f"{dest} is a RAR archive, which Python cannot extract. Extract it with "
                    f"`unrar x {dest} {target}/` (or `bsdtar -xf {dest} -C {target}`) and run again."
                )
            log.info("extracting %s -> %s", dest, target)
            safe_extract(dest, target)
        paths[a.key] = target
    return paths


def prepare(
    name: str,
    root: str | Path = "data",
    out: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    per_class: int | None = None,
) -> DatasetInfo:
    """Fetch and prepare dataset `name` into `out` (default `<root>/prepared/<name>`).

    `per_class` is a size override (rehearsals, a quick look): at most that many images per class
    in every split. A random-split protocol draws that many train and test images per class
    instead of its published counts; a listed split keeps its first ones per class. Multilabel
    splits (SUN Attribute, whose images have no single class) are left whole.
    """
    source = get_source(name)
    root = Path(root)
    out = Path(out) if out is not None else root / "prepared" / name
    paths = fetch(source, root, progress)
    preparer = PREPARERS[name]
    if per_class is not None and "train_per_class" in source.params:
        n_test = source.params["test_per_class"]
        source = dataclasses.replace(source, params=source.params | {
            "train_per_class": min(per_class, source.params["train_per_class"]),
            "test_per_class": per_class if n_test is None else min(per_class, n_test)})  # fmt: skip
    with atomic_dir(out) as tmp:
        info = preparer(source, paths, tmp, seed, progress)
        # image_root is relative to the *final* folder, which is a sibling of tmp (images copied into
        # tmp, the bundled photos', are relative to tmp itself)
        image_root = Path(info.image_root).resolve()
        inside = image_root.is_relative_to(Path(tmp).resolve())
        info.image_root = os.path.relpath(image_root, Path(tmp).resolve() if inside else out.resolve())
        info.params = {"protocol": source.protocol, "seed": seed} | info.params
        if per_class is not None:
            _cap_per_class(tmp, info.splits, per_class)
            info.params["per_class"] = per_class
        info.save(tmp)
    return info


def _cap_per_class(folder: Path, splits: list[str], n: int) -> None:
    """Keep the first `n` images of each class in each split (labels -1, multilabel: all)."""
    for split in splits:
        meta = read_split(folder, split)
        seen: dict[int, int] = {}
        keep = []
        for i in meta.image_ids:
            label = meta.labels[i]
            seen[label] = seen.get(label, 0) + 1
            if label < 0 or seen[label] <= n:
                keep.append(i)
        if len(keep) == len(meta.image_ids):
            continue
        kept = set(keep)

        def only(d: dict, kept: set = kept) -> dict:
            return {k: v for k, v in d.items() if k in kept}

        write_split(folder, split, SplitMeta(keep, only(meta.labels), only(meta.sizes), only(meta.boxes),
                                             only(meta.masks), only(meta.ignore)))  # fmt: skip


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(
            f"{path} not found ({what}); the archive is incomplete: delete "
            f"its raw/ folder and download again."
        )
    return path


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DataError(f"image {path} listed in the dataset's index is missing.") from None
    except Exception as exc:
        raise DataError(f"image {path} cannot be read ({exc}); extract the archive again.") from exc


# ----------------------------------------------------------------------------- CUB


def prepare_cub(source: Source, paths: dict[str, Path], out: Path, seed: int, progress: bool) -> DatasetInfo:
    base = _find_dir_with(paths["CUB_200_2011"], "images.txt")

    def table(name: str) -> dict[int, list[str]]:
        rows = {}
        path = _need(base / name, "CUB index file")
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                key, *rest = line.split()
                try:
                    rows[int(key)] = rest
                except ValueError:
                    raise DataError(f"{path}:{lineno}: expected '<id> ...', got {line!r}") from None
        return rows

    images, labels = table("images.txt"), table("image_class_labels.txt")
    split, boxes = table("train_test_split.txt"), table("bounding_boxes.txt")
    classes = [name for _, (name,) in sorted(table("classes.txt").items())]
    metas = {"train": SplitMeta([], {}), "test": SplitMeta([], {})}
    for idx in tqdm(sorted(images), desc="CUB", disable=not progress):
        for tbl, fname in (
            (labels, "image_class_labels.txt"),
            (split, "train_test_split.txt"),
            (boxes, "bounding_boxes.txt"),
        ):
            if idx not in tbl:
                raise DataError(f"{base / fname}: no row for image id {idx} ({images[idx][0]}).")
        image_id = images[idx][0]
        m = metas["train" if split[idx][0] == "1" else "test"]
        m.image_ids.append(image_id)
        m.labels[image_id] = int(labels[idx][0]) - 1
        m.sizes[image_id] = _image_size(base / "images" / image_id)
        x, y, w, h = (float(v) for v in boxes[idx])
        m.boxes[image_id] = [(int(x), int(y), int(x + w), int(y + h))]
    for name, m in metas.items():
        write_split(out, name, m)
    return DatasetInfo(
        name="cub",
        classes=classes,
        splits=["train", "test"],
        image_root=str((base / "images").resolve()),
        source="cub",
        task="wsol",
        description=source.title,
    )


# ----------------------------------------------------------------------------- ImageNet


def prepare_imagenet(
    source: Source, paths: dict[str, Path], out: Path, seed: int, progress: bool
) -> DatasetInfo:
    train_root = paths["train"]
    inner = sorted(train_root.glob("n*.tar"))
    for tar in tqdm(inner, desc="ImageNet train class archives", disable=not progress):
        safe_extract(tar, tar.with_suffix(""))  # n01440764.tar -> n01440764/
        tar.unlink()
    wnids = sorted(p.name for p in train_root.iterdir() if p.is_dir())
    if not wnids:
        raise DataError(f"{train_root}: no class folders; delete it and run again to re-extract.")
    index = {w: i for i, w in enumerate(wnids)}
    train = SplitMeta([], {})
    for w in wnids:
        for img in sorted((train_root / w).iterdir()):
            image_id = f"train/{w}/{img.name}"
            train.image_ids.append(image_id)
            train.labels[image_id] = index[w]

    xml_dir = _find_dir_with(paths["bbox_val"], None, pattern="*.xml")
    val = SplitMeta([], {})
    for xml in tqdm(sorted(xml_dir.glob("*.xml")), desc="ImageNet val boxes", disable=not progress):
        doc = ET.parse(xml).getroot()
        name = doc.findtext("filename")
        if not name:
            raise DataError(f"{xml}: no <filename>; is this the ILSVRC2012 val bbox archive?")
        image_id = f"val/{name}.JPEG" if not name.endswith(".JPEG") else f"val/{name}"
        if not (paths["val"] / Path(image_id).name).exists():
            raise DataError(f"{xml} annotates {name}, which is not in {paths['val']}.")
        objs = doc.findall("object")
        synsets = {o.findtext("name") for o in objs}
        if len(synsets) != 1 or next(iter(synsets)) not in index:
            raise DataError(f"{xml}: objects of synsets {sorted(synsets)}; expected one known one.")
        val.image_ids.append(image_id)
        val.labels[image_id] = index[synsets.pop()]
        val.sizes[image_id] = (int(doc.findtext("size/width")), int(doc.findtext("size/height")))
        val.boxes[image_id] = [
            tuple(int(float(o.findtext(f"bndbox/{k}"))) for k in ("xmin", "ymin", "xmax", "ymax"))
            for o in objs
        ]
    if not val.image_ids:
        raise DataError(f"{xml_dir}: no validation XML files found.")
    # image ids are "train/<wnid>/<file>" and "val/<file>": the root is raw/imagenet/, the parent
    # of both extractions (their folder names are the archive keys)
    image_root = train_root.parent
    write_split(out, "train", train)
    write_split(out, "val", val)
    blacklist = _devkit_blacklist(paths["devkit"], set(val.image_ids))
    write_blacklist(out, "val", blacklist)
    head_classes = _devkit_classes(paths["devkit"])
    if head_classes:  # the classes of a published ImageNet head, so a subset can be scored by one
        atomic_write_text(out / IMAGENET_CLASSES_FILE, "".join(f"{w}\n" for w in head_classes))
    atomic_write_text(out / "wnids.txt", "".join(f"{w}\n" for w in wnids))
    return DatasetInfo(
        name="imagenet",
        classes=wnids,
        splits=["train", "val"],
        image_root=str(image_root.resolve()),
        source="imagenet",
        task="wsol",
        description=source.title,
        params={"val_blacklist": f"{len(blacklist)} val images listed in the devkit's {BLACKLIST_NAME}"},
    )


BLACKLIST_NAME = "ILSVRC2012_validation_blacklist.txt"


def _devkit_classes(devkit: Path) -> list[str]:
    """The 1,000 ILSVRC2012 classes (the devkit's data/meta.mat: its synsets without children) in
    sorted-wnid order, the order of torchvision's heads (torchvision.datasets.ImageNet reads the same
    file); [] when the devkit has no meta.mat."""
    from scipy.io import loadmat  # scipy comes with scikit-learn

    found = sorted(devkit.rglob("meta.mat"))
    if not found:
        return []
    synsets = np.ravel(loadmat(found[0], squeeze_me=True)["synsets"])
    return sorted(str(s["WNID"]) for s in synsets if int(s["num_children"]) == 0)


def _devkit_blacklist(devkit: Path, val_ids: set[str]) -> list[str]:
    """The val images the ILSVRC2012 devkit blacklists (data/ILSVRC2012_validation_blacklist.txt: one
    1-based val image number a line, 1,762 of them), as image ids, those of `val_ids` only."""
    path = _find_dir_with(devkit, BLACKLIST_NAME) / BLACKLIST_NAME
    ids = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        if not line.strip().isdigit() or int(line) < 1:
            raise DataError(f"{path}:{lineno}: expected a 1-based val image number, got {line!r}.")
        image_id = f"val/ILSVRC2012_val_{int(line):08d}.JPEG"
        if image_id in val_ids:
            ids.append(image_id)
    return ids


# ----------------------------------------------------------------------------- transfer sets


def _find_dir_with(folder: Path, filename: str | None, pattern: str | None = None) -> Path:
    """The first folder at or below `folder` that holds `filename` (or files matching `pattern`)."""
    for d in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if (filename and (d / filename).exists()) or (pattern and any(d.glob(pattern))):
            return d
    raise DataError(f"{folder}: found no {filename or pattern} inside; is it the right archive?")


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTS


def _class_root(folder: Path) -> Path:
    """The folder whose subfolders are the classes. If there is none, the nested archives are
    extracted (each beside itself, kept) and searched, in sorted order: caltech-101.zip holds
    101_ObjectCategories.tar.gz and Annotations.tar, whose class folders hold .mat files, not
    images, so the member order does not matter and a leftover extraction is simply skipped."""
    found = _images_root(folder)
    if found is not None:
        return found
    for nested in sorted(p for p in folder.rglob("*") if p.name.endswith(ARCHIVE_SUFFIXES)):
        target = nested.with_name(nested.name.split(".")[0])
        if not target.exists():
            safe_extract(nested, target)
        found = _images_root(target)
        if found is not None:
            return found
    raise DataError(
        f"{folder}: found no folder of class subfolders with images (nor an archive holding one); "
        "is it the right archive? Delete the folder and run again to extract it afresh."
    )


def _images_root(folder: Path) -> Path | None:
    """The first folder at or below `folder` with at least two subfolders holding images."""
    for d in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        subs = [s for s in d.iterdir() if s.is_dir()]
        if len(subs) >= 2 and sum(any(_is_image(f) for f in s.iterdir()) for s in subs) >= 2:
            return d
    return None


def _random_split(
    per_class: dict[str, list[str]], n_train: int, n_test: int | None, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in sorted(per_class):
        files = sorted(per_class[cls])
        order = rng.permutation(len(files))
        if len(files) <= n_train:
            raise DataError(
                f"class {cls!r} has {len(files)} images; the protocol needs more than {n_train} for training."
            )
        picked = [files[i] for i in order]
        train += [(f, cls) for f in picked[:n_train]]
        rest = picked[n_train:]
        test += [(f, cls) for f in (rest if n_test is None else rest[:n_test])]
    return train, test


def _write_classification(
    out: Path, name: str, source: Source, image_root: Path, splits: dict[str, list[tuple[str, str]]]
) -> DatasetInfo:
    classes = sorted({c for rows in splits.values() for _, c in rows})
    index = {c: i for i, c in enumerate(classes)}
    for split, rows in splits.items():
        meta = SplitMeta([f for f, _ in rows], {f: index[c] for f, c in rows})
        missing = [f for f in meta.image_ids[:50] if not (image_root / f).exists()]
        if missing:
            raise DataError(f"{image_root / missing[0]} is listed in the split files but missing.")
        write_split(out, split, meta)
    return DatasetInfo(
        name=name,
        classes=classes,
        splits=list(splits),
        image_root=str(image_root.resolve()),
        source=name,
        task=source.task,
        description=source.title,
        params=dict(source.params),
    )


def prepare_class_folders(
    source: Source, paths: dict[str, Path], out: Path, seed: int, progress: bool
) -> DatasetInfo:
    """Scene15, Caltech101/256, Event8: random per-class split of class-folder images."""
    root = _class_root(paths["images"])
    exclude = set(source.params.get("exclude", []))
    per_class = {
        d.name: [f"{d.name}/{f.name}" for f in d.iterdir() if _is_image(f)]
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name not in exclude
    }
    train, test = _random_split(
        per_class, source.params["train_per_class"], source.params["test_per_class"], seed
    )
    return _write_classification(out, source.name, source, root, {"train": train, "test": test})


def _list_rows(path: Path, class_of: Callable[[str], str], strip: str = "/") -> list[tuple[str, str]]:
    rows = []
    for line in _need(path, "split list").read_text().splitlines():
        line = line.strip().strip(strip) if strip else line.strip()
        if line:
            rows.append((line, class_of(line)))
    return rows


def prepare_indoor67(source, paths, out, seed, progress) -> DatasetInfo:
    root = _find_dir_with(paths["images"], None, pattern="*/*.jpg")

    def cls(p: str) -> str:
        return p.split("/")[0]

    return _write_classification(
        out,
        "indoor67",
        source,
        root,
        {
            "train": _list_rows(paths["train_list"], cls),
            "test": _list_rows(paths["test_list"], cls),
        },
    )


def prepare_sun397(source, paths, out, seed, progress) -> DatasetInfo:
    root = _find_dir_with(paths["images"], "ClassName.txt")
    parts = _find_dir_with(paths["partitions"], "Training_01.txt")

    def cls(p: str) -> str:
        return p.rsplit("/", 1)[0]

    return _write_classification(
        out,
        "sun397",
        source,
        root,
        {
            "train": _list_rows(parts / "Training_01.txt", cls),
            "test": _list_rows(parts / "Testing_01.txt", cls),
        },
    )


def prepare_action40(source, paths, out, seed, progress) -> DatasetInfo:
    root = _find_dir_with(paths["images"], None, pattern="*.jpg")
    splits_dir = _find_dir_with(paths["splits"], None, pattern="*_train.txt")
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for split in splits:
        for lst in sorted(splits_dir.glob(f"*_{split}.txt")):
            action = lst.name[: -len(f"_{split}.txt")]
            splits[split] += _list_rows(lst, lambda _p, a=action: a)
    return _write_classification(out, "action40", source, root, splits)


def prepare_sunattribute(source, paths, out, seed, progress) -> DatasetInfo:
    from scipy.io import loadmat  # scipy comes with scikit-learn

    labels_dir = _find_dir_with(paths["labels"], "attributeLabels_continuous.mat")
    image_root = _find_dir_with(paths["images"], None, pattern="*/*/*.jpg")
    images = [str(np.ravel(x)[0]) for x in np.ravel(loadmat(labels_dir / "images.mat")["images"])]
    attrs = [str(np.ravel(x)[0]) for x in np.ravel(loadmat(labels_dir / "attributes.mat")["attributes"])]
    votes = loadmat(labels_dir / "attributeLabels_continuous.mat")["labels_cv"]
    if votes.shape != (len(images), len(attrs)):
        raise DataError(f"{labels_dir}: labels are {votes.shape}, expected ({len(images)}, {len(attrs)}).")
    present = votes >= 0.5
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(images) // 2
    for split, idx in (("train", sorted(order[:half])), ("test", sorted(order[half:]))):
        ids = [images[i] for i in idx]
        multilabels = {images[i]: [int(a) for a in np.flatnonzero(present[i])] for i in idx}
        write_split(out, split, SplitMeta(ids, dict.fromkeys(ids, -1), multilabels=multilabels))
    return DatasetInfo(
        name="sunattribute",
        classes=attrs,
        splits=["train", "test"],
        image_root=str(image_root.resolve()),
        source="sunattribute",
        task="multilabel",
        description=source.title + " (class_labels.txt holds "
        "-1; the attributes of each image are in <split>/multilabels.txt)",
    )


PREPARERS: dict[str, Callable[..., DatasetInfo]] = {
    "skimage-photos": prepare_photos,
    "cub": prepare_cub,
    "imagenet": prepare_imagenet,
    "sun397": prepare_sun397,
    "indoor67": prepare_indoor67,
    "scene15": prepare_class_folders,
    "sunattribute": prepare_sunattribute,
    "caltech101": prepare_class_folders,
    "caltech256": prepare_class_folders,
    "action40": prepare_action40,
    "event8": prepare_class_folders,
}
