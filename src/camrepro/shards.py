"""Reading an extraction folder (`camrepro.extract` writes it) with numpy alone.

Kept apart from extract.py so that evaluation, which only reads shards, does not import the
models and torchvision: a second and a half per evaluation job.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from camrepro.errors import DataError


def load_extracted(folder: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, arrays concatenated over shards) of an extraction folder."""
    folder = Path(folder)
    manifest_path = folder / "extract.json"
    if not manifest_path.exists():
        raise DataError(
            f"{manifest_path} not found: {folder} is not a finished extraction; run `camrepro extract`."
        )
    manifest = json.loads(manifest_path.read_text())
    parts: dict[str, list] = {}
    for i in range(manifest["shards"]):
        with np.load(folder / f"shard-{i:05d}.npz") as shard:
            for key in shard.files:
                parts.setdefault(key, []).append(shard[key])
    return manifest, {k: np.concatenate(v) for k, v in parts.items()}
