"""Model registry, heads, CAMs and Backprop saliency."""


import numpy as np
import pytest
import torch
import torchvision
from sklearn.svm import LinearSVC
from torch import nn

from camrepro.cam import backprop_saliency, class_activation_maps, to_scoremap
from camrepro.errors import CamreproError
from camrepro.models import MODELS, CAMNet, GlobalPool, build_model
from camrepro.train import TrainConfig, train
from tiny import TINY_RUN, randomised

torch.manual_seed(0)

FEATURE_SIZE = {
    "vgg16-gap": 14, "vgg16-cam": 14, "googlenet-gap": 14, "googlenet-gmp": 14, "alexnet-gap": 13, "alexnet*-gap": 11,
    "googlenet": 7, "resnet50-se": 14, "mobilenet-v1": 14, "inception-v3-spg": 14,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_builds_small_and_runs(name):
    model = build_model(name, num_classes=5, width=0.125).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        if isinstance(model, CAMNet):
            logits, features = model(x, return_features=True)
            assert features.shape[-2:] == (FEATURE_SIZE[name], FEATURE_SIZE[name])
            assert features.shape[1] == model.classifier.in_features
        else:
            logits = model(x)
    assert logits.shape == (2, 5)


def test_spg_inception_v3_layers_and_map_sizes():
    """wsolevaluation wsol/inception.py:156-163: two 3x3 convs of 1024 after Mixed_6e (768 deep);
    maps of 14x14 at 224 px (large_feature_map False, its default: config.py:204-205) and, by the
    same strides (stride 2 at Conv2d_1a and three pools, 3x3 valid convs at 2a and 4a), 4x4 at the
    demo's 64 px: 64 -> 32 -> 30 -> 16 -> 14 -> 8 -> 4."""
    model = build_model("inception-v3-spg", 3).eval()
    convs = [m for m in model.features.extra if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (768, 1024, (3, 3), (1, 1)), (1024, 1024, (3, 3), (1, 1))]  # fmt: skip
    assert sum(isinstance(m, nn.Dropout) for m in model.features.extra) == 3  # :192, :194, :196
    small = build_model("inception-v3-spg", 3, width=0.125).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224), return_features=True)[1].shape[-2:] == (14, 14)
        assert small(torch.randn(1, 3, 64, 64), return_features=True)[1].shape[-2:] == (4, 4)


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def test_the_cam_layers_are_the_released_prototxts():
    """zhoubolei/CAM models/: AlexNet*-GAP (deploy_alexnetplusCAM_imagenet.prototxt) has conv5 at 384
    units, pool5 3x3 at stride 1 (11x11 at 224 px), two 3x3/512 convs, all in 2 groups, N(0, 0.01)
    with bias 1, dropout 0.5; GoogLeNet-GAP's CAM conv (train_val_googlenetCAM.prototxt) is in 2
    groups, N(0, 0.01), bias 1, its classifier Caffe's xavier, no dropout; VGGnet-GAP's
    (deploy_vgg16CAM.prototxt) in 2 groups, bias 0, with dropout 0.5. Rethinking CAM's VGG16 keeps
    one group and no dropout (rethinkingCAM src/core/models/vgg.py)."""
    torch.manual_seed(0)
    star = build_model("alexnet*-gap", 5, width=0.5)
    extra = star.features.extra
    assert [(c.out_channels, c.groups, c.kernel_size) for c in _convs(extra)] == [(192, 2, (3, 3))] + [
        (256, 2, (3, 3))] * 2  # fmt: skip
    pool5 = [m for m in extra if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pool5] == [(3, 1)]
    assert not any(k.startswith("features.10.") for k in star.state_dict())  # AlexNet's conv5 is replaced
    with torch.no_grad():
        assert star.cam_features(torch.randn(1, 3, 224, 224)).shape[-2:] == (11, 11)
    expected = {"alexnet*-gap": (2, 1.0, 0.5), "alexnet-gap": (2, 1.0, 0.5), "googlenet-gap": (2, 1.0, 0.0),
                "googlenet-gmp": (2, 1.0, 0.0), "vgg16-cam": (2, 0.0, 0.5)}  # fmt: skip
    for name, (groups, bias, dropout) in expected.items():
        model = build_model(name, 5, width=0.5)
        for conv in _convs(model.features.extra):
            assert conv.groups == groups and torch.all(conv.bias == bias), name
            assert float(conv.weight.detach().std()) == pytest.approx(0.01, rel=0.1), name
        assert (model.dropout.p if isinstance(model.dropout, nn.Dropout) else 0.0) == dropout, name
    for name in ("googlenet-gap", "googlenet-gmp"):  # Caffe's xavier: U(-a, a), a = sqrt(3 / fan_in)
        head = build_model(name, 50, width=0.5).classifier
        bound = (3 / head.in_features) ** 0.5
        assert 0.95 * bound < float(head.weight.detach().abs().max()) <= bound and torch.all(head.bias == 0)
    rethinking = build_model("vgg16-gap", 5, width=0.5)
    assert [c.groups for c in _convs(rethinking.features.extra)] == [1] and isinstance(rethinking.dropout, nn.Identity)


