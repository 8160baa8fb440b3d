"""Reading trained models, and choosing (and claiming) the device they run on.

Model and checkpoint files hold tensors and plain values only and are loaded with
`weights_only=True`: they are shared (a DVC remote), and a pickle of anything else can run code.
`camrepro.train` writes them; extraction, the SVM experiments and pretraining read them here.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch

from camrepro.errors import CamreproError
from camrepro.models import WSOLModel, build_model

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, str) or DEVICE_PATTERN.fullmatch(name) is None:
        raise CamreproError(f"device {name!r}: use one of auto, cpu, cuda, cuda:N.")
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise CamreproError(
                f"device {name!r} requested but {torch.cuda.device_count()} CUDA device(s) are visible; "
                "use device: auto or cpu."
            )
    return torch.device(name)


def claim_gpus(device: str, count: int) -> bool:
    """One GPU per job (camrepro.gpus): claim before anything touches CUDA. True if GPUs are used."""
    from camrepro import gpus

    if device == "cpu" or gpus.device_count() == 0:
        return False
    claimed = gpus.claim_devices(count)
    if claimed:
        logging.getLogger("camrepro").info("claimed GPU(s) %s", claimed)
    return True


# What to do about a model or checkpoint file that cannot be loaded.
_REMEDY = {
    "checkpoint": "Delete it to train this model from scratch.",
    "model file": "Rerun the training job that writes it (delete the file first), or fetch it again from a "
    "source you trust.",
    "weights file": "Write it again (`camrepro weights` or `camrepro pretrain`).",
}


def load_checkpoint(path: Path, kind: str = "checkpoint") -> dict:
    """A model or checkpoint file (`kind`), loaded with `weights_only=True`: tensors and plain values
    only, so a shared file (a DVC remote, a download) whose pickle would run code is refused."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (pickle/zip errors of many kinds)
        raise CamreproError(
            f"{path} is unreadable: not a camrepro {kind} ({_load_failure(exc)}). Only tensors and plain "
            "values are loaded from these files, never code: a damaged file, or one from elsewhere that "
            f"may be unsafe, is refused. {_REMEDY[kind]}"
        ) from exc
    if not isinstance(state, dict):
        raise CamreproError(
            f"{path} is not a camrepro {kind} (it holds a {type(state).__name__}). {_REMEDY[kind]}"
        )
    return state


def _load_failure(exc: Exception) -> str:
    """The gist of torch's refusal, without its advice to retry with weights_only=False."""
    text = str(exc)
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if found:
        text = re.split(r" was not an allowed global| Please use", found.group(1))[0]
    elif "weights_only" in text:
        text = "it holds more than tensors and plain values"
    return f"{exc.__class__.__name__}: {text.strip().splitlines()[0][:200] if text.strip() else 'empty'}"


