"""The per-seed layout: one folder per seed, `<root>/s<seed>/`, under a run and an extraction.

    results/models/<run>/s<seed>/model.pt      (`camrepro train --seeds`)
    results/cams/<extraction>/s<seed>/         (`camrepro extract --seeds`)

Everything that builds or reads these paths (training, extraction, evaluation, the SVM jobs, the
plan and the workflow rules, figures) asks this module, so the layout is written once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from camrepro.errors import CamreproError

MODEL_FILE = "model.pt"
AS_IS_SEED = 0  # the folder of a network used as it is: it has one instance, stored as seed 0
_SEED_DIR = re.compile(r"s(0|[1-9][0-9]*)")


def seed_dir(root: str | os.PathLike, seed: int) -> Path:
    """The folder of one seed under a run or extraction folder `root`."""
    return Path(root) / f"s{int(seed)}"


def model_file(run_dir: str | os.PathLike, seed: int) -> Path:
    """The trained model of one seed of a run."""
    return seed_dir(run_dir, seed) / MODEL_FILE


def seed_of(path: str | os.PathLike) -> int:
    """The seed of a seed folder (`.../s3` -> 3); an error for any other name."""
    name = Path(path).name
    found = _SEED_DIR.fullmatch(name)
    if found is None:
        raise CamreproError(f"{path}: not a per-seed folder (expected s<seed>, e.g. s0).")
    return int(found.group(1))


def seed_dirs(root: str | os.PathLike) -> dict[int, Path]:
    """The seed folders present under `root`, by seed, in seed order (other entries are ignored)."""
    root = Path(root)
    found = {}
    if root.is_dir():
        for entry in root.iterdir():
            if entry.is_dir() and _SEED_DIR.fullmatch(entry.name):
                found[seed_of(entry)] = entry
    return dict(sorted(found.items()))
