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

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path

from camrepro.plan import (
    REPORT,
    REPORT_FIGURES,
    TABLES_DIR,
    WEIGHTS_OF,
    Plan,
    extraction_dir,
    metrics_path,
    model_paths,
    prepared,
    run_dir,
    weights_path,
)
from camrepro.protocol import resize_for
from camrepro.tables import TABLE_NAMES

# Job kinds in DAG order: the Snakemake rule of each, and the DVC stage-name prefix.
KINDS = {
    "synthetic_dataset": "data", "prepare_real_dataset": "data", "verify_dataset": "verify",
    "weights": "weights", "train": "train", "extract": "extract", "evaluate": "evaluate", "svm": "svm",
    "tables": "tables", "report": "report",
}  # fmt: skip

# What each kind of job runs: its entry module and the data files it reads. The package sources it
# depends on are that module's camrepro imports, followed transitively (`code_of`), so a change to
# one reruns exactly the jobs it can affect and a new import cannot be forgotten here.
ENTRY = {
    "synthetic_dataset": ("data/synthetic.py",),
    "prepare_real_dataset": ("data/prepare.py",),
    "verify_dataset": ("data/verify.py",),
    "weights": ("weights.py",),
    "train": ("train.py",),
    "extract": ("extract.py",),
    "evaluate": ("evaluate.py",),
    "svm": ("svm.py",),
    "tables": ("tables.py", "paper_values.yaml"),
    "report": ("report.py", "templates/replication.html.j2", "protocols.yaml", "paper_values.yaml"),
}
PACKAGE = Path(__file__).resolve().parent


def _imported_modules(source: Path) -> set[str]:
    """The camrepro modules one source file imports, anywhere in it (function-local imports too)."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "camrepro"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "camrepro":
            found.add(node.module)  # `from camrepro.x import y`: y may itself be a module
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _module_file(name: str) -> str | None:
    """`camrepro.a.b` -> "a/b.py" or "a/b/__init__.py" relative to the package; None if not a module."""
    parts = name.split(".")[1:]
    if not parts:
        return None
    for rel in (Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")):
        if (PACKAGE / rel).is_file():
            return rel.as_posix()
    return None


@functools.cache
def code_of(kind: str) -> tuple[str, ...]:
    """Package files (relative to src/camrepro) a job of `kind` runs or reads, sorted."""
    files = set(ENTRY[kind])
    todo = [f for f in ENTRY[kind] if f.endswith(".py")]
    while todo:
        current = Path(todo.pop())
        imported = {_module_file(m) for m in _imported_modules(PACKAGE / current)}
        # a module's packages run their __init__ first
        imported |= {(p / "__init__.py").as_posix() for p in current.parents if p != Path(".")}
        for rel in imported - {None} - files:
            files.add(rel)
            todo.append(rel)
    return tuple(sorted(files))


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
        return code_of(self.kind)

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


def _scale_arg(scale: float | dict) -> str:
    """A dataset's `scale` as `camrepro data synthetic --scale` takes it: 2, or train=2,test=0.5."""
    return ",".join(f"{k}={v}" for k, v in scale.items()) if isinstance(scale, dict) else str(scale)


def command(
    plan: Plan, kind: str, job_id: str, data_root: str = "data", params_refs: bool = False
) -> list[str]:
    """The `camrepro` command line of one job (both front ends run exactly this).

    With `params_refs` (dvc.yaml), training options are written as DVC `${...}` references to
    the job's entry in params.yaml, which DVC fills in before it runs the command: so
    `dvc exp run -S runs.<run>.train.epochs=3` trains with 3 epochs, not with the value the
    file was generated with. Resolved, the command is the one Snakemake runs.
    """
    def seeds(chosen: tuple[int, ...]) -> str:
        return ",".join(str(s) for s in chosen)

    def value(path: str, literal: object) -> str:
        if params_refs:
            return "${" + path + "}"
        if isinstance(literal, list):  # as DVC interpolates a list: a YAML flow sequence, unquoted
            return "[" + ", ".join(str(v) for v in literal) + "]"
        if isinstance(literal, bool):  # as DVC interpolates a boolean: YAML's true / false
            return str(literal).lower()
        return str(literal)

    if kind == "weights":
        w = plan.weights[job_id]
        out = weights_path(data_root, w.arch)
        if w.method in ("download", "package"):
            downloads = f"{data_root}/downloads"
            return ["camrepro", "weights", w.arch, "--out", out, "--downloads", downloads, "-q"]
        p = w.pretrain

        def option(key: str, default: object) -> str:
            return value(f"weights.{job_id}.pretrain.{key}", p[key]) if key in p else str(default)

        return ["camrepro", "pretrain", w.arch, "--dataset", prepared(data_root, p["dataset"]), "--out", out,
                "--width", option("width", 1.0), "--epochs", option("epochs", 10), "--crop", str(p["size"]),
                "--resize", str(resize_for(p["size"])), "--batch-size", option("batch_size", 32),
                "--lr", option("lr", 0.01),
                *(["--halve-stride", option("halve_stride", False)] if "halve_stride" in p else []),
                "-q"]  # fmt: skip
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
        return ["camrepro", "train", "--out", run_dir(r.id), "--seeds", seeds(r.seeds),
                "--restart-if-changed", *sets, "-q"]  # fmt: skip
    if kind == "extract":
        e = plan.extractions[job_id]
        run_seeds = plan.runs[e.run].seeds if e.run else ()  # none for a network used as it is
        return ["camrepro", "extract", *_model_args(plan, e.run, e.as_is, seeds(run_seeds), data_root),
                "--dataset", prepared(data_root, e.dataset), "--split", e.split, "--out",
                extraction_dir(e.id), "--size", str(e.size), *(["--nwc"] if e.nwc else []),
                *(["--saliency"] if e.saliency else []), "--transform", e.transform, "-q"]  # fmt: skip
    if kind == "evaluate":
        v = plan.evaluations[job_id]
        return ["camrepro", "evaluate", "--extracted", extraction_dir(v.extraction), "--dataset",
                prepared(data_root, v.dataset), "--out", metrics_path(v.id), "--empty-box", v.empty_box,
                *(["--exclude-blacklisted"] if v.blacklist else []),
                *[a for name in v.settings for a in ("--setting", name)]]  # fmt: skip
    if kind == "svm":
        j = plan.svms[job_id]
        datasets = [a for col, d in j.datasets.items() for a in ("--data", f"{col}={prepared(data_root, d)}")]
        model = _model_args(plan, j.run, _as_is(plan, j.run), seeds(j.seeds), data_root)
        return ["camrepro", "svm", j.kind, *model, *datasets, "--size", str(j.size), "--out",
                metrics_path(j.id), "-q"]  # fmt: skip
    raise ValueError(kind)


