"""CAM Table 5's SVMs on a real prepared dataset: SUN Attribute as the multilabel problem it is."""

from __future__ import annotations

import io
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from archives import serve_source as _serve_source
from archives import tgz_bytes as _tgz
from camrepro.data import prepare as prepare_mod
from camrepro.layout import model_file
from camrepro.models import build_model
from camrepro.svm import fit_svm, run_svm, svm_cam_weights
from camrepro.train import TrainConfig

N_IMAGES = 48


def _solid_jpeg(rgb: tuple[float, float, float], seed: int) -> bytes:
    noise = np.random.default_rng(seed).normal(0, 8, (24, 24, 3))
    arr = np.clip(np.array(rgb) * 255 + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _mat(**arrays) -> bytes:
    buf = io.BytesIO()
    savemat(buf, arrays)
    return buf.getvalue()


@pytest.fixture
def sunattribute(file_server, monkeypatch, tmp_path):
    """SUN Attribute archives in the real layout, prepared by the real preparer. Two attributes
    visible in the pixels ("bright": a light image; "reddish": more red than blue), drawn
    independently, and one ("rare") present on a single image, so it lacks positives on one side."""
    rng = np.random.default_rng(1)
    bright = rng.permutation(np.arange(N_IMAGES) % 2).astype(bool)
    reddish = rng.permutation((np.arange(N_IMAGES) // 2) % 2).astype(bool)
    names = [f"a/abbey/sun_{i:03d}.jpg" for i in range(N_IMAGES)]
    pics = {}
    for i, name in enumerate(names):
        level = 0.75 if bright[i] else 0.25
        rgb = (level + 0.2, level, level - 0.2) if reddish[i] else (level - 0.2, level, level + 0.2)
        pics[f"images/{name}"] = _solid_jpeg(rgb, i)
    votes = np.zeros((N_IMAGES, 3))
    votes[bright, 0] = 0.67  # 2 of 3 annotators: present
    votes[reddish, 1] = 1.0
    votes[~reddish, 1] = 0.33  # 1 of 3: absent
    votes[0, 2] = 1.0
    images = np.empty((N_IMAGES, 1), object)
    images[:, 0] = names
    attrs = np.empty((3, 1), object)
    attrs[:, 0] = ["bright", "reddish", "rare"]
    labels = {
        "SUNAttributeDB/images.mat": _mat(images=images),
        "SUNAttributeDB/attributes.mat": _mat(attributes=attrs),
        "SUNAttributeDB/attributeLabels_continuous.mat": _mat(labels_cv=votes),
    }
    _serve_source(monkeypatch, file_server, "sunattribute", {"images": _tgz(pics), "labels": _tgz(labels)})
    prepare_mod.prepare("sunattribute", root=tmp_path / "data", progress=False)
    return tmp_path / "data" / "prepared" / "sunattribute"


def _model_run(tmp_path, num_classes: int = 5) -> str:
    """A run folder with one seed's model in the format `camrepro train` writes (random weights)."""
    torch.manual_seed(0)
    cfg = TrainConfig(model="googlenet-gap", dataset="unused", width=0.125)
    model = build_model(cfg.model, num_classes, width=cfg.width)
    path = model_file(tmp_path / "run", 0)
    path.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "config": asdict(cfg), "classes": [str(i) for i in range(num_classes)],
                "num_classes": num_classes, "transform_input": False}, path)  # fmt: skip
    return str(tmp_path / "run")


def test_sun_attribute_is_one_svm_per_attribute_scored_by_mean_average_precision(sunattribute, tmp_path):
    out = run_svm("transfer", _model_run(tmp_path), [0], {"sunattribute": str(sunattribute)}, size=32,
                  progress=False)  # fmt: skip
    result = out["seeds"]["0"]
    # the attributes are in the pixels, so a linear SVM per attribute ranks (nearly) every test image right
    assert 90.0 <= result["sunattribute"] <= 100.0
    assert result["metric"] == {"sunattribute": "mean AP"}
    # "rare" has one positive image, so it cannot be cross-validated and scored: it is left out, and said so
    assert result["attributes_scored"] == {"sunattribute": 2}
    json.dumps(out)  # the job writes it as JSON


def test_svm_cam_weights_give_maps_whose_mean_is_the_decision_function_up_to_a_constant():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 12)
    maps = rng.normal(size=(36, 8, 4, 4)).astype(np.float32) * rng.uniform(0.5, 5, size=(1, 8, 1, 1))
    maps[np.arange(36), labels] += 2.0  # class c lights up channel c
    features = maps.mean(axis=(2, 3))  # GAP
    search = fit_svm(features, labels)
    weights = svm_cam_weights(search).numpy()
    cams = np.einsum("ck,nkhw->nchw", weights, maps)
    offset = search.decision_function(features) - cams.mean(axis=(2, 3))
    assert np.allclose(offset, offset[0], atol=1e-4)  # the same constant for every image, per class
    assert search.score(features, labels) > 0.9


