"""Training: model and checkpoint files that cannot run code, divergence, option validation."""

import json
import math
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

from camrepro.data.synthetic import generate
from camrepro.errors import CamreproError
from camrepro.layout import model_file
from camrepro.models import build_model
from camrepro.models.io import load_trained
from camrepro.train import TrainConfig, _save, param_groups, train, train_seeds
from tiny import TINY_RUN, popen_cli, set_args

TINY = {"model": "vgg16-gap", "width": 0.0625, "batch_size": 8, "resize": 56, "crop": 48, "log_every": 1}


@pytest.fixture(scope="module")
def cub(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "cub"
    generate("synthetic-cub", 0, out, scale=0.1, progress=False)  # 12 classes, 24 train images
    return out


@pytest.fixture(scope="module")
def trained(cub, tmp_path_factory) -> Path:
    return train(
        TrainConfig(dataset=str(cub), epochs=1, **TINY), tmp_path_factory.mktemp("run"), progress=False
    )


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "camrepro", *args], capture_output=True, text=True, timeout=300, check=False
    )


class _WritesMarker:
    """Unpickling this object runs code: it writes `marker`, as a hostile shared file would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def _hostile(path: Path, marker: Path, like: Path) -> Path:
    """A file shaped like the camrepro file `like`, plus one object that runs code when unpickled."""
    state = torch.load(like, weights_only=True)
    state["note"] = _WritesMarker(marker)
    torch.save(state, path)
    return path


def _error_of(fn, *args, **kw) -> str:
    try:
        fn(*args, **kw)
    except CamreproError as exc:
        return str(exc)
    return "no error"


def test_a_model_file_that_would_run_code_is_refused_naming_it(trained, cub, tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "shared").mkdir()
    model = _hostile(tmp_path / "shared" / "model.pt", marker, trained)
    error = _error_of(load_trained, model)
    assert not marker.exists()  # nothing in the file ran
    assert "not a camrepro model" in error and str(model) in error, error
    assert "weights_only" not in error  # torch's advice to load it anyway is not passed on
    # what a user runs on a model.pt pulled from a shared DVC remote
    proc = _cli("extract", "--model", str(model), "--dataset", str(cub), "--split", "test",
                "--out", str(tmp_path / "ext"), "--device", "cpu", "-q")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert str(model) in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not (tmp_path / "ext").exists()
    assert model.exists()  # the user's file stays


def test_a_checkpoint_that_would_run_code_is_refused_on_resume(trained, cub, tmp_path):
    marker = tmp_path / "marker"
    _hostile(tmp_path / "checkpoint.pt", marker, trained.parent / "checkpoint.pt")
    error = _error_of(train, TrainConfig(dataset=str(cub), epochs=1, **TINY), tmp_path, progress=False)
    assert not marker.exists()
    assert "not a camrepro checkpoint" in error and str(tmp_path / "checkpoint.pt") in error, error
    assert not (tmp_path / "model.pt").exists()


def _plain_types(obj, where="") -> list[str]:
    """Paths inside `obj` whose value is not a tensor or a plain JSON-like value."""
    if obj is None or isinstance(obj, bool | int | float | str | torch.Tensor):
        return []
    if isinstance(obj, dict):
        bad_keys = [f"{where} key {k!r}" for k in obj if not isinstance(k, str | int)]
        return bad_keys + [p for k, v in obj.items() for p in _plain_types(v, f"{where}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _plain_types(v, f"{where}[{i}]")]
    return [f"{where}: {type(obj).__name__}"]


def test_model_and_checkpoint_hold_only_tensors_and_plain_values(trained):
    for path in (trained, trained.parent / "checkpoint.pt"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert _plain_types(state) == [], path
    model, meta = load_trained(trained)
    saved = torch.load(trained, weights_only=True)["model"]
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)
    assert saved._metadata == model.state_dict()._metadata  # module versions load_state_dict reads
    assert meta["config"]["epochs"] == 1 and meta["num_classes"] == 12


def test_metadata_of_other_types_is_saved_as_plain_values(tmp_path):
    state = {
        "config": TrainConfig(model="vgg16-gap", dataset="d"), "where": tmp_path, "shape": (2, 3),
        "loss": np.float32(0.5), "counts": np.arange(3), "model": torch.nn.Linear(2, 1).state_dict(),
    }  # fmt: skip
    _save(tmp_path / "f.pt", state)
    loaded = torch.load(tmp_path / "f.pt", weights_only=True)
    assert _plain_types(loaded) == []
    assert loaded["config"]["lr"] == 0.01 and loaded["where"] == str(tmp_path) and loaded["shape"] == [2, 3]
    assert loaded["loss"] == 0.5 and loaded["counts"].tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="set does not belong"):
        _save(tmp_path / "g.pt", {"classes": {"a", "b"}})
    assert not list(tmp_path.glob("g.pt*"))


@pytest.mark.parametrize(
    "options, needle",
    [
        # the loss is finite at step 0; the weights it blows up give inf/NaN at the next steps
        ({"lr": 1e30}, "loss became"),  # seen at the step's progress line
        ({"lr": 1e30, "log_every": 100}, "loss became"),  # no progress line in the epoch: seen at its end
    ],
)
def test_a_diverging_run_stops_and_writes_no_model(cub, tmp_path, options, needle):
    cfg = TrainConfig(dataset=str(cub), epochs=1, **(TINY | options))
    with pytest.raises(CamreproError, match=needle) as info:
        train(cfg, tmp_path / "run", progress=False)
    message = str(info.value)
    assert str(tmp_path / "run") in message and "epoch 1/1" in message and "step" in message
    assert "lower lr" in message
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "model.pt" not in left and "checkpoint.pt" not in left and not [n for n in left if ".tmp-" in n]
    for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"log holds {c}"))  # valid JSON only


@pytest.mark.parametrize(
    "option, value, needle",
    [
        ("epochs", "abc", "positive integer"),
        ("epochs", -1, "positive integer"),
        ("epochs", 0, "positive integer"),
        ("epochs", 2.5, "positive integer"),
        ("epochs", True, "positive integer"),
        ("lr", -1, "finite number > 0"),
        ("lr", 0, "finite number > 0"),
        ("lr", math.inf, "finite number > 0"),
        ("lr", math.nan, "finite number > 0"),
        ("lr", "fast", "finite number > 0"),
        ("batch_size", 0, "positive integer"),
        ("resize", 0, "positive integer"),
        ("crop", 300, "is larger than resize 256"),
        ("device", "tpu", "auto, cpu, cuda, cuda:N"),
        ("device", "cuda:x", "auto, cpu, cuda, cuda:N"),
        ("workers", -1, "integer >= 0"),
        ("log_every", 0, "positive integer"),
        ("lr_decay_every", 0, "positive integer"),
        ("lr_decay", 0, "finite number > 0"),
        ("lr_new_ratio", math.inf, "finite number > 0"),
        ("momentum", -0.5, "number in [0, 1)"),
        ("weight_decay", -1e-4, "finite number >= 0"),
        ("width", 0, "finite number > 0"),
        ("theta_tap", 1.5, "number in [0, 1)"),
        ("pool", "avg", "gap, gmp, tap"),
        ("seed", -1, "integer in [0, 4294967295]"),
        ("amp", "yes", "true or false"),
        ("model", 16, "a text value"),
        ("pretrained", 3, "a text value"),
    ],
)
def test_every_bad_training_option_is_refused_naming_it(option, value, needle):
    with pytest.raises(CamreproError) as info:
        TrainConfig.from_dict({"model": "vgg16-gap", "dataset": "data/prepared/cub", option: value})
    assert f"{option}: {value!r}" in str(info.value) and needle in str(info.value), info.value


def test_the_config_source_prefixes_the_error():
    base = {"model": "vgg16-gap", "dataset": "d"}
    for doc in (base | {"epochs": -1}, base | {"learning_rate": 0.1}, {"model": "vgg16-gap"}):
        with pytest.raises(CamreproError, match=r"^config/train\.yaml: "):
            TrainConfig.from_dict(doc, source="config/train.yaml")


def test_nesterov_needs_momentum_and_required_options_are_named():
    with pytest.raises(CamreproError, match="nesterov needs momentum > 0"):
        TrainConfig(model="vgg16-gap", dataset="d", momentum=0.0)
    with pytest.raises(CamreproError, match="missing training option.*dataset"):
        TrainConfig.from_dict({"model": "vgg16-gap"})


def test_good_options_are_normalised_and_equal_the_defaults():
    # PyYAML reads `1e-3` (no dot) as text; numbers are what the optimiser and the checkpoint see
    cfg = TrainConfig.from_dict(
        {"model": "vgg16-gap", "dataset": "d", "lr": "1e-3", "width": 1, "device": "cuda:1"}
    )
    assert cfg.lr == 0.001 and isinstance(cfg.width, float) and cfg.device == "cuda:1"


@pytest.mark.parametrize("value", ["-1", ".inf", "abc"])
def test_bad_epochs_or_lr_on_the_command_line_is_a_clear_error(cub, tmp_path, value):
    option = "lr" if value == ".inf" else "epochs"
    sets = [
        a for k, v in (TINY | {"dataset": str(cub), option: value}).items() for a in ("--set", f"{k}={v}")
    ]
    proc = _cli("train", "--out", str(tmp_path / "run"), "-q", *sets)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{option}: " in proc.stderr
    assert not (tmp_path / "run" / "model.pt").exists()


def test_select_is_no_option_and_old_model_files_with_select_last_still_load(trained, tmp_path):
    with pytest.raises(CamreproError, match=r"unknown training option\(s\): select"):
        TrainConfig.from_dict({"model": "vgg16-gap", "dataset": "d", "select": "best"})
    state = torch.load(trained, weights_only=True)
    for value, loads in (("last", True), ("best", False)):
        state["config"]["select"] = value  # what model files held before the option was dropped
        old = tmp_path / f"{value}.pt"
        torch.save(state, old)
        if loads:
            model, _ = load_trained(old)
            assert all(torch.equal(model.state_dict()[k], v) for k, v in state["model"].items())
        else:
            error = _error_of(load_trained, old)
            assert str(old) in error and "select" in error, error


def test_train_seeds_writes_one_model_per_seed_in_its_seed_folder(cub, tmp_path):
    cfg = TrainConfig(dataset=str(cub), epochs=1, **TINY)
    paths = train_seeds(cfg, tmp_path / "run", [3, 0], progress=False)
    assert paths == [model_file(tmp_path / "run", 3), model_file(tmp_path / "run", 0)]
    three, meta = load_trained(paths[0])
    zero, _ = load_trained(paths[1])
    assert meta["config"]["seed"] == 3
    assert not torch.equal(three.classifier.weight, zero.classifier.weight)  # other seeds, other models
    assert train_seeds(cfg, tmp_path / "single", None, progress=False) == [tmp_path / "single" / "model.pt"]


@pytest.mark.parametrize("name, new", [("vgg16-gap", ("features.extra.", "classifier.")),
                                       ("resnet50-se", ("classifier.",)),
                                       ("vgg16", ("classifier.6.",))])  # fmt: skip
def test_only_the_layers_a_network_adds_train_at_the_higher_rate(name, new):
    model = build_model(name, 5, width=0.125)
    groups = {g["name"]: {id(p) for p in g["params"]} for g in param_groups(model, TrainConfig(name, "d"))}
    added = {n for n, p in model.named_parameters() if id(p) in groups["new"]}
    assert added and all(any(part in n for part in new) for n in added), sorted(added)
    kept = {n for n, p in model.named_parameters() if id(p) in groups["pretrained"]}
    assert kept and not any(any(part in n for part in new) for n in kept), sorted(kept)


def test_lr_fast_moves_a_pretrained_stage_into_the_new_layers_group():
    # ADL's ResNet50-SE: conv1 and layer1-3 at the backbone lr, layer4 with the new layers
    model = build_model("resnet50-se", 5, width=0.125)
    cfg = TrainConfig("resnet50-se", "d", lr=0.01, lr_fast=["features.layer4."])
    groups = {g["name"]: g for g in param_groups(model, cfg)}
    new = {n for n, p in model.named_parameters() if any(p is q for q in groups["new"]["params"])}
    assert any(n.startswith("features.layer4.") and ".se." not in n for n in new)
    assert not any(n.startswith("features.layer3.") and ".se." not in n for n in new)
    assert groups["new"]["lr"] == pytest.approx(0.1) and groups["pretrained"]["lr"] == pytest.approx(0.01)


def test_lr_milestones_decay_at_those_epochs(cub, tmp_path):
    cfg = TrainConfig("vgg16-gap", str(cub), width=0.0625, epochs=3, batch_size=16, resize=40, crop=32,
                      lr=0.001, lr_milestones=[1, 2], lr_decay=0.5, log_every=1000)  # fmt: skip
    train(cfg, tmp_path / "run", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    lrs = [e["lr"][0] for e in logged if "lr" in e]  # logged after each epoch's scheduler step
    assert lrs == pytest.approx([0.0005, 0.00025, 0.00025])  # epochs 0-2 ran at 0.001, 0.0005, 0.00025


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tiny_cub, tmp_path):
    cfg = dict(TINY_RUN, dataset=str(tiny_cub), epochs=4)
    reference = train(TrainConfig(**cfg), tmp_path / "reference", progress=False)

    run = tmp_path / "killed"
    proc = popen_cli("train", "--out", str(run), "-q", "--threads", str(torch.get_num_threads()), *set_args(cfg),
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


def test_corrupt_checkpoint_and_foreign_checkpoint_give_clear_errors(tiny_cub, tmp_path):
    cfg = TrainConfig(dataset=str(tiny_cub), epochs=1, **TINY_RUN)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CamreproError, match="unreadable.*Delete it"):
        train(cfg, tmp_path, progress=False)
    assert not (tmp_path / "model.pt").exists()
    other = tmp_path / "other"
    train(cfg, other, progress=False)
    (other / "model.pt").unlink()
    changed = TrainConfig(dataset=str(tiny_cub), epochs=2, **TINY_RUN)
    with pytest.raises(CamreproError, match="another training config"):
        train(changed, other, progress=False)
    # the workflow's way (camrepro train --restart-if-changed): the new config trains from scratch
    model = train(changed, other, progress=False, restart_if_changed=True)
    assert torch.load(model, weights_only=True)["epochs"] == 2
    epochs = [json.loads(line)["epoch"] for line in (other / "log.jsonl").read_text().splitlines()
              if json.loads(line)["event"] == "epoch"]  # fmt: skip
    assert epochs == [0, 1]  # started over: no resume from the other config's epoch


def test_a_checkpoint_of_other_data_is_never_resumed(tiny_cub, tmp_path):
    """Snakemake reruns a training job when its data was regenerated; the finished checkpoint of the
    old data must not be taken as the new run's result."""
    data = tmp_path / "cub"
    shutil.copytree(tiny_cub, data)
    cfg = TrainConfig(dataset=str(data), epochs=1, **TINY_RUN)
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


