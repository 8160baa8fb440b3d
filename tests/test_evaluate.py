"""Evaluation of an extraction folder: damaged shards are named."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from camrepro.data.synthetic import generate
from camrepro.errors import CamreproError
from camrepro.evaluate import evaluate
from camrepro.extract import extract
from camrepro.train import TrainConfig, train


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    cub = root / "cub"
    generate("synthetic-cub", 0, cub, scale=0.1, progress=False)  # 24 test images
    cfg = TrainConfig(
        model="vgg16-gap", dataset=str(cub), width=0.0625, batch_size=8, resize=56, crop=48, epochs=1
    )
    model = train(cfg, root / "run", progress=False)
    return extract(model, cub, "test", root / "ext", size=48, batch_size=8, shard_size=8, progress=False), cub


@pytest.mark.parametrize("key", ["cams", "top5_scores"])
def test_non_finite_values_in_a_shard_are_an_error_naming_the_shard(extracted, tmp_path, key):
    ext, cub = extracted
    assert evaluate(ext, cub)["images"] == 24  # the extraction as written evaluates
    damaged = tmp_path / "ext"
    shutil.copytree(ext, damaged)
    shard = damaged / "shard-00001.npz"  # images 8..15
    with np.load(shard) as f:
        arrays = {k: f[k] for k in f.files}
    arrays[key][3] = np.nan  # what a model with NaN weights extracts
    np.savez_compressed(shard, **arrays)
    with pytest.raises(CamreproError) as info:
        evaluate(damaged, cub)
    message = str(info.value)
    assert str(shard) in message and key in message and str(arrays["image_ids"][3]) in message, message
    out = tmp_path / "metrics.json"
    proc = subprocess.run(
        [sys.executable, "-m", "camrepro", "evaluate", "--extracted", str(damaged), "--dataset", str(cub),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and str(shard) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not out.exists()
