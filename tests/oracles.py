"""Independent oracles for the metrics: the reference's definitions computed the slow, obvious way.

The evaluators accumulate histograms and sweep all CAM thresholds in one pass; these loops threshold
every map at every CAM threshold one by one. A test compares the two on small hand-made inputs, so a
metric number is checked against its definition, never against a recorded output.
"""

from __future__ import annotations

import numpy as np

from camrepro.evaluator import reference_sweep_correct


def box_accuracy(maps_and_boxes, thresholds, iou_thresholds, strategy) -> np.ndarray:
    """Box accuracy (%) per IoU threshold (rows) and CAM threshold (columns): the share of images whose
    box at that threshold has IoU >= iou / 100 with a GT box (`reference_sweep_correct`, one threshold
    and one contour search at a time, the executable specification the wsolevaluation vectors check)."""
    tables = [reference_sweep_correct(m, gt, thresholds, iou_thresholds, strategy) for m, gt in maps_and_boxes]
    return np.mean(tables, axis=0) * 100.0


def pixel_average_precision(maps_and_masks, thresholds) -> float:
    """PxAP as wsolevaluation defines it (evaluation.py, `MaskEvaluator`): precision and recall of the
    pixels scoring >= each of the edges 2, 1, then the CAM thresholds from the top down, AP as the sum
    of precision x recall step. Counted by thresholding every map at every edge, no histogram."""
    edges = [2.0, 1.0, *sorted(thresholds, reverse=True)]
    tp = np.zeros(len(edges))
    fp = np.zeros(len(edges))
    positives = 0
    for scoremap, mask in maps_and_masks:
        positives += int((mask == 1).sum())
        for k, edge in enumerate(edges):
            predicted = scoremap >= edge
            tp[k] += int((predicted & (mask == 1)).sum())
            fp[k] += int((predicted & (mask == 0)).sum())
    total = 0.0
    for k in range(1, len(edges)):
        if tp[k] + fp[k] == 0:
            continue
        precision = tp[k] / (tp[k] + fp[k])
        total += precision * (tp[k] - tp[k - 1]) / positives
    return total * 100.0
