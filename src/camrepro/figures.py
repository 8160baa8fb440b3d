"""The report's figures (matplotlib, PNG): the pictures that show why the numbers are what they are.

Each figure function reads finished artifacts (extractions, metrics JSON, tables) and returns a
matplotlib Figure, or None when the experiment it needs is not in the config. Colours follow the
CAM paper: ground-truth boxes green, predicted boxes red.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from camrepro.boxes import resize_box, scoremap_boxes, threshold_level, to_uint8  # noqa: E402
from camrepro.cam import to_scoremap  # noqa: E402
from camrepro.data.metadata import DatasetInfo, read_split  # noqa: E402
from camrepro.data.reader import TransformSpec, decode_image, transform  # noqa: E402
from camrepro.layout import AS_IS_SEED, seed_dir  # noqa: E402
from camrepro.plan import PAS, Plan, extraction_dir, metrics_path  # noqa: E402
from camrepro.plan import Extraction as PlanExtraction  # noqa: E402
from camrepro.protocol import CAM_THRESHOLD, PAS_PERCENTILE, PAS_THRESHOLD  # noqa: E402
from camrepro.shards import load_extracted  # noqa: E402
from camrepro.testtime import centre_crop_box, merge_ten_crops  # noqa: E402

GT, PRED = "#1fbf3f", "#e8202a"


def extraction_folder(plan: Plan, ext: PlanExtraction, seed: int) -> Path:
    """One seed's folder of an extraction; a network used as it is has only AS_IS_SEED's."""
    as_is = ext.run is None or plan.runs[ext.run].as_is
    return seed_dir(extraction_dir(ext.id), AS_IS_SEED if as_is else seed)


class Extraction:
    """One seed's extraction (its folder of shards), with its images at the extraction size."""

    def __init__(self, folder: str | Path, dataset: str | Path) -> None:
        self.manifest, self.arrays = load_extracted(Path(folder))
        self.dataset = Path(dataset)
        self.meta = read_split(self.dataset, self.manifest["split"])
        self.info = DatasetInfo.load(self.dataset)
        self.size = self.manifest["size"]
        self.ids = [str(i) for i in self.arrays["image_ids"]]

    @classmethod
    def of(cls, plan: Plan, data_root: str, run_id: str | None, seed: int,
           ext: PlanExtraction | None = None) -> Extraction:  # fmt: skip
        """`ext`: the plan's extraction (a network used as it is has no run), else the run's."""
        ext = ext or plan.extraction_of(run_id)
        return cls(extraction_folder(plan, ext, seed), Path(data_root) / "prepared" / ext.dataset)


    @property
    def centre_crop(self) -> bool:
        return self.manifest.get("transform") == "centercrop"

    def image(self, n: int) -> np.ndarray:
        img = decode_image(self.dataset / self.info.image_root / self.ids[n])
        resize = self.manifest.get("resize", self.size)
        spec = TransformSpec(train=False, resize=resize, crop=self.size, eval_crop=self.centre_crop,
                             flip=False)  # fmt: skip
        return transform(img, np.zeros((0, 4)), None, spec)[0]

    def scoremap(self, n: int, slot: int = 1, key: str = "cams") -> np.ndarray:
        """Slot 0: GT class; 1..5: top-5 classes. Ten-crop CAMs are merged first (camrepro.testtime)."""
        raw = torch.from_numpy(self.arrays[key][n, slot].astype(np.float32))
        if raw.dim() == 3:
            raw = merge_ten_crops(raw, self.manifest["resize"], self.size, absolute=False)
        return to_scoremap(raw, (self.size, self.size))

    def gt_boxes(self, n: int) -> list[tuple[int, int, int, int]]:
        image_id = self.ids[n]
        if self.centre_crop:
            resize = self.manifest["resize"]
            return [centre_crop_box(b, self.meta.sizes[image_id], resize, self.size)
                    for b in self.meta.boxes[image_id]]  # fmt: skip
        return [
            resize_box(b, self.meta.sizes[image_id], (self.size, self.size))
            for b in self.meta.boxes[image_id]
        ]

    def class_name(self, label: int) -> str:
        return self.manifest["classes"][int(label)]


