"""The experiment registry: every job of the replication, derived from a config, defined once.

`camrepro.jobs` turns a plan into every job (command, inputs, outputs, params) for both front ends:
the Snakemake rules and `camrepro workflow dvc` (dvc.yaml, params.yaml). Tables, claims, report
and figures find runs through the plan's lookups (`Plan.run(role, model, pool)`, ...). Job kinds:

* weights      data/weights/<arch>.pth                  download (paper) or pretrain (embedded default)
* runs         results/models/<run>/s<seed>/model.pt    dataset x model x head, one model per seed
* extractions  results/cams/<extraction>/s<seed>/       one forward pass over the evaluation split (of a
                                                         run's models, or of a network used as it is: s0)
* evaluations  results/metrics/<evaluation>.json        every box setting the tables need, per seed
* svms         results/metrics/<svm>.json               linear SVMs on fixed features (CAM Tables 4-5)
* tables       results/tables/*.csv, claims.json        paper vs reproduced (camrepro.tables)
* report       reports/replication.html                 (camrepro.report)

A job covers all seeds of its run: on two CPU cores a process start (importing torch) costs more
than a demo-sized training, so one process per seed would spend most of the demo starting up.

Experiments (`EXPERIMENTS`, `SVM_EXPERIMENTS`) name the runs and box settings each table needs;
`AS_IS_EXPERIMENTS` a network used with its ImageNet weights as they are (extract and evaluate only);
a config selects experiments, maps dataset roles (imagenet, cub, transfer) to prepared datasets,
and sets widths, sizes, schedules and seeds. Ids contain only [a-z0-9.-] so they are safe in
paths and shells.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace

from camrepro.archs import BATCHNORM_FREE
from camrepro.errors import CamreproError
from camrepro.layout import model_file
from camrepro.protocol import CAM_THRESHOLD, PAS_PERCENTILE, PAS_THRESHOLD, TAP_THETA, resize_for


@dataclass(frozen=True)
class Weights:
    arch: str
    # download | pretrain | file (the user's own data/weights/<arch>.pth) | package (an installed package's)
    method: str
    pretrain: dict = field(default_factory=dict, hash=False)  # dataset, width, epochs, ... (pretrain)


@dataclass(frozen=True)
class Run:
    """One (dataset, model, head) trained once per seed, all seeds in one job (one process start)."""

    id: str
    dataset: str
    model: str
    pool: str
    theta_tap: float
    seeds: tuple[int, ...]
    weights: str | None  # arch of the pretrained backbone
    train: dict = field(default_factory=dict, hash=False)  # TrainConfig options
    # used as it is: the ImageNet network with its own head from its weights file (AS_IS), one
    # network (seed 0), no training job; its extraction and SVM jobs read the weights file
    as_is: bool = False


@dataclass(frozen=True)
class Extraction:
    """One forward pass of each seed's model over the evaluation split, or (`as_is`) of a registry
    network used as it is with its ImageNet weights: no training job, one network (seed 0). `run`:
    None for an AS_IS_EXPERIMENTS network, which belongs to no table's run."""

    id: str
    run: str | None
    dataset: str
    split: str
    size: int
    nwc: bool  # also store the CAMs with negative weights clamped (same forward pass)
    saliency: bool  # also store Backprop saliency maps
    transform: str = "warp"  # test-time transform (camrepro.testtime): each paper's own
    # the registry model used as it is (its weights: WEIGHTS_OF): a run's with `Run.as_is`, or
    # an AS_IS_EXPERIMENTS network's (`run` None)
    as_is: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """Every box setting the tables need from one extraction, for each seed."""

    id: str
    extraction: str
    dataset: str
    settings: dict = field(default_factory=dict, hash=False)  # name -> camrepro evaluate options
    empty_box: str = "zero"  # box when nothing is found: (0,0,0,0) (CAM, wsolevaluation) | full (Rethinking)
    blacklist: bool = False  # leave the split's blacklisted images out of localization (`val_blacklist`)


