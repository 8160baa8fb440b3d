"""Linear SVMs on fixed deep features: CAM Table 4 (CUB crops), its localization figure, Table 5.

As in the CAM paper, the network is the ImageNet-trained one, never fine-tuned on these datasets;
"to obtain the weights similar to the original softmax layer, we simply train a linear SVM on the
output of the GAP layer". The SVM is scikit-learn's LinearSVC (liblinear) on standardised features,
its C chosen by stratified cross-validation on the training split only.

CUB (`cub_experiment`), per seed's model:

1. SVM on the pooled features of the full images -> "full image" accuracy on test.
2. CAMs from the SVM's weights (on standardised features the effective weight of feature k is
   w_ck / sigma_k; the mean shift is the same at every location, so min-max normalisation removes
   it) for the GT class of each train image and the SVM's predicted class of each test image; the
   box of the largest region above 20 % of the max (the paper's Sec. 3.2 thresholding), mapped back
   to the original image; features re-extracted from the crops; SVM again -> "crop" accuracy.
3. The same with the GT boxes (their union when an image has several) -> "bbox" accuracy.
4. "localized": the fraction of test images whose CAM box (step 2) has IoU >= 0.5 with a GT box.

Transfer (`transfer_experiment`): per dataset, SVM on the train split's features, accuracy on test.
SUN Attribute is multilabel (102 attributes, several per image): one binary linear SVM per attribute,
C chosen by cross-validated average precision, scored by the mean over attributes of the test average
precision (x100). That is the dataset's own measure (Patterson & Hays 2012) and, to our reading, what
the setup the CAM paper follows (Zhou et al. 2014, its ref. [34]) reports in that column; Table 5's
caption says "classification accuracy", which a multilabel set does not have. An attribute with fewer
than 2 positive or negative training images, or none of either in test, cannot be fitted or scored
and is left out (`attributes_scored` says how many were scored).
The features are what `camrepro.extract` stores: the pooled vector of a CAM network (GoogLeNet-GAP's
gap, the original GoogLeNet's average pool) or fc7 of an FC network (AlexNet).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from tqdm import tqdm

from camrepro.boxes import iou_matrix, resize_box, scoremap_boxes
from camrepro.cam import class_activation_maps, to_scoremap
from camrepro.data.metadata import DatasetInfo, read_split
from camrepro.data.reader import TransformSpec, decode_image, to_tensor, transform
from camrepro.errors import CamreproError, DataError
from camrepro.layout import model_file
from camrepro.models.io import load_as_is, load_trained, pick_device
from camrepro.protocol import CAM_THRESHOLD, LOC_IOU

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
# liblinear's own default (and scikit-learn's): the large Cs of the grid may stop there on nearly
# separable features (the CUB stand-in's C=10 fits needed 5,333, 75 % of its SVM job at 20,000); only
# the chosen C's model is used, and that one must converge (`fit_svm` warns if it did not).
SVM_MAX_ITER = 1000


class _Images(torch.utils.data.Dataset):
    """A split's images resized to size x size, each optionally cropped to a box first."""

    def __init__(self, dataset: Path, split: str, size: int, boxes: dict | None = None) -> None:
        info = DatasetInfo.load(dataset)
        self.meta = read_split(dataset, split)
        self.root = dataset / info.image_root
        self.ids = self.meta.image_ids
        self.spec, self.boxes = TransformSpec(train=False, crop=size, flip=False), boxes or {}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = decode_image(self.root / self.ids[i])
        box = self.boxes.get(self.ids[i])
        if box is not None:
            x0, y0, x1, y1 = (int(v) for v in box)
            if x1 > x0 and y1 > y0:  # an empty box (all-zero map) keeps the full image
                image = image[y0 : y1 + 1, x0 : x1 + 1]
        return to_tensor(transform(image, np.zeros((0, 4)), None, self.spec)[0])


class FeatureNet:
    """Pooled feature vectors (and, for CAM networks, the feature maps) of a trained model."""

    def __init__(self, model_path: str | os.PathLike, device: str = "auto", as_is: str | None = None) -> None:
        self.device = pick_device(device)
        if as_is:  # `model_path` is that network's ImageNet weights file (camrepro.models.io.load_as_is)
            self.model, meta = load_as_is(as_is, model_path, None, self.device)
        else:
            self.model, meta = load_trained(model_path, self.device)

    @torch.no_grad()
    def batches(self, data: _Images, batch_size: int = 64, progress: bool = False, desc: str = ""):  # noqa: ANN201
        """Yield (pooled vectors, CAM feature maps or None) per batch, in split order."""
        loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
        for images in tqdm(loader, desc=desc, unit="batch", disable=not progress):
            _, vectors, maps = self.model.outputs(images.to(self.device))
            yield vectors.float().cpu().numpy(), None if maps is None else maps.float().cpu()

    def vectors(self, data: _Images, **kw: object) -> np.ndarray:
        return np.concatenate([v for v, _ in self.batches(data, **kw)])


