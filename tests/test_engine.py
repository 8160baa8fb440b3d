"""Training (resume after SIGKILL), GPU claims, weights, extraction and evaluation."""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from camrepro.cam import class_activation_maps
from camrepro.data.metadata import read_split
from camrepro.data.reader import TransformSpec, WSOLDataset, collate
from camrepro.data.synthetic import generate
from camrepro.errors import CamreproError, DownloadError
from camrepro.extract import extract, load_extracted
from camrepro.models import build_model
from camrepro.models.io import load_trained
from camrepro.models.pretrained import read_weights
from camrepro.train import TrainConfig, train
from camrepro.weights import fetch_torchvision_weights, pretrain

TINY = {
    "model": "vgg16-gap",
    "width": 0.0625,
    "batch_size": 8,
    "resize": 56,
    "crop": 48,
    "lr": 0.01,
    "log_every": 1,
}


@pytest.fixture(scope="module")
def cub(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "cub"
    generate("synthetic-cub", 0, out, scale=0.25, progress=False)
    return out


@pytest.fixture(scope="module")
def trained(cub, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    return train(TrainConfig(dataset=str(cub), epochs=2, **TINY), run, progress=False)


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "camrepro", *args], **kw)


def _sets(cfg: dict) -> list[str]:
    out = []
    for k, v in cfg.items():
        out += ["--set", f"{k}={v}"]
    return out


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(cub, tmp_path):
    cfg = dict(TINY, dataset=str(cub), epochs=4)
    reference = train(TrainConfig(**cfg), tmp_path / "reference", progress=False)

    run = tmp_path / "killed"
    proc = _cli("train", "--out", str(run), "-q", "--threads", str(torch.get_num_threads()), *_sets(cfg),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    log = run / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill inside epoch 2 (index 1), after its second step
        lines = log.read_text().splitlines() if log.exists() else []
        if any('"event": "step", "epoch": 1, "step": 2' in line for line in lines):
            break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "model.pt").exists()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert 1 <= state["epoch"] < 4  # the last complete epoch, never a partial one
    killed_log = [json.loads(line) for line in log.read_text().splitlines()]
    assert killed_log[-1]["event"] == "step"  # the kill landed inside an epoch

    resumed = train(TrainConfig(**cfg), run, progress=False)
    events = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert "resume" in events
    a, b = (
        torch.load(reference, weights_only=True)["model"],
        torch.load(resumed, weights_only=True)["model"],
    )
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_corrupt_checkpoint_and_foreign_checkpoint_give_clear_errors(cub, tmp_path):
    cfg = TrainConfig(dataset=str(cub), epochs=1, **TINY)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CamreproError, match="unreadable.*Delete it"):
        train(cfg, tmp_path, progress=False)
    assert not (tmp_path / "model.pt").exists()
    other = tmp_path / "other"
    train(cfg, other, progress=False)
    (other / "model.pt").unlink()
    changed = TrainConfig(dataset=str(cub), epochs=2, **TINY)
    with pytest.raises(CamreproError, match="another training config"):
        train(changed, other, progress=False)
    # the workflow's way (camrepro train --restart-if-changed): the new config trains from scratch
    model = train(changed, other, progress=False, restart_if_changed=True)
    assert torch.load(model, weights_only=True)["epochs"] == 2
    epochs = [json.loads(line)["epoch"] for line in (other / "log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "epoch"]  # fmt: skip
    assert epochs == [0, 1]  # started over: no resume from the other config's epoch


def test_a_checkpoint_of_other_data_is_never_resumed(cub, tmp_path):
    """Snakemake reruns a training job when its data was regenerated; the finished checkpoint of the
    old data must not be taken as the new run's result."""
    data = tmp_path / "cub"
    shutil.copytree(cub, data)
    cfg = TrainConfig(dataset=str(data), epochs=1, **TINY)
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    (run / "model.pt").unlink()  # what Snakemake does before rerunning the job
    shutil.rmtree(data)
    generate("synthetic-cub", 1, data, scale=0.25, progress=False)  # same path, other images
    with pytest.raises(CamreproError, match="another data or pretrained weights"):
        train(cfg, run, progress=False)
    train(cfg, run, progress=False, restart_if_changed=True)
    events = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert "resume" not in events and events.count("epoch") == 1  # trained anew on the new data


@pytest.mark.parametrize(
    "sets, needle",
    [
        ({"model": "vgg17-gap"}, "unknown model 'vgg17-gap'"),
        ({"dataset": "/nonexistent/cub"}, "dataset.json not found"),
        ({"learning_rate": 0.1}, "unknown training option(s): learning_rate"),
    ],
)
def test_bad_training_input_is_a_clear_cli_error(cub, tmp_path, sets, needle):
    cfg = dict(TINY, dataset=str(cub), epochs=1) | sets
    proc = _cli(
        "train",
        "--out",
        str(tmp_path / "run"),
        "-q",
        *_sets(cfg),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and needle in err, err
    assert not (tmp_path / "run" / "model.pt").exists()


def test_weights_for_the_wrong_architecture_are_refused(cub, tmp_path):
    path = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    with pytest.raises(CamreproError, match="does not fit this backbone"):
        train(
            TrainConfig(dataset=str(cub), epochs=1, pretrained=str(path), **(TINY | {"width": 1.0})),
            tmp_path / "r",
            progress=False,
        )
    assert not (tmp_path / "r" / "model.pt").exists()


CLAIM = """
import os, sys, time, types
from camrepro import gpus
def retry_sleep(seconds, said=[]):  # claim_devices sleeps only when it found too few devices free
    if not said:
        print("waiting", flush=True)
        said.append(True)
    time.sleep(seconds)
gpus.time = types.SimpleNamespace(monotonic=time.monotonic, sleep=retry_sleep)
devices = gpus.claim_devices(int(sys.argv[1]), lock_dir=sys.argv[2], timeout=float(sys.argv[3]), poll=0.05)
print(os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(float(sys.argv[4]))
"""


def _claim(count, lock_dir, timeout, hold):
    env = os.environ | {"CAMREPRO_NUM_GPUS": "3"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(count), str(lock_dir), str(timeout), str(hold)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_concurrent_jobs_get_distinct_gpus_and_a_killed_job_frees_its_gpu(tmp_path):
    jobs = [_claim(1, tmp_path, 30, 60) for _ in range(3)]  # held until killed below
    seen = [job.stdout.readline().strip() for job in jobs]
    assert sorted(seen) == ["0", "1", "2"]
    waiting = _claim(1, tmp_path, 30, 0)  # all three taken: it finds none free and waits ...
    assert waiting.stdout.readline().strip() == "waiting"
    assert waiting.poll() is None  # it said so and is retrying: no device, no error
    victim = seen.index("1")
    os.kill(jobs[victim].pid, signal.SIGKILL)  # ... until a holder dies, however it dies
    assert waiting.stdout.readline().strip() == "1"
    waiting.wait(timeout=30)
    for job in jobs:
        job.kill()
        job.wait()
    pair = _claim(2, tmp_path, 10, 0)
    assert sorted(pair.stdout.readline().strip().split(",")) == ["0", "1"]
    pair.wait(timeout=30)
    too_many = _claim(4, tmp_path, 1, 0)
    _, err = too_many.communicate(timeout=30)
    assert too_many.returncode != 0 and "needs 4 GPU(s) but 3 are visible" in err


def test_extracted_cams_equal_cams_recomputed_from_features_and_weights(cub, trained, tmp_path):
    out = extract(trained, cub, "test", tmp_path / "ext", size=64, batch_size=16, progress=False)
    manifest, arrays = load_extracted(out)
    assert (
        manifest["images"]
        == len(arrays["image_ids"])
        == len(WSOLDataset(cub, "test", TransformSpec(train=False)))
    )
    model, _ = load_trained(trained)
    data = WSOLDataset(cub, "test", TransformSpec(train=False, crop=64, flip=False))
    batch = collate([data[i] for i in range(10)])
    with torch.no_grad():
        logits, feats = model(batch["image"], return_features=True)
        cams = class_activation_maps(
            feats, model.classifier.weight, torch.from_numpy(arrays["cam_classes"][:10])
        )
    assert list(arrays["image_ids"][:10]) == batch["image_id"]
    assert (arrays["cam_classes"][:10, 0] == torch.as_tensor(batch["label"]).numpy()).all()
    assert (arrays["top5"][:10] == logits.topk(5, dim=1).indices.numpy()).all()
    np.testing.assert_allclose(
        arrays["cams"][:10].astype(np.float32), cams.numpy(), rtol=2e-3, atol=2e-3 * float(cams.abs().max())
    )
    np.testing.assert_allclose(arrays["features"][:10], feats.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    assert not list(tmp_path.glob("ext.tmp-*"))
    sharded = extract(
        trained, cub, "test", tmp_path / "sharded", size=64, batch_size=16, shard_size=20, progress=False
    )
    sharded_manifest, sharded_arrays = load_extracted(sharded)
    assert sharded_manifest["shards"] == 2  # 48 images in batches of 16: shards of 32 and 16
    assert sharded_arrays.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(sharded_arrays[key], arrays[key])


def test_evaluate_cli_writes_the_metrics(cub, trained, tmp_path):
    ext = extract(trained, cub, "test", tmp_path / "ext", size=64, saliency=True, progress=False)
    for source in ("cam", "saliency"):
        out = tmp_path / f"{source}.json"
        proc = _cli(
            "evaluate", "--extracted", str(ext), "--dataset", str(cub), "--out", str(out), "--source", source
        )
        assert proc.wait(timeout=300) == 0
        result = json.loads(out.read_text())
        assert set(result) >= {
            "classification_error",
            "localization_error",
            "gt_known_loc",
            "top1_loc",
            "max_box_acc",
            "max_box_acc_v2",
            "pxap",
        }
        assert result["images"] == 48
        # Top-1 Loc can never exceed GT-known Loc, nor top-1 localization beat classification
        assert result["top1_loc"] <= result["gt_known_loc"]
        assert result["localization_error"]["top1"] >= result["classification_error"]["top1"]
        assert 0.0 < result["box_area"] <= 100.0
        # GT box area from the metadata, rescaled to the 64 px evaluation size with +1 pixel areas
        meta = read_split(cub, "test")
        areas = []
        for image_id in meta.image_ids:
            w, h = meta.sizes[image_id]
            scaled = [
                [int(v * 64 / (w if k % 2 == 0 else h)) for k, v in enumerate(b)]
                for b in meta.boxes[image_id]
            ]
            areas.append(np.mean([(b[2] - b[0] + 1) * (b[3] - b[1] + 1) / 64**2 * 100 for b in scaled]))
        assert result["gt_box_area"] == pytest.approx(np.mean(areas))


def _served_weights(file_server, name: str, state: dict) -> str:
    buf = io.BytesIO()
    torch.save(state, buf)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest()[:8]
    filename = f"{name}-{digest}.pth"
    file_server.files[filename] = body
    return filename


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
    out = fetch_torchvision_weights("alexnet", tmp_path / "alexnet.pth", tmp_path / "dl", progress=False)
    loaded, _ = read_weights(out)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert file_server.requests[-1][0] == path
    sums.write_text(f"{'0' * 64}  {path}\n")  # a list that does not match the file is refused
    (tmp_path / "dl" / url.rsplit("/", 1)[1]).unlink()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch_torchvision_weights("alexnet", tmp_path / "again.pth", tmp_path / "dl", progress=False)


def test_weights_download_verifies_torchvisions_hash_prefix(file_server, tmp_path):
    state = torchvision.models.alexnet(weights=None).state_dict()
    good = _served_weights(file_server, "alexnet-owt", state)
    out = fetch_torchvision_weights(
        "alexnet", tmp_path / "alexnet.pth", tmp_path / "dl", url=file_server.url(good), progress=False
    )
    loaded, transform = read_weights(out)
    assert not transform and all(torch.equal(loaded[k], state[k]) for k in state)
    build_model("alexnet-gap", 5, pretrained=out)  # the artifact feeds the model registry
    file_server.files["alexnet-owt-00000000.pth"] = file_server.files[good]
    with pytest.raises(DownloadError, match="does not start with 00000000"):
        fetch_torchvision_weights(
            "alexnet",
            tmp_path / "bad.pth",
            tmp_path / "dl",
            url=file_server.url("alexnet-owt-00000000.pth"),
            progress=False,
        )
    assert not (tmp_path / "dl" / "alexnet-owt-00000000.pth").exists() and not (tmp_path / "bad.pth").exists()
    with pytest.raises(DownloadError, match=r"place it at .*vgg16-397923af.pth"):
        fetch_torchvision_weights(
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


def test_ddp_with_two_processes_on_cpu(cub, tmp_path):
    """--processes 2 launches torchrun (gloo on CPU): one log, one checkpoint, one model."""
    cfg = dict(TINY, dataset=str(cub), epochs=2, batch_size=8, device="cpu")
    proc = _cli("train", "--out", str(tmp_path / "ddp"), "--processes", "2", "--threads", "1", "-q", *_sets(cfg),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.count("wrote") == 1
    events = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [0, 1]
    model, meta = load_trained(tmp_path / "ddp" / "model.pt")
    assert meta["epochs"] == 2 and model.classifier.out_features == 12
