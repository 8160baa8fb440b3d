"""The report's protocol tables: per reproduced table, what the paper's text says, what its released
code did (both from `protocols.yaml`, each with its source) and what this run did.

"This run" is read from the plan and the config by the probe each aspect names (`PROBES`): the
networks, weights, recipes, test-time transforms, box settings and evaluation options of exactly the
jobs that fill that table's cells (`camrepro.tables.TABLES`). Nothing here describes a run in
prose of its own, so a config change shows in the table.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from importlib import resources

import yaml

from camrepro.plan import SETTINGS, VAL_BLACKLIST_DEFAULT, Evaluation, Extraction, Plan, Run, SVMJob
from camrepro.protocol import CAM_THRESHOLD, HEURISTIC_LOOSE_THRESHOLD, HEURISTIC_TIGHT_THRESHOLD, resize_for
from camrepro.tables import CODE_SETTING, CODE_TABLES, TABLES, Eval, paper_values


def protocol_facts() -> dict[str, list[dict]]:
    """`protocols.yaml`: table -> aspects, each {aspect, text, code, run}."""
    return yaml.safe_load(resources.files("camrepro").joinpath("protocols.yaml").read_text())


@dataclass
class TableJobs:
    """The jobs behind one table's cells: runs, their extractions and evaluations, the settings the
    cells read, the SVM jobs."""

    runs: list[Run] = field(default_factory=list)
    evaluations: list[tuple[Extraction, Evaluation]] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    svms: list[SVMJob] = field(default_factory=list)


def table_jobs(plan: Plan, table: str) -> TableJobs:
    out = TableJobs()
    for source in TABLES.get(table, {}).values():
        for cell in source.values() if isinstance(source, dict) else ():
            if isinstance(cell, Eval):
                settings = [cell.setting]
                if table in CODE_TABLES and cell.setting in CODE_SETTING:
                    settings.append(CODE_SETTING[cell.setting])
                run = plan.run(cell.role, cell.model, cell.pool)
                ev = plan.evaluation_of(run.id, cell.transform) if run else None
                if ev is None:
                    continue
                if run not in out.runs:
                    out.runs.append(run)
                pair = (plan.extractions[ev.extraction], ev)
                if pair not in out.evaluations:
                    out.evaluations.append(pair)
                out.settings += [s for s in settings if s in ev.settings and s not in out.settings]
            else:
                job = plan.svm_of(cell.experiment)
                if job is not None and job not in out.svms:
                    out.svms.append(job)
                    if plan.runs[job.run] not in out.runs:
                        out.runs.append(plan.runs[job.run])
    return out


def _unique(items: list[str]) -> str:
    return "; ".join(dict.fromkeys(items)) or "not run by this config"


def _data(plan: Plan, config: dict, jobs: TableJobs) -> str:
    items = [f"{ext.dataset} / {ext.split}" for ext, _ in jobs.evaluations]
    for job in jobs.svms:
        items += [f"{d} (train, test)" for d in job.datasets.values()]
    return _unique(items)


def _pretrained_network(plan: Plan, run: Run) -> str | None:
    """The registry model a run used as it is really loads where its weights are pretrained here
    (the embedded default: load_as_is returns the network pretraining wrote), else None."""
    from camrepro.weights import PRETRAIN_MODEL

    w = plan.weights.get(run.weights) if run.weights else None
    return PRETRAIN_MODEL[w.arch] if w is not None and w.method == "pretrain" else None


def _as_is(plan: Plan, config: dict, jobs: TableJobs) -> str:
    items = []
    for r in (r for r in jobs.runs if r.as_is):
        pretrained = _pretrained_network(plan, r)
        if pretrained:
            halved = plan.weights[r.weights].pretrain.get("halve_stride")
            built = f"{pretrained}, its last downsampling at stride 1" if halved else pretrained
            items.append(f"{r.model}: the network the weights job pretrained ({built}, its head as trained "
                         "there), no training job")  # fmt: skip
        else:
            items.append(f"{r.model}: its weights {r.weights} used as they are, own head, no training job")
    return _unique(items)


@functools.cache
def _added_layers(model: str, width: float, pool: str, halve_stride: bool) -> str:
    """The layers CAM adds to one network, as built (on the meta device: no weights). Cached: the
    report's tables share runs, and each build costs about 0.1 s."""
    import torch

    from camrepro.models import build_model

    with torch.device("meta"):
        net = build_model(model, 2, width=width, pool=pool, halve_stride=halve_stride)
    convs = [m for m in net.features.extra.modules() if isinstance(m, torch.nn.Conv2d)]
    groups = "/".join(str(g) for g in sorted({m.groups for m in convs}))
    added = f"{len(convs)} added conv(s) in {groups} group(s)" if convs else "no added conv"
    dropout = net.dropout.p if isinstance(net.dropout, torch.nn.Dropout) else 0.0
    inside = sorted({m.p for m in net.features.extra.modules() if isinstance(m, torch.nn.Dropout)})
    count = sum(isinstance(m, torch.nn.Dropout) for m in net.features.extra.modules())
    rates = "/".join(f"{p:g}" for p in inside)
    inside_text = f", {count} dropout(s) of {rates} in the added layers" if count else ""
    return f"{added}, dropout {dropout:g} before the classifier{inside_text}"


