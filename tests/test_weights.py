"""ImageNet weights: downloads (offline behaviour), the source registry and the checkpoints' key maps."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision

from camrepro.data.synthetic import generate
from camrepro.errors import DownloadError
from camrepro.models import build_model
from camrepro.models.pretrained import read_weights
from camrepro.weights import CHECKPOINTS, fetch_weights, pretrain
from checkpoints import SENET_BLOCKS, TIMM_STAGES, senet_se_resnet50_state, timm_mobilenetv1_state
from tiny import randomised

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    """A loopback port with nothing listening: a connection to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _camrepro(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env_path = str(ROOT / "src")
    return subprocess.run([sys.executable, "-m", "camrepro", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_offline_weights_download_fails_once_with_one_hint(tmp_path):
    """Connection refused is not a transient error: one attempt, no retries, the hint printed once."""
    url = f"http://127.0.0.1:{_closed_port()}/vgg16-397923af.pth"
    res = _camrepro("weights", "vgg16", "--out", "w/vgg16.pth", "--downloads", "dl", "--url", url, "-q",
                    cwd=tmp_path)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.count("retrying") == 0, res.stderr  # attempts: exactly one
    assert res.stderr.count("place it at") == 1, res.stderr  # the hint, once
    assert f"place it at {Path('dl') / 'vgg16-397923af.pth'}" in res.stderr
    assert not (tmp_path / "w").exists()


# ----------------------------------------------------------------------------- checkpoints' layouts
# The source layouts are rebuilt in tests/checkpoints.py from their documented architectures: Cadene's
# pretrainedmodels senet.py (se_resnet50: SENet(SEResNetBottleneck, [3, 4, 6, 3], reduction 16,
# inplanes 64, 7x7 stem, 1x1 downsample)) and timm's efficientnet.py (_gen_mobilenet_v1: stem 32,
# 'dsa' blocks r1 c64 / r2 s2 c128 / r2 s2 c256 / r6 s2 c512 / r2 s2 c1024, no head conv). Random
# values; each checkpoint is served, fetched and converted by the real weights path, and the network
# it feeds must compute what the source architecture computes with those tensors.


def _f_bn(x: torch.Tensor, s: dict, p: str) -> torch.Tensor:
    return F.batch_norm(x, s[p + "running_mean"], s[p + "running_var"], s[p + "weight"], s[p + "bias"], False,
                        0.0, 1e-5)  # fmt: skip


def senet_forward(s: dict, x: torch.Tensor) -> torch.Tensor:
    """SENet's SE-ResNet50 features (pretrainedmodels senet.py semantics: stride on conv1 of the
    block, max pool 3/2 in ceil mode), with layer4 at stride 1 (the WSOL variant)."""
    x = F.relu(_f_bn(F.conv2d(x, s["layer0.conv1.weight"], stride=2, padding=3), s, "layer0.bn1."))
    x = F.max_pool2d(x, 3, 2, ceil_mode=True)
    for n, blocks in enumerate(SENET_BLOCKS, 1):
        for b in range(blocks):
            p = f"layer{n}.{b}."
            stride = 2 if b == 0 and n in (2, 3) else 1
            out = F.relu(_f_bn(F.conv2d(x, s[p + "conv1.weight"], stride=stride), s, p + "bn1."))
            out = F.relu(_f_bn(F.conv2d(out, s[p + "conv2.weight"], padding=1), s, p + "bn2."))
            out = _f_bn(F.conv2d(out, s[p + "conv3.weight"]), s, p + "bn3.")
            gate = F.adaptive_avg_pool2d(out, 1)
            gate = F.relu(F.conv2d(gate, s[p + "se_module.fc1.weight"], s[p + "se_module.fc1.bias"]))
            gate = torch.sigmoid(F.conv2d(gate, s[p + "se_module.fc2.weight"], s[p + "se_module.fc2.bias"]))
            residual = x
            if b == 0:
                residual = _f_bn(F.conv2d(x, s[p + "downsample.0.weight"], stride=stride), s, p + "downsample.1.")
            x = F.relu(out * gate + residual)
    return x


def timm_mobilenetv1_forward(s: dict, x: torch.Tensor) -> torch.Tensor:
    """timm's MobileNetV1 features (ReLU6, inputs at IMAGENET_INCEPTION_MEAN/STD) with the last
    stride-2 block at stride 1 (the WSOL variant). `x` is normalised with ImageNet's mean/std."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = ((x * std + mean) - 0.5) / 0.5
    x = F.relu6(_f_bn(F.conv2d(x, s["conv_stem.weight"], stride=2, padding=1), s, "bn1."))
    for stage, (_, blocks, stride) in enumerate(TIMM_STAGES):
        for b in range(blocks):
            p = f"blocks.{stage}.{b}."
            st = stride if b == 0 and stage < len(TIMM_STAGES) - 1 else 1
            x = F.conv2d(x, s[p + "conv_dw.weight"], stride=st, padding=1, groups=x.shape[1])
            x = F.relu6(_f_bn(x, s, p + "bn1."))
            x = F.relu6(_f_bn(F.conv2d(x, s[p + "conv_pw.weight"]), s, p + "bn2."))
    return x


def _serve(file_server, name: str, state: dict) -> str:
    buf = io.BytesIO()
    torch.save(state, buf)
    body = buf.getvalue()
    filename = name.format(sha=hashlib.sha256(body).hexdigest()[:8])
    file_server.files[filename] = body
    return file_server.url(filename)


@pytest.mark.parametrize(
    "arch, model, state_fn, forward, filename",
    [
        ("se-resnet50", "resnet50-se", senet_se_resnet50_state, senet_forward, "se_resnet50-{sha}.pth"),
        ("mobilenet-v1", "mobilenet-v1", timm_mobilenetv1_state, timm_mobilenetv1_forward, "pytorch_model.bin"),
    ],
)
def test_published_checkpoint_layouts_load_every_tensor_and_compute_the_source_network(
    file_server, tmp_path, arch, model, state_fn, forward, filename
):
    source = state_fn()
    url = _serve(file_server, filename, source)
    out = fetch_weights(arch, tmp_path / f"{arch}.pth", tmp_path / "dl", url=url, progress=False)
    net = build_model(model, 5, pretrained=out).eval()
    ours = net.features.state_dict()
    dropped = {k for k in source if k.startswith(("last_linear.", "classifier."))}
    # every tensor of the backbone comes from the checkpoint, each used once, none left over but the classifier
    assert len(ours) == len(source) - len(dropped)
    assert all(any(torch.equal(v, w) for w in source.values()) for v in ours.values())
    if arch == "se-resnet50":  # the 64 SE tensors (16 blocks x 2 convs x weight, bias) are SENet's
        se = {k: v for k, v in ours.items() if ".se." in k}
        assert len(se) == 64
        assert torch.equal(se["layer3.5.se.3.bias"], source["layer3.5.se_module.fc2.bias"])
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(net.features(x), forward(source, x), rtol=1e-4, atol=1e-4)


def test_torchvision_checkpoints_are_the_papers_era_v1_weights():
    """ResNet50's torchvision DEFAULT is V2 (2021 recipe); the registry names V1 for every
    torchvision architecture, and SE-ResNet50 is SENet's own release, not torchvision's ResNet50."""
    for arch in ("vgg16", "alexnet", "googlenet"):
        assert CHECKPOINTS[arch].url == torchvision.models.get_model_weights(arch).IMAGENET1K_V1.url
    assert CHECKPOINTS["inception-v3"].url == torchvision.models.get_model_weights("inception_v3").IMAGENET1K_V1.url
    assert CHECKPOINTS["se-resnet50"].url.endswith("/se_resnet50-ce0d4300.pth")
    assert "mobilenetv1_100.ra4_e3600_r224_in1k" in CHECKPOINTS["mobilenet-v1"].url


def spg_inception_forward(tv: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """wsolevaluation wsol/inception.py:172-190 (InceptionCam.forward, large_feature_map False)
    written with torchvision's Inception3 blocks: Conv2d_1a_3x3 at padding 1 (:140), both pools
    after the stem at padding 1 in ceil mode (:175, :178), a third pool after Mixed_5d (:184),
    Mixed_6a at stride 1 and padding 1 (InceptionB(288, 3, 1, 1), :150 and :73-89)."""

    def conv(block, y, **kw):  # a BasicConv2d with other stride/padding, same tensors
        return F.relu(block.bn(F.conv2d(y, block.conv.weight, **kw)))

    x = tv._transform_input(x)
    x = conv(tv.Conv2d_1a_3x3, x, stride=2, padding=1)
    x = tv.Conv2d_2b_3x3(tv.Conv2d_2a_3x3(x))
    x = F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)
    x = tv.Conv2d_4a_3x3(tv.Conv2d_3b_1x1(x))
    x = F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)
    x = tv.Mixed_5d(tv.Mixed_5c(tv.Mixed_5b(x)))
    x = F.max_pool2d(x, 3, 2, ceil_mode=True)
    b = tv.Mixed_6a
    x = torch.cat([conv(b.branch3x3, x, padding=1),
                   conv(b.branch3x3dbl_3, b.branch3x3dbl_2(b.branch3x3dbl_1(x)), padding=1),
                   F.max_pool2d(x, 3, 1, padding=1)], 1)  # fmt: skip
    return tv.Mixed_6e(tv.Mixed_6d(tv.Mixed_6c(tv.Mixed_6b(x))))


def test_inception_v3_key_map_loads_torchvision_inception_v3_into_the_spg_network(file_server, tmp_path):
    """Rethinking CAM's "GoogleNet" is SPG's Inception-v3 (wsolevaluation wsol/inception.py): every
    tensor of torchvision's inception_v3 through Mixed_6e is used, AuxLogits, Mixed_7* and fc are
    dropped, and the network computes SPG's Mixed_6e on them."""
    tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    source = randomised(tv, 3)
    tv.eval()
    url = _serve(file_server, "inception_v3_google-{sha}.pth", source)
    out = fetch_weights("inception-v3", tmp_path / "inception-v3.pth", tmp_path / "dl", url=url, progress=False)
    net = build_model("inception-v3-spg", 5, pretrained=out).eval()
    assert net.transform_input  # torchvision's Inception-v3 weights expect (x - 0.5) / 0.5
    ours = net.features.state_dict()
    kept = {k for k in source if not k.startswith(("AuxLogits.", "Mixed_7", "fc."))}
    assert {k for k in ours if not k.startswith("extra.")} == kept
    assert all(torch.equal(ours[k], source[k]) for k in kept)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        reference = spg_inception_forward(tv, x)
        assert reference.shape[-2:] == (14, 14)  # 224 -> 112 -> 110 -> 56 -> 54 -> 28 -> 14
        torch.testing.assert_close(net.features.trunk(x), reference, rtol=1e-4, atol=1e-4)


def _served_weights(file_server, name: str, state: dict) -> str:
    buf = io.BytesIO()
    torch.save(state, buf)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest()[:8]
    filename = f"{name}-{digest}.pth"
    file_server.files[filename] = body
    return filename


def test_weights_download_verifies_torchvisions_hash_prefix(file_server, tmp_path):
    state = torchvision.models.alexnet(weights=None).state_dict()
    good = _served_weights(file_server, "alexnet-owt", state)
    out = fetch_weights(
        "alexnet", tmp_path / "alexnet.pth", tmp_path / "dl", url=file_server.url(good), progress=False
    )
    loaded, transform = read_weights(out)
    assert not transform and all(torch.equal(loaded[k], state[k]) for k in state)
    build_model("alexnet-gap", 5, pretrained=out)  # the artifact feeds the model registry
    file_server.files["alexnet-owt-00000000.pth"] = file_server.files[good]
    with pytest.raises(DownloadError, match="does not start with 00000000"):
        fetch_weights(
            "alexnet",
            tmp_path / "bad.pth",
            tmp_path / "dl",
            url=file_server.url("alexnet-owt-00000000.pth"),
            progress=False,
        )
    assert not (tmp_path / "dl" / "alexnet-owt-00000000.pth").exists() and not (tmp_path / "bad.pth").exists()
    with pytest.raises(DownloadError, match=r"place it at .*vgg16-397923af.pth"):
        fetch_weights(
            "vgg16",
            tmp_path / "v.pth",
            tmp_path / "dl",
            url="http://127.0.0.1:9/vgg16-397923af.pth",
            progress=False,
        )


def test_pretrain_writes_weights_the_cam_networks_load(tmp_path):
    imagenet = tmp_path / "imagenet"
    generate("synthetic-imagenet", 0, imagenet, scale=0.1, progress=False)
    out = pretrain(
        "googlenet",
        imagenet,
        tmp_path / "googlenet.pth",
        width=0.0625,
        epochs=1,
        batch_size=16,
        crop=48,
        resize=56,
        progress=False,
    )
    state, transform = read_weights(out)
    assert transform is False and "inception5b.branch1.conv.weight" in state
    model = build_model("googlenet-gap", 3, pretrained=out, width=0.0625)
    assert model.features.transform_input is False
    assert torch.equal(
        model.features.inception4e.branch1.conv.weight, state["inception4e.branch1.conv.weight"]
    )
    # Its work folder is a cache: new options (here two epochs) start over instead of failing on
    # the finished checkpoint of the old ones, as a changed `models.pretrain` config needs.
    pretrain("googlenet", imagenet, tmp_path / "googlenet.pth", width=0.0625, epochs=2, batch_size=16, crop=48,
             resize=56, progress=False)  # fmt: skip
    log = (tmp_path / "googlenet.pretrain" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log if json.loads(line)["event"] == "epoch"] == [0, 1]


def test_weights_listed_in_the_checksum_list_are_checked_against_it_not_their_name(
    file_server, tmp_path, monkeypatch
):
    """Through a mirror (CAMREPRO_MIRROR) a stand-in file keeps torchvision's name; the list
    (CAMREPRO_CHECKSUMS) says its digest, which replaces the name's hash prefix."""
    state = torchvision.models.alexnet(weights=None).state_dict()
    served = _served_weights(file_server, "alexnet-owt", state)
    url = torchvision.models.get_model_weights("alexnet").DEFAULT.url  # .../alexnet-owt-7be5be79.pth
    path = url.split("://", 1)[1]
    file_server.files[path] = file_server.files[served]
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{hashlib.sha256(file_server.files[served]).hexdigest()}  {path}\n")
    monkeypatch.setenv("CAMREPRO_MIRROR", file_server.base_url)
    monkeypatch.setenv("CAMREPRO_CHECKSUMS", str(sums))
    out = fetch_weights("alexnet", tmp_path / "alexnet.pth", tmp_path / "dl", progress=False)
    loaded, _ = read_weights(out)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert file_server.requests[-1][0] == path
    sums.write_text(f"{'0' * 64}  {path}\n")  # a list that does not match the file is refused
    (tmp_path / "dl" / url.rsplit("/", 1)[1]).unlink()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch_weights("alexnet", tmp_path / "again.pth", tmp_path / "dl", progress=False)


def test_a_pretrained_network_is_used_as_it_is_with_the_head_its_pretraining_trained(
    tiny_pretrained, tiny_cub, tmp_path
):
    """The embedded default's CAM-paper originals are the networks the weights job pretrained on the
    ImageNet stand-in, head included: the file holds the whole network (AlexNet: its BatchNorm folded,
    the GAP head of PRETRAIN_MODEL), and load_as_is returns exactly the pretraining's trained model."""
    from camrepro.data.metadata import DatasetInfo
    from camrepro.errors import CamreproError
    from camrepro.models.io import load_as_is, load_trained

    trained, _ = load_trained(next((tiny_pretrained.parent / "alexnet.pretrain").rglob("model.pt")))
    net, meta = load_as_is("alexnet", tiny_pretrained, tiny_cub)
    assert not net.training and meta["config"]["model"] == "alexnet-gap"
    assert meta["classes"] == DatasetInfo.load(tiny_cub).classes
    x = torch.randn(4, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net(x), trained(x))
    # the same file still gives the backbone to the networks trained from it
    model = build_model("alexnet-gap", 3, pretrained=tiny_pretrained, width=0.0625)
    assert torch.equal(model.features.features[0].weight, net.features.features[0].weight)
    # its head's classes are the stand-in's: a dataset of other classes is refused
    other = tmp_path / "other"
    other.mkdir()
    DatasetInfo("other", [f"c{i}" for i in range(5)], ["test"]).save(other)
    n = len(meta["classes"])
    with pytest.raises(CamreproError, match=rf"own head has {n} classes, .*other 5"):
        load_as_is("alexnet", tiny_pretrained, other)