@dataclass(frozen=True)
class SVMJob:
    """Linear SVMs on the fixed features of one run's networks (CAM Tables 4 and 5)."""

    id: str
    experiment: str  # a key of SVM_EXPERIMENTS
    kind: str  # cub (Table 4 and the CUB localization figure) | transfer (Table 5)
    run: str
    datasets: dict = field(default_factory=dict, hash=False)  # column -> prepared dataset
    size: int = 224
    seeds: tuple[int, ...] = (0,)  # the run's seeds this experiment reads (seeds_by_experiment)


# Which backbone weights each model starts from.
WEIGHTS_OF = {
    "vgg16-gap": "vgg16", "vgg16-cam": "vgg16", "googlenet-gap": "googlenet", "googlenet-gmp": "googlenet",
    "alexnet-gap": "alexnet", "alexnet*-gap": "alexnet", "googlenet": "googlenet", "vgg16": "vgg16",
    "alexnet": "alexnet", "resnet50-se": "se-resnet50", "mobilenet-v1": "mobilenet-v1",
    "inception-v3-spg": "inception-v3", "efficientnet-lite0": "efficientnet-lite0",
}  # fmt: skip
PACKAGED_WEIGHTS = ("efficientnet-lite0",)  # from an installed package (camrepro.weights.PACKAGED)

# The CAM paper's original networks, evaluated as the ImageNet classifiers they are, not fine-tuned:
# Table 1's GoogLeNet, VGGnet, AlexNet rows (cam_zhou_2016.txt Sec. 3.1: "the original ... networks")
# and Table 5's fixed features of GoogLeNet and AlexNet. At paper scale: torchvision's checkpoint with
# its 1000-way head; in the embedded default: the network pretrained on the ImageNet stand-in, with
# the head that pretraining trained (camrepro.weights.pretrain; for VGG16/AlexNet a GAP head:
# PRETRAIN_MODEL). Loading: camrepro.models.io.load_as_is.
AS_IS = ("googlenet", "vgg16", "alexnet")

# Box settings, by name: `camrepro evaluate` options. `source` picks the maps: cam, cam_nwc (negative
# weights clamped, Bae et al.) or saliency (Backprop, Simonyan et al., the CAM paper's baseline).
CAM20 = {"source": "cam", "standard": "max", "theta": CAM_THRESHOLD, "strategy": "largest"}  # Zhou et al.
PAS = {"standard": "percentile", "theta": PAS_THRESHOLD, "percentile": PAS_PERCENTILE, "strategy": "largest"}
# The CAM paper's released box generator (camrepro.boxes.dt_box): what its ILSVRC numbers came from.
CAM_CODE = {"source": "cam", "generator": "dt_box"}
SETTINGS = {
    "cam20": CAM20,
    "heuristic": CAM20 | {"heuristic": True},  # CAM Table 3: tight/loose boxes of the top-3 classes
    "backprop": CAM20 | {"source": "saliency"},
    "cam-code": CAM_CODE,  # Table 2 as released: box 1 of each top-5 class
    "heuristic-code": CAM_CODE | {"heuristic": True},  # Table 3 as released: the five-box combination
    "backprop-code": CAM_CODE | {"source": "saliency"},
    "nwc": CAM20 | {"source": "cam_nwc"},
    "pas": {"source": "cam"} | PAS,
    "nwc-pas": {"source": "cam_nwc"} | PAS,
}


@dataclass(frozen=True)
class Experiment:
    """A table's worth of runs: (role, model, pool) trained per seed, evaluated at some settings."""

    name: str
    title: str
    role: str  # dataset role: imagenet | cub
    entries: tuple[tuple[str, str, tuple[str, ...]], ...]  # (model, pool, settings)
    transform: str = "centercrop"  # the paper's test-time transform (camrepro.testtime)
    empty_box: str = "full"  # the paper's box when nothing is found (camrepro.evaluate)
    # whether the paper's localization leaves out the ILSVRC devkit's 1,762 blacklisted val images:
    # the CAM paper's released evaluation does (zhoubolei/CAM ILSVRC_evaluate_bbox.m:142-152 ->
    # evaluation/simpleEvaluation.m:7, :102-143; its text is silent); Rethinking CAM scores all
    # 50,000 (its text, Sec. 5.1: "the numbers of images in ... validation sets are ... 50,000";
    # its code reads the whole val.txt, src/core/datasets.py:142-145)
    blacklist: bool = False