def _networks(plan: Plan, config: dict, jobs: TableJobs) -> str:
    """The layers CAM adds to each trained network, as built."""
    items = []
    for r in jobs.runs:
        if r.as_is:
            continue
        halve_stride = bool(r.train.get("halve_stride", False))
        layers = _added_layers(r.model, float(r.train.get("width", 1.0)), r.pool, halve_stride)
        tap = f", theta_tap {r.theta_tap:g}" if r.pool == "tap" else ""
        halved = (", its last downsampling at stride 1 (maps of twice the side: the embedded default's "
                  "lever, in no paper)") if halve_stride else ""  # fmt: skip
        items.append(f"{r.model} ({r.pool}): {layers}{tap}{halved}")
    return _unique(items)


def _weights(plan: Plan, config: dict, jobs: TableJobs) -> str:
    from camrepro.weights import CHECKPOINTS, PACKAGED

    items = []
    for r in jobs.runs:
        w = plan.weights.get(r.weights) if r.weights else None
        if w is None:
            items.append(f"{r.model}: from scratch")
        elif w.method == "download":
            items.append(f"{r.model}: {CHECKPOINTS[w.arch].title}")
        elif w.method == "pretrain":
            shown = {k: v for k, v in w.pretrain.items() if k not in ("dataset", "width", "size")}
            options = ", ".join([f"{w.pretrain['size']} px", *(f"{k} {v}" for k, v in shown.items())])
            items.append(f"{r.model}: {w.arch} pretrained here on {w.pretrain['dataset']} ({options})")
        elif w.method == "package":
            items.append(f"{r.model}: {w.arch} from the package {PACKAGED[w.arch][0]}")
        else:
            items.append(f"{r.model}: the user's file for {w.arch}")
    return _unique(items)


def _recipe(plan: Plan, config: dict, jobs: TableJobs) -> str:
    from camrepro.train import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    items = []
    for r in jobs.runs:
        if r.as_is:
            continue
        t = defaults | r.train
        when = (f"at epochs {', '.join(map(str, t['lr_milestones']))}" if t.get("lr_milestones")
                else f"every {t['lr_decay_every']} epochs")  # fmt: skip
        decay = f"x{t['lr_decay']:g} {when}"
        items.append(
            f"{r.model} ({r.pool}) on {r.dataset}: {t['epochs']} epochs, batch {t['batch_size']}, lr "
            f"{t['lr']:g} (new layers x{t['lr_new_ratio']:g}), weight decay "
            f"{t['weight_decay']:g}{', Nesterov' if t['nesterov'] else ''}, {decay}"
            + (f", at most {t['max_steps']} steps" if t.get("max_steps") else "")
        )
    return _unique(items)


def _transform(plan: Plan, config: dict, jobs: TableJobs) -> str:
    """Each transform in words; where the table's networks differ in input size (models.size_by_arch),
    prefixed with the networks of each."""
    models: dict[str, list[str]] = {}
    for ext, _ in jobs.evaluations:
        resize = resize_for(ext.size)
        item = {
            "tencrop": f"ten {ext.size} px crops of the image warped to {resize} px (corners, centre, "
                       "mirrored), scores averaged, CAMs merged",
            "centercrop": f"warped to {resize} x {resize} px, centre crop {ext.size} px, GT boxes shifted "
                          "and clipped",
            "warp": f"warped to {ext.size} x {ext.size} px",
        }[ext.transform]  # fmt: skip
        model = ext.as_is or plan.runs[ext.run].model
        names = models.setdefault(item, [])
        if model not in names:
            names.append(model)
    if len({ext.size for ext, _ in jobs.evaluations}) < 2:
        return _unique(list(models))
    return _unique([f"{', '.join(names)}: {item}" for item, names in models.items()])


