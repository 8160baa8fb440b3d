"""The registry's lookups: tables, report and figures find runs by (role, model, head), never by ids."""

from __future__ import annotations

from pathlib import Path

from camrepro.config import load_config
from camrepro.plan import build_plan

ROOT = Path(__file__).resolve().parents[1]


def test_lookups_find_the_run_its_extraction_evaluation_and_svm_job():
    plan = build_plan(load_config(ROOT / "config" / "test.yaml"))  # roles: cub -> synthetic-cub
    tap = plan.run("cub", "vgg16-gap", "tap")
    assert (tap.dataset, tap.model, tap.pool, tap.theta_tap) == ("synthetic-cub", "vgg16-gap", "tap", 0.1)
    assert plan.extraction_of(tap.id).run == tap.id and plan.extraction_of(tap.id).split == "test"
    assert set(plan.evaluation_of(tap.id).settings) == {"cam20", "nwc", "pas", "nwc-pas"}
    assert plan.run("imagenet", "vgg16-gap", "tap") is None  # that experiment is not selected
    assert plan.run("nonexistent-role", "vgg16-gap", "gap") is None
    svm = plan.svm_of("cam-cub-svm")
    assert svm.datasets == {"cub": "synthetic-cub"} and plan.runs[svm.run].model == "googlenet-gap"
    assert plan.extraction_of(svm.run) is None  # trained for its features only
    assert plan.svm_of("cam-transfer") is None
