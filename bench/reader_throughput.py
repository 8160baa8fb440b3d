"""Decode + transform throughput of the dataset reader, per core, against a Pillow baseline.

Generates a synthetic-imagenet sample (or reads --dataset), then times, on one thread:
  - camrepro's reader (OpenCV decode + joint box transform), train and eval transforms;
  - a Pillow + torchvision baseline doing the same work (decode, warp-resize, crop, flip, tensor).
Prints images/s for each and the ratio. Run: .venv/bin/python bench/reader_throughput.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from camrepro.data.metadata import DatasetInfo, read_split
from camrepro.data.reader import TransformSpec, WSOLDataset
from camrepro.data.synthetic import generate


def _time(fn, n: int) -> float:
    fn(0)  # warm-up
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", type=Path, help="a prepared dataset (default: generate one)")
    ap.add_argument("--split", default="train")
    ap.add_argument("-n", type=int, default=400, help="images per measurement")
    args = ap.parse_args()

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dataset
        if root is None:
            root = Path(tmp) / "syn"
            generate("synthetic-imagenet", 0, root, scale=0.6, progress=False)
        info = DatasetInfo.load(root)
        meta = read_split(root, args.split)
        n = min(args.n, len(meta.image_ids))
        paths = [root / info.image_root / i for i in meta.image_ids[:n]]
        sizes = [Image.open(p).size for p in paths]
        print(
            f"dataset {info.name}/{args.split}: {n} images, mean size "
            f"{np.mean([s[0] for s in sizes]):.0f}x{np.mean([s[1] for s in sizes]):.0f}, "
            f"1 thread, torch {torch.__version__}, OpenCV {cv2.__version__}"
        )

        rows = []
        for label, spec, pil_tf in (
            (
                "train (resize 256, crop 224, flip)",
                TransformSpec(train=True),
                T.Compose(
                    [
                        T.Resize((256, 256)),
                        T.RandomCrop(224),
                        T.RandomHorizontalFlip(),
                        T.ToTensor(),
                        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                    ]
                ),
            ),
            (
                "eval (resize 224)",
                TransformSpec(train=False),
                T.Compose(
                    [
                        T.Resize((224, 224)),
                        T.ToTensor(),
                        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                    ]
                ),
            ),
        ):
            ds = WSOLDataset(root, args.split, spec)
            ours = _time(lambda i, ds=ds: ds[i % n], n)
            base = _time(lambda i, tf=pil_tf: tf(Image.open(paths[i % n]).convert("RGB")), n)
            rows.append((label, ours, base))
        print(f"{'transform':36s} {'camrepro img/s':>15s} {'PIL+torchvision':>16s} {'ratio':>6s}")
        for label, ours, base in rows:
            print(f"{label:36s} {ours:15.0f} {base:16.0f} {ours / base:6.2f}x")


if __name__ == "__main__":
    main()