def test_a_checkpoint_of_a_network_whose_layers_changed_is_never_resumed(tiny_cub, tmp_path):
    """A change to a network's layers in the code (issue 17: the CAM convs in 2 groups) leaves the
    same config; the old checkpoint's tensors no longer fit, so the rerun starts over."""
    cfg = TrainConfig(dataset=str(tiny_cub), epochs=1, **TINY_RUN)
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    (run / "model.pt").unlink()
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    conv = ckpt["model"]["features.extra.0.weight"]
    ckpt["model"]["features.extra.0.weight"] = conv[:, : conv.shape[1] // 2]  # as if in 2 groups
    torch.save(ckpt, run / "checkpoint.pt")
    with pytest.raises(CamreproError, match="another network"):
        train(cfg, run, progress=False)
    train(cfg, run, progress=False, restart_if_changed=True)
    events = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert "resume" not in events and events.count("epoch") == 1


@pytest.mark.parametrize(
    "sets, needle",
    [
        ({"model": "vgg17-gap"}, "unknown model 'vgg17-gap'"),
        ({"dataset": "/nonexistent/cub"}, "dataset.json not found"),
        ({"learning_rate": 0.1}, "unknown training option(s): learning_rate"),
    ],
)
def test_bad_training_input_is_a_clear_cli_error(tiny_cub, tmp_path, sets, needle):
    cfg = dict(TINY_RUN, dataset=str(tiny_cub), epochs=1) | sets
    proc = popen_cli(
        "train",
        "--out",
        str(tmp_path / "run"),
        "-q",
        *set_args(cfg),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and needle in err, err
    assert not (tmp_path / "run" / "model.pt").exists()


def test_ddp_with_two_processes_on_cpu(tiny_cub, tmp_path):
    """--processes 2 launches torchrun (gloo on CPU): one log, one checkpoint, one model."""
    cfg = dict(TINY_RUN, dataset=str(tiny_cub), epochs=2, batch_size=8, device="cpu")
    proc = popen_cli("train", "--out", str(tmp_path / "ddp"), "--processes", "2", "--threads", "1", "-q", *set_args(cfg),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.count("wrote") == 1
    events = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [0, 1]
    model, meta = load_trained(tmp_path / "ddp" / "model.pt")
    assert meta["epochs"] == 2 and model.classifier.out_features == 12

def test_max_steps_ends_training_after_that_many_steps_in_all(cub, tmp_path):
    """24 training images at batch 8 are 3 steps an epoch; max_steps 4 of 3 epochs runs epoch 1 whole
    and one step of epoch 2, then saves the model; the log shows exactly those steps."""
    cfg = TrainConfig(dataset=str(cub), epochs=3, max_steps=4, **TINY)
    path = train(cfg, tmp_path / "run", progress=False)
    assert path.exists()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [(r["epoch"], r["step"]) for r in log if r["event"] == "step"]
    assert steps == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert [r["epoch"] for r in log if r["event"] == "epoch"] == [0, 1]
    # rerun: resumes at the checkpoint after epoch 2, where the budget is already spent
    before = path.read_bytes()
    train(cfg, tmp_path / "run", progress=False)
    assert [json.loads(x)["event"] for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()][-1] == "resume"
    assert torch.equal(torch.load(path, weights_only=True)["model"]["classifier.weight"],
                       torch.load(__import__("io").BytesIO(before), weights_only=True)["model"]["classifier.weight"])


def test_max_steps_must_be_a_positive_integer():
    with pytest.raises(CamreproError, match="training option max_steps: 0 is not a positive integer"):
        TrainConfig("vgg16-gap", "d", max_steps=0)


@pytest.mark.parametrize("model", ["vgg16-gap", "googlenet-gap"])
def test_channels_last_trains_in_nhwc_on_cpu_too_and_the_same_network(cub, tmp_path, monkeypatch, model):
    """NHWC is a memory layout only, and 1.1-1.8x faster training on CPU (bench/README.md): the
    convolutions must see it there too, and the network trained must be the NCHW one's up to rounding."""
    import camrepro.train as train_module

    layouts: list[bool] = []

    def spied(*args, **kwargs):
        net = build_model(*args, **kwargs)
        first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        first.register_forward_pre_hook(
            lambda _m, inputs: layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last))
        )
        return net

    monkeypatch.setattr(train_module, "build_model", spied)
    states = {}
    for nhwc in (False, True):
        layouts.clear()
        # one step: over more, float rounding grows as in any two trainings that differ in it
        options = TINY | {"model": model, "channels_last": nhwc, "max_steps": 1}
        cfg = TrainConfig(dataset=str(cub), epochs=1, **options)
        states[nhwc] = load_trained(train(cfg, tmp_path / str(nhwc), progress=False))[0].state_dict()
        assert layouts and set(layouts) == {nhwc}
    for name, value in states[False].items():
        if value.is_floating_point():
            assert torch.allclose(value, states[True][name], rtol=1e-4, atol=1e-5), name
