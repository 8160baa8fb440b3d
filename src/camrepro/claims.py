"""The papers' qualitative claims, tested on the reproduced tables (`claims.json`).

Each claim compares table cells (by table, row and column, as `camrepro.tables` writes them): it
holds when its left cell beats every right cell in the stated direction, and it is `clear` when
the margin exceeds the seed spread. A claim stated on a fixed threshold is `inconclusive` when the
compared methods' boxes are too large for IoU 0.5 to be reachable, and gets a threshold-free
companion on MaxBoxAccV2.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from camrepro.tables import ABLATION_ROWS


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    text: str
    better: str  # lower | higher: the direction in which `left` must beat every `right`
    left: tuple[str, str, str]  # (table, row, column)
    right: tuple[tuple[str, str, str], ...]
    similar: tuple[tuple[str, str, str], tuple[str, str, str], float] | None = None  # cells within margin
    area: str | None = None  # box-area column of the compared rows (fixed-threshold claims): see below


def _threshold_free(claim: Claim, column: str) -> Claim:
    """The same comparison on MaxBoxAccV2 (`column`): each method at its best CAM threshold, so the
    verdict does not hang on the paper's fixed threshold (not a number the papers report)."""
    swap = lambda cell: (cell[0], cell[1], column)  # noqa: E731
    text = (f"Threshold-free check of '{claim.id}': the same comparison on MaxBoxAccV2 (Choe et al. "
            "2020; every method at its best CAM threshold; not a number the papers report)")  # fmt: skip
    return Claim(f"{claim.id}-maxboxacc", claim.paper, text, "higher", swap(claim.left),
                 tuple(swap(c) for c in claim.right), claim.similar)  # fmt: skip


def _claims() -> list[Claim]:
    claims = [
        Claim("gap-beats-gmp", "CAM", "GAP localizes better than GMP at similar classification "
              "(GoogLeNet-GAP vs GoogLeNet-GMP: lower top-1 localization error, top-1 classification "
              "errors within 3 points)", "lower", ("cam-table2", "googlenet-gap", "top1"),
              (("cam-table2", "googlenet-gmp", "top1"),),
              (("cam-table1", "googlenet-gap", "top1"), ("cam-table1", "googlenet-gmp", "top1"), 3.0),
              "box_area"),
        Claim("cam-beats-backprop", "CAM", "CAM localizes better than Backprop (GoogLeNet-GAP's CAM vs "
              "Backprop on GoogLeNet, VGGnet and AlexNet: lower top-1 localization error)", "lower",
              ("cam-table2", "googlenet-gap", "top1"),
              tuple(("cam-table2", f"backprop-{m}", "top1") for m in ("googlenet", "vgg16", "alexnet")),
              area="box_area"),
        Claim("crop-beats-full", "CAM", "On CUB, SVM features of the CAM crop classify better than of the "
              "full image", "higher", ("cam-table4", "crop", "accuracy"),
              (("cam-table4", "full-image", "accuracy"),)),
    ]  # fmt: skip
    claims += [_threshold_free(c, "maxboxacc_v2") for c in claims[:2]]
    for role, name in (("cub", "CUB"), ("imagenet", "ImageNet")):
        col = f"{role}_gt_loc"
        for fix in ("tap", "nwc", "pas"):
            claims.append(Claim(f"{fix}-improves-{role}", "Rethinking CAM",
                                f"{fix.upper()} improves GT-known Loc over the baseline on {name} (VGG16)",
                                "higher", ("rethinking-table3", fix, col),
                                (("rethinking-table3", "base", col),),
                                area=f"{role}_box_area"))  # fmt: skip
            if fix != "pas":  # PaS moves only the threshold: MaxBoxAccV2 is the same by construction
                claims.append(_threshold_free(claims[-1], f"{role}_maxboxacc_v2"))
        others = tuple(("rethinking-table3", r, col) for r in ABLATION_ROWS if r != "tap-nwc-pas")
        claims.append(Claim(f"all-three-best-{role}", "Rethinking CAM",
                            f"TAP + NWC + PaS together give the best GT-known Loc on {name} (VGG16)",
                            "higher",
                            ("rethinking-table3", "tap-nwc-pas", col), others,
                            area=f"{role}_box_area"))  # fmt: skip
    return claims


CLAIMS = _claims()


