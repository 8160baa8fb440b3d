"""A tiny real WSOL set: the photographs scikit-image's wheel ships (`skimage/data`), with GT boxes.

Only the photos whose object is (or is nearest to) an ImageNet class are used; each has one GT
box, drawn by hand: the images were looked at with a pixel grid overlaid (every 10 px, enlarged
2-4x at the object's edges), and the box's corners are the first and last pixel columns and rows
the object covers (x1/y1 inclusive, as in metadata.py), within about 3 px. The label
(class_labels.txt) is the ImageNet class (torchvision's index) that names the object best; the
classes it may also be called (`allowed_classes.txt`: image_id,<indices separated by spaces>) are
ImageNet's synonyms for it, chosen from the object alone, never from a network's prediction.

Left out: astronaut.png (a person: ImageNet has no person class), camera.png (a person with a
camera on a tripod, greyscale), the textures, microscopy and astronomy images. ImageNet has no
motorcycle class: motorcycle_left.png is labelled `moped` (WordNet: moped < motorbike <
motorcycle), with `motor scooter` also allowed; ImageNet's `missile` / `projectile` classes
(which hold launch rockets) stand for rocket.jpg's Falcon 9. Four images: a check that a real
network's CAMs and the evaluation work end to end, not a benchmark.

The photos are copied into the prepared folder (`images/`), so it is self-contained like any
prepared dataset. Their credits are in scikit-image's `skimage/data/__init__.py`.
"""

from __future__ import annotations

import importlib.resources
import shutil
from dataclasses import dataclass
from pathlib import Path

from camrepro.data.metadata import DatasetInfo, SplitMeta, write_split
from camrepro.data.sources import Source
from camrepro.errors import DataError
from camrepro.fsutil import atomic_write_text


@dataclass(frozen=True)
class Photo:
    file: str  # in skimage/data
    label: int  # ImageNet class index (torchvision's order)
    allowed: tuple[int, ...]  # every ImageNet class it may be called, the label included
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (inclusive), drawn by hand
    what: str


# ImageNet indices: 281 tabby, 282 tiger cat, 283 Persian cat, 284 Siamese cat, 285 Egyptian cat (the
# domestic cats); 967 espresso, 968 cup, 504 coffee mug; 665 moped, 670 motor scooter; 657 missile,
# 744 projectile.
PHOTOS = (
    Photo("chelsea.png", 281, (281, 282, 283, 284, 285), (0, 0, 398, 299),
          "a tabby cat's head and chest (ears to the lower edge; whiskers outside the box)"),
    Photo("coffee.png", 967, (967, 968, 504), (173, 18, 407, 305),
          "a cup of espresso: the cup with its handle (the saucer and the spoon outside the box)"),
    Photo("motorcycle_left.png", 665, (665, 670), (92, 97, 683, 450),
          "a motorcycle, rear fender to front tyre, mirrors to tyres"),
    Photo("rocket.jpg", 657, (657, 744), (311, 127, 334, 405),
          "a Falcon 9 rocket on its pad, fairing tip to the launch mount (the towers outside the box)"),
)  # fmt: skip
PACKAGE = "skimage"
SOURCE = "skimage-photos"  # its name in camrepro.data.sources
SPLIT = "test"


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names in torchvision's index order (its weights' metadata, offline)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def photo_path(name: str) -> Path:
    try:
        path = Path(str(importlib.resources.files(PACKAGE) / "data" / name))
    except ModuleNotFoundError:
        raise DataError(
            "scikit-image is not installed; its bundled photos are this dataset. Install the pinned set "
            "(`python3 dev.py setup`, or `pip install -r requirements.txt`)."
        ) from None
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed scikit-image; reinstall it.")
    return path


def read_allowed(split_dir: str | Path) -> dict[str, tuple[int, ...]]:
    """image_id -> the ImageNet classes it may be called (`allowed_classes.txt`)."""
    path = Path(split_dir) / "allowed_classes.txt"
    if not path.exists():
        raise DataError(f"{path} not found: prepare the photos again (`camrepro data prepare {SOURCE}`).")
    allowed = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        image_id, _, classes = line.partition(",")
        try:
            allowed[image_id] = tuple(int(c) for c in classes.split())
        except ValueError:
            raise DataError(f"{path}:{lineno}: expected 'image_id,<class indices>', got {line!r}") from None
    return allowed


def prepare_photos(source: Source, paths: dict, out: Path, seed: int, progress: bool) -> DatasetInfo:
    from PIL import Image

    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    meta = SplitMeta([], {})
    for photo in PHOTOS:
        src = photo_path(photo.file)
        shutil.copyfile(src, images / photo.file)
        with Image.open(src) as im:
            meta.sizes[photo.file] = im.size
        meta.image_ids.append(photo.file)
        meta.labels[photo.file] = photo.label
        meta.boxes[photo.file] = [photo.box]
    write_split(out, SPLIT, meta)
    atomic_write_text(out / SPLIT / "allowed_classes.txt",
                      "".join(f"{p.file},{' '.join(map(str, p.allowed))}\n" for p in PHOTOS))  # fmt: skip
    import skimage

    return DatasetInfo(
        name=source.name, classes=imagenet_classes(), splits=[SPLIT], image_root=str(images.resolve()),
        source=source.name, task="wsol", description=source.title,
        params={"scikit-image": skimage.__version__, "photos": {p.file: p.what for p in PHOTOS}},
    )  # fmt: skip
