"""dvc.yaml generation: every stage, once DVC fills in its params references, runs the registry's command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from camrepro.config import load_config
from camrepro.dvcgen import generate
from camrepro.jobs import command, jobs
from camrepro.plan import build_plan

ROOT = Path(__file__).resolve().parents[1]


def _resolve(text: str, params: dict) -> str:
    """DVC's interpolation of `${a.b.c}` from params.yaml (scalars only: what the generator writes)."""

    def lookup(match: re.Match) -> str:
        node = params
        for key in match.group(1).split("."):
            node = node[key]
        assert not isinstance(node, dict | list), match.group(0)
        return str(node).lower() if isinstance(node, bool) else str(node)

    return re.sub(r"\$\{([^}]+)\}", lookup, text)


def test_dvc_commands_resolve_to_the_snakemake_commands_and_training_options_come_from_params():
    config = load_config(ROOT / "config" / "config.yaml")
    dvc_text, params_text = generate(config, "config/config.yaml")
    stages, params = yaml.safe_load(dvc_text)["stages"], yaml.safe_load(params_text)
    plan = build_plan(config)
    kinds = {
        "weights": "weights",
        "train": "runs",
        "extract": "extractions",
        "evaluate": "evaluations",
        "svm": "svms",
    }
    checked = set()
    for name, stage in stages.items():
        kind, _, job_id = name.partition("-")
        if kind not in kinds or job_id not in plan.jobs(kinds[kind]):
            continue
        assert shlex.split(_resolve(stage["cmd"], params)) == command(plan, kind, job_id, "data"), name
        checked.add((kind, job_id))
    # every job of those kinds the generator yields (a network used as it is has no training job)
    assert checked == {(kind, job_id) for kind in kinds for job_id in jobs(plan, config, "config/config.yaml")[kind]}
    # a changed training option in params.yaml changes the command DVC runs
    run_id = sorted(plan.runs)[0]
    stage = stages[f"train-{run_id}"]
    params["runs"][run_id]["train"]["epochs"] = 1234
    assert "epochs=1234" in _resolve(stage["cmd"], params)