def test_dropout_acts_in_training_only_and_leaves_the_cam_alone():
    model = build_model("vgg16-cam", 5, width=0.125)
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        logits, features = model(x, return_features=True)
        assert torch.equal(logits, model(x))
        w, b = model.classifier_weights()
        cams = class_activation_maps(features, w, torch.arange(5).repeat(4, 1))
        torch.testing.assert_close(cams.mean(dim=(2, 3)) + b, logits, rtol=1e-4, atol=1e-5)


def test_width_multiplier_shrinks_the_network():
    small = sum(p.numel() for p in build_model("vgg16-gap", 10, width=0.125).parameters())
    half = sum(p.numel() for p in build_model("vgg16-gap", 10, width=0.5).parameters())
    assert small * 8 < half


def _save(state, tmp_path, name):
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    return path


def _assert_loaded(backbone, tv_state, keys):
    own = backbone.state_dict()
    for k in keys:
        assert torch.equal(own[k], tv_state[k]), k


def test_vgg16_gap_loads_torchvision_weights_and_matches_its_conv5_3(tmp_path):
    tv = torchvision.models.vgg16(weights=None).eval()
    model = build_model("vgg16-gap", 7, pretrained=_save(tv.state_dict(), tmp_path, "vgg16")).eval()
    _assert_loaded(model.features, tv.state_dict(), model.features.torchvision_keys())
    assert len(model.features.torchvision_keys()) == 26  # 13 conv layers, weight + bias
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model.features.features(x), tv.features[:30](x))  # through conv5_3 + ReLU


def test_googlenet_gap_loads_torchvision_weights_and_matches_inception4e(tmp_path):
    tv = torchvision.models.googlenet(
        weights=None, aux_logits=True, init_weights=True, transform_input=True
    ).eval()
    model = build_model("googlenet-gap", 7, pretrained=_save(tv.state_dict(), tmp_path, "g")).eval()
    _assert_loaded(model.features, tv.state_dict(), model.features.torchvision_keys())
    captured = {}
    tv.inception4e.register_forward_hook(lambda m, i, o: captured.setdefault("4e", o))
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        tv(x)
        trunk = model.features
        y = trunk.maxpool2(
            trunk.conv3(
                trunk.conv2(
                    trunk.maxpool1(
                        trunk.conv1(
                            (
                                x * torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
                                + torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
                                - 0.5
                            )
                            / 0.5
                        )
                    )
                )
            )
        )
        for name in trunk.blocks:
            y = getattr(trunk, name)(y)
    assert torch.allclose(y, captured["4e"], atol=1e-5)


