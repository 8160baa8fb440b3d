"""The embedded default's levers, measured: what each does to accuracy, map size, boxes and time.

One network (VGG16-GAP, the Rethinking ablation's) fine-tuned on the CUB stand-in from a backbone
pretrained on the ImageNet stand-in, through the same `camrepro` commands the workflow runs, one
thread per job as in the demo. Each variant changes one lever against the baseline (the current
config/config.yaml recipe). Prints one row per variant: training seconds, top-1 accuracy, the CAM's
side in cells, GT-known Loc, MaxBoxAccV2, and the mean area of the 20 % box vs the GT box.

    .venv/bin/python bench/demo_levers.py [--work /tmp/levers] [--variants baseline,bn,...]

Process start-up (importing torch and camrepro) is printed first: with ~100 small jobs on two
cores it is a large share of the demo's time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ENV = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CAMREPRO = [sys.executable, "-m", "camrepro"]

# lever -> (training options, extraction size, dataset scale); the baseline is config/config.yaml's CUB recipe
BASE = {
    "epochs": 6,
    "batch_size": 32,
    "lr": 0.003,
    "lr_decay_every": 4,
    "width": 0.125,
    "crop": 64,
    "resize": 73,
}
VARIANTS = {
    "baseline": ({}, 64, 1.0),
    "epochs15": ({"epochs": 15, "lr_decay_every": 10}, 64, 1.0),
    "bn": ({"epochs": 15, "lr_decay_every": 10, "fold_bn": True, "lr": 0.01}, 64, 1.0),
    "bn-lr0.03": ({"epochs": 15, "lr_decay_every": 10, "fold_bn": True, "lr": 0.03}, 64, 1.0),
    "bn-112px": ({"epochs": 15, "lr_decay_every": 10, "fold_bn": True, "lr": 0.01,
                  "crop": 112, "resize": 128},
                 112, 1.0),
    "bn-2x-images": ({"epochs": 15, "lr_decay_every": 10, "fold_bn": True, "lr": 0.01}, 64, 2.0),
    "bn-112px-2x-e20": ({"epochs": 20, "lr_decay_every": 14, "fold_bn": True, "lr": 0.03,
                         "crop": 112, "resize": 128}, 112, 2.0),
    # the last downsampling at stride 1 (models.halve_stride): 8x8 maps at 64 px, about half 112 px's cost
    "bn-halved-2x": ({"epochs": 8, "lr_decay_every": 5, "fold_bn": True, "lr": 0.01, "halve_stride": True},
                     64, 2.0),
    "bn-halved-2x-lr0.03-e12": ({"epochs": 12, "lr_decay_every": 8, "fold_bn": True, "lr": 0.03,
                                 "halve_stride": True}, 64, 2.0),
}  # fmt: skip


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/camrepro-levers"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--pretrain-epochs", type=int, default=20,
                        help="the backbone's pretraining on the ImageNet stand-in (a lever too)")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    startup = min(run([sys.executable, "-c", "import camrepro.train, camrepro.extract"]) for _ in range(3))
    print(f"process start-up (import torch + camrepro.train/extract): {startup:.1f} s")
    imagenet = work / "synthetic-imagenet"
    if not imagenet.exists():
        run(
            [
                *CAMREPRO,
                "data",
                "synthetic",
                "--preset",
                "synthetic-imagenet",
                "--seed",
                "0",
                "--out",
                str(imagenet),
                "-q",
            ]
        )
    def pretrained(halved: bool) -> Path:
        """The vgg16 backbone pretrained on the ImageNet stand-in; for the halved variants with its
        stride halved too (models.pretrain.halve_stride, which the embedded default leaves off)."""
        name = f"vgg16-e{args.pretrain_epochs}{'-halved' if halved else ''}"
        weights = work / f"{name}.pth"
        if not weights.exists():
            seconds = run([*CAMREPRO, "pretrain", "vgg16", "--dataset", str(imagenet), "--out", str(weights),
                           "--width", "0.125", "--epochs", str(args.pretrain_epochs), "--crop", "64",
                           "--resize", "73", "--batch-size", "32", "--lr", "0.05",
                           "--halve-stride", str(halved).lower(), "-q"])  # fmt: skip
            lines = (work / f"{name}.pretrain" / "log.jsonl").read_text().splitlines()
            log = [json.loads(line) for line in lines]
            accuracy = 100 * [e for e in log if e.get("event") == "epoch"][-1]["train_acc"]
            print(f"pretraining {name} at lr 0.05: {seconds:.0f} s, training accuracy {accuracy:.1f} %")
        return weights

    print("| variant | train s | top-1 % | CAM cells | GT-known Loc | MaxBoxAccV2 | box area % | GT area % |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        options, size, scale = VARIANTS[name]
        cub = work / f"synthetic-cub-x{scale:g}"
        if not cub.exists():
            run([*CAMREPRO, "data", "synthetic", "--preset", "synthetic-cub", "--seed", "0",
                 "--scale", str(scale),
                 "--out", str(cub), "-q"])  # fmt: skip
        weights = pretrained(bool(options.get("halve_stride")))
        opts = BASE | options | {"model": "vgg16-gap", "dataset": str(cub), "pool": "gap",
                                 "pretrained": str(weights)}  # fmt: skip
        sets = [
            a
            for k, v in opts.items()
            for a in ("--set", f"{k}={str(v).lower() if isinstance(v, bool) else v}")
        ]
        out = work / name
        seconds = run([*CAMREPRO, "train", "--out", str(out / "model"), "--seeds", "0", *sets, "-q"])
        run([*CAMREPRO, "extract", "--model", str(out / "model"), "--seeds", "0", "--dataset", str(cub),
             "--split",
             "test", "--out", str(out / "cams"), "--size", str(size), "-q"])  # fmt: skip
        run([*CAMREPRO, "evaluate", "--extracted", str(out / "cams"), "--dataset", str(cub), "--out",
             str(out / "metrics.json"), "--setting", "cam20"])  # fmt: skip
        m = json.loads((out / "metrics.json").read_text())["seeds"]["0"]["cam20"]
        with __import__("numpy").load(next((out / "cams" / "s0").glob("shard-*.npz"))) as shard:
            cells = shard["cams"].shape[-1]
        print(f"| {name} | {seconds:.0f} | {100 - m['classification_error']['top1']:.1f} | {cells}x{cells} | "
              f"{m['gt_known_loc']:.1f} | {m['max_box_acc_v2']['mean']:.1f} | {m['box_area']:.0f} | "
              f"{m['gt_box_area']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
