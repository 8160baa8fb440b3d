"""The experiment registry: every job of the replication, derived from a config, defined once.

Both front ends read this: the Snakefile builds its rules' targets from `build_plan(config)`, and
`camrepro workflow dvc` writes dvc.yaml and params.yaml from the same plan (a test keeps the
committed files equal to what the plan generates). Job kinds:

* weights      data/weights/<arch>.pth            download (paper) or pretrain (embedded default)
* runs         results/models/<run>/model.pt      one training run: dataset x model x head x seed
* extractions  results/cams/<extraction>/         one forward pass over an evaluation split
* evaluations  results/metrics/<evaluation>.json  metrics at one box setting

Experiments (`EXPERIMENTS`) name the runs, extractions and evaluations each table needs; a config
selects experiments, maps dataset roles (imagenet, cub) to prepared datasets, and sets widths,
sizes, schedules and seeds. Ids contain only [a-z0-9.-] so they are safe in paths and shells.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from camrepro.errors import CamreproError


@dataclass(frozen=True)
class Weights:
    arch: str
    method: str  # download | pretrain
    pretrain: dict = field(default_factory=dict, hash=False)  # dataset, width, epochs, ... (pretrain)


@dataclass(frozen=True)
class Run:
    id: str
    dataset: str
    model: str
    pool: str
    theta_tap: float
    seed: int
    weights: str | None  # arch of the pretrained backbone
    train: dict = field(default_factory=dict, hash=False)  # TrainConfig options


@dataclass(frozen=True)
class Extraction:
    id: str
    run: str
    dataset: str
    split: str
    size: int
    nwc: bool
    saliency: bool


@dataclass(frozen=True)
class Evaluation:
    id: str
    extraction: str
    dataset: str
    experiment: str
    options: dict = field(default_factory=dict, hash=False)  # camrepro evaluate options


# Which backbone weights each model starts from.
WEIGHTS_OF = {
    "vgg16-gap": "vgg16", "googlenet-gap": "googlenet", "googlenet-gmp": "googlenet",
    "alexnet-gap": "alexnet", "alexnet*-gap": "alexnet", "googlenet": "googlenet", "vgg16": "vgg16",
    "alexnet": "alexnet", "resnet50-se": "resnet50", "mobilenet-v1": "mobilenet-v1",
    "googlenet-2conv": "googlenet",
}  # fmt: skip

CAM_THETA = {"standard": "max", "theta": 0.2, "strategy": "largest"}  # Zhou et al.: 20 % of the max
PAS_THETA = {"standard": "percentile", "theta": 0.35, "percentile": 90.0, "strategy": "largest"}  # Bae et al.
TAP_THETA = {"vgg16-gap": 0.1, "mobilenet-v1": 0.1, "resnet50-se": 0.0, "googlenet-2conv": 0.0}  # Bae et al.


@dataclass(frozen=True)
class Experiment:
    """A table's worth of jobs: (role, model, pool) runs, each evaluated at some settings."""

    name: str
    title: str
    role: str  # dataset role: imagenet | cub
    models: tuple[tuple[str, str], ...]  # (model, pool)
    settings: tuple[tuple[str, bool, dict], ...]  # (setting name, nwc, evaluate options)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "cam-imagenet", "CAM Tables 1-2: GAP/GMP networks on ImageNet", "imagenet",
            (("vgg16-gap", "gap"), ("googlenet-gap", "gap"), ("alexnet-gap", "gap"), ("alexnet*-gap", "gap"),
             ("googlenet-gmp", "gmp")),
            (("cam20", False, CAM_THETA),),
        ),
        Experiment(
            "rethinking-ablation-cub", "Rethinking CAM Table 3: TAP/NWC/PaS on CUB (VGG16)", "cub",
            (("vgg16-gap", "gap"), ("vgg16-gap", "tap")),
            (("base", False, CAM_THETA), ("nwc", True, CAM_THETA), ("pas", False, PAS_THETA),
             ("nwc-pas", True, PAS_THETA)),
        ),
        Experiment(
            "rethinking-ablation-imagenet", "Rethinking CAM Table 3: TAP/NWC/PaS on ImageNet (VGG16)",
            "imagenet",
            (("vgg16-gap", "gap"), ("vgg16-gap", "tap")),
            (("base", False, CAM_THETA), ("nwc", True, CAM_THETA), ("pas", False, PAS_THETA),
             ("nwc-pas", True, PAS_THETA)),
        ),
    ]
}  # fmt: skip


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower().replace("*", "-star")).strip("-")