def test_the_original_googlenet_used_as_it_is_is_torchvisions_network(tmp_path):
    """CAM Table 1's GoogLeNet: torchvision's GoogLeNet, maxpool4 (2x2, stride 2) and head included,
    computes the same logits from the same file; its CAM comes from that head at 7x7."""
    from camrepro.models.io import load_as_is

    tv = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=True).eval()
    randomised(tv, 5)  # He-scale convs, random BN statistics: activations keep their size to the head
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # logits of size 5
        tv.fc.weight.mul_(5 / tv(x).abs().max())
    net, _ = load_as_is("googlenet", _save(tv.state_dict(), tmp_path, "g"))
    assert net.transform_input and isinstance(net.features.maxpool4, nn.MaxPool2d)
    assert (net.features.maxpool4.kernel_size, net.features.maxpool4.stride) == (2, 2)
    with torch.no_grad():
        ref = tv(x)
        torch.testing.assert_close(net(x), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
        assert net.cam_features(x).shape[-2:] == (7, 7)


@pytest.mark.parametrize(
    "arch, name",
    [
        ("alexnet", "alexnet-gap"),
        ("alexnet", "alexnet*-gap"),
        ("alexnet", "alexnet"),
        ("vgg16", "vgg16"),
    ],
)
def test_torchvision_key_mapping(tmp_path, arch, name):
    tv = getattr(torchvision.models, arch)(weights=None)
    model = build_model(name, 3, pretrained=_save(tv.state_dict(), tmp_path, arch))
    module = model.features if isinstance(model, CAMNet) else model
    keys = module.torchvision_keys()
    _assert_loaded(module, tv.state_dict(), keys)
    # everything left out of the file is what the CAM network adds
    new = set(module.state_dict()) - keys
    assert all(k.startswith("extra.") or k.startswith("classifier.6") for k in new)
    if name == "alexnet":  # the FC original reproduces torchvision's features exactly
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            assert torch.allclose(model.features(x), tv.features(x))


def test_an_original_used_as_it_is_is_the_published_network_with_its_own_head(tmp_path):
    """CAM Table 1's AlexNet (and VGGnet, the same mapping: OWN_HEAD) is torchvision's network with its
    1000-way head, trained nowhere here: load_as_is computes torchvision's logits from the file."""
    from camrepro.data.metadata import DatasetInfo
    from camrepro.models.io import load_as_is

    tv = torchvision.models.alexnet(weights=None).eval()
    with torch.no_grad():
        tv.classifier[6].weight.mul_(50)  # logits of unit size, so a head left at random would show
    path = _save(tv.state_dict(), tmp_path, "alexnet")
    net, meta = load_as_is("alexnet", path)
    assert not net.training and meta["classes"] is None
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = tv(x)
        assert ref.abs().max() > 0.5
        torch.testing.assert_close(net(x), ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    # the evaluation set's classes must be the head's
    other = tmp_path / "other"
    other.mkdir()
    DatasetInfo("other", [f"c{i}" for i in range(5)], ["test"]).save(other)
    with pytest.raises(CamreproError, match="own head has 1000 classes"):
        load_as_is("alexnet", path, other)
    # a file without the head (a backbone `camrepro pretrain` once wrote) cannot be used as it is
    headless = _save({k: v for k, v in tv.state_dict().items() if not k.startswith("classifier.6")}, tmp_path, "h")
    with pytest.raises(CamreproError, match="holds no ImageNet head for alexnet"):
        load_as_is("alexnet", headless)


def test_an_imagenet_subset_is_scored_by_the_head_rows_of_its_classes(tmp_path):
    """A prepared ImageNet of some of the classes (a rehearsal's) lists the head's classes from the
    devkit (imagenet_classes.txt); a network used as it is keeps the rows of its own classes, in the
    dataset's class order."""
    from camrepro.data.metadata import IMAGENET_CLASSES_FILE, DatasetInfo
    from camrepro.models.io import load_as_is

    head = ["n01440764", "n01443537", "n01484850", "n01491361"]
    tv = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, num_classes=4,
                                      transform_input=True).eval()  # fmt: skip
    randomised(tv, 2)
    path = _save(tv.state_dict(), tmp_path, "g")
    subset = tmp_path / "subset"
    subset.mkdir()
    DatasetInfo("imagenet", ["n01443537", "n01491361"], ["val"], source="imagenet").save(subset)
    with pytest.raises(CamreproError, match="own head has 4 classes"):
        load_as_is("googlenet", path, subset)  # the dataset does not say which classes the head has
    (subset / IMAGENET_CLASSES_FILE).write_text("".join(f"{w}\n" for w in head))
    net, meta = load_as_is("googlenet", path, subset)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(net(x), tv(x)[:, [1, 3]], rtol=1e-4, atol=1e-4)
    assert meta["classes"] == ["n01443537", "n01491361"]


def test_wrong_weights_file_gives_a_clear_error(tmp_path):
    tv = torchvision.models.alexnet(weights=None)
    path = _save(tv.state_dict(), tmp_path, "alexnet")
    with pytest.raises(CamreproError, match="alexnet.pth does not fit"):
        build_model("vgg16-gap", 3, pretrained=path)
    with pytest.raises(CamreproError, match="not found"):
        build_model("vgg16-gap", 3, pretrained=tmp_path / "nope.pth")
    with pytest.raises(CamreproError, match="unknown model"):
        build_model("vgg17-gap", 3)


def test_tap_pooling_is_eq4_with_a_count_zero_guard():
    f = torch.tensor([[[[0.0, 1.0], [2.0, 5.0]], [[0.0, 0.0], [0.0, 0.0]], [[3.0, 3.0], [3.0, 3.0]]]])
    # theta 0.5: channel 0 tau = 2.5 -> only 5 counts; channel 1 none -> 0; channel 2 tau 1.5 -> all
    assert GlobalPool("tap", 0.5)(f).tolist() == [[5.0, 0.0, 3.0]]
    # theta 0: average over the positive activations
    assert GlobalPool("tap", 0.0)(f).tolist() == [[pytest.approx(8 / 3), 0.0, 3.0]]
    assert GlobalPool("gap")(f).tolist() == [[2.0, 0.0, 3.0]]
    assert GlobalPool("gmp")(f).tolist() == [[5.0, 0.0, 3.0]]
    with pytest.raises(ValueError):
        GlobalPool("tap", 1.0)


def test_gap_cam_mean_plus_bias_equals_the_logit():
    model = build_model("vgg16-gap", 6, width=0.125).eval()
    x = torch.randn(3, 3, 112, 112)
    with torch.no_grad():
        logits, feats = model(x, return_features=True)
        classes = torch.arange(6).repeat(3, 1)
        cams = class_activation_maps(feats, model.classifier.weight, classes)
    assert cams.shape == (3, 6, 7, 7)
    assert torch.allclose(cams.mean(dim=(2, 3)) + model.classifier.bias, logits, atol=1e-5)


def test_tap_logit_is_the_classifier_on_tap_pooled_features():
    model = build_model("vgg16-gap", 4, width=0.125, pool="tap", theta_tap=0.1).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, feats = model(x, return_features=True)
    pooled = torch.zeros(2, feats.shape[1])
    for n in range(2):
        for k in range(feats.shape[1]):
            values = feats[n, k].flatten()
            kept = values[values > 0.1 * values.max()]
            pooled[n, k] = kept.mean() if len(kept) else 0.0
    assert torch.allclose(logits, model.classifier(pooled), atol=1e-5)


def test_nwc_removes_every_negative_contribution():
    feats = torch.rand(2, 5, 4, 4)
    weights = torch.tensor([[1.0, -2.0, 0.5, -0.1, 0.0], [-1.0, -1.0, 2.0, 3.0, -4.0]])
    classes = torch.tensor([[0, 1], [1, 0]])
    plain = class_activation_maps(feats, weights, classes)
    clamped = class_activation_maps(feats, weights, classes, nwc=True)
    expected = torch.einsum("k,khw->hw", weights[1].clamp_min(0), feats[0])
    assert torch.allclose(clamped[0, 1], expected)
    assert (clamped >= plain - 1e-6).all() and (clamped >= 0).all()  # features >= 0 after ReLU


def test_cam_from_linear_svm_weights():
    rng = np.random.default_rng(0)
    feats = torch.rand(20, 8, 3, 3)
    pooled = feats.mean(dim=(2, 3)).numpy()
    labels = rng.integers(0, 3, 20)
    svm = LinearSVC(C=1.0).fit(pooled, labels)
    cams = class_activation_maps(feats, svm.coef_, torch.as_tensor(labels).view(-1, 1))
    decision = svm.decision_function(pooled)[np.arange(20), labels]
    assert np.allclose(cams.mean(dim=(2, 3))[:, 0].numpy() + svm.intercept_[labels], decision, atol=1e-5)


def test_scoremap_upsamples_and_normalises():
    cam = torch.tensor([[0.0, 1.0], [2.0, 4.0]])
    s = to_scoremap(cam, (8, 8))
    assert s.shape == (8, 8) and s.dtype == np.float32
    assert s.min() == 0.0 and s.max() == 1.0
    assert s[-1, -1] == 1.0 and s[0, 0] == 0.0
    assert (to_scoremap(torch.ones(3, 3), (5, 5)) == 0).all()


def test_backprop_saliency_is_the_abs_gradient_max_over_channels():
    class Linear(nn.Module):  # logit_k = sum(x * A_k): the gradient is A_k
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.randn(3, 3, 5, 5))

        def forward(self, x):
            return torch.einsum("nchw,kchw->nk", x, self.a)

    model = Linear()
    images = torch.randn(2, 3, 5, 5)
    sal = backprop_saliency(model, images, torch.tensor([2, 0]))
    assert torch.allclose(sal[0], model.a[2].abs().amax(0))
    assert torch.allclose(sal[1], model.a[0].abs().amax(0))
    assert not images.requires_grad