def fit_svm(x: np.ndarray, y: np.ndarray, seed: int = 0, scoring: str | None = None) -> GridSearchCV:
    """Standardise + LinearSVC, C by stratified k-fold cross-validation on (x, y) alone (scored by
    accuracy, or `scoring`, a scikit-learn scorer name)."""
    if y.min() < 0:
        raise DataError("linear SVM: labels must be class indices >= 0 (a multilabel dataset's -1 "
                        "placeholder is no label; see `multilabel_average_precision`).")  # fmt: skip
    per_class = np.bincount(y)
    folds = int(min(3, per_class[per_class > 0].min()))
    if folds < 2:
        raise DataError("linear SVM: every class needs at least 2 training images for cross-validation.")
    pipe = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=SVM_MAX_ITER, random_state=seed))
    search = GridSearchCV(
        pipe, {"linearsvc__C": list(C_GRID)}, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        scoring=scoring,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the Cs not chosen: see SVM_MAX_ITER
        search.fit(x, y)
    chosen = search.best_estimator_.named_steps["linearsvc"]
    if np.max(chosen.n_iter_) >= SVM_MAX_ITER:
        message = (f"linear SVM: the chosen C={chosen.C} did not converge in {SVM_MAX_ITER} iterations; "
                   "its accuracy may be below what the features allow.")  # fmt: skip
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    return search


def _labels(data: _Images) -> np.ndarray:
    return np.array([data.meta.labels[i] for i in data.ids])


def _present(data: _Images, classes: int) -> np.ndarray:
    """(images, classes) booleans of a multilabel split: which classes each image has."""
    y = np.zeros((len(data.ids), classes), bool)
    for row, image_id in enumerate(data.ids):
        y[row, data.meta.multilabels[image_id]] = True
    return y


def multilabel_average_precision(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                                 y_test: np.ndarray, seed: int = 0) -> tuple[float, int]:  # fmt: skip
    """(mean test average precision x100, attributes scored): one binary SVM per column of y."""
    from sklearn.metrics import average_precision_score

    scores = []
    for a in range(y_train.shape[1]):
        train_counts = np.bincount(y_train[:, a], minlength=2)
        if train_counts.min() < 2 or len(set(y_test[:, a])) < 2:
            continue  # not fittable by cross-validation, or AP undefined on test
        search = fit_svm(x_train, y_train[:, a].astype(int), seed, scoring="average_precision")
        scores.append(average_precision_score(y_test[:, a], search.decision_function(x_test)))
    if not scores:
        raise DataError("multilabel SVM: no attribute has 2 positive and 2 negative training images and "
                        "both kinds in test; the dataset is too small to score.")  # fmt: skip
    return 100.0 * float(np.mean(scores)), len(scores)


def svm_cam_weights(search: GridSearchCV) -> torch.Tensor:
    """(classes, D) weights on the raw features equivalent (up to a per-map constant) to the SVM's."""
    pipe = search.best_estimator_
    scale = pipe.named_steps["standardscaler"].scale_
    coef = pipe.named_steps["linearsvc"].coef_
    if coef.shape[0] == 1:  # binary problems: liblinear keeps one row (class 1 vs class 0)
        coef = np.stack([-coef[0], coef[0]])
    return torch.from_numpy(coef / scale).float()


def _cam_boxes(net: FeatureNet, data: _Images, weights: torch.Tensor, classes: np.ndarray, size: int) -> dict:
    """Per image: the CAM box of its class in original-image coordinates and in size x size."""
    boxes, n = {}, 0
    for _, maps in net.batches(data):
        cams = class_activation_maps(maps, weights, torch.as_tensor(classes[n : n + len(maps)]))
        for j in range(len(maps)):
            image_id = data.ids[n]
            scoremap = to_scoremap(cams[j, 0][None], (size, size))[0]
            box = scoremap_boxes(scoremap, CAM_THRESHOLD, "max", "largest")[0]
            original = resize_box(box, (size, size), data.meta.sizes[image_id])
            boxes[image_id] = {"map": [int(v) for v in box], "image": list(original)}
            n += 1
    return boxes


def _union_gt(meta) -> dict:  # noqa: ANN001
    out = {}
    for i, bs in meta.boxes.items():
        b = np.array(bs)
        out[i] = (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max()))
    return out