ABLATION_SETTINGS = ("cam20", "nwc", "pas", "nwc-pas")
_CAM, _BACKPROP = ("cam20", "cam-code"), ("backprop", "backprop-code")  # text's and released boxes
_BACKBONES = ("vgg16-gap", "resnet50-se", "mobilenet-v1", "inception-v3-spg")
EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "cam-imagenet", "CAM Tables 1-3: GAP/GMP networks, the originals and Backprop on ImageNet",
            "imagenet",
            (("vgg16-cam", "gap", _CAM), ("googlenet-gap", "gap", (*_CAM, "heuristic", "heuristic-code")),
             ("alexnet-gap", "gap", _CAM), ("alexnet*-gap", "gap", _CAM),
             ("googlenet-gmp", "gmp", _CAM), ("googlenet", "gap", (*_CAM, *_BACKPROP)),
             ("vgg16", "fc", _BACKPROP), ("alexnet", "fc", _BACKPROP)),
            "tencrop", "zero", True,
        ),
        *(
            Experiment(
                f"rethinking-ablation-{role}", f"Rethinking CAM Table 3: TAP/NWC/PaS with VGG16 ({role})",
                role,
                (("vgg16-gap", "gap", ABLATION_SETTINGS), ("vgg16-gap", "tap", ABLATION_SETTINGS)),
            )
            for role in ("cub", "imagenet")
        ),
        *(
            Experiment(
                f"rethinking-backbones-{role}", f"Rethinking CAM Table 2: four backbones ({role})", role,
                tuple(e for m in _BACKBONES for e in ((m, "gap", ("cam20",)), (m, "tap", ("nwc-pas",)))),
            )
            for role in ("cub", "imagenet")
        ),
    ]
}  # fmt: skip

@dataclass(frozen=True)
class AsIsExperiment:
    """A network used as it is with its ImageNet weights (no training) on a dataset labelled in
    ImageNet's classes, evaluated at some box settings."""

    name: str
    title: str
    role: str
    model: str
    size: int  # the network's own input size
    settings: tuple[str, ...]


# Beside the papers: the one real ImageNet network this environment has offline, on real photos
# (camrepro.models.efficientnet, camrepro.data.photos). 224: Lite0's resolution (tensorflow/tpu
# efficientnet_lite_builder.py, efficientnet_lite_params: 'efficientnet-lite0': (1.0, 1.0, 224, 0.2)).
AS_IS_EXPERIMENTS = {
    "real-photos": AsIsExperiment("real-photos", "A real ImageNet network on real photos", "photos",
                                  "efficientnet-lite0", 224, ABLATION_SETTINGS),
}  # fmt: skip

# Linear-SVM experiments on fixed ImageNet-trained features (no fine-tuning, as in the CAM paper):
# name -> (kind, model whose imagenet run gives the features). Table 5's rows: gap of GoogLeNet-GAP,
# the average pool of GoogLeNet, fc7 of AlexNet.
SVM_EXPERIMENTS = {
    "cam-cub-svm": ("cub", "googlenet-gap"),
    "cam-transfer": ("transfer", "googlenet-gap"),
    "cam-transfer-googlenet": ("transfer", "googlenet"),
    "cam-transfer-alexnet": ("transfer", "alexnet"),
}
POOL_OF = {"googlenet-gap": "gap", "googlenet": "gap", "alexnet": "fc"}


def experiment_names() -> list[str]:
    """Every experiment a config may select, in the registry's order."""
    return [*EXPERIMENTS, *SVM_EXPERIMENTS, *AS_IS_EXPERIMENTS]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower().replace("*", "-star")).strip("-")


def run_id(dataset: str, model: str, pool: str) -> str:
    """The id of a run: the one place it is formed."""
    return slug(f"{dataset}-{model}-{pool}")


