"""The papers' protocol constants, each defined once, with its source.

Text citations are to `../shared/papers/` (line numbers of those copies); code citations are to
the papers' released code and to the metric standard, clovaai/wsolevaluation (file:line at the
commit the search tool fetched). Everything else in camrepro imports these names.
"""

from __future__ import annotations

# Zhou et al. 2016, Sec. 3.1 (cam_zhou_2016.txt:90): "segment the regions of which the value is
# above 20% of the max value of the CAM", then the box of the largest connected component.
# Released code: ILSVRC_evaluate_bbox.m:63 `bbox_threshold = [20, 100, 110]` (of 255, for dt_box).
CAM_THRESHOLD = 0.2

# Zhou et al. 2016, Sec. 3.1 (cam_zhou_2016.txt:107): two boxes (one tight, one loose) for the
# top-1 and top-2 classes, one loose box for the top-3 class. The text defines neither; loose is
# the 20 % box above, tight is OUR CHOICE (50 % of the max), not the paper's. The released code has
# no tight/loose: it takes the generator's boxes 1 and 2 (CAM_CODE_* below, `boxes.five_box_heuristic`).
HEURISTIC_LOOSE_THRESHOLD = CAM_THRESHOLD
HEURISTIC_TIGHT_THRESHOLD = 0.5

# The CAM paper's released box generator (zhoubolei/CAM, the script the ILSVRC numbers came from:
# README.md "ILSVRC evaluation"). The heat map is the sum of the 10-crop CAMs (mergeTenCrop.m:37,
# |CAM| summed over crops), resized to the image and divided by its max (ILSVRC_generate_heatmap.m:
# 121-127), written as an 8-bit JPEG, then `dt_box heatmap.jpg 20 100 110` (ILSVRC_evaluate_bbox.m:
# 63, 89). dt_box.cpp, per threshold t: binary u8 > t (:58), Euclidean distance to the background
# scaled to max 255 and rounded (dt.c:146-159, 110-117), kept where > 10 (:60); every contour,
# RETR_CCOMP (:84); rects limited to 5 px inside the right/bottom edges (:89-92); sorted by area,
# largest first (:153-164, 241); a later rect overlapping an earlier one by more than half the larger
# area is dropped (:108-151, 242). Boxes are [x, y, x + w, y + h] (ILSVRC_evaluate_bbox.m:97).
CAM_CODE_THRESHOLDS = (20, 100, 110)
CAM_CODE_DT_KEEP = 10
CAM_CODE_EDGE = 5
CAM_CODE_OVERLAP = 0.5

# Bae et al. 2020, Sec. 3.1 Implementation (rethinking_cam_bae_2020.md:166): "theta_loc = 0.35,
# i = 90, fixed regardless of the backbones or datasets" (PaS, Eq. 6). Released code:
# configs/vgg16_tap.yml:24 `loc_threshold: 0.2 # 0.35`, :27 `# percentile: 90`.
PAS_PERCENTILE = 90.0
PAS_THRESHOLD = 0.35

# Bae et al. 2020, Sec. 3.1 (rethinking_cam_bae_2020.md:166): theta_tap = 0.1 for VGG16 and
# MobileNetV1, 0.0 for ResNet50-SE and GoogleNet. Released code: configs/vgg16_tap.yml:5
# `avgpool_threshold: 0.1`.
TAP_THETA = {"vgg16-gap": 0.1, "mobilenet-v1": 0.1, "resnet50-se": 0.0, "inception-v3-spg": 0.0}

# Localization counts as correct at IoU >= 0.5 (both papers; rethinkingCAM configs/vgg16_tap.yml:25
# `iou_threshold: 0.5`); MaxBoxAccV2 averages over 30/50/70 (wsolevaluation config.py:181-182
# `--iou_threshold_list ... default=[30, 50, 70]`).
LOC_IOU = 50
IOU_THRESHOLDS = (30, 50, 70)

# The CAM-threshold sweep of MaxBoxAcc: wsolevaluation config.py:171 `--cam_curve_interval ...
# default=.001`, evaluation.py:468 `np.arange(0, 1, cam_curve_interval)`.
CAM_CURVE_INTERVAL = 0.001


def resize_for(crop: int) -> int:
    """The warp size of a crop size: 256 for 224 in both papers (zhoubolei/CAM prepare_image.m:7-32;
    won-bae/rethinkingCAM src/builders/dataloader_builder.py:52-59), the same 8/7 ratio otherwise."""
    return round(crop * 8 / 7)