def cub_experiment(
    model_path: str | os.PathLike, dataset: str | os.PathLike, size: int, seed: int = 0
) -> dict:
    """CAM Table 4 and the CUB localization fraction for one model (see the module docstring)."""
    dataset = Path(dataset)
    net = FeatureNet(model_path)
    if not net.model.has_cam:
        raise DataError(f"{model_path}: the CUB experiment needs a CAM network (GoogLeNet-GAP).")
    train, test = _Images(dataset, "train", size), _Images(dataset, "test", size)
    if not test.meta.has_boxes:
        raise DataError(f"{dataset}/test has no boxes: the CUB experiment needs localization.txt.")
    y_train, y_test = _labels(train), _labels(test)
    x_train, x_test = net.vectors(train), net.vectors(test)
    full = fit_svm(x_train, y_train, seed)
    predicted = full.predict(x_test)
    weights = svm_cam_weights(full)
    train_boxes = _cam_boxes(net, train, weights, y_train, size)
    test_boxes = _cam_boxes(net, test, weights, predicted, size)

    def crop_accuracy(train_crops: dict, test_crops: dict) -> tuple[float, GridSearchCV]:
        xa = net.vectors(_Images(dataset, "train", size, train_crops))
        xb = net.vectors(_Images(dataset, "test", size, test_crops))
        search = fit_svm(xa, y_train, seed)
        return 100.0 * float((search.predict(xb) == y_test).mean()), search

    crop, crop_svm = crop_accuracy({i: b["image"] for i, b in train_boxes.items()},
                                   {i: b["image"] for i, b in test_boxes.items()})  # fmt: skip
    bbox, bbox_svm = crop_accuracy(_union_gt(train.meta), _union_gt(test.meta))
    hits = []
    for image_id in test.ids:
        gt = np.array(
            [resize_box(b, test.meta.sizes[image_id], (size, size)) for b in test.meta.boxes[image_id]]
        )
        hits.append(iou_matrix(np.array([test_boxes[image_id]["map"]]), gt).max() >= LOC_IOU / 100)
    return {
        "full_image": 100.0 * float((predicted == y_test).mean()),
        "crop": crop,
        "bbox": bbox,
        "localized": 100.0 * float(np.mean(hits)),
        "C": {"full_image": full.best_params_["linearsvc__C"], "crop": crop_svm.best_params_["linearsvc__C"],
              "bbox": bbox_svm.best_params_["linearsvc__C"]},
        "test_boxes": {i: b["image"] for i, b in test_boxes.items()},
        "test_predicted": {i: int(p) for i, p in zip(test.ids, predicted, strict=True)},
    }  # fmt: skip


def transfer_experiment(model_path: str | os.PathLike, datasets: dict[str, str | os.PathLike], size: int,
                        seed: int = 0, progress: bool = True, as_is: str | None = None) -> dict:  # fmt: skip
    """CAM Table 5 for one model: test accuracy of a linear SVM per dataset (column -> folder)."""
    net = FeatureNet(model_path, as_is=as_is)
    out: dict = {"metric": {}, "attributes_scored": {}}
    for column, folder in datasets.items():
        folder = Path(folder)
        info = DatasetInfo.load(folder)
        if "train" not in info.splits or "test" not in info.splits:
            raise DataError(f"{folder}: transfer needs train and test splits; it has "
                            f"{', '.join(info.splits)}.")  # fmt: skip
        train, test = _Images(folder, "train", size), _Images(folder, "test", size)
        x_train = net.vectors(train, progress=progress, desc=column)
        x_test = net.vectors(test)
        if info.task == "multilabel":
            y_train, y_test = _present(train, info.num_classes), _present(test, info.num_classes)
            out[column], out["attributes_scored"][column] = multilabel_average_precision(
                x_train, y_train, x_test, y_test, seed)
            out["metric"][column] = "mean AP"
            continue
        search = fit_svm(x_train, _labels(train), seed)
        out[column] = 100.0 * float((search.predict(x_test) == _labels(test)).mean())
        out["metric"][column] = "accuracy"
    return out


def run_svm(kind: str, run_dir: str | os.PathLike, seeds: list[int], datasets: dict[str, str], size: int,
            progress: bool = True, as_is: str | None = None) -> dict:  # fmt: skip
    """One SVM experiment for each seed's model of a run: {"kind", "seeds": {seed: results}}.
    `as_is`: `run_dir` is that network's ImageNet weights file, used as it is (seed 0 only)."""
    results = {}
    for seed in seeds:
        model = run_dir if as_is else model_file(run_dir, seed)
        if kind == "cub":
            if as_is:
                raise CamreproError("svm cub (CAM Table 4) uses the trained GoogLeNet-GAP, not --as-is.")
            results[str(seed)] = cub_experiment(model, datasets["cub"], size, seed)
        else:
            results[str(seed)] = transfer_experiment(model, datasets, size, seed, progress, as_is)
    return {"kind": kind, "datasets": {k: str(v) for k, v in datasets.items()}, "seeds": results}