@dataclass
class Plan:
    weights: dict[str, Weights]
    runs: dict[str, Run]
    extractions: dict[str, Extraction]
    evaluations: dict[str, Evaluation]
    svms: dict[str, SVMJob] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    roles: dict[str, str] = field(default_factory=dict)  # imagenet/cub -> dataset
    seeds_by_experiment: dict[str, tuple[int, ...]] = field(default_factory=dict)  # the fewer-seed ones
    seeds_by_model: dict[str, tuple[int, ...]] = field(default_factory=dict)  # and the fewer-seed models

    # Lookups the tables, claims, report and figures use instead of rebuilding ids or scanning.
    def run(self, role: str, model: str, pool: str) -> Run | None:
        """The run of (role, model, head), or None when the config does not train it."""
        dataset = self.roles.get(role)
        return self.runs.get(run_id(dataset, model, pool)) if dataset else None

    def extraction_of(self, run: str, transform: str | None = None) -> Extraction | None:
        """The run's extraction (with that test-time transform, when given; a run evaluated by both
        papers has one per paper's transform)."""
        return next((e for e in self.extractions.values()
                     if e.run == run and transform in (None, e.transform)), None)  # fmt: skip

    def evaluation_of(self, run: str, transform: str | None = None) -> Evaluation | None:
        ext = self.extraction_of(run, transform)
        return self.evaluations.get(ext.id) if ext else None

    def as_is(self, experiment: str) -> Extraction | None:
        """The extraction of an AS_IS_EXPERIMENTS experiment, or None when the config does not run it."""
        exp = AS_IS_EXPERIMENTS[experiment]
        dataset = self.roles.get(exp.role)
        return next((e for e in self.extractions.values() if e.as_is == exp.model and e.dataset == dataset),
                    None)  # fmt: skip

    def svm_of(self, experiment: str) -> SVMJob | None:
        return next((j for j in self.svms.values() if j.experiment == experiment), None)

    KINDS = ("weights", "runs", "extractions", "evaluations", "svms")

    def jobs(self, kind: str) -> dict:
        """The jobs of one kind (weights, runs, extractions, evaluations, svms) by id."""
        return getattr(self, kind)

    def job_params(self, kind: str, job_id: str) -> dict:
        """Everything one job's command depends on (its params.yaml entry)."""
        return asdict(self.jobs(kind)[job_id])

    def params(self) -> dict:
        """Everything every job's command depends on, by kind and id (DVC's params.yaml)."""
        return {kind: {k: self.job_params(kind, k) for k in sorted(self.jobs(kind))} for kind in self.KINDS}


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
    size_by_arch = {str(arch): int(v) for arch, v in models_cfg.get("size_by_arch", {}).items()}

    def size_of(arch: str | None) -> int:
        """Every job of an architecture's networks, pretraining to SVM features, at one input size."""
        return size_by_arch.get(arch or "", size)

    halve_stride = bool(models_cfg.get("halve_stride", False))
    seeds = tuple(int(s) for s in config.get("seeds", [0]))
    pretrain_cfg = models_cfg.get("pretrain")
    sources_cfg = dict(models_cfg.get("weights", {}))
    # Without roles a config only prepares data; with roles it runs every experiment unless it
    # lists some.
    known = experiment_names()
    selected = config.get("experiments", known if config.get("roles") else [])
    unknown = [e for e in selected if e not in known]
    if unknown:
        raise CamreproError(f"config: unknown experiment(s) {unknown}; known: {', '.join(known)}.")
    roles = {r: d for r, d in config.get("roles", {}).items() if isinstance(d, str)}
    by_experiment = _fewer_seeds(config, seeds, "seeds_by_experiment", known, "experiment")
    fewer_seeds = {e: s for e, s in by_experiment.items() if e in selected}
    by_model = _fewer_seeds(config, seeds, "seeds_by_model", sorted(WEIGHTS_OF), "model")
    plan = Plan({}, {}, {}, {}, {}, seeds, roles, fewer_seeds, by_model)
    seeds_of = plan.seeds_by_experiment
    settings_of: dict[tuple[str, str, str], set[str]] = {}  # (run, transform, empty box) -> settings

    def add_run(role: str, model: str, pool: str, run_seeds: tuple[int, ...]) -> Run:
        """The run, added or, when another experiment added it already, trained on the union of the
        seeds both read."""
        dataset = _role_dataset(config, role)
        run_seeds = plan.seeds_by_model.get(model, run_seeds)  # every run of the model: no union
        arch = WEIGHTS_OF[model]
        if arch not in plan.weights:
            # per architecture (models.weights); else pretrain all when models.pretrain is set
            method = sources_cfg.get(arch, "pretrain" if pretrain_cfg else "download")
            if method == "pretrain":
                stand_in = _role_dataset(config, "imagenet")
                pre = dict(pretrain_cfg or {}) | {"dataset": stand_in, "width": width, "size": size_of(arch)}
                plan.weights[arch] = Weights(arch, "pretrain", pre)
            else:
                plan.weights[arch] = Weights(arch, method)
        rid = run_id(dataset, model, pool)
        if rid not in plan.runs:
            schedule = dict(config.get("training", {}).get(role, {}))
            recipe = {k: v for k, v in config.get("recipes", {}).get(role, {}).get(model, {}).items()
                      if k != "source"}  # fmt: skip
            train = {"epochs": 10, "batch_size": 32, "lr": 0.01} | schedule | recipe
            train |= {"width": width, "crop": size_of(arch), "resize": resize_for(size_of(arch))}
            if halve_stride:
                train["halve_stride"] = True
            if train.get("fold_bn") and arch not in BATCHNORM_FREE:
                raise CamreproError(
                    f"config: fold_bn is set for {model} on the {role} role (training.{role} or "
                    f"recipes.{role}.{model}), but {model} has BatchNorm already; set fold_bn in "
                    f"recipes.{role}.<model> for the networks without it (VGG16, AlexNet)."
                )
            theta_tap = TAP_THETA.get(model, 0.0) if pool == "tap" else 0.0
            if model in AS_IS and role == "imagenet":  # as it is: nothing to train, one network
                plan.runs[rid] = Run(rid, dataset, model, pool, theta_tap, (0,), arch, {}, as_is=True)
            else:
                plan.runs[rid] = Run(rid, dataset, model, pool, theta_tap, run_seeds, arch, train)
        elif not plan.runs[rid].as_is:
            union = set(plan.runs[rid].seeds) | set(run_seeds)
            plan.runs[rid] = replace(plan.runs[rid], seeds=tuple(s for s in seeds if s in union))
        return plan.runs[rid]

    def add_as_is(exp: AsIsExperiment) -> None:
        dataset = _role_dataset(config, exp.role)
        arch = WEIGHTS_OF[exp.model]
        plan.weights[arch] = Weights(arch, "package" if arch in PACKAGED_WEIGHTS else "download")
        split = _evaluation_split(config, dataset)
        ext_id = slug(f"{dataset}-{exp.model}-{split}")
        nwc = any("nwc" in n for n in exp.settings)
        plan.extractions[ext_id] = Extraction(
            ext_id, None, dataset, split, exp.size, nwc, False, as_is=exp.model
        )
        chosen = {n: dict(SETTINGS[n]) for n in SETTINGS if n in exp.settings}
        plan.evaluations[ext_id] = Evaluation(ext_id, ext_id, dataset, chosen)

    for name in selected:
        if name in AS_IS_EXPERIMENTS:
            add_as_is(AS_IS_EXPERIMENTS[name])
            continue
        if name in SVM_EXPERIMENTS:
            kind, model = SVM_EXPERIMENTS[name]
            run = add_run("imagenet", model, POOL_OF[model], seeds_of.get(name, seeds))
            if kind == "cub":
                datasets = {"cub": _role_dataset(config, "cub")}
            else:
                datasets = dict(config.get("roles", {}).get("transfer", {}))
                if not datasets:
                    raise CamreproError(
                        f"config: experiment {name} needs roles.transfer (column -> dataset), e.g. "
                        "{sun397: synthetic-sun397, ...}."
                    )
                missing = [d for d in datasets.values() if d not in config["datasets"]]
                if missing:
                    raise CamreproError(f"config: roles.transfer names datasets not in datasets: {missing}.")
            job_id = slug(f"{name}-{run.id}")
            svm_seeds = (0,) if run.as_is else tuple(s for s in seeds_of.get(name, seeds) if s in run.seeds)
            plan.svms[job_id] = SVMJob(job_id, name, kind, run.id, datasets, size_of(run.weights), svm_seeds)
            continue
        exp = EXPERIMENTS[name]
        for model, pool, settings in exp.entries:
            run = add_run(exp.role, model, pool, seeds_of.get(name, seeds))
            blacklist = _blacklist(config, run.dataset, exp.blacklist)
            settings_of.setdefault((run.id, exp.transform, exp.empty_box, blacklist), set()).update(settings)
    for (rid, transform, empty_box, blacklist), names in settings_of.items():
        run = plan.runs[rid]
        split = _evaluation_split(config, run.dataset)
        ext_id = slug(f"{rid}-{split}-{transform}")
        if ext_id in plan.extractions:  # the id names (run, split, transform) only: say so, never overwrite
            raise CamreproError(
                f"config: experiments evaluate run {rid} with the {transform} transform under two empty-box "
                "or blacklist rules; one extraction id cannot hold both. Run those experiments in separate "
                "configs."
            )
        nwc = any("nwc" in n for n in names)
        saliency = any(SETTINGS[n]["source"] == "saliency" for n in names)
        plan.extractions[ext_id] = Extraction(ext_id, rid, run.dataset, split, size_of(run.weights), nwc,
                                              saliency, transform, run.model if run.as_is else None)
        chosen = {n: dict(SETTINGS[n]) for n in SETTINGS if n in names}
        plan.evaluations[ext_id] = Evaluation(ext_id, ext_id, run.dataset, chosen, empty_box, blacklist)
    return plan


