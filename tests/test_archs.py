"""The architecture facts the plan reads without torch agree with the networks themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from camrepro.archs import BATCHNORM_FREE
from camrepro.models import build_model
from camrepro.models.batchnorm import has_batchnorm
from camrepro.plan import AS_IS, WEIGHTS_OF

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model", sorted(WEIGHTS_OF))
def test_batchnorm_free_names_exactly_the_architectures_without_batchnorm(model):
    with torch.device("meta"):  # the structure only: no weights, no memory
        network = build_model(model, 2, width=0.125, **({"pool": "gap"} if model not in AS_IS else {}))
    assert has_batchnorm(network) == (WEIGHTS_OF[model] not in BATCHNORM_FREE)


def test_the_plan_of_the_embedded_default_is_built_without_importing_torch():
    """Snakemake builds the plan at every parse: torch's import would cost seconds each time."""
    code = ("import sys; from camrepro.config import load_config; from camrepro.plan import build_plan; "
            "from camrepro.jobs import jobs; c = load_config('config/config.yaml'); "
            "jobs(build_plan(c), c, 'config/config.yaml'); print('torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
