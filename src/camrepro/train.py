"""Fine-tune one registry model on one prepared dataset: resumable, seeded, fast on GPU.

Optimisation follows the reference WSOL code (clovaai/wsolevaluation, whose trainer the
Rethinking-CAM code builds on): SGD with Nesterov momentum 0.9, weight decay 1e-4, the layers the
CAM network adds (and the classifier) at `lr_new_ratio` (10x) the learning rate of the pretrained
ones, learning rate x0.1 every `lr_decay_every` epochs. Epochs, batch size and learning rate come
from the experiment config; `TrainConfig` holds the defaults.

Reproducibility: every epoch reseeds the data order, the augmentation and torch's RNG from
(seed, epoch), and a checkpoint (model, optimiser, scheduler, epoch) is written atomically after
every epoch. A rerun after a crash resumes from the last complete epoch and, on CPU, ends with
exactly the weights of an uninterrupted run. Model selection: the last epoch (the test split is
never looked at while training).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from camrepro.data.reader import TransformSpec, WSOLDataset, collate
from camrepro.errors import CamreproError
from camrepro.fsutil import atomic_path, file_digest
from camrepro.models import build_model
from camrepro.models.batchnorm import fold_batchnorm, has_batchnorm, insert_batchnorm

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    model: str
    dataset: str  # prepared dataset folder
    split: str = "train"
    width: float = 1.0
    pool: str | None = None
    theta_tap: float = 0.0
    pretrained: str | None = None  # data/weights/<arch>.pth
    epochs: int = 50  # wsolevaluation: 50 on CUB, 10 on ImageNet
    batch_size: int = 32
    lr: float = 0.01
    lr_new_ratio: float = 10.0  # wsolevaluation --lr_classifier_ratio
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    lr_decay_every: int = 15  # wsolevaluation --lr_decay_frequency (15 on CUB, 3 on ImageNet)
    lr_decay: float = 0.1
    resize: int = 256  # train: resize to 256, random 224 crop, flip
    crop: int = 224
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast (CUDA only)
    channels_last: bool = True  # CUDA only
    compile: bool = False
    fold_bn: bool = False  # train with BatchNorm after every conv, folded away when saved (pretraining)
    workers: int | None = None  # DataLoader workers; default from the job's threads
    log_every: int = 10  # steps between progress lines in the JSON-lines log
    select: str = "last"  # model selection: the last epoch (never the test split)

    @classmethod
    def from_dict(cls, doc: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise CamreproError(
                f"unknown training option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        try:
            return cls(**doc)
        except TypeError as exc:
            raise CamreproError(f"training config: {exc}") from exc


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CamreproError("device 'cuda' requested but no CUDA device is available; use device: cpu.")
    return torch.device(name)


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """Pretrained layers at lr, the layers the CAM network adds (and the classifier) at lr x ratio."""
    backbone = model.features if hasattr(model, "pool") else model
    pretrained_names = {f"features.{k}" if backbone is not model else k for k in backbone.torchvision_keys()}
    old, new = [], []
    for name, p in model.named_parameters():
        (old if name in pretrained_names else new).append(p)
    return [
        {"params": old, "lr": cfg.lr, "name": "pretrained"},
        {"params": new, "lr": cfg.lr * cfg.lr_new_ratio, "name": "new"},
    ]


def _seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 (pickle/zip errors of many kinds)
        raise CamreproError(
            f"checkpoint {path} is unreadable ({exc.__class__.__name__}: {exc}). Delete it to train "
            "this model from scratch."
        ) from exc


# What a training run reads besides its config: the split's metadata and dataset.json (they change
# whenever the data is regenerated or re-prepared; hashing every image of ImageNet would take
# minutes) and the pretrained weights file.
_SPLIT_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")


def input_fingerprint(cfg: TrainConfig) -> str:
    """SHA-256 over the files a run reads besides its config. A checkpoint of other inputs (data
    regenerated, weights replaced: the reasons a workflow reruns the job) is never resumed."""
    h = hashlib.sha256()
    root = Path(cfg.dataset)
    files = [root / "dataset.json", *(root / cfg.split / f for f in _SPLIT_FILES)]
    if cfg.pretrained:
        files.append(Path(cfg.pretrained))
    for path in files:
        h.update(path.name.encode())
        h.update(file_digest(path).encode() if path.exists() else b"absent")
    return h.hexdigest()


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def train(
    cfg: TrainConfig, out_dir: str | os.PathLike, progress: bool = True, threads: int | None = None,
    restart_if_changed: bool = False,
) -> Path:  # fmt: skip
    """Train (or resume) into `out_dir`; returns the path of the final `model.pt`.

    A checkpoint written with another config is an error, unless `restart_if_changed`: then
    training starts over (what the workflow wants when an option in params.yaml changed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path, final_path = out / "checkpoint.pt", out / "log.jsonl", out / "model.pt"
    if threads:
        torch.set_num_threads(threads)
    device = pick_device(cfg.device)
    cuda = device.type == "cuda"
    # Several processes (torchrun; see `camrepro train --processes`): DDP, one device each, the
    # global batch split between them; rank 0 alone writes the log, checkpoints and model.
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist

        if cuda:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        if cfg.batch_size % world:
            raise CamreproError(f"batch_size {cfg.batch_size} does not split over {world} processes.")
    lead = rank == 0
    torch.manual_seed(_seed(cfg.seed, -1))
    dataset = WSOLDataset(
        cfg.dataset, cfg.split, TransformSpec(train=True, resize=cfg.resize, crop=cfg.crop), seed=cfg.seed
    )
    model = build_model(
        cfg.model, dataset.info.num_classes, cfg.pretrained, cfg.width, cfg.pool, cfg.theta_tap
    )
    if cfg.fold_bn:
        if has_batchnorm(model):
            raise CamreproError(f"fold_bn: {cfg.model} has BatchNorm already; train it without fold_bn.")
        insert_batchnorm(model)
    optimizer = torch.optim.SGD(
        param_groups(model, cfg),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
    start_epoch = 0
    state = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    inputs = input_fingerprint(cfg)
    if state is not None and (state.get("config") != asdict(cfg) or state.get("inputs") != inputs):
        what = "training config" if state.get("config") != asdict(cfg) else "data or pretrained weights"
        if not restart_if_changed:
            raise CamreproError(f"{ckpt_path} was written with another {what}; delete {out} to train anew.")
        log.info("%s: the %s changed; starting over", out, what)
        state = None
        if lead:
            ckpt_path.unlink()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"]
        if lead:
            _append_log(log_path, {"event": "resume", "epoch": start_epoch})
        log.info("resuming %s from epoch %d", out, start_epoch)
    elif log_path.exists() and lead:
        log_path.unlink()  # a log without a checkpoint belongs to a run that never finished an epoch
    model.to(device)
    if cuda and cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    step_model: nn.Module = model
    if world > 1:
        step_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if cfg.compile:
        step_model = torch.compile(step_model)
    workers = (
        cfg.workers
        if cfg.workers is not None
        else (max(1, min(16, (threads or os.cpu_count() or 2) - 1)) if cuda else 0)
    )
    loss_fn = nn.CrossEntropyLoss()

    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(_seed(cfg.seed, epoch))  # dropout etc.: same stream whether resumed or not
        dataset.set_epoch(epoch)
        sampler = None
        if world > 1:
            sampler = torch.utils.data.DistributedSampler(
                dataset, num_replicas=world, rank=rank, shuffle=True, seed=_seed(cfg.seed, 0), drop_last=True
            )
            sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=cfg.batch_size // world,
            shuffle=sampler is None,
            sampler=sampler,
            generator=torch.Generator().manual_seed(_seed(cfg.seed, epoch)),
            num_workers=workers,
            collate_fn=collate,
            pin_memory=cuda,
            drop_last=len(dataset) > cfg.batch_size // world,
            persistent_workers=False,
        )
        model.train()
        seen, loss_sum, correct, start = 0, 0.0, 0, time.perf_counter()
        bar = tqdm(
            loader,
            desc=f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not (progress and lead),
        )
        for step, batch in enumerate(bar):
            images = batch["image"].to(device, non_blocking=True)
            labels = torch.as_tensor(batch["label"]).to(device, non_blocking=True)
            if cuda and cfg.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda and cfg.amp):
                logits = step_model(images)
                loss = loss_fn(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Running sums stay on the device: reading a GPU value every step would stall it.
            loss_sum = loss_sum + loss.detach() * len(labels)
            correct = correct + (logits.argmax(1) == labels).sum()
            seen += len(labels)
            if step % cfg.log_every != 0:
                continue
            loss = float(loss.detach())
            rate = seen / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{rate:.0f}")
            if lead:
                _append_log(
                    log_path,
                    {
                        "event": "step",
                        "epoch": epoch,
                        "step": step,
                        "loss": loss,
                        "images_per_s": rate,
                    },
                )
        scheduler.step()
        seconds = time.perf_counter() - start
        if not lead:
            continue
        with atomic_path(ckpt_path) as tmp:
            torch.save(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "config": asdict(cfg),
                 "inputs": inputs},
                tmp,
            )  # fmt: skip
        _append_log(
            log_path,
            {"event": "epoch", "epoch": epoch, "loss": float(loss_sum) / max(seen, 1),
             "train_acc": int(correct) / max(seen, 1), "seconds": seconds, "images_per_s": seen / seconds,
             "lr": [g["lr"] for g in optimizer.param_groups]},
        )  # fmt: skip

    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
        if not lead:
            return final_path
    if cfg.fold_bn:
        fold_batchnorm(model.cpu().eval())
    with atomic_path(final_path) as tmp:
        torch.save(
            {"model": model.state_dict(), "config": asdict(cfg), "classes": dataset.info.classes,
             "num_classes": dataset.info.num_classes, "epochs": cfg.epochs, "selected": cfg.select,
             "transform_input": bool(getattr(model.features, "transform_input", False))},
            tmp,
        )  # fmt: skip
    return final_path


def load_trained(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """A trained model from its `model.pt` (eval mode) and the saved metadata."""
    path = Path(path)
    if not path.exists():
        raise CamreproError(f"{path} not found: train the model first (`camrepro train`).")
    state = load_checkpoint(path)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CamreproError(f"{path} is not a camrepro model file; train it again.")
    cfg = TrainConfig.from_dict(state["config"])
    model = build_model(
        cfg.model,
        state["num_classes"],
        None,
        cfg.width,
        cfg.pool,
        cfg.theta_tap,
        state.get("transform_input", False),
    )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CamreproError(f"{path} does not match model {cfg.model!r}: {exc}") from exc
    return model.to(device).eval(), state
