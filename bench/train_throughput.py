"""Training and evaluation throughput of the CAM networks, images/s, and the share of compute bound.

For each model and width: training steps (forward, backward, SGD step) and evaluation passes
(forward + CAMs of six classes) on random 224x224 batches, so the figure is the model's; then,
with --data DIR, the same training step fed by the real data pipeline (WSOLDataset + DataLoader)
to show whether data loading is the bottleneck. FLOPs per image come from torch's FLOP counter;
training costs about 3x the forward FLOPs. On CUDA the run uses bf16 autocast and channels_last
(and torch.compile with --compile), and prints the fraction of --peak-tflops reached.

    python bench/train_throughput.py [--models vgg16-gap googlenet-gap] [--widths 0.125 1.0]
        [--batch 16] [--steps 5] [--data data/prepared/synthetic-imagenet] [--compile]
"""

from __future__ import annotations

import argparse
import time

import torch

from camrepro.cam import class_activation_maps
from camrepro.cost import forward_flops
from camrepro.models import build_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vgg16-gap", "googlenet-gap"])
    parser.add_argument("--widths", nargs="+", type=float, default=[0.125, 1.0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--data", help="prepared dataset: also time training fed by the data pipeline")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak (H200: 989)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}; torch {torch.__version__}; batch {args.batch}; {args.size}px")
    print(f"{'model':14s} {'width':>5s} {'GFLOP/img':>9s} {'train img/s':>11s} {'eval img/s':>10s} "
          f"{'train TFLOP/s':>13s} {'of peak':>7s} {'data-fed img/s':>14s}")  # fmt: skip
    for model_name in args.models:
        for width in args.widths:
            measure(model_name, width, args, device)


def measure(model_name: str, width: float, args: argparse.Namespace, device: torch.device) -> None:
    cuda = device.type == "cuda"
    model = build_model(model_name, 1000, width=width)
    flops = forward_flops(model_name, width, args.size)
    model.to(device)
    if cuda:
        model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, nesterov=True)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (args.batch,), device=device)

    def train_step(images: torch.Tensor = x, labels: torch.Tensor = y) -> None:
        model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(step_model(images).float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def eval_step() -> None:
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits, feats = model(x, return_features=True)
            classes = torch.cat([y[:, None], logits.topk(5, 1).indices], 1)
            class_activation_maps(feats.float(), model.classifier.weight, classes)

    t_train = timed(train_step, args.steps, args.warmup, device)
    t_eval = timed(eval_step, args.steps, args.warmup, device)
    train_rate, eval_rate = args.batch / t_train, args.batch / t_eval
    tflops = 3 * flops * train_rate / 1e12
    peak = f"{100 * tflops / args.peak_tflops:6.1f}%" if cuda else "    -"
    fed = f"{data_fed_rate(args, train_step, device):.1f}" if args.data else "-"
    print(f"{model_name:14s} {width:5.3f} {flops / 1e9:9.2f} {train_rate:11.1f} {eval_rate:10.1f} "
          f"{tflops:13.3f} {peak:>7s} {fed:>14s}")  # fmt: skip


def data_fed_rate(args: argparse.Namespace, train_step, device: torch.device) -> float:  # noqa: ANN001
    from camrepro.data.reader import TransformSpec, WSOLDataset, collate

    data = WSOLDataset(
        args.data, "train", TransformSpec(train=True, resize=round(args.size * 8 / 7), crop=args.size)
    )
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch, shuffle=True, num_workers=args.workers, collate_fn=collate,
        pin_memory=device.type == "cuda", drop_last=True,
    )  # fmt: skip
    seen, start = 0, None
    for i, batch in enumerate(loader):
        images = batch["image"].to(device, non_blocking=True)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.as_tensor(batch["label"]).to(device) % 1000
        train_step(images, labels)
        if i == args.warmup - 1:
            sync(device)
            start = time.perf_counter()
        elif start is not None:
            seen += len(labels)
        if i >= args.warmup + args.steps:
            break
    sync(device)
    return seen / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
