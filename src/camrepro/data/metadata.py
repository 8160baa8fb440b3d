"""Prepared-dataset metadata in the wsolevaluation layout.

Every dataset camrepro uses, synthetic or real, is prepared into one uniform folder::

    <dataset>/dataset.json              name, classes, splits, where images and masks live
    <dataset>/<split>/image_ids.txt     one image path per line (relative to the image root)
    <dataset>/<split>/class_labels.txt  image_id,class_index            (0-based)
    <dataset>/<split>/image_sizes.txt   image_id,width,height           (original image size)
    <dataset>/<split>/localization.txt  image_id,x0,y0,x1,y1            (one row per box)
    <dataset>/<split>/masks.txt         image_id,mask_path,ignore_path  (optional, one row per mask)
    <dataset>/<split>/multilabels.txt   image_id,a b c                  (multilabel datasets: the
                                        0-based indices of the classes present, space-separated)

This is the layout of the reference WSOL evaluator (clovaai/wsolevaluation), the de facto
interchange format, so scoremaps and metadata move between tools unchanged. Box convention:
integer pixel coordinates with x1/y1 *inclusive* (the last column/row the object touches), as in
the evaluator, whose IoU adds 1 to widths and heights. An image may have several boxes.
`localization.txt`, `image_sizes.txt` and `masks.txt` are optional (ImageNet train has no boxes;
the transfer sets have none at all).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from camrepro.errors import DataError
from camrepro.fsutil import atomic_write_text

Box = tuple[int, int, int, int]
SPLIT_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")


@dataclass
class DatasetInfo:
    """Contents of `dataset.json`: what a prepared dataset is and where its files are."""

    name: str
    classes: list[str]
    splits: list[str]
    image_root: str = "images"  # relative to the dataset folder (real datasets point at raw/)
    mask_root: str | None = None
    source: str = "synthetic"  # synthetic | cub | imagenet | <transfer dataset>
    task: str = "wsol"  # wsol (labels + boxes) | classification | multilabel
    description: str = ""
    params: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def save(self, folder: Path) -> None:
        doc = asdict(self) | {"num_classes": self.num_classes}
        atomic_write_text(folder / "dataset.json", json.dumps(doc, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> DatasetInfo:
        path = Path(folder) / "dataset.json"
        if not path.exists():
            raise DataError(
                f"{path} not found: {folder} is not a prepared dataset. Prepare it first "
                "(`camrepro data synthetic ...` or `camrepro data prepare NAME`)."
            )
        try:
            doc = json.loads(read_text(path))
            doc.pop("num_classes", None)
            info = cls(**doc)
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise DataError(f"{path} is not valid dataset metadata ({exc}); prepare again.") from exc
        for key in ("classes", "splits"):
            value = getattr(info, key)
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                raise DataError(
                    f"{path}: {key!r} must be a non-empty list of names, got {value!r}; prepare again."
                )
        return info


@dataclass
class SplitMeta:
    """The metadata of one split, validated against itself."""

    image_ids: list[str]
    labels: dict[str, int]
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # (width, height)
    boxes: dict[str, list[Box]] = field(default_factory=dict)
    masks: dict[str, list[str]] = field(default_factory=dict)
    ignore: dict[str, str] = field(default_factory=dict)  # image -> ignore-region mask (OpenImages)
    # multilabel datasets (SUN Attribute): image -> indices of the classes present; its
    # class_labels.txt holds the -1 placeholder
    multilabels: dict[str, list[int]] = field(default_factory=dict)

    @property
    def has_boxes(self) -> bool:
        return bool(self.boxes)

    @property
    def has_masks(self) -> bool:
        return bool(self.masks)


def read_text(path: Path) -> str:
    """A metadata file's text; DataError naming the file if it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); metadata files are UTF-8. "
            "Re-save it as UTF-8 or prepare the dataset again."
        ) from None


