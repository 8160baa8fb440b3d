"""The ImageNet stand-in's training budget: how well a backbone pretrained on it classifies, against
its training images and epochs.

Each variant `ARCH:TRAIN_SCALE:EPOCHS[:SIZE]` generates the ImageNet stand-in with that many times the
preset's training images (val as the preset: 8 per class), pretrains ARCH on it through the same
`camrepro pretrain` command the workflow runs (width 1/8, SIZE px crops, 64 unless given, lr 0.05
decayed x0.1 after 2/3 of the epochs, one thread), and prints the seconds it took and the network's
top-1 accuracy on the train and val splits (centre crop, as evaluated).

    .venv/bin/python bench/pretrain_budget.py [--work /tmp/budget] [--variants vgg16:2:45,googlenet:2:45]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from camrepro.data.reader import TransformSpec, WSOLDataset, collate
from camrepro.data.synthetic import PRESETS
from camrepro.models.io import load_trained
from camrepro.protocol import resize_for

ENV = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CAMREPRO = [sys.executable, "-m", "camrepro"]
SIZE = 64  # config/config.yaml's models.size


def top1(model_file: Path, data: Path, split: str, size: int) -> float:
    net, _ = load_trained(model_file)
    net.eval()
    spec = TransformSpec(train=False, resize=resize_for(size), crop=size, eval_crop=True)
    images = WSOLDataset(data, split, spec)
    right = total = 0
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(images, batch_size=64, collate_fn=collate):
            logits = net(batch["image"])
            logits = logits[0] if isinstance(logits, tuple) else logits
            right += int((logits.argmax(1) == batch["label"]).sum())
            total += len(batch["label"])
    return 100.0 * right / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/camrepro-budget"))
    parser.add_argument("--variants", default="vgg16:1:30,vgg16:2:45,googlenet:1:30,googlenet:2:45")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("arch        size train images/class  epochs  pretrain s  train top-1  val top-1", flush=True)
    for variant in args.variants.split(","):
        arch, scale, epochs, *rest = variant.split(":")
        size = int(rest[0]) if rest else SIZE
        data = args.work / f"imagenet-train{scale}"
        if not data.exists():
            generate = ["data", "synthetic", "--preset", "synthetic-imagenet", "--seed", "0",
                        "--scale", f"train={scale}", "--out", str(data), "-q"]  # fmt: skip
            subprocess.run([*CAMREPRO, *generate], env=ENV, check=True, stdout=subprocess.DEVNULL)
        out = args.work / f"{arch}-train{scale}-e{epochs}-{size}px.pth"
        start = time.perf_counter()
        pretrain = ["pretrain", arch, "--dataset", str(data), "--out", str(out), "--width", "0.125",
                    "--epochs", epochs, "--crop", str(size), "--resize", str(resize_for(size)),
                    "--lr", "0.05", "--threads", "1", "-q"]  # fmt: skip
        subprocess.run([*CAMREPRO, *pretrain], env=ENV, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        model = out.with_name(out.stem + ".pretrain") / "model.pt"
        per_class = round(PRESETS["synthetic-imagenet"].per_class["train"] * float(scale))
        train, val = top1(model, data, "train", size), top1(model, data, "val", size)
        row = f"{arch:<11} {size:>4} {per_class:>18}  {epochs:>6}  {seconds:>10.0f}  {train:>10.1f}%"
        row += f"  {val:>8.1f}%"
        print(row, flush=True)


if __name__ == "__main__":
    main()