def _box(ax, box, color: str) -> None:  # noqa: ANN001
    x0, y0, x1, y1 = box
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=1.8))


def _show(ax, image: np.ndarray, scoremap: np.ndarray | None = None, title: str = "") -> None:  # noqa: ANN001
    ax.imshow(image)
    if scoremap is not None:
        ax.imshow(scoremap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(fig) -> None:  # noqa: ANN001
    handles = [
        Rectangle((0, 0), 1, 1, fill=False, edgecolor=GT, label="ground-truth box"),
        Rectangle((0, 0), 1, 1, fill=False, edgecolor=PRED, label="predicted box (CAM, 20 % of max)"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)


def _distinct_classes(ext: Extraction, count: int) -> list[int]:
    """Indices of up to `count` images of different classes (first of each class)."""
    seen, picks = set(), []
    for n, label in enumerate(ext.arrays["labels"]):
        if int(label) not in seen:
            seen.add(int(label))
            picks.append(n)
        if len(picks) == count:
            break
    return picks


def _grid(count: int, row_height: float, title_height: float, cols: int = 4) -> tuple[plt.Figure, list]:
    """A figure of `count` panels, `cols` a row, every axis off until a panel uses it."""
    rows = (count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(8, row_height * rows + title_height))
    axes = list(np.ravel(axes))
    for ax in axes:
        ax.axis("off")
    return fig, axes


def gallery_picks(labels: np.ndarray, top1: np.ndarray, count: int) -> list[int]:
    """Up to `count` images, half classified right and half wrong where the split has them (the
    rest from the other group), each group one image per class first, in split order: right first."""
    right = [n for n in range(len(labels)) if int(top1[n]) == int(labels[n])]
    wrong = [n for n in range(len(labels)) if int(top1[n]) != int(labels[n])]

    def one_per_class_first(group: list[int]) -> list[int]:
        firsts, seen = [], set()
        for n in group:
            if int(labels[n]) not in seen:
                seen.add(int(labels[n]))
                firsts.append(n)
        return firsts + [n for n in group if n not in firsts]

    right, wrong = one_per_class_first(right), one_per_class_first(wrong)
    n_wrong = min(len(wrong), max(count // 2, count - len(right)))
    n_right = min(len(right), count - n_wrong)
    return right[:n_right] + wrong[:n_wrong]


def cam_gallery(ext: Extraction, title: str, count: int = 8) -> plt.Figure:
    """Figs. 3/6: the GT class's CAM over the image, on images classified right and wrong (marked);
    GT boxes green, the CAM box red."""
    picks = gallery_picks(ext.arrays["labels"], ext.arrays["top5"][:, 0], count)
    fig, axes = _grid(len(picks), 2.6, 0.6)
    for ax, n in zip(axes, picks, strict=False):
        ax.axis("on")
        sm = ext.scoremap(n, 0)
        label, top1 = int(ext.arrays["labels"][n]), int(ext.arrays["top5"][n, 0])
        ok = top1 == label
        _show(ax, ext.image(n), sm, f"GT: {ext.class_name(label)}\n"
              f"{'RIGHT' if ok else 'WRONG'}: predicted {ext.class_name(top1)}")  # fmt: skip
        ax.title.set_color(GT if ok else PRED)
        for spine in ax.spines.values():
            spine.set_edgecolor(GT if ok else PRED)
            spine.set_linewidth(3)
        for b in ext.gt_boxes(n):
            _box(ax, b, GT)
        _box(ax, scoremap_boxes(sm, CAM_THRESHOLD, "max", "largest")[0], PRED)
    fig.suptitle(title, fontsize=10)
    _legend(fig)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return fig


def top5_cams(ext: Extraction, title: str) -> plt.Figure:
    """Fig. 4: the CAMs of the top-5 predicted classes of one image."""
    n = _distinct_classes(ext, 1)[0]
    fig, axes = plt.subplots(1, 6, figsize=(10, 2.3))
    _show(axes[0], ext.image(n), None, f"input\nGT: {ext.class_name(ext.arrays['labels'][n])}")
    for k in range(5):
        label = int(ext.arrays["top5"][n, k])
        score = float(ext.arrays["top5_scores"][n, k])
        _show(
            axes[k + 1],
            ext.image(n),
            ext.scoremap(n, k + 1),
            f"top-{k + 1}: {ext.class_name(label)}\np = {score:.2f}",
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def photo_cams(ext: Extraction) -> plt.Figure:
    """The real photos: top row, the top-1 class's CAM with its 20 %-of-max box (red) and the GT box
    (green); bottom row, the same class's map with negative weights clamped and its PaS box."""
    n_images = len(ext.ids)
    fig, axes = plt.subplots(2, n_images, figsize=(2.4 * n_images, 6.2), squeeze=False)
    rows = (("cams", "max", CAM_THRESHOLD, "CAM, 20 % of max"),
            ("cams_nwc", "percentile", PAS_THRESHOLD, "NWC + PaS"))  # fmt: skip
    for r, (key, standard, theta, label) in enumerate(rows):
        for n in range(n_images):
            ax = axes[r][n]
            if key not in ext.arrays:
                ax.axis("off")
                continue
            top1 = int(ext.arrays["top5"][n, 0])
            sm = ext.scoremap(n, 1, key)
            _show(ax, ext.image(n), sm, f"{ext.ids[n]}\n{label}: {ext.class_name(top1)}")
            for b in ext.gt_boxes(n):
                _box(ax, b, GT)
            _box(ax, scoremap_boxes(sm, theta, standard, "largest", PAS_PERCENTILE)[0], PRED)
    handles = [Rectangle((0, 0), 1, 1, fill=False, edgecolor=GT, label="ground-truth box (drawn by hand)"),
               Rectangle((0, 0), 1, 1, fill=False, edgecolor=PRED, label="box of the top-1 class's map")]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def side_by_side(exts: list[tuple[str, Extraction, str]], title: str, count: int = 4) -> plt.Figure:
    """Rows of the same images under several models' maps (GAP vs GMP; Backprop vs CAM), the GT
    class's map in every row. Images are matched by id: the extractions may order them differently.

    `exts`: (row label, extraction, map key: cams | saliency).
    """
    first = exts[0][1]
    shared = set(first.ids).intersection(*(set(e.ids) for _, e, _ in exts[1:]))
    picks = [first.ids[n] for n in _distinct_classes(first, len(first.ids)) if first.ids[n] in shared][:count]
    fig, axes = plt.subplots(
        len(exts), len(picks), figsize=(2.1 * len(picks), 2.2 * len(exts) + 0.4), squeeze=False
    )
    for r, (label, ext, key) in enumerate(exts):
        for c, image_id in enumerate(picks):
            n = ext.ids.index(image_id)
            sm = ext.scoremap(n, 0, key)
            _show(axes[r, c], ext.image(n), sm, label if c == 0 else "")
            for b in ext.gt_boxes(n):
                _box(axes[r, c], b, GT)
            _box(axes[r, c], scoremap_boxes(sm, CAM_THRESHOLD, "max", "largest")[0], PRED)
    fig.suptitle(title, fontsize=10)
    _legend(fig)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    return fig


def threshold_curves(curves: dict[str, dict], title: str) -> plt.Figure:
    """Box accuracy vs CAM threshold per IoU (MaxBoxAccV2's multi-contour boxes), one panel per map."""
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False)
    for ax, (label, curve) in zip(axes[0], curves.items(), strict=True):
        for iou, acc in curve["multi"].items():
            ax.plot(curve["cam_thresholds"], acc, label=f"IoU >= {int(iou) / 100:.1f}")
        ax.set_xlabel("CAM threshold")
        ax.set_ylabel("box accuracy (%)")
        ax.set_title(label, fontsize=9)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def threshold_standards(ext: Extraction, title: str, count: int = 3) -> plt.Figure:
    """Rethinking Fig. 4: CAM value distribution with the max and the percentile thresholds."""
    picks = _distinct_classes(ext, count)
    fig, axes = plt.subplots(1, len(picks), figsize=(4 * len(picks), 3), squeeze=False)
    for ax, n in zip(axes[0], picks, strict=True):
        sm = ext.scoremap(n, 0)
        u8 = to_uint8(sm)
        ax.hist(sm.ravel(), bins=50, color="#777777")
        ax.set_yscale("log")
        for standard, theta, color, name in (("max", CAM_THRESHOLD, "#d62728", f"max x {CAM_THRESHOLD}"),
                                             ("percentile", PAS["theta"], "#1f77b4",
                                              f"p{PAS['percentile']:.0f} x {PAS['theta']}")):  # fmt: skip
            level = threshold_level(u8, theta, standard, PAS["percentile"]) / 255.0
            ax.axvline(level, color=color, linestyle="--", label=f"{name} = {level:.2f}")
        ax.set_xlabel("normalised CAM value (GT class)")
        ax.set_ylabel("pixels")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def ablation_bars(table: pd.DataFrame, title: str) -> plt.Figure | None:
    """Rethinking Table 3 as bars: GT-known Loc per combination, paper vs reproduced (+- spread),
    and below it the threshold-free MaxBoxAccV2 (reproduced only: the paper does not report it)."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharex="col")
    panels = (("gt_loc", "GT-known Loc (%)"), ("maxboxacc_v2", "MaxBoxAccV2 (%)"))
    for col, role in enumerate(("cub", "imagenet")):
        for row, (metric, ylabel) in enumerate(panels):
            ax = axes[row, col]
            sel = table[table["column"] == f"{role}_{metric}"]
            x = np.arange(len(sel))
            if sel["paper"].notna().any():
                ax.bar(x - 0.2, sel["paper"], 0.4, label="paper", color="#bbbbbb")
            ax.bar(x + 0.2, sel["reproduced"].fillna(0), 0.4, yerr=sel["spread"].fillna(0),
                   label="reproduced", color="#1f77b4", capsize=2)  # fmt: skip
            ax.set_xticks(x, sel["label"], rotation=35, ha="right", fontsize=7)
            ax.set_ylabel(ylabel)
            if row == 0:
                ax.set_title("CUB" if role == "cub" else "ImageNet", fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def cub_crops(dataset: Path, svm_json: Path, title: str, count: int = 8) -> plt.Figure:
    """CAM crops on CUB test images (Fig. 7): the SVM-CAM box red, GT green."""
    doc = json.loads(svm_json.read_text())
    result = next(iter(doc["seeds"].values()))
    info = DatasetInfo.load(dataset)
    meta = read_split(dataset, "test")
    seen, picks = set(), []
    for image_id in meta.image_ids:
        if meta.labels[image_id] not in seen:
            seen.add(meta.labels[image_id])
            picks.append(image_id)
        if len(picks) == count:
            break
    fig, axes = _grid(len(picks), 2.3, 0.5)
    for ax, image_id in zip(axes, picks, strict=False):
        ax.axis("on")
        _show(
            ax, decode_image(dataset / info.image_root / image_id), None, info.classes[meta.labels[image_id]]
        )
        for b in meta.boxes.get(image_id, []):
            _box(ax, b, GT)
        _box(ax, result["test_boxes"][image_id], PRED)
    fig.suptitle(title, fontsize=10)
    _legend(fig)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return fig


def make_figures(plan: Plan, config: dict, tables: dict[str, pd.DataFrame], out_dir: Path) -> list[dict]:
    """Every figure the config's results allow, as PNGs in out_dir: [{name, title, caption, path}]."""
    data_root = config.get("data_root", "data")
    seed = plan.seeds[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[dict] = []

    def run_id(role: str, model: str, pool: str) -> str | None:
        """The run of (role, model, head) when it was extracted, else None."""
        run = plan.run(role, model, pool)
        return run.id if run and plan.extraction_of(run.id) else None

    def ext(role: str, model: str, pool: str) -> Extraction | None:
        rid = run_id(role, model, pool)
        if rid is None:
            return None
        found = extraction_folder(plan, plan.extraction_of(rid), seed).exists()
        return Extraction.of(plan, data_root, rid, seed) if found else None

    def save(name: str, fig: plt.Figure | None, title: str, caption: str) -> None:
        if fig is None:
            return
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append({"name": name, "title": title, "caption": caption, "path": str(path)})

    gap = ext("imagenet", "googlenet-gap", "gap")
    if gap:
        save(
            "cam-gallery",
            cam_gallery(gap, "GoogLeNet-GAP on ImageNet: CAM of the ground-truth class"),
            "CAM gallery (CAM paper Figs. 3 and 6a)",
            f"Seed {seed}: images the network classified right (green frame) and wrong (red frame), one per "
            "class where it can. The overlay is the ground-truth class's CAM; the red box covers the largest "
            "region above 20 % of its max.",
        )
        save(
            "top5-cams",
            top5_cams(gap, "GoogLeNet-GAP: CAMs of the top-5 classes of one image"),
            "Top-5 CAMs (CAM paper Fig. 4)",
            "The maps differ by class: each class has its own discriminative region.",
        )
        gmp = ext("imagenet", "googlenet-gmp", "gmp")
        if gmp:
            save(
                "gap-vs-gmp",
                side_by_side(
                    [("GAP", gap, "cams"), ("GMP", gmp, "cams")], "GoogLeNet-GAP vs GoogLeNet-GMP (GT class)"
                ),
                "GAP vs GMP",
                "GMP is rewarded for one peak, GAP for every part of the object: GAP's maps "
                "cover more of it (CAM paper Sec. 3.2).",
            )
        original = ext("imagenet", "googlenet", "gap")
        if original and "saliency" in original.arrays:
            save(
                "backprop-vs-cam",
                side_by_side(
                    [("CAM (GoogLeNet-GAP)", gap, "cams"), ("Backprop (GoogLeNet)", original, "saliency")],
                    "Backprop saliency vs CAM (GT class)",
                ),
                "Backprop vs CAM (CAM paper Figs. 5 and 6b)",
                "Backprop saliency is sparse and edge-like; its boxes are thresholded the same way.",
            )
    curves = {}
    for pool in ("gap", "tap"):
        rid = run_id("cub", "vgg16-gap", pool)
        if rid:
            ev = plan.evaluation_of(rid)
            path = Path(metrics_path(ev.id))
            doc = json.loads(path.read_text())["seeds"].get(str(seed), {}) if path.exists() else {}
            for setting, label in (("cam20", "CAM"), ("nwc", "CAM + NWC")):
                if setting in doc and "box_accuracy_curve" in doc[setting]:
                    curves[f"{pool.upper()}, {label}"] = doc[setting]["box_accuracy_curve"]
    if curves:
        save(
            "threshold-curves",
            threshold_curves(curves, "VGG16 on CUB: box accuracy vs CAM threshold"),
            "Box accuracy vs CAM threshold",
            f"Seed {seed}; multi-contour boxes as in MaxBoxAccV2. A flatter, "
            "wider curve means the best threshold matters less.",
        )
    vgg_cub = ext("cub", "vgg16-gap", "gap")
    if vgg_cub:
        save(
            "threshold-standards",
            threshold_standards(vgg_cub, "Where the two threshold standards fall"),
            "Max vs percentile threshold (Rethinking-CAM Fig. 4)",
            "Histogram of one CAM's values (log scale). The max standard depends on one peak value; the "
            "percentile standard on the bulk of the distribution.",
        )
    t3 = tables.get("rethinking-table3")
    if t3 is not None and t3["reproduced"].notna().any():
        save(
            "ablation-bars",
            ablation_bars(t3, "TAP / NWC / PaS with VGG16"),
            "TAP/NWC/PaS ablation (Rethinking-CAM Table 3)",
            "Bars: mean over seeds; whiskers: spread (sample standard deviation). Top: GT-known Loc at "
            "the papers' thresholds; bottom: MaxBoxAccV2, every combination at its best CAM threshold "
            "(PaS rows equal their non-PaS twins by construction).",
        )
    cub_jobs = [j for j in plan.svms.values() if j.kind == "cub" and Path(metrics_path(j.id)).exists()]
    if cub_jobs:
        j = cub_jobs[0]
        save(
            "cub-crops",
            cub_crops(
                Path(data_root) / "prepared" / j.datasets["cub"],
                Path(metrics_path(j.id)),
                "CUB test images: CAM boxes from the SVM's weights",
            ),
            "CUB crops (CAM paper Fig. 7)",
            f"Seed {plan.seeds[0]}; the crop is re-encoded and classified by a "
            "second SVM (Table 4's 'on crop' row).",
        )
    return made
