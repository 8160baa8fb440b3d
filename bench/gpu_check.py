"""GPU check: is a paper-scale training job GPU-bound or loader-bound, and how close to the bound?

One command, about 5 minutes on one H200 (`--smoke`: seconds on CPU, what CI runs):

    python bench/gpu_check.py [--smoke] [--json out.json]

1. Training images/s of vgg16-gap, googlenet-gap and resnet50-se at 224 px (full width) on random
   batches: forward + backward + Nesterov SGD step, bf16 autocast and channels_last (what
   `camrepro train` does on CUDA), eager and with torch.compile, at a large batch (--batch) and
   at the papers' batch (config/paper.yaml's training batch_size: 32, wsolevaluation's
   README.md:543; the Rethinking-CAM configs use 40, configs/vgg16_tap.yml:32).
2. The fraction of the bf16 compute bound reached: training FLOPs per image = 3 x the forward
   FLOPs counted by torch.utils.flop_counter, times images/s, over the dense bf16 peak
   (`PEAK_BF16_TFLOPS`).
3. The data loader's own images/s (camrepro's WSOLDataset + DataLoader, the training transform,
   with the job's workers: config/paper.yaml's `workers`) on JPEGs of ImageNet's typical size
   (500x375, quality 90), and the verdict: loader-bound or GPU-bound. Side by side, the two ways
   out if the loader is the bottleneck: GPU JPEG decode (torchvision.io.decode_jpeg on CUDA,
   resize and crop on the GPU) and a pre-resized uint8 cache (random crop + flip from memory).

The figures feed the cost estimate (`camrepro.cost`, `camrepro workflow check`) once recorded in
bench/README.md; `--json` writes them for that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from camrepro.cost import PEAK_BF16_TFLOPS, PEAK_SOURCE, forward_flops  # noqa: E402
from camrepro.data.metadata import DatasetInfo, SplitMeta, write_split  # noqa: E402
from camrepro.data.reader import TransformSpec, WSOLDataset, collate  # noqa: E402
from camrepro.models import build_model  # noqa: E402

MODELS = ("vgg16-gap", "googlenet-gap", "resnet50-se")


def paper_training() -> dict:
    """config/paper.yaml's ImageNet schedule: the papers' batch size and the job's workers."""
    return yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["training"]["imagenet"]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_rate(model: torch.nn.Module, batch: int, size: int, steps: int, warmup: int, device: torch.device,
               compile_: bool) -> float:  # fmt: skip
    """Training images/s on random batches, as `camrepro train` steps on CUDA."""
    cuda = device.type == "cuda"
    step_model = torch.compile(model) if compile_ else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    model.train()

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(step_model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def write_jpegs(folder: Path, n: int, size: tuple[int, int]) -> Path:
    """A prepared dataset (camrepro's layout) of `n` JPEGs, quality 90, photo-like content."""
    import cv2

    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    ids = []
    w, h = size
    for i in range(n):
        # smooth colour fields plus noise: compresses like a photo (about 100 KB at 500x375), not
        # like pure noise (5x larger) or flat colour (20x smaller)
        coarse = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        base = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / "images" / f"{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        ids.append(f"{i:05d}.jpg")
    DatasetInfo(name="jpegs", classes=["a", "b"], splits=["train"]).save(folder)
    write_split(folder, "train", SplitMeta(ids, {i: k % 2 for k, i in enumerate(ids)}))
    return folder


def loader_rate(dataset: torch.utils.data.Dataset, batch: int, workers: int, batches: int,
                collate_fn=collate) -> float:  # noqa: ANN001  # fmt: skip
    """Images/s the DataLoader delivers on its own (no model), after its first batch."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=collate_fn, drop_last=True
    )
    seen, start = 0, None
    for i, out in enumerate(loader):
        if i == 0:
            start = time.perf_counter()
            continue
        seen += len(out["image"] if isinstance(out, dict) else out)
        if i >= batches:
            break
    return seen / (time.perf_counter() - start) if seen else float("nan")


class CachedImages(torch.utils.data.Dataset):
    """Pre-resized uint8 cache (resize x resize x 3 per image in one array): random crop + flip only."""

    def __init__(self, data: WSOLDataset) -> None:
        eval_spec = TransformSpec(train=False, crop=data.spec.resize)
        plain = WSOLDataset(data.root, data.split, eval_spec, normalize=False)
        self.images = np.stack([plain[i]["image"].numpy() for i in range(len(plain))])  # N, 3, R, R uint8
        self.crop = data.spec.crop

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng(i)
        r = self.images.shape[-1]
        ox, oy = rng.integers(0, r - self.crop + 1, 2)
        img = self.images[i, :, oy : oy + self.crop, ox : ox + self.crop]
        return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1] if rng.random() < 0.5 else img))


def gpu_decode_rate(files: list[Path], batch: int, resize: int, crop: int, batches: int) -> float:
    """Images/s of torchvision.io.decode_jpeg on CUDA (batched) + resize + random crop on the GPU."""
    import torchvision

    blobs = [torchvision.io.read_file(str(f)) for f in files]
    seen, start = 0, None
    for i in range(batches + 1):
        chunk = [blobs[(i * batch + j) % len(blobs)] for j in range(batch)]
        images = torchvision.io.decode_jpeg(chunk, device="cuda")
        size = (resize, resize)
        x = torch.cat([
            torch.nn.functional.interpolate(im[None].float(), size=size, mode="bilinear", antialias=True)
            for im in images
        ])  # fmt: skip
        ox, oy = np.random.default_rng(i).integers(0, resize - crop + 1, 2)
        x = x[:, :, oy : oy + crop, ox : ox + crop].contiguous(memory_format=torch.channels_last)
        torch.cuda.synchronize()
        if i == 0:
            start = time.perf_counter()
        else:
            seen += len(x)
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    paper = paper_training()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny, on CPU: checks the script itself (CI)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch", type=int, default=256, help="the large batch (default 256)")
    parser.add_argument("--paper-batch", type=int, default=paper["batch_size"], help="config/paper.yaml's")
    parser.add_argument("--workers", type=int, default=paper["workers"], help="config/paper.yaml's")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--jpegs", type=int, default=2048, help="JPEGs for the loader test")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    cuda = device.type == "cuda"
    if args.smoke:  # CPU-sized: 1/16 width, 64 px, two steps, no compile
        width, size, args.batch, args.paper_batch, args.steps, warmup = 0.0625, 64, 4, 2, 2, 1
        args.jpegs, args.workers, jpeg_size, compile_ = 16, min(args.workers, 1), (100, 75), False
    else:
        width, size, warmup, jpeg_size, compile_ = 1.0, 224, 3, (500, 375), not args.no_compile
    if cuda:
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; {size} px, width {width:g}"
          + ("; SMOKE (CPU, tiny: checks the script, not the machine)" if args.smoke else ""))  # fmt: skip
    print(f"bound: {PEAK_BF16_TFLOPS:g} TFLOP/s dense bf16 ({PEAK_SOURCE})")
    result: dict = {"device": name, "size": size, "width": width, "smoke": args.smoke, "models": {},
                    "peak_bf16_tflops": PEAK_BF16_TFLOPS}  # fmt: skip
    print(f"{'model':14s} {'GFLOP/img':>9s} {'batch':>5s} {'compile':>7s} {'train img/s':>11s} "
          f"{'of bound':>8s}")  # fmt: skip
    for model_name in args.models:
        model = build_model(model_name, 1000, width=width)
        flops = forward_flops(model_name, width, size)
        model.to(device)
        if cuda:
            model.to(memory_format=torch.channels_last)
        rows = []
        for batch in dict.fromkeys([args.batch, args.paper_batch]):
            for comp in (False, True) if compile_ else (False,):
                rate = train_rate(model, batch, size, args.steps, warmup, device, comp)
                share = 3 * flops * rate / (PEAK_BF16_TFLOPS * 1e12)
                rows.append({"batch": batch, "compile": comp, "images_per_s": rate, "of_bound": share})
                shown = f"{100 * share:7.1f}%" if cuda else "   (cpu)"
                print(f"{model_name:14s} {flops / 1e9:9.2f} {batch:5d} {'yes' if comp else 'no':>7s} "
                      f"{rate:11.1f} {shown}")  # fmt: skip
        result["models"][model_name] = {"forward_gflops": flops / 1e9, "runs": rows}
        del model
        if cuda:
            torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_jpegs(Path(tmp) / "jpegs", args.jpegs, jpeg_size)
        spec = TransformSpec(train=True, resize=round(size * 8 / 7), crop=size)
        data = WSOLDataset(folder, "train", spec)
        batches = max(2, min(args.jpegs // args.batch, 12))
        loader = loader_rate(data, args.batch, args.workers, batches)
        cache = loader_rate(CachedImages(data), args.batch, args.workers, batches, collate_fn=torch.stack)
        files = sorted((folder / "images").glob("*.jpg"))
        decode = gpu_decode_rate(files, args.batch, spec.resize, size, batches) if cuda else None
    fastest = max(r["images_per_s"] for r in result["models"][args.models[0]]["runs"])
    result["loader"] = {"jpeg_size": list(jpeg_size), "workers": args.workers, "images_per_s": loader,
                        "uint8_cache_images_per_s": cache, "gpu_decode_images_per_s": decode}  # fmt: skip
    cpus = os.cpu_count()
    print(f"loader ({args.workers} workers of {cpus} CPUs, {jpeg_size[0]}x{jpeg_size[1]} JPEGs q90, training "
          f"transform): {loader:.1f} img/s; uint8 cache: {cache:.1f} img/s; GPU decode: "
          + (f"{decode:.1f} img/s" if decode else "n/a (no CUDA)"))  # fmt: skip
    bound = "the LOADER" if loader < fastest else ("the GPU" if cuda else "the model (on CPU)")
    result["bottleneck"] = "loader" if loader < fastest else "gpu"
    print(f"bottleneck for {args.models[0]} ({fastest:.1f} img/s at best): {bound}"
          + (f"; a faster input path: uint8 cache {cache:.0f} img/s, GPU decode "
             + (f"{decode:.0f} img/s" if decode else "n/a") if loader < fastest else ""))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
