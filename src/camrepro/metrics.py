"""WSOL and classification metrics, defined exactly as their references.

* Classification top-1/top-5 error (%): the label is not among the first k predicted classes.
* ILSVRC localization top-k error (%) (Zhou et al. 2016, Table 2): the image counts as right when
  one of its first k (class, box) guesses has the right class AND IoU >= 0.5 with any GT box.
* GT-known Loc (%): the box from the GT class's map has IoU >= 0.5 with a GT box.
* Top-1 Loc (%): top-1 class right AND that box right (Bae et al. 2020).
* MaxBoxAcc / MaxBoxAccV2 (Choe et al. 2020, clovaai/wsolevaluation): box accuracy at each CAM
  threshold, maximised over thresholds, per IoU threshold (V2: 30/50/70, every contour, mean).
* PxAP: area under the pixel precision-recall curve, with the reference's histogram bins.
* `Evaluator`: the one loop that accumulates MaxBoxAcc(V2) and PxAP over a split's score maps,
  behind both `camrepro evaluate` (`camrepro.evaluate`) and `camrepro evaluate-scoremaps`
  (`camrepro.scoremaps`); the compiled CAM-threshold sweep it runs per map is `camrepro.evaluator`.
* Box area (%): mean area of boxes as a share of the image (+1 pixel areas). Not a paper metric: a
  diagnostic that says why a fixed CAM threshold fails (boxes covering the whole image).

All box comparisons use `camrepro.boxes.iou_matrix` (the +1 pixel convention).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from camrepro.boxes import Strategy, iou_matrix
from camrepro.evaluator import cam_thresholds, sweep_correct
from camrepro.protocol import CAM_CURVE_INTERVAL, IOU_THRESHOLDS, LOC_IOU

IOU_LOC = LOC_IOU / 100


def classification_errors(
    topk: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Top-k classification error in percent from predicted class indices (N, >= max k)."""
    topk, labels = np.asarray(topk), np.asarray(labels)
    hit = topk == labels[:, None]
    return {f"top{k}": 100.0 * (1.0 - hit[:, :k].any(axis=1).mean()) for k in ks}


def box_correct(boxes: np.ndarray, gt_boxes: np.ndarray, iou: float = IOU_LOC) -> np.ndarray:
    """Per predicted box: IoU >= `iou` with any of the image's GT boxes."""
    return iou_matrix(boxes, gt_boxes).max(axis=1) >= iou


