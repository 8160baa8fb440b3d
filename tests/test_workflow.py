"""The workflow's data stages end to end through Snakemake, and nothing half-written on failure."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from camrepro.data import synthetic

ROOT = Path(__file__).resolve().parents[1]


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = synthetic.render_image

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "render_image", failing)
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate("synthetic-cub", 0, tmp_path / "out", scale=0.2, progress=False)
    assert list(tmp_path.iterdir()) == []  # no output, no temporary folder


@pytest.mark.slow
def test_snakemake_runs_the_data_stages_and_a_rerun_does_nothing(tmp_path):
    snakemake = shutil.which("snakemake", path=str(Path(sys.executable).parent))
    if snakemake is None:
        pytest.skip("snakemake is not installed in this environment")
    cmd = [
        snakemake,
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(ROOT / "config" / "test.yaml"),
        "--cores",
        "2",
    ]
    env_path = f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}"
    env = {**__import__("os").environ, "PATH": env_path}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("synthetic-cub", "synthetic-event8"):
        report = json.loads((tmp_path / "results" / "data" / f"{name}.verify.json").read_text())
        assert report["dataset"] == name
        assert all(s["images"] > 0 and s["decoded"] for s in report["splits"].values())
    assert (tmp_path / "benchmarks" / "data" / "synthetic-cub.tsv").exists()
    again = subprocess.run(cmd + ["-n"], capture_output=True, text=True, env=env)
    assert "Nothing to be done" in again.stdout + again.stderr
