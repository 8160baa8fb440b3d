"""GPU-hours of a config's jobs, per job family and in total, from FLOPs and a throughput figure.

Per job, the images it pushes through its network times the FLOPs per image:

* weights   download: none; demo pretraining: epochs x imagenet train images x 3 forward FLOPs
* train     epochs x train images x 3 forward FLOPs (forward + backward), or `max_steps` x batch
* extract   evaluation images x forward FLOPs (x 3 with Backprop saliency: a backward per map)
* svm       forward passes over every train and test image it reads (CUB: 4, full image, CAM
            pass, CAM crops, GT crops; transfer: 1 per dataset)
* evaluate, tables, report: CPU jobs, no GPU time

Forward FLOPs come from torch's FLOP counter on the model built on the `meta` device (no memory,
no compute). FLOPs become seconds at a throughput: measured images/s of a model (`bench/gpu_check.py
--json`, passed as `throughput`) where there is one, else estimated as `ASSUMED_SHARE` of the
dense bf16 peak of one H200 (`PEAK_BF16_TFLOPS`), and every figure says which it is.

Image counts: the prepared split where it exists under the data root, else the published count of
the real dataset (`camrepro.data.sources.SPLIT_SIZES`); `per_class` configs (rehearsals) count
their cap.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from camrepro.plan import Plan, prepared

# NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200/): "BF16 Tensor Core
# 1,979 TFLOPS" with sparsity, so 989 TFLOP/s dense, the bound a dense convolution can reach.
PEAK_BF16_TFLOPS = 989.0
PEAK_SOURCE = "NVIDIA H200 datasheet: 1,979 TFLOPS bf16 with sparsity = 989 dense"
# Until measured on a GPU: the share of that bound a training step is assumed to reach (issue 16's
# target for vgg16-gap, 4,000 images/s; unmeasured for the others, so every estimate says so).
ASSUMED_SHARE = 0.40
FAMILIES = ("weights", "train", "extract", "svm")


@cache
def forward_flops(
    model: str, width: float, size: int, pool: str | None = None, halve_stride: bool = False
) -> float:
    """FLOPs of one image's forward pass (a multiply-add counts 2), counted on the meta device.
    `halve_stride` (models.halve_stride) applies to CAM networks; the others keep their stride."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from camrepro.models import CAMNet, build_model
    from camrepro.models.backbones import halve_output_stride

    with torch.device("meta"):
        net = build_model(model, 1000, width=width, pool=None if pool == "fc" else pool)
        if halve_stride and isinstance(net, CAMNet):
            halve_output_stride(net.features)
        x = torch.empty(1, 3, size, size)
    net.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return float(counter.get_total_flops())


def split_size(config: dict, dataset: str, split: str) -> int:
    """Images in `split` of `dataset`: the prepared metadata if present, else the published count."""
    from camrepro.data.sources import SPLIT_SIZES

    ids = Path(prepared(config.get("data_root", "data"), dataset)) / split / "image_ids.txt"
    if ids.exists():
        return sum(1 for line in ids.read_text(encoding="utf-8").splitlines() if line.strip())
    spec = config["datasets"][dataset]
    published = SPLIT_SIZES.get(spec.get("source", ""), {}).get(split)
    if published is None:
        return 0  # a synthetic set not generated yet: no estimate
    if "per_class" in spec:
        classes = SPLIT_SIZES[spec["source"]]["classes"]
        return min(published, spec["per_class"] * classes)
    return published


@dataclass
class Cost:
    """GPU-hours per family; `basis` says, per model, whether its rate is measured or estimated."""

    hours: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0.0))
    jobs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAMILIES, 0))
    basis: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.hours.values())

    @property
    def estimated(self) -> bool:
        return any(b.startswith("estimated") for b in self.basis.values()) or not self.basis

    def lines(self) -> list[str]:
        """What `camrepro workflow check` prints."""
        kind = "estimated" if self.estimated else "measured"
        families = ", ".join(f"{f} {self.hours[f]:.2f} ({self.jobs[f]} jobs)" for f in FAMILIES)
        out = [f"GPU-hours ({kind}, one H200 per job): {families}; total {self.total:.2f}"]
        out += [f"  {model}: {basis}" for model, basis in sorted(self.basis.items())]
        return out


def load_throughput(path: str | os.PathLike) -> dict[str, float]:
    """model -> best training images/s from `bench/gpu_check.py --json` (a GPU run, not --smoke)."""
    doc = json.loads(Path(path).read_text())
    if doc.get("smoke"):
        return {}
    return {m: max(r["images_per_s"] for r in v["runs"]) for m, v in doc.get("models", {}).items()}


def estimate(plan: Plan, config: dict, throughput: dict[str, float] | None = None) -> Cost:
    """GPU-hours of every GPU job of `plan` (module docstring)."""
    throughput = throughput or {}
    cost = Cost()
    width = float(config.get("models", {}).get("width", 1.0))
    halve = bool(config.get("models", {}).get("halve_stride", False))

    def seconds(model: str, pool: str | None, images: float, passes: float, size: int) -> float:
        """Seconds for `images` x `passes` forward-equivalents of `model` at `size` px (the job's own:
        models.size_by_arch can set it per architecture)."""
        flops = forward_flops(model, width, size, pool, halve)
        if model in throughput:  # measured training images/s: 3 forward-equivalents an image
            cost.basis[model] = f"measured {throughput[model]:.0f} training images/s"
            return images * passes / (3 * throughput[model])
        cost.basis[model] = (f"estimated: {flops / 1e9:.1f} GFLOP/image at {ASSUMED_SHARE:.0%} of "
                             f"{PEAK_BF16_TFLOPS:g} TFLOP/s bf16")  # fmt: skip
        return images * passes * flops / (ASSUMED_SHARE * PEAK_BF16_TFLOPS * 1e12)

    def add(family: str, s: float) -> None:
        cost.hours[family] += s / 3600.0
        cost.jobs[family] += 1

    for w in plan.weights.values():
        if w.method == "pretrain":
            from camrepro.weights import PRETRAIN_MODEL

            n = split_size(config, w.pretrain["dataset"], "train") * int(w.pretrain.get("epochs", 10))
            add("weights", seconds(PRETRAIN_MODEL[w.arch], None, n, 3, int(w.pretrain["size"])))
        else:
            add("weights", 0.0)
    for r in plan.runs.values():
        if r.as_is:
            continue  # used as it is: no training
        images = split_size(config, r.dataset, "train") * int(r.train.get("epochs", 10))
        if r.train.get("max_steps"):
            images = min(images, int(r.train["max_steps"]) * int(r.train.get("batch_size", 32)))
        add("train", len(r.seeds) * seconds(r.model, r.pool, images, 3, int(r.train["crop"])))
    for e in plan.extractions.values():
        # a network used as it is runs once (seed 0); ten-crop is ten forward passes an image
        run = plan.runs[e.run] if e.run else None
        if e.as_is:
            model, pool, n = e.as_is, run.pool if run else None, 1
        else:
            model, pool, n = run.model, run.pool, len(run.seeds)
        passes = (3 if e.saliency else 1) * (10 if e.transform == "tencrop" else 1)
        add("extract", n * seconds(model, pool, split_size(config, e.dataset, e.split), passes, e.size))
    for j in plan.svms.values():
        run = plan.runs[j.run]
        images = sum(split_size(config, d, s) for d in j.datasets.values() for s in ("train", "test"))
        n = len(j.seeds)  # a network used as it is is one network (seed 0)
        add("svm", n * seconds(run.model, run.pool, images, 4 if j.kind == "cub" else 1, j.size))
    return cost