def _model_args(plan: Plan, run: str | None, as_is: str | None, seeds: str, data_root: str) -> list[str]:
    """The networks a job reads: a run's trained models, or (used as it is) the weights file itself."""
    if as_is:
        return ["--as-is", as_is, "--weights", weights_path(data_root, WEIGHTS_OF[as_is])]
    return ["--model", run_dir(run), "--seeds", seeds]


def _model_inputs(
    plan: Plan, run: str | None, as_is: str | None, data_root: str, seeds: tuple[int, ...] | None = None
) -> dict[str, tuple]:
    if as_is:
        return {"weights": (weights_path(data_root, WEIGHTS_OF[as_is]),)}
    return {"models": tuple(model_paths(plan, run, seeds))}


def _as_is(plan: Plan, run: str) -> str | None:
    """The registry model of a run used as it is (`Run.as_is`), else None."""
    r = plan.runs[run]
    return r.model if r.as_is else None


def jobs(plan: Plan, config: dict, config_file: str, params_refs: bool = False) -> dict[str, dict[str, Job]]:
    """kind -> id -> Job for every job of the config. `params_refs`: DVC's `${...}` options."""
    data = config.get("data_root", "data")
    out: dict[str, dict[str, Job]] = {kind: {} for kind in KINDS}

    def add(job: Job) -> None:
        out[job.kind][job.id] = job

    for name, spec in config["datasets"].items():
        if "synthetic" in spec:
            s = spec["synthetic"]
            scale = _scale_arg(s.get("scale", 1.0))
            cmd = ("camrepro", "data", "synthetic", "--preset", s["preset"], "--seed", str(s["seed"]),
                   "--scale", scale, "--out", prepared(data, name), "-q")  # fmt: skip
            add(Job("synthetic_dataset", name, cmd, {}, (prepared(data, name),), f"datasets.{name}"))
        else:
            cmd = ("camrepro", "data", "prepare", spec["source"], "--root", data, "--out",
                   prepared(data, name),
                   *(("--per-class", str(spec["per_class"])) if "per_class" in spec else ()))  # fmt: skip
            add(Job("prepare_real_dataset", name, cmd, {}, (prepared(data, name),), f"datasets.{name}"))
        cmd = ("camrepro", "data", "verify", prepared(data, name), "--out", verify_report(name), "-q")
        add(Job("verify_dataset", name, cmd, {"data": (prepared(data, name),)}, (verify_report(name),)))
    for arch, w in sorted(plan.weights.items()):
        if w.method == "file":
            continue  # the user's file is an input of the runs, never a job's output (never deleted)
        inputs = {"data": (prepared(data, w.pretrain["dataset"]),)} if w.method == "pretrain" else {}
        add(Job("weights", arch, tuple(command(plan, "weights", arch, data, params_refs)), inputs,
                (weights_path(data, arch),), f"weights.{arch}"))  # fmt: skip
    for run_id, r in sorted(plan.runs.items()):
        if r.as_is:
            continue  # used as it is: no training job
        inputs = {"data": (prepared(data, r.dataset),), "verified": (verify_report(r.dataset),)}
        if r.weights:
            inputs["weights"] = (weights_path(data, r.weights),)
        add(Job("train", run_id, tuple(command(plan, "train", run_id, data, params_refs)), inputs,
                tuple(model_paths(plan, run_id)), f"runs.{run_id}"))  # fmt: skip
    for ext_id, e in sorted(plan.extractions.items()):
        inputs = _model_inputs(plan, e.run, e.as_is, data) | {"data": (prepared(data, e.dataset),)}
        add(Job("extract", ext_id, tuple(command(plan, "extract", ext_id, data)), inputs,
                (extraction_dir(ext_id),), f"extractions.{ext_id}"))  # fmt: skip
    for ev_id, v in sorted(plan.evaluations.items()):
        inputs = {"cams": (extraction_dir(v.extraction),), "data": (prepared(data, v.dataset),)}
        add(Job("evaluate", ev_id, tuple(command(plan, "evaluate", ev_id, data)), inputs,
                (metrics_path(ev_id),), f"evaluations.{ev_id}", metrics=True))  # fmt: skip
    for job_id, j in sorted(plan.svms.items()):
        datasets = tuple(prepared(data, d) for d in j.datasets.values())
        inputs = _model_inputs(plan, j.run, _as_is(plan, j.run), data, j.seeds) | {"data": datasets}
        add(Job("svm", job_id, tuple(command(plan, "svm", job_id, data)), inputs, (metrics_path(job_id),),
                f"svms.{job_id}", metrics=True))  # fmt: skip
    if plan.runs or plan.extractions:  # a network used as it is has an extraction and no run
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
