"""The claims' verdicts from table cells: ties, bounds, margins against the seed spread."""

from __future__ import annotations

import pandas as pd

from camrepro.claims import evaluate_claims


def _ablation(gt_loc: dict[str, float], box_area: dict[str, float], gt_area: float = 44.0) -> dict:
    """Rethinking Table 3 on CUB with these GT-known Loc values (spread 1.5) and box areas."""
    rows = []
    for row, value in gt_loc.items():
        rows += [{"row": row, "column": "cub_gt_loc", "reproduced": value, "spread": 1.5},
                 {"row": row, "column": "cub_box_area", "reproduced": box_area[row], "spread": 0.0},
                 {"row": row, "column": "cub_gt_box_area", "reproduced": gt_area, "spread": 0.0}]  # fmt: skip
    return {"rethinking-table3": pd.DataFrame(rows)}


def _verdict(tables: dict, claim_id: str) -> dict:
    return next(c for c in evaluate_claims(tables) if c["id"] == claim_id)


def test_a_tie_inside_the_metrics_range_fails_a_claim_of_improvement():
    """NWC's boxes differ from the baseline's (82 % vs 88 % of the image) yet as many images pass:
    the claimed improvement is absent, so the claim fails by a margin of 0, within the spread."""
    claim = _verdict(_ablation({"base": 46.35, "nwc": 46.35}, {"base": 88.0, "nwc": 82.0}), "nwc-improves-cub")
    assert (claim["verdict"], claim["margin"], claim["clear"]) == ("fails", 0.0, False)
    assert claim["detail"].startswith("every compared value is 46.35: no advantage")


def test_a_tie_at_the_metrics_floor_is_inconclusive():
    """Every GT-known Loc at 0: nothing was localized, so the numbers cannot tell the methods apart."""
    claim = _verdict(_ablation({"base": 0.0, "nwc": 0.0}, {"base": 60.0, "nwc": 50.0}), "nwc-improves-cub")
    assert claim["verdict"] == "inconclusive"
    assert "every compared value is 0.00" in claim["detail"]


def test_a_margin_over_cells_of_one_seed_is_never_clear():
    """With one seed there is no spread: a claim holds, but not clearly, whatever its margin."""
    tables = _ablation({"base": 40.0, "nwc": 60.0}, {"base": 50.0, "nwc": 45.0})
    claim = _verdict(tables, "nwc-improves-cub")
    assert (claim["verdict"], claim["clear"], claim["seeds"]) == ("holds", False, 0)
    tables["rethinking-table3"]["seeds"] = 2
    claim = _verdict(tables, "nwc-improves-cub")
    assert (claim["verdict"], claim["clear"], claim["seeds"]) == ("holds", True, 2)


def test_the_spread_of_the_cells_with_seeds_judges_a_claim_whose_other_cells_have_one():
    """The CAM paper's originals are one network: a claim against them is judged by the spread of
    the cells that have seeds."""
    tables = _ablation({"base": 40.0, "nwc": 60.0}, {"base": 50.0, "nwc": 45.0})
    frame = tables["rethinking-table3"]
    frame["seeds"] = [3 if row == "nwc" else 1 for row in frame["row"]]
    claim = _verdict(tables, "nwc-improves-cub")
    assert (claim["verdict"], claim["clear"], claim["seeds"]) == ("holds", True, 3)