def localization_errors(
    guesses: Sequence[Sequence[tuple[int, Sequence[int]]]],
    labels: Sequence[int],
    gt_boxes: Sequence[np.ndarray],
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """ILSVRC top-k localization error (%). guesses[i] = ordered (class, box) guesses of image i."""
    errors = {}
    for k in ks:
        right = 0
        for image_guesses, label, gt in zip(guesses, labels, gt_boxes, strict=True):
            right += any(
                cls == label and box_correct(np.asarray([box]), gt)[0] for cls, box in image_guesses[:k]
            )
        errors[f"top{k}"] = 100.0 * (1.0 - right / len(labels))
    return errors


def gt_known_and_top1_loc(
    gt_class_boxes: Sequence[Sequence[int]],
    top1_correct: np.ndarray,
    gt_boxes: Sequence[np.ndarray],
) -> dict[str, float]:
    """GT-known Loc and Top-1 Loc (%) from the box of each image's GT-class map."""
    loc = np.array(
        [box_correct(np.asarray([b]), gt)[0] for b, gt in zip(gt_class_boxes, gt_boxes, strict=True)]
    )
    top1 = np.asarray(top1_correct, dtype=bool)
    return {"gt_known_loc": 100.0 * loc.mean(), "top1_loc": 100.0 * (loc & top1).mean()}


def box_area_percent(boxes: Sequence[Sequence[int]], width: int, height: int) -> float:
    """Mean area of (x0, y0, x1, y1) boxes (x1/y1 inclusive) in percent of a width x height image."""
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if len(b) == 0:
        raise ValueError("no boxes to measure")
    areas = (b[:, 2] - b[:, 0] + 1).clip(min=0) * (b[:, 3] - b[:, 1] + 1).clip(min=0)
    return float(100.0 * areas.mean() / (width * height))


class BoxAccuracySweep:
    """Accumulates per-CAM-threshold box accuracy over images (MaxBoxAcc, MaxBoxAccV2)."""

    def __init__(
        self,
        thresholds: np.ndarray,
        iou_thresholds: Sequence[int] = IOU_THRESHOLDS,
        strategy: Strategy = "multi",
    ) -> None:
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.iou_thresholds = [int(i) for i in iou_thresholds]
        self.strategy = strategy
        self.num_correct = np.zeros((len(self.iou_thresholds), len(self.thresholds)), dtype=np.int64)
        self.count = 0

    def add(self, correct: np.ndarray) -> None:
        """Add one image's (len(iou_thresholds), len(thresholds)) bool table (`sweep_correct`)."""
        self.num_correct += correct
        self.count += 1

    def accuracies(self) -> np.ndarray:
        """Box accuracy (%) per IoU threshold (rows) and CAM threshold (columns)."""
        if self.count == 0:
            raise ValueError("no images were scored")
        return self.num_correct * 100.0 / float(self.count)

    def result(self) -> dict:
        acc = self.accuracies()
        best = acc.argmax(axis=1)
        per_iou = {str(i): float(acc[r].max()) for r, i in enumerate(self.iou_thresholds)}
        return {
            "images": self.count,
            "iou_thresholds": self.iou_thresholds,
            "multi_contour": self.strategy == "multi",
            "max_box_acc": per_iou,
            "max_box_acc_mean": float(np.mean(list(per_iou.values()))),
            "best_cam_threshold": {
                str(i): float(self.thresholds[best[r]]) for r, i in enumerate(self.iou_thresholds)
            },
            "cam_thresholds": self.thresholds.tolist(),
            "box_accuracy": {str(i): acc[r].tolist() for r, i in enumerate(self.iou_thresholds)},
        }


class PxAP:
    """Pixel average precision over a split, with the reference's histogram bins.

    Bins are the CAM thresholds plus [1, 2, 3] as right edges, so a score of exactly 1.0 falls in
    its own bin; masks hold 1 (foreground), 0 (background) and 255 (ignored).
    """

    def __init__(self, thresholds: np.ndarray) -> None:
        self.edges = np.append(np.asarray(thresholds, dtype=np.float64), [1.0, 2.0, 3.0])
        self.true_hist = np.zeros(len(self.edges) - 1, dtype=np.float64)
        self.false_hist = np.zeros(len(self.edges) - 1, dtype=np.float64)

    def add(self, scoremap: np.ndarray, mask: np.ndarray) -> None:
        if scoremap.shape != mask.shape:
            raise ValueError(f"score map {scoremap.shape} and mask {mask.shape} differ in size")
        self.true_hist += np.histogram(scoremap[mask == 1], bins=self.edges)[0]
        self.false_hist += np.histogram(scoremap[mask == 0], bins=self.edges)[0]

    def value(self) -> float:
        tp = self.true_hist[::-1].cumsum()
        fn = self.true_hist.sum() - tp
        fp = self.false_hist[::-1].cumsum()
        if ((tp + fn) <= 0).all():
            raise ValueError("no foreground pixel in the evaluated masks")
        if ((tp + fp) <= 0).all():
            raise ValueError("no positive prediction in the evaluated maps")
        nonzero = (tp + fp) != 0
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tp / (tp + fp)
            recall = tp / (tp + fn)
        return float((precision[1:] * np.diff(recall))[nonzero[1:]].sum() * 100)


class Evaluator:
    """MaxBoxAcc, MaxBoxAccV2 and PxAP of a split's score maps: `accumulate` each image, `compute` at the end.

    One loop for every driver, so the workflow's numbers and those of maps stored the reference's way
    are computed alike. `accumulate` may run in several threads at once: the sweep runs outside the
    lock (its kernel releases the GIL), and the totals are sums of counts, the same in any order.
    """

    def __init__(
        self,
        cam_curve_interval: float = CAM_CURVE_INTERVAL,
        iou_thresholds: Sequence[int] = IOU_THRESHOLDS,
        strategies: Sequence[Strategy] = ("largest", "multi"),
        pxap: bool = False,
    ) -> None:
        self.thresholds = cam_thresholds(cam_curve_interval)
        self.sweeps = {s: BoxAccuracySweep(self.thresholds, iou_thresholds, s) for s in strategies}
        self.pxap = PxAP(self.thresholds) if pxap else None
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def accumulate(
        self, image_id: str, scoremap: np.ndarray, gt_boxes: np.ndarray, mask: np.ndarray | None = None
    ) -> None:
        """One image: its 2-D score map in [0, 1], its GT boxes at the map's size, and (for PxAP) its
        mask at that size (1 object, 0 background, 255 ignored: `camrepro.scoremaps.load_mask`)."""
        if (mask is None) != (self.pxap is None):
            need = "PxAP needs its mask" if mask is None else "a mask was given, PxAP was not asked for"
            raise ValueError(f"image {image_id!r}: {need}")
        with self._lock:
            if image_id in self._seen:
                raise ValueError(f"image {image_id!r} was accumulated twice")
            self._seen.add(image_id)
        correct = {
            s: sweep_correct(scoremap, gt_boxes, self.thresholds, sweep.iou_thresholds, s)
            for s, sweep in self.sweeps.items()
        }
        with self._lock:
            for s, table in correct.items():
                self.sweeps[s].add(table)
            if self.pxap is not None:
                self.pxap.add(scoremap.astype(np.float64), mask)

    def compute(self) -> dict:
        """`BoxAccuracySweep.result()` per strategy (MaxBoxAcc per IoU threshold and their mean, box
        accuracy per CAM threshold), and "pxap" when masks were given."""
        out = {s: sweep.result() for s, sweep in self.sweeps.items()}
        if self.pxap is not None:
            out["pxap"] = self.pxap.value()
        return out


def center_gaussian_scoremap(height: int, width: int) -> np.ndarray:
    """The center baseline's score map (Choe et al. 2020): a Gaussian at the image center with
    sigma a quarter of each side, in [0, 1]. Its thresholds sweep every centered box of the
    image's aspect ratio, so MaxBoxAcc of this map is the best that ignoring the image can do."""
    ys = (np.arange(height) - (height - 1) / 2) / (height / 4)
    xs = (np.arange(width) - (width - 1) / 2) / (width / 4)
    g = np.exp(-0.5 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    return (g - g.min()) / (g.max() - g.min())


def center_baseline(
    gt_boxes: Sequence[np.ndarray],
    cam_curve_interval: float = CAM_CURVE_INTERVAL,
    iou_thresholds: Sequence[int] = IOU_THRESHOLDS,
    size: tuple[int, int] = (224, 224),
    strategy: Strategy = "multi",
) -> dict:
    """MaxBoxAcc of the center-Gaussian map for every image (GT boxes already at `size` (h, w))."""
    evaluator = Evaluator(cam_curve_interval, iou_thresholds, (strategy,))
    scoremap = center_gaussian_scoremap(*size)
    for n, gt in enumerate(gt_boxes):
        evaluator.accumulate(str(n), scoremap, gt)
    return evaluator.compute()[strategy]