def evaluate_claims(tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Each claim's verdict from the reproduced cells: holds / fails / inconclusive / not run.

    `inconclusive`: the compared values all sit at the metric's bound (e.g. every GT-known Loc is
    0: a tie elsewhere means the claimed advantage is absent, and the claim fails), or, for a
    claim on a fixed threshold, every compared method's boxes are too large to reach IoU 0.5
    (`_blind_threshold`), so the numbers cannot tell.

    `margin` is the smallest advantage of `left` over the `right` cells (positive when the claim
    holds); `noise` the largest seed spread among the cells involved. A claim that holds by less
    than that noise is marked so (`clear: false`): it is not read off seed noise. Nor is one whose
    cells all have a single seed (`seeds` < 2): no spread was measured to hold the margin against.
    """

    def cell(key: tuple[str, str, str]) -> dict | None:
        frame = tables.get(key[0])
        if frame is None:
            return None
        sel = frame[(frame["row"] == key[1]) & (frame["column"] == key[2])]
        return None if sel.empty else sel.iloc[0].to_dict()

    out = []
    for claim in CLAIMS:
        keys = [claim.left, *claim.right] + (list(claim.similar[:2]) if claim.similar else [])
        cells = [cell(k) for k in keys]
        doc = {"id": claim.id, "paper": claim.paper, "claim": claim.text,
               "cells": [{"table": k[0], "row": k[1], "column": k[2]} for k in keys]}  # fmt: skip
        if any(c is None or c["reproduced"] is None or pd.isna(c["reproduced"]) for c in cells):
            out.append(
                doc | {"verdict": "not run", "margin": None, "noise": None, "clear": False, "detail": ""}
            )
            continue
        noise = max(0.0 if pd.isna(c["spread"]) else float(c["spread"]) for c in cells)
        # with one seed in every cell no spread was measured: no margin is clear (`seeds`: the most
        # of any cell; the CAM paper's originals are one network, their spread comes from the others)
        doc["seeds"] = max(int(c.get("seeds") or 0) for c in cells)
        compared = [c["reproduced"] for c in cells[: 1 + len(claim.right)]]
        tie = max(compared) == min(compared)
        areas = _box_areas(cell, claim)
        if _blind_threshold(areas):
            detail = ("the fixed threshold cannot localize here: every compared method's boxes average more "
                      "than twice the GT boxes' area, so IoU >= 0.5 is out of reach (see the threshold-free "
                      f"check); {_areas_text(areas)}")  # fmt: skip
            out.append(doc | {"verdict": "inconclusive", "margin": 0.0, "noise": noise, "clear": False,
                              "detail": detail})  # fmt: skip
            continue
        if tie and compared[0] in (0.0, 100.0):
            detail = "; ".join(filter(None, [f"every compared value is {compared[0]:.2f}: nothing to judge "
                                             "between them", _areas_text(areas)]))  # fmt: skip
            out.append(doc | {"verdict": "inconclusive", "margin": 0.0, "noise": noise, "clear": False,
                              "detail": detail})  # fmt: skip
            continue
        sign = 1.0 if claim.better == "higher" else -1.0
        left = cells[0]["reproduced"]
        margin = min(sign * (left - c["reproduced"]) for c in cells[1 : 1 + len(claim.right)])
        holds = margin > 0
        detail = ""
        if claim.similar:
            a, b = cells[-2]["reproduced"], cells[-1]["reproduced"]
            similar = abs(a - b) <= claim.similar[2]
            holds = holds and similar
            detail = f"classification differs by {abs(a - b):.2f} points (similar: <= {claim.similar[2]})"
        if tie:  # inside the range: the claimed advantage is absent
            detail = "; ".join(filter(None, [f"every compared value is {left:.2f}: no advantage", detail]))
        detail = "; ".join(filter(None, [detail, _areas_text(areas)]))
        out.append(doc | {"verdict": "holds" if holds else "fails", "margin": margin, "noise": noise,
                          "clear": bool(holds and margin > noise and doc["seeds"] >= 2),
                          "detail": detail})  # fmt: skip
    return out


def _box_areas(cell, claim: Claim) -> tuple[list[tuple[str, float]], float] | None:  # noqa: ANN001
    """(compared row, its mean box area) pairs and the GT boxes' mean area, all in % of the image;
    None when the claim has no box-area column or a cell is missing."""
    if claim.area is None:
        return None
    gt_column = claim.area.replace("box_area", "gt_box_area")
    areas, gt_area = [], None
    for table, row, _ in (claim.left, *claim.right):
        boxes, gt = cell((table, row, claim.area)), cell((table, row, gt_column))
        if boxes is None or gt is None or pd.isna(boxes["reproduced"]) or pd.isna(gt["reproduced"]):
            return None
        areas.append((row, float(boxes["reproduced"])))
        gt_area = float(gt["reproduced"])  # the same images for every compared row
    return areas, gt_area


def _blind_threshold(areas: tuple[list[tuple[str, float]], float] | None) -> bool:
    """Whether a fixed-threshold claim cannot be judged at all.

    A box has IoU >= 0.5 with a GT box only if its area is at most twice the GT box's (the IoU is
    at most the smaller area over the larger). When the boxes of *every* compared method average
    more than twice the GT boxes' area (flat maps, where theta x max boxes the whole image), GT-known
    Loc sits at its floor for all of them and a difference of an image or two is no evidence.
    """
    return areas is not None and all(area > 2.0 * areas[1] for _, area in areas[0])


def _areas_text(areas: tuple[list[tuple[str, float]], float] | None) -> str:
    if areas is None:
        return ""
    rows = ", ".join(f"{row} {area:.0f} %" for row, area in areas[0])
    return f"mean box areas: {rows} of the image; GT boxes {areas[1]:.0f} %"


