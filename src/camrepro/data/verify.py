"""Check a prepared dataset end to end: metadata consistency (`read_split` refuses boxes outside
their image, labels that are not classes, repeated rows and unsafe image ids), every image
decodable in full and of the size the metadata claims. The `verify` rule runs this before training
so a broken file fails fast with its name, not hours later inside a DataLoader worker."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from camrepro.data.metadata import DatasetInfo, read_split
from camrepro.data.reader import decode_image
from camrepro.errors import DataError


def verify_dataset(folder: str | Path, decode: bool = True, progress: bool = True) -> dict:
    folder = Path(folder)
    info = DatasetInfo.load(folder)
    image_root = folder / info.image_root
    report: dict = {"dataset": info.name, "classes": info.num_classes, "splits": {}}
    for split in info.splits:
        meta = read_split(folder, split)
        if decode:
            for image_id in tqdm(meta.image_ids, desc=f"verify {info.name}/{split}", disable=not progress):
                img = decode_image(image_root / image_id, strict=True)
                if image_id in meta.sizes and meta.sizes[image_id] != (img.shape[1], img.shape[0]):
                    raise DataError(
                        f"{image_root / image_id} is {img.shape[1]}x{img.shape[0]} but "
                        f"{folder / split / 'image_sizes.txt'} says "
                        f"{meta.sizes[image_id][0]}x{meta.sizes[image_id][1]}; prepare again."
                    )
        report["splits"][split] = {
            "images": len(meta.image_ids),
            "boxes": sum(len(b) for b in meta.boxes.values()),
            "masks": sum(len(m) for m in meta.masks.values()),
            "decoded": decode,
        }
    return report