@dataclass
class Plan:
    weights: dict[str, Weights]
    runs: dict[str, Run]
    extractions: dict[str, Extraction]
    evaluations: dict[str, Evaluation]

    def jobs(self, kind: str) -> dict:
        """The jobs of one kind (weights, runs, extractions, evaluations) by id."""
        return {"weights": self.weights, "runs": self.runs, "extractions": self.extractions,
                "evaluations": self.evaluations}[kind]  # fmt: skip

    def job_params(self, kind: str, job_id: str) -> dict:
        """Everything one job's command depends on (its params.yaml entry)."""
        return asdict(self.jobs(kind)[job_id])

    def params(self) -> dict:
        """Everything every job's command depends on, by kind and id (DVC's params.yaml)."""
        kinds = ("weights", "runs", "extractions", "evaluations")
        return {kind: {k: self.job_params(kind, k) for k in sorted(self.jobs(kind))} for kind in kinds}


def _role_dataset(config: dict, role: str) -> str:
    roles = config.get("roles", {})
    name = roles.get(role)
    if name is None:
        raise CamreproError(
            f"config: no dataset for role {role!r}; set roles.{role} to one of {list(config['datasets'])}."
        )
    if name not in config["datasets"]:
        raise CamreproError(
            f"config: roles.{role} = {name!r} is not in datasets ({', '.join(config['datasets'])})."
        )
    return name


def build_plan(config: dict) -> Plan:
    """All jobs of the experiments the config selects."""
    models_cfg = config.get("models", {})
    width = float(models_cfg.get("width", 1.0))
    size = int(models_cfg.get("size", 224))
    seeds = [int(s) for s in config.get("seeds", [0])]
    pretrain_cfg = models_cfg.get("pretrain")
    # Without roles a config only prepares data; with roles it runs every experiment unless it
    # lists some.
    selected = config.get("experiments", list(EXPERIMENTS) if config.get("roles") else [])
    unknown = [e for e in selected if e not in EXPERIMENTS]
    if unknown:
        raise CamreproError(f"config: unknown experiment(s) {unknown}; known: {', '.join(EXPERIMENTS)}.")
    plan = Plan({}, {}, {}, {})
    for name in selected:
        exp = EXPERIMENTS[name]
        dataset = _role_dataset(config, exp.role)
        split = _evaluation_split(config, dataset)
        schedule = dict(config.get("training", {}).get(exp.role, {}))
        for model, pool in exp.models:
            arch = WEIGHTS_OF[model]
            if arch not in plan.weights:
                if pretrain_cfg:
                    pre = dict(pretrain_cfg) | {"dataset": _role_dataset(config, "imagenet"), "width": width,
                                                "size": size}  # fmt: skip
                    plan.weights[arch] = Weights(arch, "pretrain", pre)
                else:
                    plan.weights[arch] = Weights(arch, "download")
            theta_tap = TAP_THETA.get(model, 0.0) if pool == "tap" else 0.0
            for seed in seeds:
                run_id = slug(f"{dataset}-{model}-{pool}-s{seed}")
                train = {"epochs": 10, "batch_size": 32, "lr": 0.01} | schedule
                train |= {"width": width, "crop": size, "resize": round(size * 8 / 7), "seed": seed}
                plan.runs[run_id] = Run(run_id, dataset, model, pool, theta_tap, seed, arch, train)
                for setting, nwc, options in exp.settings:
                    ext_id = slug(f"{run_id}-{split}{'-nwc' if nwc else ''}")
                    plan.extractions[ext_id] = Extraction(ext_id, run_id, dataset, split, size, nwc, False)
                    ev_id = slug(f"{name}-{run_id}-{setting}")
                    plan.evaluations[ev_id] = Evaluation(ev_id, ext_id, dataset, name, dict(options))
    return plan