# The CAM paper's FC originals localize by Backprop saliency only; every other network has a
# global pooling head and a linear classifier, hence a CAM.
FC_ORIGINALS = {"vgg16", "alexnet"}


def _input(name: str) -> torch.Tensor:
    return torch.randn(2, 3, 224 if name in FC_ORIGINALS else 112, 224 if name in FC_ORIGINALS else 112)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_has_cam_exactly_for_the_pooling_networks_and_outputs_agree_with_forward(name):
    model = build_model(name, num_classes=5, width=0.125).eval()
    assert model.has_cam == (name not in FC_ORIGINALS)
    x = _input(name)
    with torch.no_grad():
        out = model.outputs(x)
        assert torch.equal(out.logits, model(x))
        assert torch.equal(out.pooled, model.pooled_features(x))
        if model.has_cam:
            assert torch.equal(out.features, model.cam_features(x))
            weight, bias = model.classifier_weights()
            assert torch.allclose(out.pooled @ weight.T + bias, out.logits, atol=1e-5)
        else:
            assert out.features is None
            with pytest.raises(CamreproError, match="no CAM"):
                model.cam_features(x)
            with pytest.raises(CamreproError, match="no CAM"):
                model.classifier_weights()


@pytest.mark.parametrize("name", sorted(set(MODELS) - FC_ORIGINALS))
def test_gap_cams_from_the_interface_average_plus_bias_to_the_logits(name):
    """CAM paper Eq. 2 with GAP: mean_hw sum_k w_ck F_k + b_c is the class score, for every network."""
    model = build_model(name, num_classes=5, width=0.125, pool="gap").eval()
    x = _input(name)
    with torch.no_grad():
        features = model.cam_features(x)
        weight, bias = model.classifier_weights()
        cams = class_activation_maps(features, weight, torch.arange(5).repeat(2, 1))
        logits = model(x)
    assert cams.shape[:2] == (2, 5)
    assert torch.allclose(cams.mean(dim=(2, 3)) + bias, logits, atol=1e-4)


