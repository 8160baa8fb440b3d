"""The one job generator: every job of the workflow, with its command (built here, `command`),
inputs, outputs and params.

Both front ends consume it: the Snakemake rules (`workflow/rules/*.smk`) take each job's inputs,
outputs and command from here, and `camrepro.dvcgen` writes one dvc.yaml stage per job. Nothing
about a job (a path, a command, the sources it runs) is written anywhere else, so the two cannot
drift (a test compares Snakemake's dry run and dvc.yaml with these jobs).

Paths are relative to the working folder, except `code`: package sources relative to
`src/camrepro`, which each front end roots where it finds the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from camrepro.plan import (
    REPORT,
    REPORT_FIGURES,
    TABLES_DIR,
    Plan,
    extraction_dir,
    metrics_path,
    model_paths,
    prepared,
    run_dir,
    weights_path,
)
from camrepro.tables import TABLE_NAMES

# Job kinds in DAG order: the Snakemake rule of each, and the DVC stage-name prefix.
KINDS = {
    "synthetic_dataset": "data", "prepare_real_dataset": "data", "verify_dataset": "verify",
    "weights": "weights", "train": "train", "extract": "extract", "evaluate": "evaluate", "svm": "svm",
    "tables": "tables", "report": "report",
}  # fmt: skip

# The package sources each kind of job runs: a change to one reruns exactly the jobs it can affect.
CODE = {
    "synthetic_dataset": ("data/synthetic.py", "data/metadata.py"),
    "prepare_real_dataset": ("data/prepare.py", "data/sources.py", "data/download.py", "data/metadata.py"),
    "verify_dataset": ("data/verify.py", "data/reader.py", "data/metadata.py"),
    "weights": ("weights.py", "train.py", "models", "layout.py", "data/reader.py", "data/download.py"),
    "train": ("train.py", "models", "layout.py", "data/reader.py"),
    "extract": ("extract.py", "shards.py", "cam.py", "models", "train.py", "layout.py", "data/reader.py"),
    "evaluate": ("evaluate.py", "shards.py", "boxes.py", "evaluator.py", "metrics.py", "cam.py",
                 "scoremaps.py", "protocol.py", "layout.py"),
    "svm": ("svm.py", "cam.py", "boxes.py", "models", "train.py", "layout.py", "data/reader.py",
            "protocol.py"),
    "tables": ("tables.py", "paper_values.yaml", "protocol.py"),
    "report": ("report.py", "figures.py", "cost.py", "templates/replication.html.j2"),
}  # fmt: skip


@dataclass(frozen=True)
class Job:
    kind: str  # a key of KINDS (the Snakemake rule)
    id: str  # unique within its kind
    command: tuple[str, ...]
    inputs: dict[str, tuple[str, ...]] = field(hash=False)  # named groups of input paths
    outputs: tuple[str, ...]
    params: str | None = None  # its entry in params.yaml (DVC)
    metrics: bool = False  # its outputs are DVC metrics

    @property
    def code(self) -> tuple[str, ...]:
        return CODE[self.kind]

    @property
    def stage(self) -> str:
        """The DVC stage name."""
        prefix = KINDS[self.kind]
        return prefix if self.kind in ("tables", "report") else f"{prefix}-{self.id}"


def verify_report(dataset: str) -> str:
    return f"results/data/{dataset}.verify.json"


def table_outputs() -> tuple[str, ...]:
    return (*(f"{TABLES_DIR}/{t}.csv" for t in TABLE_NAMES), f"{TABLES_DIR}/metrics.csv",
            f"{TABLES_DIR}/claims.json")  # fmt: skip


def command(
    plan: Plan, kind: str, job_id: str, data_root: str = "data", params_refs: bool = False
) -> list[str]:
    """The `camrepro` command line of one job (both front ends run exactly this).

    With `params_refs` (dvc.yaml), training options are written as DVC `${...}` references to
    the job's entry in params.yaml, which DVC fills in before it runs the command: so
    `dvc exp run -S runs.<run>.train.epochs=3` trains with 3 epochs, not with the value the
    file was generated with. Resolved, the command is the one Snakemake runs.
    """
    seeds = ",".join(str(s) for s in plan.seeds)

    def value(path: str, literal: object) -> str:
        return "${" + path + "}" if params_refs else str(literal)

    if kind == "weights":
        w = plan.weights[job_id]
        out = weights_path(data_root, w.arch)
        if w.method == "download":
            downloads = f"{data_root}/downloads"
            return ["camrepro", "weights", w.arch, "--out", out, "--downloads", downloads, "-q"]
        p = w.pretrain

        def option(key: str, default: object) -> str:
            return value(f"weights.{job_id}.pretrain.{key}", p[key]) if key in p else str(default)

        return ["camrepro", "pretrain", w.arch, "--dataset", prepared(data_root, p["dataset"]), "--out", out,
                "--width", option("width", 1.0), "--epochs", option("epochs", 10), "--crop", str(p["size"]),
                "--resize", str(round(p["size"] * 8 / 7)), "--batch-size", option("batch_size", 32),
                "--lr", option("lr", 0.01), "-q"]  # fmt: skip
    if kind == "train":
        r = plan.runs[job_id]
        ref = f"runs.{job_id}"
        options = {"model": value(f"{ref}.model", r.model), "dataset": prepared(data_root, r.dataset)}
        if r.pool != "fc":
            options |= {
                "pool": value(f"{ref}.pool", r.pool),
                "theta_tap": value(f"{ref}.theta_tap", r.theta_tap),
            }
        options |= {k: value(f"{ref}.train.{k}", v) for k, v in r.train.items()}
        if r.weights:
            options["pretrained"] = weights_path(data_root, r.weights)
        sets = [arg for k, v in options.items() for arg in ("--set", f"{k}={v}")]
        return ["camrepro", "train", "--out", run_dir(r.id), "--seeds", seeds, "--restart-if-changed", *sets,
                "-q"]  # fmt: skip
    if kind == "extract":
        e = plan.extractions[job_id]
        return ["camrepro", "extract", "--model", run_dir(e.run), "--seeds", seeds, "--dataset",
                prepared(data_root, e.dataset), "--split", e.split, "--out", extraction_dir(e.id), "--size",
                str(e.size), *(["--nwc"] if e.nwc else []), *(["--saliency"] if e.saliency else []),
                "-q"]  # fmt: skip
    if kind == "evaluate":
        v = plan.evaluations[job_id]
        return ["camrepro", "evaluate", "--extracted", extraction_dir(v.extraction), "--dataset",
                prepared(data_root, v.dataset), "--out", metrics_path(v.id),
                *[a for name in v.settings for a in ("--setting", name)]]  # fmt: skip
    if kind == "svm":
        j = plan.svms[job_id]
        datasets = [a for col, d in j.datasets.items() for a in ("--data", f"{col}={prepared(data_root, d)}")]
        return ["camrepro", "svm", j.kind, "--model", run_dir(j.run), "--seeds", seeds, *datasets, "--size",
                str(j.size), "--out", metrics_path(j.id), "-q"]  # fmt: skip
    raise ValueError(kind)


def jobs(plan: Plan, config: dict, config_file: str, params_refs: bool = False) -> dict[str, dict[str, Job]]:
    """kind -> id -> Job for every job of the config. `params_refs`: DVC's `${...}` options."""
    data = config.get("data_root", "data")
    out: dict[str, dict[str, Job]] = {kind: {} for kind in KINDS}

    def add(job: Job) -> None:
        out[job.kind][job.id] = job

    for name, spec in config["datasets"].items():
        if "synthetic" in spec:
            s = spec["synthetic"]
            cmd = ("camrepro", "data", "synthetic", "--preset", s["preset"], "--seed", str(s["seed"]),
                   "--scale", str(s.get("scale", 1.0)), "--out", prepared(data, name), "-q")  # fmt: skip
            add(Job("synthetic_dataset", name, cmd, {}, (prepared(data, name),), f"datasets.{name}"))
        else:
            cmd = ("camrepro", "data", "prepare", spec["source"], "--root", data, "--out",
                   prepared(data, name),
                   *(("--per-class", str(spec["per_class"])) if "per_class" in spec else ()))  # fmt: skip
            add(Job("prepare_real_dataset", name, cmd, {}, (prepared(data, name),), f"datasets.{name}"))
        cmd = ("camrepro", "data", "verify", prepared(data, name), "--out", verify_report(name), "-q")
        add(Job("verify_dataset", name, cmd, {"data": (prepared(data, name),)}, (verify_report(name),)))
    for arch, w in sorted(plan.weights.items()):
        inputs = {"data": (prepared(data, w.pretrain["dataset"]),)} if w.method == "pretrain" else {}
        add(Job("weights", arch, tuple(command(plan, "weights", arch, data, params_refs)), inputs,
                (weights_path(data, arch),), f"weights.{arch}"))  # fmt: skip
    for run_id, r in sorted(plan.runs.items()):
        inputs = {"data": (prepared(data, r.dataset),), "verified": (verify_report(r.dataset),)}
        if r.weights:
            inputs["weights"] = (weights_path(data, r.weights),)
        add(Job("train", run_id, tuple(command(plan, "train", run_id, data, params_refs)), inputs,
                tuple(model_paths(plan, run_id)), f"runs.{run_id}"))  # fmt: skip
    for ext_id, e in sorted(plan.extractions.items()):
        inputs = {"models": tuple(model_paths(plan, e.run)), "data": (prepared(data, e.dataset),)}
        add(Job("extract", ext_id, tuple(command(plan, "extract", ext_id, data)), inputs,
                (extraction_dir(ext_id),), f"extractions.{ext_id}"))  # fmt: skip
    for ev_id, v in sorted(plan.evaluations.items()):
        inputs = {"cams": (extraction_dir(v.extraction),), "data": (prepared(data, v.dataset),)}
        add(Job("evaluate", ev_id, tuple(command(plan, "evaluate", ev_id, data)), inputs,
                (metrics_path(ev_id),), f"evaluations.{ev_id}", metrics=True))  # fmt: skip
    for job_id, j in sorted(plan.svms.items()):
        inputs = {"models": tuple(model_paths(plan, j.run)),
                  "data": tuple(prepared(data, d) for d in j.datasets.values())}  # fmt: skip
        add(Job("svm", job_id, tuple(command(plan, "svm", job_id, data)), inputs, (metrics_path(job_id),),
                f"svms.{job_id}", metrics=True))  # fmt: skip
    if plan.runs:
        metrics = tuple(metrics_path(j) for j in sorted([*plan.evaluations, *plan.svms]))
        tables = table_outputs()
        add(Job("tables", "tables", ("camrepro", "tables", "--config", config_file, "--out-dir", TABLES_DIR),
                {"metrics": metrics, "config": (config_file,)}, tables))  # fmt: skip
        cmd = ("camrepro", "report", "--config", config_file, "--out", REPORT, "--figures-dir",
               REPORT_FIGURES)  # fmt: skip
        inputs = {"tables": tables[:-2], "claims": (tables[-1],), "metrics": metrics,
                  "cams": tuple(extraction_dir(e) for e in sorted(plan.extractions)),
                  "config": (config_file,)}
        add(Job("report", "report", cmd, inputs, (REPORT, REPORT_FIGURES)))  # fmt: skip
    return out
