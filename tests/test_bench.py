"""bench/gpu_check.py --smoke: the GPU check runs end to end on CPU (what CI can check of it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_measures_every_model_and_the_loader(tmp_path):
    out = tmp_path / "gpu.json"
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--json", str(out)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["smoke"] and set(doc["models"]) == {"vgg16-gap", "googlenet-gap", "resnet50-se"}
    paper_batch = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["training"]["imagenet"]["batch_size"]
    for name, model in doc["models"].items():
        assert model["forward_gflops"] > 0, name
        assert len(model["runs"]) == 2 and all(r["images_per_s"] > 0 for r in model["runs"]), name
        assert res.stdout.count(f"\n{name} ") == 2
    assert paper_batch == 32  # the figure the GPU run records at the papers' batch
    loader = doc["loader"]
    assert loader["images_per_s"] > 0 and loader["uint8_cache_images_per_s"] > 0
    assert loader["gpu_decode_images_per_s"] is None  # no CUDA in --smoke
    assert doc["bottleneck"] in ("loader", "gpu") and "bottleneck for vgg16-gap" in res.stdout