def describe_setting(name: str) -> str:
    """A box setting (`camrepro.plan.SETTINGS`) in words."""
    s = SETTINGS[name]
    maps = {"cam": "CAM", "cam_nwc": "CAM, negative weights clamped",
            "saliency": "Backprop saliency"}[s["source"]]  # fmt: skip
    if s.get("generator") == "dt_box":
        boxes = "the released dt_box generator" + (" (its five-box heuristic)" if s.get("heuristic") else
                                                   " (box 1 per class)")  # fmt: skip
    elif s.get("heuristic"):
        boxes = (f"tight ({HEURISTIC_TIGHT_THRESHOLD:.0%} of max) and loose "
                 f"({HEURISTIC_LOOSE_THRESHOLD:.0%}) boxes of the top-3 classes")  # fmt: skip
    elif s.get("standard") == "percentile":
        boxes = f"{s['theta']:g} x the {s['percentile']:g}th percentile, largest region"
    else:
        boxes = f"{s.get('theta', CAM_THRESHOLD):.0%} of the max, largest region"
    return f"{name}: {maps}, {boxes}"


def _boxes(plan: Plan, config: dict, jobs: TableJobs) -> str:
    return _unique([describe_setting(s) for s in jobs.settings])


def _saliency(plan: Plan, config: dict, jobs: TableJobs) -> str:
    return _unique([describe_setting(s) for s in jobs.settings if SETTINGS[s]["source"] == "saliency"])


def _blacklist(plan: Plan, config: dict, jobs: TableJobs) -> str:
    items = []
    for ext, ev in jobs.evaluations:
        if config["datasets"][ext.dataset].get("source") != "imagenet":
            items.append(f"{ext.dataset}: no devkit blacklist (not ImageNet)")
        else:
            choice = config["datasets"][ext.dataset].get("val_blacklist", VAL_BLACKLIST_DEFAULT)
            what = "left out of localization" if ev.blacklist else "kept"
            items.append(f"{ext.dataset}: the devkit's blacklisted val images {what} "
                         f"(val_blacklist: {choice})")
    return _unique(items)


def _empty_box(plan: Plan, config: dict, jobs: TableJobs) -> str:
    boxes = {"zero": "(0, 0, 0, 0)", "full": "the whole image"}
    return _unique([boxes[ev.empty_box] for _, ev in jobs.evaluations])


def _tap_pas(plan: Plan, config: dict, jobs: TableJobs) -> str:
    items = [f"{r.model}: theta_tap {r.theta_tap:g}" for r in jobs.runs if r.pool == "tap"]
    items += [describe_setting(s) for s in jobs.settings if SETTINGS[s].get("standard") == "percentile"]
    return _unique(items)


def _svm(plan: Plan, config: dict, jobs: TableJobs) -> str:
    from camrepro.svm import C_GRID

    items = []
    for job in jobs.svms:
        run = plan.runs[job.run]
        pretrained = _pretrained_network(plan, run) if run.as_is else None
        # PRETRAIN_MODEL's networks pool by global averages
        model, pool = (pretrained, "gap") if pretrained else (run.model, run.pool)
        feature = "fc7" if pool == "fc" else f"{pool} output"
        how = "used as it is" if run.as_is else "trained here"
        items.append(f"{job.experiment}: {model}'s {feature} ({how}), standardised, LinearSVC with C in "
                     f"{{{', '.join(map(str, C_GRID))}}} by 3-fold cross-validation on train")  # fmt: skip
    return _unique(items)


def _svm_crops(plan: Plan, config: dict, jobs: TableJobs) -> str:
    if not jobs.svms:
        return _unique([])
    return (f"CAM boxes from the SVM's weights at {CAM_THRESHOLD:.0%} of the max (GT class on train, "
            "predicted class on test); localized: IoU >= 0.5 with a GT box")  # fmt: skip


def _reference_rows(plan: Plan, config: dict, jobs: TableJobs) -> str:
    spec = paper_values()["cam-table3"]["rows"]
    return "shown as the paper's references, not reproduced: " + ", ".join(
        r["label"] for r in spec.values() if r.get("reference"))


PROBES: dict[str, Callable[[Plan, dict, TableJobs], str]] = {
    "data": _data, "as_is": _as_is, "networks": _networks, "weights": _weights, "recipe": _recipe,
    "transform": _transform, "boxes": _boxes, "saliency": _saliency, "blacklist": _blacklist,
    "empty_box": _empty_box, "tap_pas": _tap_pas, "svm": _svm, "svm_crops": _svm_crops,
    "reference_rows": _reference_rows,
}  # fmt: skip


def protocol_rows(plan: Plan, config: dict, table: str) -> list[dict]:
    """One table's protocol: per aspect, the text's and the code's statement with their sources and
    what this run did."""
    jobs = table_jobs(plan, table)
    rows = []
    for fact in protocol_facts().get(table, []):
        text, code = fact["text"] or {}, fact["code"] or {}
        rows.append({"aspect": fact["aspect"], "text": text.get("says", ""),
                     "text_source": text.get("source", ""), "code": code.get("did", ""),
                     "code_source": code.get("source", ""),
                     "run": PROBES[fact["run"]](plan, config, jobs)})  # fmt: skip
    return rows
