"""GPU-hours of a config: FLOPs from the models, per job family, estimated or measured."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from camrepro.config import load_config
from camrepro.cost import estimate, forward_flops, load_throughput
from camrepro.plan import build_plan

ROOT = Path(__file__).resolve().parents[1]
PAPER = load_config(ROOT / "config" / "paper.yaml")


def test_forward_flops_are_the_published_multiply_adds_of_the_networks():
    # VGG16's conv layers at 224 px: 15.35 GMAC (Simonyan & Zisserman's 138M-parameter net minus
    # its FC layers); the CAM variant adds a 3x3 conv of 1024 units on 14x14 (0.92 GMAC); GoogLeNet
    # 1.5 GMAC (Szegedy et al. 2015: "1.5 billion multiply-adds").
    assert forward_flops("vgg16-gap", 1.0, 224) / 2e9 == pytest.approx(15.35 + 0.92 + 0.0, rel=0.02)
    assert forward_flops("googlenet", 1.0, 224) / 2e9 == pytest.approx(1.5, rel=0.05)
    # a quarter of the pixels, about a quarter of the cost
    assert forward_flops("vgg16-gap", 1.0, 112) == pytest.approx(forward_flops("vgg16-gap", 1.0, 224) / 4, rel=0.01)


def test_paper_config_cost_is_estimated_and_imagenet_training_dominates(tmp_path):
    config = copy.deepcopy(PAPER) | {"data_root": str(tmp_path)}  # nothing prepared: published counts
    cost = estimate(build_plan(config), config)
    assert cost.estimated and all(b.startswith("estimated") for b in cost.basis.values())
    plan = build_plan(config)
    trained = [r for r in plan.runs.values() if not r.as_is]  # the CAM paper's originals train nowhere
    assert len(trained) == len(plan.runs) - 3
    assert cost.jobs == {"weights": len(plan.weights), "train": len(trained),
                         "extract": len(plan.extractions), "svm": len(plan.svms)}  # fmt: skip
    assert cost.hours["weights"] == 0.0  # published checkpoints, downloaded
    assert cost.hours["train"] > 10 * (cost.hours["extract"] + cost.hours["svm"]) > 0
    # ten times the epochs, ten times the training cost; the rest unchanged
    longer = copy.deepcopy(config)
    recipes = {id(r): r for role in longer["recipes"].values() for r in role.values()}  # YAML anchors share
    for schedule in [longer["training"]["imagenet"], longer["training"]["cub"], *recipes.values()]:
        if "epochs" in schedule:
            schedule["epochs"] *= 10
    more = estimate(build_plan(longer), longer)
    assert more.hours["train"] == pytest.approx(10 * cost.hours["train"])
    assert more.hours["extract"] == cost.hours["extract"]


def test_measured_throughput_replaces_the_estimate_for_its_model(tmp_path):
    config = copy.deepcopy(PAPER) | {"data_root": str(tmp_path)}
    plan = build_plan(config)
    bench = tmp_path / "gpu.json"
    bench.write_text(json.dumps({"smoke": False, "models": {"vgg16-gap": {"runs": [
        {"images_per_s": 1000.0}, {"images_per_s": 4000.0}]}}}))  # fmt: skip
    measured = estimate(plan, config, load_throughput(bench))
    guessed = estimate(plan, config)
    assert measured.basis["vgg16-gap"] == "measured 4000 training images/s"
    assert measured.basis["resnet50-se"].startswith("estimated")
    assert measured.hours["train"] != guessed.hours["train"]
    # a --smoke run's figures are CPU figures: never taken as measured GPU throughput
    bench.write_text(json.dumps({"smoke": True, "models": {"vgg16-gap": {"runs": [{"images_per_s": 9.0}]}}}))
    assert load_throughput(bench) == {}


def test_max_steps_and_per_class_shrink_the_cost_to_the_rehearsal(tmp_path):
    config = copy.deepcopy(PAPER) | {"data_root": str(tmp_path)}
    small = copy.deepcopy(config)
    for name in small["datasets"]:
        small["datasets"][name]["per_class"] = 2
    for role in ("imagenet", "cub"):
        small["training"][role] |= {"max_steps": 1, "batch_size": 2}
    full, tiny = estimate(build_plan(config), config), estimate(build_plan(small), small)
    assert tiny.total < full.total / 1000


def test_workflow_check_prints_the_gpu_hours_per_family():
    res = subprocess.run([sys.executable, "-m", "camrepro", "workflow", "check", "--config",
                          str(ROOT / "config" / "paper.yaml")], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert res.returncode == 0, res.stderr
    plan = build_plan(PAPER)
    assert f"{len(plan.runs) - 3} training runs, 3 networks used as they are, " in res.stdout
    assert f"GPU-hours (estimated, one H200 per job): weights 0.00 ({len(plan.weights)} jobs), train " in res.stdout
    assert "vgg16-gap: estimated: 32.5 GFLOP/image at 40% of 989 TFLOP/s bf16" in res.stdout


def test_ten_crops_cost_ten_forward_passes_and_a_network_used_as_it_is_runs_once(tmp_path):
    def extract_hours(seeds: list[int], extraction) -> float:
        config = copy.deepcopy(PAPER) | {"data_root": str(tmp_path), "seeds": seeds}
        plan = build_plan(config)
        alone = dataclasses.replace(plan, extractions={extraction.id: extraction}, weights={}, runs={
            k: r for k, r in plan.runs.items() if k == extraction.run}, svms={})  # fmt: skip
        return estimate(alone, config).hours["extract"]

    plan = build_plan(copy.deepcopy(PAPER) | {"data_root": str(tmp_path)})
    ten = next(e for e in plan.extractions.values() if e.transform == "tencrop" and not e.saliency and not e.as_is)
    one = dataclasses.replace(ten, transform="centercrop")
    assert extract_hours([0], one) > 0
    assert extract_hours([0], ten) == pytest.approx(10 * extract_hours([0], one))
    assert extract_hours([0, 1, 2], ten) == pytest.approx(3 * extract_hours([0], ten))  # one network a seed
    photos = next(e for e in plan.extractions.values() if e.run is None)  # efficientnet-lite0 as it is
    photos = dataclasses.replace(photos, dataset="cub")  # a set with a published size, so nonzero
    assert extract_hours([0], photos) > 0
    assert extract_hours([0, 1, 2], photos) == pytest.approx(extract_hours([0], photos))


def test_a_run_costs_its_own_seeds_and_an_svm_job_the_seeds_its_experiment_reads(tmp_path):
    def hours(chosen: dict, family: str, keep) -> float:
        config = copy.deepcopy(PAPER) | {"data_root": str(tmp_path), "seeds": [0, 1, 2],
                                         "seeds_by_experiment": chosen}  # fmt: skip
        plan = build_plan(config)
        alone = dataclasses.replace(plan, weights={}, extractions={}, svms={k: j for k, j in plan.svms.items()
                                    if keep(j)}, runs={k: r for k, r in plan.runs.items() if keep(r)})  # fmt: skip
        return estimate(alone, config).hours[family]

    resnet = lambda r: getattr(r, "model", None) == "resnet50-se" and r.pool == "gap"  # noqa: E731
    def transfer(job) -> bool:  # the Table 5 job on GoogLeNet-GAP's features, and its run
        return getattr(job, "experiment", None) == "cam-transfer" or getattr(job, "model", None) == "googlenet-gap"

    three = hours({}, "train", resnet)
    assert three > 0
    assert hours({"rethinking-backbones-imagenet": [0], "rethinking-backbones-cub": [0]}, "train", resnet) \
        == pytest.approx(three / 3)
    assert hours({"cam-transfer": [0]}, "svm", transfer) == pytest.approx(hours({}, "svm", transfer) / 3)


def test_an_architecture_at_its_own_size_costs_its_own_pixels(tmp_path):
    """models.size_by_arch: AlexNet's training and extraction at 112 px, the other networks' at 224."""

    def hours(size_by_arch: dict, family: str, model: str) -> float:
        config = copy.deepcopy(PAPER) | {"data_root": str(tmp_path)}
        config["models"] = dict(config["models"]) | {"size_by_arch": size_by_arch}
        plan = build_plan(config)
        runs = {k: r for k, r in plan.runs.items() if r.model == model}
        alone = dataclasses.replace(plan, weights={}, svms={}, runs=runs, extractions={
            k: e for k, e in plan.extractions.items() if e.run in runs})  # fmt: skip
        return estimate(alone, config).hours[family]

    ratio = forward_flops("alexnet-gap", 1.0, 112) / forward_flops("alexnet-gap", 1.0, 224)
    assert ratio < 0.5
    for family in ("train", "extract"):
        assert hours({"alexnet": 112}, family, "alexnet-gap") == pytest.approx(ratio * hours({}, family, "alexnet-gap"))
        assert hours({"alexnet": 112}, family, "vgg16-gap") == pytest.approx(hours({}, family, "vgg16-gap"))
