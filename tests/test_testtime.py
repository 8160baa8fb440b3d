"""Test-time transforms: the CAM code's ten crops and their merge, Rethinking-CAM's centre crop."""

import numpy as np
import torch

from camrepro.testtime import centre_crop_box, centre_crop_mask, merge_ten_crops, ten_crop_offsets, ten_crops


def test_ten_crop_offsets_follow_caffe_order_corners_centre_then_mirrors():
    five = [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
    assert ten_crop_offsets(256, 224) == [(x, y, False) for x, y in five] + [(x, y, True) for x, y in five]


def test_crops_are_cut_and_mirrored_from_the_warped_image():
    image = torch.arange(36.0).reshape(1, 1, 6, 6)
    crops = ten_crops(image, 4)
    assert crops.shape == (10, 1, 4, 4)
    assert crops[1, 0, 0].tolist() == [12.0, 13.0, 14.0, 15.0]  # x 0, y 2: row 2, columns 0..3
    assert crops[9, 0, 0].tolist() == [10.0, 9.0, 8.0, 7.0]  # centre (1, 1), mirrored: row 1, cols 4..1


def test_merge_puts_each_crop_back_unmirrored_and_sums_the_crops():
    image = torch.arange(1.0, 37.0).reshape(1, 1, 6, 6)  # not symmetric: a wrong un-mirror shows
    merged = merge_ten_crops(ten_crops(image, 4).reshape(1, 10, 4, 4), resize=6, crop=4, absolute=False)
    # crops covering each pixel (corner windows x, y in [0, 3] or [2, 5]; centre [1, 4]), x2 mirrors
    coverage = np.array([[1, 1, 2, 2, 1, 1], [1, 2, 3, 3, 2, 1], [2, 3, 5, 5, 3, 2],
                         [2, 3, 5, 5, 3, 2], [1, 2, 3, 3, 2, 1], [1, 1, 2, 2, 1, 1]]) * 2  # fmt: skip
    assert merged.shape == (1, 6, 6)
    assert np.array_equal(merged[0].numpy(), coverage * image[0, 0].numpy())


def test_merge_sums_absolute_values_and_upsamples_feature_maps_to_the_crop():
    maps = -torch.ones(2, 10, 2, 2)  # constant -1 maps at 2x2: bicubic upsampling keeps them constant
    merged = merge_ten_crops(maps, resize=6, crop=4)
    assert merged.shape == (2, 6, 6)
    assert merged[0, 0, 0].item() == 2.0 and merged[1, 2, 2].item() == 10.0  # |-1| x covering crops


def test_centre_crop_box_is_scaled_shifted_truncated_and_clipped():
    # 512 x 400 image -> 256 x 256 -> centre 224 (shift 16):
    # x0 100 / 512 * 256 - 16 = 34; y0 50 / 400 * 256 - 16 = 16;
    # x1 500 / 512 * 256 - 16 = 234 -> 223; y1 390 / 400 * 256 - 16 = 233.6 -> 233 -> 223
    assert centre_crop_box((100, 50, 500, 390), (512, 400), 256, 224) == (34, 16, 223, 223)
    # x0 5 / 512 * 256 - 16 = -13.5 -> int -13 -> 0; y1 200 / 400 * 256 - 16 = 112
    assert centre_crop_box((5, 0, 40, 200), (512, 400), 256, 224) == (0, 0, 4, 112)


def test_centre_crop_mask_cuts_the_middle():
    mask = np.arange(36).reshape(6, 6)
    assert centre_crop_mask(mask, 4).tolist() == mask[1:5, 1:5].tolist()
