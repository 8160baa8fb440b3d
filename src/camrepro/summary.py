"""One CSV row per evaluation: the numbers the tables and the report are built from.

`results/tables/metrics.csv` joins each metrics JSON with its plan entry (experiment, dataset,
model, head, seed, setting), so every later table is a group-by over this file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from camrepro.errors import DataError
from camrepro.fsutil import atomic_write_text
from camrepro.plan import Plan, metrics_path

COLUMNS = {
    "cls_top1_err": ("classification_error", "top1"),
    "cls_top5_err": ("classification_error", "top5"),
    "loc_top1_err": ("localization_error", "top1"),
    "loc_top5_err": ("localization_error", "top5"),
    "gt_known_loc": ("gt_known_loc",),
    "top1_loc": ("top1_loc",),
    "maxboxacc_50": ("max_box_acc", "50"),
    "maxboxacc_v2": ("max_box_acc_v2", "mean"),
    "pxap": ("pxap",),
}


def _get(doc: dict, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return float(doc)


def summarize(plan: Plan, out: str | os.PathLike, root: str | os.PathLike = ".") -> pd.DataFrame:
    rows = []
    for ev in sorted(plan.evaluations.values(), key=lambda e: e.id):
        path = Path(root) / metrics_path(ev.id)
        if not path.exists():
            raise DataError(f"{path} not found: run its evaluation first (`camrepro evaluate`).")
        doc = json.loads(path.read_text())
        ext = plan.extractions[ev.extraction]
        run = plan.runs[ext.run]
        row = {"evaluation": ev.id, "experiment": ev.experiment, "dataset": run.dataset, "model": run.model,
               "pool": run.pool, "seed": run.seed, "nwc": ext.nwc, "standard": ev.options.get("standard"),
               "theta": ev.options.get("theta")}  # fmt: skip
        row |= {name: _get(doc, keys) for name, keys in COLUMNS.items()}
        rows.append(row)
    frame = pd.DataFrame(rows)
    atomic_write_text(out, frame.to_csv(index=False))
    return frame