def _noisy_three_classes() -> tuple[np.ndarray, np.ndarray]:
    """3 informative columns among 60: a small C generalises best, a large one needs hundreds of
    liblinear iterations (476 at C=10)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    features = rng.normal(size=(90, 60))
    features[:, :3] += 1.5 * np.eye(3)[labels]
    return features, labels


def test_a_c_the_search_does_not_choose_may_stop_at_the_iteration_cap_unreported(monkeypatch):
    """Only the chosen C's model is used: a larger C that would need more than SVM_MAX_ITER iterations
    (the CUB stand-in's C=10 fits were 75 % of its SVM job) costs the cap and no warning."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    from camrepro import svm

    monkeypatch.setattr(svm, "SVM_MAX_ITER", 50)
    monkeypatch.setattr(svm, "C_GRID", (0.001, 10.0))
    features, labels = _noisy_three_classes()
    with pytest.warns(ConvergenceWarning):  # C=10 alone stops at the cap
        assert LinearSVC(C=10.0, max_iter=50, random_state=0).fit(features, labels).n_iter_ == 50
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = fit_svm(features, labels)
    assert search.best_params_["linearsvc__C"] == 0.001
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_a_chosen_c_that_stops_at_the_iteration_cap_is_reported_naming_it(monkeypatch):
    from sklearn.exceptions import ConvergenceWarning

    from camrepro import svm

    monkeypatch.setattr(svm, "SVM_MAX_ITER", 50)
    monkeypatch.setattr(svm, "C_GRID", (10.0,))
    features, labels = _noisy_three_classes()
    with pytest.warns(ConvergenceWarning, match=r"the chosen C=10\.0 did not converge in 50 iterations") as caught:
        fit_svm(features, labels)
    assert len([w for w in caught if issubclass(w.category, ConvergenceWarning)]) == 1  # not one per fold


def test_table5_on_an_original_reads_its_fixed_features_as_they_are(tiny_pretrained, tiny_cub, tmp_path):
    """CAM Table 5's GoogLeNet and AlexNet rows: the ImageNet network's fixed features, no training job:
    `svm transfer --as-is ARCH --weights FILE` takes the weights file itself, as one network (seed 0);
    CAM Table 4 needs the trained GoogLeNet-GAP, so `svm cub --as-is` is refused."""
    import subprocess
    import sys

    from camrepro.models.io import load_as_is
    from camrepro.svm import FeatureNet, _Images

    net, _ = load_as_is("alexnet", tiny_pretrained)
    images = _Images(tiny_cub, "test", 48)
    x = torch.stack([images[i] for i in range(4)])
    with torch.no_grad():
        expected = net.pooled_features(x).numpy()
    got = FeatureNet(tiny_pretrained, device="cpu", as_is="alexnet").vectors(images)[:4]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    out = tmp_path / "t5.json"
    cli = [sys.executable, "-m", "camrepro", "svm"]
    res = subprocess.run([*cli, "transfer", "--as-is", "alexnet", "--weights", str(tiny_pretrained), "--data",
                          f"cub={tiny_cub}", "--size", "48", "--out", str(out), "-q"], capture_output=True, text=True)  # fmt: skip
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert set(doc["seeds"]) == {"0"} and 0 <= doc["seeds"]["0"]["cub"] <= 100
    res = subprocess.run([*cli, "cub", "--as-is", "alexnet", "--weights", str(tiny_pretrained), "--data",
                          f"cub={tiny_cub}", "--out", str(tmp_path / "t4.json")], capture_output=True, text=True)  # fmt: skip
    assert res.returncode != 0 and "uses the trained GoogLeNet-GAP" in res.stderr
