"""A CAM network's fine-tuning budget on the ImageNet stand-in: top-1 on val against epochs and lr.

Each variant `MODEL:EPOCHS:LR:DECAY_EVERY` fine-tunes MODEL (one seed, BatchNorm in training folded
when saved, the stride halved, width 1/8, batch 32, one thread) from the backbone a demo run
pretrained, through the same `camrepro train` command the workflow runs, and prints the seconds it
took and the network's top-1 accuracy on the val split (centre crop). --size is the input size
(config/config.yaml's models.size_by_arch for the AlexNets: 112).

    .venv/bin/python bench/finetune_budget.py --demo /tmp/demo --weights alexnet --size 112 \\
        [--variants alexnet-gap:3:0.005:2,alexnet*-gap:10:0.01:7] [--work /tmp/finetune]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from camrepro.protocol import resize_for  # noqa: E402
from pretrain_budget import CAMREPRO, ENV, top1  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True, help="a finished `python3 dev.py demo` checkout")
    parser.add_argument("--weights", default="alexnet", help="the pretrained backbone, data/weights/<it>.pth")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--work", type=Path, default=Path("/tmp/camrepro-finetune"))
    parser.add_argument("--variants", default="alexnet-gap:3:0.005:2,alexnet-gap:10:0.01:7")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = args.demo / "data" / "prepared" / "synthetic-imagenet"
    print("model          epochs      lr  decay every  seconds  val top-1", flush=True)
    for variant in args.variants.split(","):
        model, epochs, lr, decay = variant.split(":")
        out = args.work / f"{model.replace('*', 'star')}-e{epochs}-lr{lr}-{args.size}px"
        options = {"model": model, "dataset": data, "pool": "gap", "epochs": epochs, "batch_size": 32,
                   "lr": lr, "lr_decay_every": decay, "fold_bn": "true", "width": 0.125, "crop": args.size,
                   "resize": resize_for(args.size), "halve_stride": "true",
                   "pretrained": args.demo / "data" / "weights" / f"{args.weights}.pth"}  # fmt: skip
        command = [*CAMREPRO, "train", "--out", str(out), "--seeds", "0", "-q", "--threads", "1"]
        command += [a for k, v in options.items() for a in ("--set", f"{k}={v}")]
        start = time.perf_counter()
        subprocess.run(command, env=ENV, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        val = top1(out / "s0" / "model.pt", data, "val", args.size)
        print(f"{model:<13} {epochs:>7} {float(lr):>7g} {decay:>12} {seconds:>8.0f} {val:>9.1f}%", flush=True)


if __name__ == "__main__":
    main()