def _fewer_seeds(
    config: dict, seeds: tuple[int, ...], key: str, known: list[str], what: str
) -> dict[str, tuple[int, ...]]:
    """`seeds_by_experiment` (experiment -> the seeds it trains; a run two experiments share trains
    the union) or `seeds_by_model` (model -> the seeds every run of it trains): fewer networks for the
    tables and rows no claim reads. Checked: some of `seeds`, the first among them."""
    out = {}
    for name, chosen in config.get(key, {}).items():
        if name not in known:
            raise CamreproError(f"config: {key} names an unknown {what} {name!r}; known: {', '.join(known)}.")
        chosen = tuple(int(s) for s in chosen)
        if not chosen or not set(chosen) <= set(seeds) or seeds[0] not in chosen:
            raise CamreproError(
                f"config: {key}.{name} = {list(chosen)} must be some of seeds {list(seeds)}, "
                f"seed {seeds[0]} among them (the report's figures show seed {seeds[0]})."
            )
        out[name] = tuple(s for s in seeds if s in chosen)  # in the order of `seeds`: one rule, one entry
    return out


VAL_BLACKLIST_DEFAULT = "paper"  # datasets.<imagenet>.val_blacklist: as each paper did


def _blacklist(config: dict, dataset: str, paper_excludes: bool) -> bool:
    """Whether an evaluation on `dataset` leaves out its blacklisted val images: an ImageNet
    dataset's `val_blacklist` (paper: as the experiment's paper did, Experiment.blacklist; exclude;
    keep); never for another dataset."""
    spec = config["datasets"][dataset]
    if spec.get("source") != "imagenet":
        return False
    choice = spec.get("val_blacklist", VAL_BLACKLIST_DEFAULT)
    return paper_excludes if choice == "paper" else choice == "exclude"


def _evaluation_split(config: dict, dataset: str) -> str:
    """`val` for ImageNet (its test labels are not public), `test` for CUB and the synthetic sets."""
    return "val" if config["datasets"][dataset].get("source") == "imagenet" else "test"


def prepared(data_root: str, dataset: str) -> str:
    return f"{data_root}/prepared/{dataset}"


def weights_path(data_root: str, arch: str) -> str:
    return f"{data_root}/weights/{arch}.pth"


def run_dir(run: str) -> str:
    return f"results/models/{run}"


def model_paths(plan: Plan, run: str, seeds: tuple[int, ...] | None = None) -> list[str]:
    """The model files of a run's seeds (or of those of them a job reads)."""
    return [str(model_file(run_dir(run), seed)) for seed in seeds or plan.runs[run].seeds]


def extraction_dir(ext: str) -> str:
    return f"results/cams/{ext}"


def metrics_path(job: str) -> str:
    return f"results/metrics/{job}.json"


TABLES_DIR = "results/tables"
REPORT = "reports/replication.html"
REPORT_FIGURES = "reports/replication-figures"


def shell(args: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in args)