@pytest.mark.parametrize("name", sorted(FC_ORIGINALS))
def test_fc7_is_the_output_of_the_classifiers_last_relu(name):
    model = build_model(name, num_classes=5, width=0.125).eval()
    captured = {}
    last_relu = [m for m in model.classifier if isinstance(m, nn.ReLU)][-1]
    last_relu.register_forward_hook(lambda _m, _i, out: captured.setdefault("fc7", out.clone()))
    x = _input(name)
    with torch.no_grad():
        model(x)
        fc7 = model.fc7(x)
    assert fc7.shape == (2, model.classifier[-1].in_features)
    assert torch.equal(fc7, captured["fc7"])


def test_pretrained_part_is_the_backbone_of_a_cam_network_and_all_of_an_fc_original():
    cam = build_model("vgg16-gap", 5, width=0.125)
    assert cam.pretrained_module() is cam.features
    assert cam.pretrained_names() <= set(cam.state_dict())
    assert not any(n.startswith(("features.extra.", "classifier.")) for n in cam.pretrained_names())
    fc = build_model("vgg16", 5, width=0.125)
    assert fc.pretrained_module() is fc
    assert {n for n in fc.state_dict() if n not in fc.pretrained_names()} == {"classifier.6.weight",
                                                                             "classifier.6.bias"}  # fmt: skip


def test_weights_for_the_wrong_architecture_are_refused(tiny_cub, tmp_path):
    path = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    with pytest.raises(CamreproError, match="does not fit this backbone"):
        train(
            TrainConfig(dataset=str(tiny_cub), epochs=1, pretrained=str(path), **(TINY_RUN | {"width": 1.0})),
            tmp_path / "r",
            progress=False,
        )
    assert not (tmp_path / "r" / "model.pt").exists()


