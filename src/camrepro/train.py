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

Model and checkpoint files hold tensors and plain values only (`_plain`), and are read with
`weights_only=True` (`camrepro.models.io`, which also reads trained models back): they are shared
(a DVC remote), and a pickle of anything else can run code. A run whose loss or weights become
NaN/inf stops with an error; no such file is ever written.

`train_seeds` trains one model per seed (`camrepro.layout`); `train_job` is the `camrepro train`
job: GPU claim, the torchrun relaunch for several processes, then the seeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections import OrderedDict
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from camrepro.data.reader import DECODED_CACHE_BYTES, TransformSpec, WSOLDataset, collate
from camrepro.errors import CamreproError
from camrepro.fsutil import atomic_path, file_digest
from camrepro.layout import seed_dir
from camrepro.models import WSOLModel, build_model
from camrepro.models.batchnorm import fold_batchnorm, has_batchnorm, insert_batchnorm
from camrepro.models.heads import POOLS
from camrepro.models.io import DEVICE_PATTERN, load_checkpoint, pick_device

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
    lr_milestones: list[int] = field(default_factory=list)  # decay epochs instead of lr_decay_every
    lr_fast: list[str] = field(default_factory=list)  # pretrained-name prefixes at the new layers' lr (ADL)
    resize: int = 256  # train: resize to 256, random 224 crop, flip
    crop: int = 224
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast (CUDA only)
    channels_last: bool = True  # NHWC: faster convolutions on CUDA and on CPU (bench/README.md)
    compile: bool = False
    fold_bn: bool = False  # train with BatchNorm after every conv, folded away when saved
    halve_stride: bool = False  # the backbone's last downsampling at stride 1 (embedded default's maps)
    workers: int | None = None  # DataLoader workers; default from the job's threads
    max_steps: int | None = None  # stop after this many optimiser steps in all (rehearsals, smoke runs)
    log_every: int = 10  # steps between progress lines in the JSON-lines log

    def __post_init__(self) -> None:
        """Refuse a bad value here, naming the option, not as a traceback (or a silently untrained
        model) deep in training. Every option has a rule (`_RULES`); floats are normalised (an int,
        or numeric text: PyYAML reads `1e-3`, without a dot, as a string)."""
        for f in fields(self):
            ok, problem = _RULES[f.name]
            value = getattr(self, f.name)
            if not ok(value):
                raise CamreproError(f"training option {f.name}: {value!r} {problem}.")
            if f.type == "float":
                setattr(self, f.name, float(value))
            if f.name in ("lr_milestones", "lr_fast"):
                setattr(self, f.name, list(value))  # checkpoints store lists: compare alike
        if self.crop > self.resize:
            raise CamreproError(
                f"training option crop: {self.crop!r} is larger than resize {self.resize} (the random crop "
                "is taken from the resized image)."
            )
        if self.nesterov and self.momentum == 0:
            raise CamreproError(
                f"training option momentum: {self.momentum!r}: nesterov needs momentum > 0 "
                "(or nesterov: false)."
            )
        if self.lr * self.lr_new_ratio >= _FLOAT32_MAX:  # SGD casts lr to the parameters' dtype
            raise CamreproError(
                f"training option lr: {self.lr!r} x lr_new_ratio {self.lr_new_ratio:g} overflows float32."
            )

    @classmethod
    def from_dict(cls, doc: dict, source: str | None = None) -> TrainConfig:
        """`source` (the config file, a model file) prefixes every error message."""
        prefix = f"{source}: " if source else ""
        if not isinstance(doc, dict):
            raise CamreproError(
                f"{prefix}expected a mapping of training options, found {type(doc).__name__}."
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known, key=str)
        if unknown:
            raise CamreproError(
                f"{prefix}unknown training option(s): {', '.join(map(str, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        missing = [f.name for f in fields(cls)
                   if f.default is MISSING and f.default_factory is MISSING and f.name not in doc]
        if missing:
            raise CamreproError(f"{prefix}missing training option(s): {', '.join(missing)}")
        try:
            return cls(**doc)
        except CamreproError as exc:
            raise CamreproError(f"{prefix}{exc}") from None


_FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _float(value: object) -> float:
    """A finite float from an int, float or numeric text; NaN (which no rule accepts) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return math.nan
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return math.nan
    return number if math.isfinite(number) else math.nan


_TEXT = (lambda v: isinstance(v, str) and v != "", "is not a text value")
_POSITIVE_INT = (lambda v: _is_int(v) and v >= 1, "is not a positive integer")
_POSITIVE = (lambda v: _float(v) > 0, "is not a finite number > 0")
_FRACTION = (lambda v: 0 <= _float(v) < 1, "is not a number in [0, 1)")
_BOOL = (lambda v: isinstance(v, bool), "is not true or false")
# (accepts, what is wrong otherwise) per TrainConfig option
_RULES = {
    "model": _TEXT, "dataset": _TEXT, "split": _TEXT,
    "width": _POSITIVE,
    "pool": (lambda v: v is None or v in POOLS, f"is not one of {', '.join(POOLS)} (or null)"),
    "theta_tap": _FRACTION,
    "pretrained": (lambda v: v is None or _TEXT[0](v), "is not a text value (or null)"),
    "epochs": _POSITIVE_INT, "batch_size": _POSITIVE_INT,
    "lr": _POSITIVE, "lr_new_ratio": _POSITIVE, "momentum": _FRACTION, "nesterov": _BOOL,
    "weight_decay": (lambda v: _float(v) >= 0, "is not a finite number >= 0"),
    "lr_decay_every": _POSITIVE_INT, "lr_decay": _POSITIVE,
    "lr_milestones": (lambda v: isinstance(v, list | tuple) and all(_is_int(e) and e >= 1 for e in v)
                      and list(v) == sorted(set(v)), "is not an increasing list of positive epochs"),
    "lr_fast": (lambda v: isinstance(v, list | tuple) and all(_TEXT[0](e) for e in v),
                "is not a list of parameter-name prefixes"),
    "resize": _POSITIVE_INT, "crop": _POSITIVE_INT,
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**32, "is not an integer in [0, 4294967295]"),
    "device": (lambda v: isinstance(v, str) and DEVICE_PATTERN.fullmatch(v) is not None,
               "is not one of auto, cpu, cuda, cuda:N"),
    "amp": _BOOL, "channels_last": _BOOL, "compile": _BOOL, "fold_bn": _BOOL, "halve_stride": _BOOL,
    "workers": (lambda v: v is None or (_is_int(v) and v >= 0), "is not an integer >= 0 (or null)"),
    "max_steps": (lambda v: v is None or _POSITIVE_INT[0](v), "is not a positive integer (or null)"),
    "log_every": _POSITIVE_INT,
}  # fmt: skip


def param_groups(model: WSOLModel, cfg: TrainConfig) -> list[dict]:
    """Pretrained layers at lr, the layers the CAM network adds (and the classifier) at lr x ratio."""
    pretrained_names = model.pretrained_names()
    old, new = [], []
    for name, p in model.named_parameters():
        slow = name in pretrained_names and not name.startswith(tuple(cfg.lr_fast))
        (old if slow else new).append(p)
    return [
        {"params": old, "lr": cfg.lr, "name": "pretrained"},
        {"params": new, "lr": cfg.lr * cfg.lr_new_ratio, "name": "new"},
    ]


def _seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def _plain(obj: object) -> object:
    """`obj` as tensors and plain values (dict, list, str, int, float, bool, None): what
    `torch.load(weights_only=True)` reads on every torch >= 2.4. Another type is a bug."""
    if obj is None or isinstance(obj, bool | int | float | str | torch.Tensor):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain(asdict(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj)
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        # state_dicts stay OrderedDicts with their `_metadata` (module versions load_state_dict reads)
        out = OrderedDict() if isinstance(obj, OrderedDict) else {}
        for key, value in obj.items():
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise TypeError(f"checkpoint key {key!r} is not a str or int")
            out[key] = _plain(value)
        if hasattr(obj, "_metadata"):
            out._metadata = _plain(obj._metadata)
        return out
    raise TypeError(f"{type(obj).__name__} does not belong in a model or checkpoint file")


def _save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(_plain(state), tmp)


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
    workers = (
        cfg.workers
        if cfg.workers is not None
        else (max(1, min(16, (threads or os.cpu_count() or 2) - 1)) if cuda else 0)
    )
    # Without workers the dataset object lives across epochs: decode each image once.
    dataset = WSOLDataset(
        cfg.dataset,
        cfg.split,
        TransformSpec(train=True, resize=cfg.resize, crop=cfg.crop),
        seed=cfg.seed,
        cache_bytes=DECODED_CACHE_BYTES if workers == 0 else 0,
    )
    model = build_model(cfg.model, dataset.info.num_classes, cfg.pretrained, cfg.width, cfg.pool,
                        cfg.theta_tap, halve_stride=cfg.halve_stride)  # fmt: skip
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
    schedulers = torch.optim.lr_scheduler
    if cfg.lr_milestones:  # Rethinking-CAM configs/vgg16_tap.yml:18-21
        scheduler = schedulers.MultiStepLR(optimizer, list(cfg.lr_milestones), gamma=cfg.lr_decay)
    else:
        scheduler = schedulers.StepLR(optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
    start_epoch = 0
    state = load_checkpoint(ckpt_path, "checkpoint") if ckpt_path.exists() else None
    inputs = input_fingerprint(cfg)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    fits = state is not None and {k: tuple(v.shape) for k, v in state["model"].items()} == own
    changed = state is not None and (state.get("config") != asdict(cfg) or state.get("inputs") != inputs)
    if state is not None and (changed or not fits):
        what = ("training config" if state.get("config") != asdict(cfg) else
                "data or pretrained weights" if state.get("inputs") != inputs else
                "network (its layers changed in the code)")  # fmt: skip
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
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    step_model: nn.Module = model
    if world > 1:
        step_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if cfg.compile:
        step_model = torch.compile(step_model)
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
        # max_steps counts steps over all epochs: an epoch that would start past it never starts
        # (also on resume), and the epoch it ends in ends early, checkpointed as usual.
        if cfg.max_steps is not None and epoch * len(loader) >= cfg.max_steps:
            break
        model.train()
        seen, loss_sum, correct, start = 0, 0.0, 0, time.perf_counter()
        # The first step of the epoch with a non-finite loss, kept on the device (see below).
        bad_step = torch.full((), -1, dtype=torch.long, device=device)
        bar = tqdm(
            loader,
            desc=f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not (progress and lead),
        )
        for step, batch in enumerate(bar):
            if cfg.max_steps is not None and epoch * len(loader) + step >= cfg.max_steps:
                break
            images = batch["image"].to(device, non_blocking=True)
            labels = torch.as_tensor(batch["label"]).to(device, non_blocking=True)
            if cfg.channels_last:
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
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(loss.detach()), step, bad_step)
            seen += len(labels)
            if step % cfg.log_every != 0:
                continue
            loss = float(loss.detach())
            if not math.isfinite(loss):
                raise _diverged(out, cfg, epoch, int(bad_step), len(loader))
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
        # Never a checkpoint (or model) of NaN weights: the job would look done. One read per epoch.
        if int(bad_step) >= 0 or not _finite(model):
            raise _diverged(out, cfg, epoch, int(bad_step), len(loader))
        if not lead:
            continue
        _save(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "config": asdict(cfg),
                          "inputs": inputs})  # fmt: skip
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
    _save(final_path, {
        "model": model.state_dict(), "config": asdict(cfg), "classes": dataset.info.classes,
        "num_classes": dataset.info.num_classes, "epochs": cfg.epochs, "selected": "last",
        "transform_input": model.transform_input,
    })  # fmt: skip
    return final_path


def _finite(model: nn.Module) -> bool:
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


def _diverged(out: Path, cfg: TrainConfig, epoch: int, step: int, steps: int) -> CamreproError:
    """`step` -1: the loss stayed finite, the weights did not (the epoch's last update)."""
    what = "the loss" if step >= 0 else "the weights"
    where = f"epoch {epoch + 1}/{cfg.epochs}" + (f", step {step + 1}/{steps}" if step >= 0 else "")
    return CamreproError(
        f"training {out} diverged: {what} became NaN or infinite at {where} (lr {cfg.lr:g}). Nothing "
        "of this epoch was saved; "
        f"train again with a lower lr (e.g. lr: {cfg.lr / 10:g}) from scratch (--restart-if-changed, "
        f"or delete {out})."
    )


def train_seeds(cfg: TrainConfig, out_dir: str | os.PathLike, seeds: list[int] | None = None,
                **options: object) -> list[Path]:  # fmt: skip
    """`train` once per seed into `<out_dir>/s<seed>/` (camrepro.layout); without `seeds`, the
    config's own seed into `out_dir` itself. Returns the model files."""
    if seeds is None:
        return [train(cfg, out_dir, **options)]
    return [train(dataclasses.replace(cfg, seed=seed), seed_dir(out_dir, seed), **options) for seed in seeds]


def train_job(
    cfg: TrainConfig, out_dir: str | os.PathLike, seeds: list[int] | None, argv: list[str],
    gpus_per_job: int = 1, processes: int | None = None, **options: object,
) -> list[Path]:  # fmt: skip
    """`camrepro train`: claim the job's GPUs, then train every seed (`train_seeds`).

    With several processes (`processes`, default one per claimed GPU) this process is the launcher:
    it reruns the same command line (`argv`, the CLI's arguments, minus --processes) under torchrun,
    one DDP worker per device, hands them its GPU claim and exits with their status. A worker
    (LOCAL_RANK set) holds the launcher's claim and trains. Returns the model files written, on
    rank 0 only (empty in the other workers).
    """
    from camrepro import gpus
    from camrepro.models.io import claim_gpus

    if "LOCAL_RANK" in os.environ:  # a torchrun worker: hold the launcher's GPU claim too
        gpus.adopt_claim()
    else:  # the launcher
        uses_gpu = claim_gpus(cfg.device, gpus_per_job)
        processes = processes or (gpus_per_job if uses_gpu else 1)
        if processes > 1:
            worker_argv, skip = [], False
            for arg in argv:
                if skip or arg == "--processes" or arg.startswith("--processes="):
                    skip = arg == "--processes"
                    continue
                worker_argv.append(arg)
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", "camrepro", *worker_argv]  # fmt: skip
            raise SystemExit(gpus.run_sharing_claim(cmd))
    paths = train_seeds(cfg, out_dir, seeds, **options)
    return paths if os.environ.get("RANK", "0") == "0" else []
