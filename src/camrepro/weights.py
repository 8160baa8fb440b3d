"""ImageNet-pretrained backbone weights: `data/weights/<arch>.pth`, by download or by pretraining.

Both paths write the same artifact (`camrepro.models.pretrained.save_weights`): a state_dict in
torchvision's parameter names plus whether the weights expect torchvision's GoogLeNet input
transform. Everything downstream reads it the same way.

* `fetch_torchvision_weights`: torchvision's own registry gives the URL; the file name carries the
  first hex digits of the file's SHA-256, which are checked. Offline, the error names the URL and
  where to place the file by hand.
* `pretrain`: for the embedded benchmark, train the original architecture at the demo width on
  `synthetic-imagenet`, standing in for ImageNet pre-training.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torchvision

from camrepro.data.download import download, listed_checksum
from camrepro.errors import CamreproError, DownloadError
from camrepro.fsutil import file_digest
from camrepro.models.pretrained import save_weights

# Which registry model each architecture is pretrained as, for the embedded benchmark. Only the
# backbone's weights are kept, so the head is free: VGG16 and AlexNet are pretrained with a GAP head
# because at width 1/8 their FC heads (dropout, 512 units) learn far slower (measured at 64 px,
# 24 epochs: VGG16 30 % training accuracy with GAP, 8 % with the FC head).
PRETRAIN_MODEL = {
    "vgg16": "vgg16-gap",
    "alexnet": "alexnet-gap",
    "googlenet": "googlenet",
    "resnet50": "resnet50-se",
    "mobilenet-v1": "mobilenet-v1",
}
TORCHVISION_ARCHS = ("vgg16", "alexnet", "googlenet", "resnet50")


def torchvision_url(arch: str) -> str:
    if arch not in TORCHVISION_ARCHS:
        raise CamreproError(
            f"torchvision has no ImageNet weights for {arch!r}; known: {', '.join(TORCHVISION_ARCHS)}. "
            "Use `camrepro pretrain` or supply a state_dict file."
        )
    return torchvision.models.get_model_weights(arch).DEFAULT.url


def fetch_torchvision_weights(
    arch: str, out: str | os.PathLike, downloads: str | os.PathLike = "data/downloads",
    url: str | None = None, progress: bool = True,
) -> Path:  # fmt: skip
    """Download (or reuse) torchvision's ImageNet weights for `arch` and write `out`."""
    url = url or torchvision_url(arch)
    name = url.rsplit("/", 1)[-1]
    match = re.search(r"-([0-9a-f]{8,})\.pth$", name)
    dest = Path(downloads) / name
    try:
        download(url, dest, progress=progress)
    except DownloadError as exc:
        raise DownloadError(
            f"could not download {url} ({exc}). Offline? Fetch it elsewhere and place it at {dest}, "
            "then run again."
        ) from exc
    # A file the checksum list names (CAMREPRO_CHECKSUMS) was verified against it by `download`.
    if match and not listed_checksum(dest) and not file_digest(dest, "sha256").startswith(match.group(1)):
        dest.unlink()
        raise DownloadError(
            f"{dest}: its SHA-256 does not start with {match.group(1)} as torchvision's file name says; "
            "deleted it. Run again."
        )
    state = torch.load(dest, map_location="cpu", weights_only=True)
    save_weights(out, state, transform_input=arch == "googlenet")
    return Path(out)


# Trained with a BatchNorm after every conv, folded into the convs when saved (models/batchnorm.py):
# without it these thin, deep, normalisation-free stacks do not leave the loss plateau in minutes.
BATCHNORM_FREE = ("vgg16", "alexnet")


def pretrain(
    arch: str, dataset: str | os.PathLike, out: str | os.PathLike, width: float, epochs: int,
    batch_size: int = 32, lr: float = 0.01, crop: int = 224, resize: int = 256, seed: int = 0,
    progress: bool = True, threads: int | None = None, work_dir: str | os.PathLike | None = None,
) -> Path:  # fmt: skip
    """Train the original `arch` on `dataset` from scratch and write its backbone as `out`.

    The training run (checkpoints, log) lives in `work_dir` (default: next to `out`), so an
    interrupted pretraining resumes like any training.
    """
    from camrepro.models.io import load_trained
    from camrepro.train import TrainConfig, train

    if arch not in PRETRAIN_MODEL:
        raise CamreproError(f"cannot pretrain {arch!r}; known: {', '.join(PRETRAIN_MODEL)}")
    out = Path(out)
    work = Path(work_dir) if work_dir else out.with_name(out.stem + ".pretrain")
    cfg = TrainConfig(
        model=PRETRAIN_MODEL[arch], dataset=str(dataset), width=width, epochs=epochs,
        batch_size=batch_size, lr=lr, lr_new_ratio=1.0, lr_decay_every=max(1, (2 * epochs) // 3),
        crop=crop, resize=resize, seed=seed, fold_bn=arch in BATCHNORM_FREE,
    )  # fmt: skip
    # The work folder is this function's cache: a checkpoint of other options or data starts over.
    model, _ = load_trained(train(cfg, work, progress=progress, threads=threads, restart_if_changed=True))
    module = model.pretrained_module()
    state = {k: v for k, v in module.state_dict().items() if k in module.torchvision_keys()}
    save_weights(out, state, transform_input=False)
    return out


__all__ = ["PRETRAIN_MODEL", "fetch_torchvision_weights", "pretrain", "torchvision_url"]