def load_trained(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[WSOLModel, dict]:
    """A trained model from its `model.pt` (eval mode) and the saved metadata."""
    from camrepro.train import TrainConfig  # the options the file was trained with

    path = Path(path)
    if not path.exists():
        raise CamreproError(f"{path} not found: train the model first (`camrepro train`).")
    state = load_checkpoint(path, "model file")
    if "model" not in state or "config" not in state:
        raise CamreproError(f"{path} is not a camrepro model file; train it again.")
    config = dict(state["config"])
    if config.get("select") == "last":  # files from before the option was dropped: it had one value
        del config["select"]
    cfg = TrainConfig.from_dict(config, source=str(path))
    model = build_model(
        cfg.model,
        state["num_classes"],
        None,
        cfg.width,
        cfg.pool,
        cfg.theta_tap,
        state.get("transform_input", False),
        cfg.halve_stride,
    )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CamreproError(f"{path} does not match model {cfg.model!r}: {exc}") from exc
    return model.to(device).eval(), state


# Where a published checkpoint keeps an original's own ImageNet head: our name -> the file's name
# (torchvision's GoogLeNet: fc; VGG16/AlexNet: classifier.6, which our FC originals keep by name).
OWN_HEAD = {
    "googlenet": {"classifier.weight": "fc.weight", "classifier.bias": "fc.bias"},
    "vgg16": {"classifier.6.weight": "classifier.6.weight", "classifier.6.bias": "classifier.6.bias"},
    "alexnet": {"classifier.6.weight": "classifier.6.weight", "classifier.6.bias": "classifier.6.bias"},
}


def load_as_is(
    arch: str, weights: str | os.PathLike, dataset: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> tuple[WSOLModel, dict]:  # fmt: skip
    """A registry network with its ImageNet weights file, classifier included, trained nowhere here
    (eval mode), and metadata like `load_trained`'s.

    Three kinds of file: one `camrepro pretrain` wrote holds the whole pretrained network
    (`network`: registry model, width, head, state; the embedded default's "originals"), which is
    returned whichever head the pretraining used; a published checkpoint of a CAM-paper original
    holds its backbone and its own head (OWN_HEAD); efficientnet-lite0's file is the network's own
    names, classifier included. `dataset` (a prepared folder; None for fixed features, as the SVMs
    use them): its class indices must be the head's outputs, so their count must match (ImageNet's
    1000, in the sorted-wnid order torchvision's heads use).
    """
    from camrepro.data.metadata import DatasetInfo
    from camrepro.models.pretrained import load_state_into, read_weights

    weights = Path(weights)
    info = DatasetInfo.load(dataset) if dataset is not None else None
    raw = load_checkpoint(weights, "weights file") if weights.exists() else None
    if isinstance(raw, dict) and isinstance(raw.get("network"), dict):
        n = raw["network"]
        head = "classifier.weight" if "classifier.weight" in n["state_dict"] else "classifier.6.weight"
        rows = n["state_dict"][head].shape[0]
        net = build_model(n["model"], rows, None, n["width"], n["pool"], n.get("theta_tap", 0.0),
                          n.get("transform_input", False), n.get("halve_stride", False))  # fmt: skip
        net.load_state_dict(n["state_dict"])
        built = n["model"]
    elif arch in OWN_HEAD:
        state, _ = read_weights(weights)
        head = OWN_HEAD[arch]
        missing = [k for k in head.values() if k not in state]
        if missing:
            raise CamreproError(
                f"{weights} holds no ImageNet head for {arch} (no {missing[0]}): use the published "
                "checkpoint (`camrepro weights`) or a file `camrepro pretrain` wrote."
            )
        rows = state[next(iter(head.values()))].shape[0]
        net = build_model(arch, rows, weights)
        load_state_into(net, state, str(weights))
        net.load_state_dict({ours: state[theirs] for ours, theirs in head.items()}, strict=False)
        built = arch
    else:
        if info is None:
            raise CamreproError(f"{arch} used as it is needs the dataset whose classes its classifier has.")
        rows = info.num_classes
        net = build_model(arch, rows, weights)
        if not any(k.startswith("_fc.") or k.startswith("classifier.") for k in net.pretrained_names()):
            raise CamreproError(
                f"{arch} built for the {info.num_classes} classes of {dataset} takes no classifier from "
                f"{weights}: only a network whose weights file holds its classifier for exactly the "
                f"dataset's classes ({', '.join(['efficientnet-lite0', *OWN_HEAD])}: ImageNet's 1000 in "
                "torchvision's order) can be used as it is."
            )
        built = arch
    if info is not None and rows != info.num_classes:
        net, rows = _subset_head(net, rows, Path(dataset), info.classes)
    if info is not None and rows != info.num_classes:
        raise CamreproError(
            f"{weights}: {built}'s own head has {rows} classes, {dataset} {info.num_classes}; a network "
            "used as it is is evaluated on the classes it was trained on (the imagenet role)."
        )
    meta = {"config": {"model": built, "weights": str(weights)}, "classes": info.classes if info else None}
    return net.to(device).eval(), meta


def _subset_head(net: WSOLModel, rows: int, dataset: Path, classes: list[str]) -> tuple[WSOLModel, int]:
    """A dataset of some of ImageNet's classes (a rehearsal's, a subset's) is scored by the rows of
    the network's head for those classes, when the dataset lists the head's classes (a prepared
    ImageNet: the devkit's 1,000, `IMAGENET_CLASSES_FILE`); unchanged otherwise."""
    from torch import nn

    from camrepro.data.metadata import read_head_classes

    head_classes = read_head_classes(dataset)
    if not head_classes or len(head_classes) != rows or not set(classes) <= set(head_classes):
        return net, rows
    index = torch.tensor([head_classes.index(c) for c in classes])
    owner, name = (net, "classifier") if isinstance(net.classifier, nn.Linear) else (net.classifier, "6")
    old = getattr(owner, name)
    new = nn.Linear(old.in_features, len(classes))
    with torch.no_grad():
        new.weight.copy_(old.weight[index])
        new.bias.copy_(old.bias[index])
    setattr(owner, name, new)
    return net, len(classes)