def _evaluation_split(config: dict, dataset: str) -> str:
    """`val` for ImageNet (its test labels are not public), `test` for CUB and the synthetic sets."""
    return "val" if config["datasets"][dataset].get("source") == "imagenet" else "test"


# The package sources each kind of job runs: declared as inputs (Snakemake) and deps (DVC), so a
# code change reruns exactly the jobs it can affect.
CODE = {
    "weights": ["weights.py", "train.py", "models", "data/reader.py", "data/download.py"],
    "train": ["train.py", "models", "data/reader.py"],
    "extract": ["extract.py", "shards.py", "cam.py", "models", "data/reader.py"],
    "evaluate": [
        "evaluate.py",
        "shards.py",
        "boxes.py",
        "evaluator.py",
        "metrics.py",
        "cam.py",
        "scoremaps.py",
    ],
    "summary": ["summary.py"],
}


def prepared(data_root: str, dataset: str) -> str:
    return f"{data_root}/prepared/{dataset}"


def weights_path(data_root: str, arch: str) -> str:
    return f"{data_root}/weights/{arch}.pth"


def run_dir(run: str) -> str:
    return f"results/models/{run}"


def extraction_dir(ext: str) -> str:
    return f"results/cams/{ext}"


def metrics_path(ev: str) -> str:
    return f"results/metrics/{ev}.json"


def command(plan: Plan, kind: str, job_id: str, data_root: str = "data") -> list[str]:
    """The `camrepro` command line of one job (both front ends run exactly this)."""
    if kind == "weights":
        w = plan.weights[job_id]
        out = weights_path(data_root, w.arch)
        if w.method == "download":
            return [
                "camrepro",
                "weights",
                w.arch,
                "--out",
                out,
                "--downloads",
                f"{data_root}/downloads",
                "-q",
            ]
        p = w.pretrain
        return ["camrepro", "pretrain", w.arch, "--dataset", prepared(data_root, p["dataset"]), "--out", out,
                "--width", str(p["width"]), "--epochs", str(p.get("epochs", 10)), "--crop", str(p["size"]),
                "--resize", str(round(p["size"] * 8 / 7)), "--batch-size", str(p.get("batch_size", 32)),
                "--lr", str(p.get("lr", 0.01)), "-q"]  # fmt: skip
    if kind == "train":
        r = plan.runs[job_id]
        options = {"model": r.model, "dataset": prepared(data_root, r.dataset), "pool": r.pool,
                   "theta_tap": r.theta_tap} | r.train  # fmt: skip
        if r.weights:
            options["pretrained"] = weights_path(data_root, r.weights)
        sets = [arg for k, v in options.items() for arg in ("--set", f"{k}={v}")]
        return ["camrepro", "train", "--out", run_dir(r.id), *sets, "-q"]
    if kind == "extract":
        e = plan.extractions[job_id]
        return ["camrepro", "extract", "--model", f"{run_dir(e.run)}/model.pt", "--dataset",
                prepared(data_root, e.dataset), "--split", e.split, "--out", extraction_dir(e.id), "--size",
                str(e.size), *(["--nwc"] if e.nwc else []), *(["--saliency"] if e.saliency else []),
                "-q"]  # fmt: skip
    if kind == "evaluate":
        v = plan.evaluations[job_id]
        opts = [arg for k, val in v.options.items() for arg in (f"--{k}", str(val))]
        return ["camrepro", "evaluate", "--extracted", extraction_dir(v.extraction), "--dataset",
                prepared(data_root, v.dataset), "--out", metrics_path(v.id), *opts]  # fmt: skip
    raise ValueError(kind)


def shell(args: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in args)