def check_relative(rel: str, where: str, what: str = "image id") -> str:
    """`rel` if it is a relative path that stays below its root (no absolute path, no `..`)."""
    p = PurePosixPath(rel)
    if not rel or "\x00" in rel or p.is_absolute() or ".." in p.parts:
        raise DataError(
            f"{where}: {what} {rel!r} is not a relative path inside the dataset's folder (absolute "
            "paths and '..' are refused). Fix the line or prepare the dataset again."
        )
    return rel


def _rows(path: Path, ncols: int | tuple[int, ...]) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a comma-separated metadata file, with clear parse errors."""
    allowed = (ncols,) if isinstance(ncols, int) else ncols
    rows = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) not in allowed:
            raise DataError(
                f"{path}:{lineno}: expected {' or '.join(map(str, allowed))} comma-separated "
                f"fields, got {len(fields)} in {line!r}. Fix the line or prepare the dataset again."
            )
        rows.append((lineno, fields))
    return rows


def _unique_rows(path: Path, ncols: int, listed: set[str]) -> dict[str, tuple[int, list[str]]]:
    """image id -> (line number, other fields) of a one-row-per-image file.

    A second row for an image is refused even when it repeats the first: the preparers write one
    row per image, so any repeat means the file was edited or concatenated, and the row that
    would win is a guess.
    """
    table: dict[str, tuple[int, list[str]]] = {}
    for lineno, (image_id, *rest) in _rows(path, ncols):
        _check_listed(path, lineno, image_id, listed)
        if image_id in table:
            raise DataError(
                f"{path}:{lineno}: a second row for image {image_id!r} (the first is line "
                f"{table[image_id][0]}); each image has one row. Remove one of them."
            )
        table[image_id] = (lineno, rest)
    return table


def _check_listed(path: Path, lineno: int, image_id: str, listed: set[str]) -> None:
    if image_id not in listed:
        raise DataError(
            f"{path}:{lineno}: row for image {image_id!r}, which {path.parent / 'image_ids.txt'} "
            "does not list. Remove the row or prepare the dataset again."
        )


def _ints(path: Path, lineno: int, values: list[str]) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError as exc:
        raise DataError(f"{path}:{lineno}: expected integers, got {values}.") from exc


def read_split(dataset_dir: str | Path, split: str) -> SplitMeta:
    """Read and validate `<dataset_dir>/<split>/*.txt`.

    Raises DataError naming the file (and line) when a file is missing or not UTF-8, a row is
    malformed or repeated, an image id leaves the image folder, an image listed in image_ids.txt
    has no label / size / box row, a box is not inside its image, or (with the dataset's
    dataset.json beside the split) a label is not one of its classes.
    """
    dataset_dir = Path(dataset_dir)
    folder = dataset_dir / split
    ids_path = folder / "image_ids.txt"
    if not ids_path.exists():
        raise DataError(
            f"{ids_path} not found: split {split!r} of {dataset_dir} is not prepared. "
            "Prepare the dataset again, or pick one of the splits in dataset.json."
        )
    image_ids = [
        check_relative(line, f"{ids_path}:{lineno}")
        for lineno, line in enumerate(read_text(ids_path).splitlines(), 1)
        if line.strip()
    ]
    if len(set(image_ids)) != len(image_ids):
        raise DataError(f"{ids_path}: image ids repeat; each image must be listed once.")
    listed = set(image_ids)
    info = DatasetInfo.load(dataset_dir) if (dataset_dir / "dataset.json").exists() else None

    labels_path = folder / "class_labels.txt"
    if not labels_path.exists():
        raise DataError(f"{labels_path} not found; prepare the dataset again.")
    labels = {}
    for image_id, (lineno, (label,)) in _unique_rows(labels_path, 2, listed).items():
        labels[image_id] = _ints(labels_path, lineno, [label])[0]
        if info is not None:
            _check_label(labels_path, lineno, image_id, labels[image_id], info)
    _require_rows(image_ids, labels, labels_path, "label")

    sizes: dict[str, tuple[int, int]] = {}
    sizes_path = folder / "image_sizes.txt"
    if sizes_path.exists():
        for image_id, (lineno, wh) in _unique_rows(sizes_path, 3, listed).items():
            w, h = _ints(sizes_path, lineno, wh)
            if w <= 0 or h <= 0:
                raise DataError(f"{sizes_path}:{lineno}: image size must be positive, got {w}x{h}.")
            sizes[image_id] = (w, h)
        _require_rows(image_ids, sizes, sizes_path, "size")

    boxes: dict[str, list[Box]] = {}
    loc_path = folder / "localization.txt"
    if loc_path.exists():
        rows = _rows(loc_path, 5)
        if rows and not sizes:
            raise DataError(f"{sizes_path} not found: boxes need the original image sizes.")
        for lineno, (image_id, *coords) in rows:
            _check_listed(loc_path, lineno, image_id, listed)
            box = tuple(_ints(loc_path, lineno, coords))
            _check_box(loc_path, lineno, image_id, box, sizes[image_id])
            boxes.setdefault(image_id, []).append(box)
        if boxes:
            _require_rows(image_ids, boxes, loc_path, "box")

    masks: dict[str, list[str]] = {}
    ignore: dict[str, str] = {}
    masks_path = folder / "masks.txt"
    if masks_path.exists():
        for lineno, (image_id, mask_path, ignore_path) in _rows(masks_path, 3):
            _check_listed(masks_path, lineno, image_id, listed)
            masks.setdefault(image_id, []).append(
                check_relative(mask_path, f"{masks_path}:{lineno}", "mask path")
            )
            if ignore_path:
                ignore[image_id] = check_relative(ignore_path, f"{masks_path}:{lineno}", "ignore-mask path")
        _require_rows(image_ids, masks, masks_path, "mask")

    multilabels = _read_multilabels(folder / "multilabels.txt", image_ids, info)
    return SplitMeta(image_ids=image_ids, labels=labels, sizes=sizes, boxes=boxes, masks=masks, ignore=ignore,
                     multilabels=multilabels)  # fmt: skip


def _read_multilabels(path: Path, image_ids: list[str], info: DatasetInfo | None) -> dict[str, list[int]]:
    """`multilabels.txt`: a row per image, required (and only allowed) in a multilabel dataset."""
    multilabel = info is not None and info.task == "multilabel"
    if not path.exists():
        if multilabel:
            raise DataError(f"{path} not found: a multilabel dataset lists each image's classes there; "
                            "prepare the dataset again.")  # fmt: skip
        return {}
    if info is not None and not multilabel:
        raise DataError(f"{path}: dataset.json says task {info.task!r}, not multilabel; remove the file or "
                        "prepare the dataset again.")  # fmt: skip
    out = {}
    for image_id, (lineno, (present,)) in _unique_rows(path, 2, set(image_ids)).items():
        out[image_id] = _ints(path, lineno, present.split())
        for a in out[image_id]:
            if info is not None and not 0 <= a < info.num_classes:
                raise DataError(f"{path}:{lineno}: class {a} of image {image_id!r} is not one of the "
                                f"{info.num_classes} classes (0..{info.num_classes - 1}). Prepare the "
                                "dataset again.")  # fmt: skip
    _require_rows(image_ids, out, path, "multilabel")
    return out


def _check_label(path: Path, lineno: int, image_id: str, label: int, info: DatasetInfo) -> None:
    """Labels index `info.classes`; only a multilabel dataset's class_labels.txt holds the -1
    placeholder (its labels are in multilabels.txt)."""
    low = -1 if info.task == "multilabel" else 0
    if not low <= label < info.num_classes:
        raise DataError(
            f"{path}:{lineno}: label {label} of image {image_id!r} is not one of the "
            f"{info.num_classes} classes of this {info.task} dataset (0..{info.num_classes - 1}, "
            "0-based). Fix the row or prepare the dataset again."
        )


def _check_box(path: Path, lineno: int, image_id: str, box: tuple[int, ...], size: tuple[int, int]) -> None:
    """A box lies inside its image: 0 <= x0 <= x1 <= width - 1 (x1/y1 inclusive), likewise y."""
    x0, y0, x1, y1 = box
    w, h = size
    if not (0 <= x0 <= x1 <= w - 1 and 0 <= y0 <= y1 <= h - 1):
        raise DataError(
            f"{path}:{lineno}: box {x0},{y0},{x1},{y1} of image {image_id!r} is not inside its "
            f"{w}x{h} image: boxes are x0,y0,x1,y1 with 0 <= x0 <= x1 <= {w - 1} and "
            f"0 <= y0 <= y1 <= {h - 1} (x1/y1 inclusive). Fix the row or prepare the dataset again."
        )


def _require_rows(image_ids: list[str], table: dict, path: Path, what: str) -> None:
    missing = [i for i in image_ids if i not in table]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"{path}: no {what} row for image {missing[0]!r}{more} listed in image_ids.txt. "
            "Add the missing rows or prepare the dataset again."
        )


def write_split(dataset_dir: str | Path, split: str, meta: SplitMeta) -> None:
    """Write one split's metadata files (each atomically); a box outside its image is refused
    before anything is written, so a preparer fails at once rather than every later reader."""
    folder = Path(dataset_dir) / split
    if meta.sizes:
        row = 0
        for i in meta.image_ids:
            for box in meta.boxes.get(i, []):
                row += 1
                _check_box(folder / "localization.txt", row, i, box, meta.sizes[i])
    folder.mkdir(parents=True, exist_ok=True)
    ids = meta.image_ids
    atomic_write_text(folder / "image_ids.txt", "".join(f"{i}\n" for i in ids))
    atomic_write_text(folder / "class_labels.txt", "".join(f"{i},{meta.labels[i]}\n" for i in ids))
    if meta.sizes:
        atomic_write_text(
            folder / "image_sizes.txt",
            "".join(f"{i},{meta.sizes[i][0]},{meta.sizes[i][1]}\n" for i in ids),
        )
    if meta.boxes:
        atomic_write_text(
            folder / "localization.txt",
            "".join(f"{i},{x0},{y0},{x1},{y1}\n" for i in ids for x0, y0, x1, y1 in meta.boxes[i]),
        )
    if meta.multilabels:
        rows = (f"{i},{' '.join(map(str, meta.multilabels[i]))}\n" for i in ids)
        atomic_write_text(folder / "multilabels.txt", "".join(rows))
    if meta.masks:
        atomic_write_text(
            folder / "masks.txt",
            "".join(f"{i},{m},{meta.ignore.get(i, '')}\n" for i in ids for m in meta.masks[i]),
        )


BLACKLIST_FILE = "blacklist.txt"


def write_blacklist(dataset_dir: str | Path, split: str, image_ids: list[str]) -> None:
    """The images of `split` an evaluation may leave out (the ILSVRC devkit's val blacklist)."""
    atomic_write_text(Path(dataset_dir) / split / BLACKLIST_FILE, "".join(f"{i}\n" for i in image_ids))


def read_blacklist(dataset_dir: str | Path, split: str) -> set[str] | None:
    """The blacklisted image ids of `split`, or None when the dataset lists none."""
    path = Path(dataset_dir) / split / BLACKLIST_FILE
    return {line for line in read_text(path).splitlines() if line} if path.exists() else None


# A prepared ImageNet's list of the 1,000 classes of a published ImageNet head, in its order
# (sorted wnids, from the devkit): a dataset of some of them is scored by that head's rows.
IMAGENET_CLASSES_FILE = "imagenet_classes.txt"


def read_head_classes(dataset_dir: str | Path) -> list[str] | None:
    path = Path(dataset_dir) / IMAGENET_CLASSES_FILE
    return [line for line in read_text(path).splitlines() if line] if path.exists() else None