# The demo's lever (models.halve_stride): each CAM network's map side at 64 px, as the papers build it
# and with its last downsampling at stride 1 (VGG16's pool4, GoogLeNet's maxpool3 -- in the original too,
# which keeps maxpool4 --, AlexNet's pool2, ResNet's layer3, MobileNet's last stride-2 conv, SPG's pool
# before Mixed_6a).
HALVED_AT_64 = {
    "vgg16-gap": (4, 8), "vgg16-cam": (4, 8), "googlenet-gap": (4, 8), "googlenet-gmp": (4, 8),
    "alexnet-gap": (3, 7), "alexnet*-gap": (1, 5), "googlenet": (2, 4), "resnet50-se": (4, 8),
    "mobilenet-v1": (4, 8), "inception-v3-spg": (4, 8),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HALVED_AT_64))
def test_halving_the_stride_doubles_the_map_and_keeps_every_parameter(name):
    plain = build_model(name, num_classes=5, width=0.125).eval()
    halved = build_model(name, num_classes=5, width=0.125, halve_stride=True).eval()
    # the same tensors by name and shape: ImageNet weights and pretrained backbones load unchanged
    assert {k: v.shape for k, v in halved.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        sides = tuple(m.outputs(x).features.shape[-1] for m in (plain, halved))
    assert sides == HALVED_AT_64[name]
    strided = [m for m in halved.features.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    # exactly the last downsampling step changed: the network before it still downsamples
    assert any(max(m.stride if isinstance(m.stride, tuple) else (m.stride,)) > 1 for m in strided)


def test_the_pretrained_googlenet_runs_inception4_at_the_scale_googlenet_gap_fine_tunes_it():
    """The embedded default's GoogLeNet-GAP/GMP start from the pretrained original GoogLeNet: both
    halve at maxpool3, so inception4a-4e see 8x8 at 64 px in pretraining and fine-tuning alike."""
    sizes = {}
    for name in ("googlenet", "googlenet-gap"):
        net = build_model(name, num_classes=5, width=0.125, halve_stride=True).eval()
        with torch.no_grad():  # through inception4e, as the network's forward runs it
            f = net.features
            x = f.maxpool2(f.conv3(f.conv2(f.maxpool1(f.conv1(torch.zeros(1, 3, 64, 64))))))
            for block in f.blocks[: f.blocks.index("inception4e") + 1]:
                x = getattr(f, block)(x)
        sizes[name] = x.shape[-1]
    assert sizes == {"googlenet": 8, "googlenet-gap": 8}


def test_a_halved_vgg_takes_a_plain_vggs_weights_and_agrees_with_it_up_to_pool4():
    """Same weights, same first 23 layers: the halved network's conv4_3 output is the plain one's."""
    plain = build_model("vgg16-gap", num_classes=5, width=0.125).eval()
    halved = build_model("vgg16-gap", num_classes=5, width=0.125, halve_stride=True).eval()
    halved.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(plain.features.features[:23](x), halved.features.features[:23](x))
        assert isinstance(halved.features.features[23], nn.Identity)
        assert isinstance(plain.features.features[23], nn.MaxPool2d)


@pytest.mark.parametrize("name", ["vgg16", "alexnet", "efficientnet-lite0"])
def test_only_a_cam_networks_stride_can_be_halved(name):
    with pytest.raises(CamreproError, match="only a CAM network"):
        build_model(name, num_classes=5, width=0.125, halve_stride=True)


def test_a_model_trained_with_halved_stride_reloads_with_it(tiny_cub, tmp_path):
    from camrepro.models.io import load_trained

    cfg = TrainConfig(dataset=str(tiny_cub), epochs=1, **(TINY_RUN | {"halve_stride": True}))
    model, _ = load_trained(train(cfg, tmp_path / "run", progress=False))
    size = TINY_RUN["crop"]
    with torch.no_grad():
        side = model.outputs(torch.zeros(1, 3, size, size)).features.shape[-1]
    plain = build_model(TINY_RUN["model"], 12, width=TINY_RUN["width"]).eval()
    with torch.no_grad():
        assert side == 2 * plain.outputs(torch.zeros(1, 3, size, size)).features.shape[-1]
