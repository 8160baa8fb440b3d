"""camrepro.extract: stored CAMs equal those recomputed from features and weights; ten-crop and
centre-crop extraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from camrepro.cam import backprop_saliency, class_activation_maps
from camrepro.data.metadata import read_split
from camrepro.data.reader import TransformSpec, WSOLDataset, collate
from camrepro.extract import extract, load_extracted
from camrepro.models.io import load_trained


def test_extracted_cams_equal_cams_recomputed_from_features_and_weights(tiny_cub, tiny_trained, tmp_path):
    out = extract(tiny_trained, tiny_cub, "test", tmp_path / "ext", size=64, batch_size=16, progress=False)
    manifest, arrays = load_extracted(out)
    assert (
        manifest["images"]
        == len(arrays["image_ids"])
        == len(WSOLDataset(tiny_cub, "test", TransformSpec(train=False)))
    )
    model, _ = load_trained(tiny_trained)
    data = WSOLDataset(tiny_cub, "test", TransformSpec(train=False, crop=64, flip=False))
    batch = collate([data[i] for i in range(10)])
    with torch.no_grad():
        logits, feats = model(batch["image"], return_features=True)
        cams = class_activation_maps(
            feats, model.classifier.weight, torch.from_numpy(arrays["cam_classes"][:10])
        )
    assert list(arrays["image_ids"][:10]) == batch["image_id"]
    assert (arrays["cam_classes"][:10, 0] == torch.as_tensor(batch["label"]).numpy()).all()
    assert (arrays["top5"][:10] == logits.topk(5, dim=1).indices.numpy()).all()
    np.testing.assert_allclose(
        arrays["cams"][:10].astype(np.float32), cams.numpy(), rtol=2e-3, atol=2e-3 * float(cams.abs().max())
    )
    np.testing.assert_allclose(arrays["features"][:10], feats.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    assert not list(tmp_path.glob("ext.tmp-*"))
    sharded = extract(
        tiny_trained, tiny_cub, "test", tmp_path / "sharded", size=64, batch_size=16, shard_size=20, progress=False
    )
    sharded_manifest, sharded_arrays = load_extracted(sharded)
    assert sharded_manifest["shards"] == 2  # 48 images in batches of 16: shards of 32 and 16
    assert sharded_arrays.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(sharded_arrays[key], arrays[key])


def test_ten_crop_extraction_averages_crop_scores_and_stores_each_crops_cam(tiny_cub, tiny_trained, tmp_path):
    from camrepro.evaluate import evaluate_settings
    from camrepro.plan import SETTINGS
    from camrepro.testtime import ten_crop_offsets

    out = extract(tiny_trained, tiny_cub, "test", tmp_path / "ext" / "s0", size=64, batch_size=20, transform="tencrop",
                  progress=False)  # fmt: skip
    manifest, arrays = load_extracted(out)
    assert manifest["transform"] == "tencrop" and manifest["resize"] == 73
    model, _ = load_trained(tiny_trained)
    warped = WSOLDataset(tiny_cub, "test", TransformSpec(train=False, crop=73, flip=False))
    image = warped[0]["image"][None]
    crops = []
    for x, y, mirrored in ten_crop_offsets(73, 64):  # cut here by hand, not with testtime.ten_crops
        c = image[..., y : y + 64, x : x + 64]
        crops.append(torch.flip(c, dims=[3]) if mirrored else c)
    with torch.no_grad():
        logits, feats = model(torch.cat(crops), return_features=True)
    mean_probs = logits.softmax(1).mean(0)
    assert (arrays["top5"][0] == mean_probs.topk(5).indices.numpy()).all()
    np.testing.assert_allclose(arrays["top5_scores"][0], mean_probs.topk(5).values.numpy(), rtol=1e-4)
    cams = class_activation_maps(feats, model.classifier.weight,
                                 torch.from_numpy(arrays["cam_classes"][:1]).repeat(10, 1))  # fmt: skip
    assert arrays["cams"].shape[1:3] == (6, 10)
    np.testing.assert_allclose(arrays["cams"][0].astype(np.float32), cams.transpose(0, 1).detach().numpy(),
                               rtol=2e-3, atol=2e-3 * float(cams.abs().max().detach()))  # fmt: skip
    names = ("cam20", "cam-code", "heuristic", "heuristic-code")
    result = evaluate_settings(out.parent, tiny_cub, {n: SETTINGS[n] for n in names})["seeds"]["0"]
    for name in names:
        r = result[name]
        assert r["localization_error"]["top1"] >= r["classification_error"]["top1"]
        assert r["localization_error"]["top5"] <= r["localization_error"]["top1"]
    # the released generator scores boxes on each image's own size: its GT area is that of the metadata
    assert result["cam-code"]["generator"] == "dt_box" and 0 < result["cam-code"]["box_area"] <= 100


def test_centre_crop_extraction_is_scored_against_shifted_clipped_gt_boxes(tiny_cub, tiny_trained, tmp_path):
    from camrepro.evaluate import evaluate
    from camrepro.testtime import centre_crop_box

    out = extract(tiny_trained, tiny_cub, "test", tmp_path / "ext", size=64, transform="centercrop", progress=False)
    result = evaluate(out, tiny_cub, empty_box="full")
    meta = read_split(tiny_cub, "test")
    areas = []
    for image_id in meta.image_ids:
        boxes = [centre_crop_box(b, meta.sizes[image_id], 73, 64) for b in meta.boxes[image_id]]
        areas.append(np.mean([(b[2] - b[0] + 1) * (b[3] - b[1] + 1) / 64**2 * 100 for b in boxes]))
    assert result["gt_box_area"] == pytest.approx(np.mean(areas))
    assert result["transform"] == "centercrop" and result["empty_box"] == "full"


def test_an_original_used_as_it_is_is_extracted_and_scored_like_a_run(tiny_cub, tiny_pretrained, tmp_path):
    """The embedded default's CAM Table 1 originals: the weights job's pretrained network extracted as
    it is into s0 (no training job), its own head's predictions, with the saliency maps of the
    Backprop rows."""
    from camrepro.evaluate import evaluate_settings
    from camrepro.extract import extract_as_is
    from camrepro.models.io import load_as_is
    from camrepro.plan import SETTINGS

    out = extract_as_is("alexnet", tiny_pretrained, tmp_path / "ext", dataset=tiny_cub, split="test", size=48,
                        saliency=True, progress=False)  # fmt: skip
    manifest, arrays = load_extracted(out / "s0")
    assert "saliency" in arrays and manifest["images"] == len(arrays["image_ids"])
    net, _ = load_as_is("alexnet", tiny_pretrained, tiny_cub)
    data = WSOLDataset(tiny_cub, "test", TransformSpec(train=False, crop=48, flip=False))
    batch = collate([data[i] for i in range(8)])
    with torch.no_grad():
        top5 = net(batch["image"]).topk(5, dim=1).indices.numpy()
    assert list(arrays["image_ids"][:8]) == batch["image_id"] and (arrays["top5"][:8] == top5).all()
    names = ("backprop", "backprop-code", "cam20")
    result = evaluate_settings(out, tiny_cub, {n: SETTINGS[n] for n in names})["seeds"]
    assert set(result) == {"0"}
    for name in names:
        assert 0 <= result["0"][name]["localization_error"]["top1"] <= 100


def test_extraction_runs_the_network_in_nhwc(tiny_cub, tiny_trained, tmp_path, monkeypatch):
    """channels_last: 1.2-1.8x faster forward passes on CPU (bench/README.md); the tests above check
    its maps and features against the network run in NCHW."""
    import camrepro.extract as extract_module

    layouts: list[bool] = []

    def spied(*args, **kwargs):
        model, meta = load_trained(*args, **kwargs)
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        first.register_forward_pre_hook(
            lambda _m, inputs: layouts.append(inputs[0].is_contiguous(memory_format=torch.channels_last))
        )
        return model, meta

    monkeypatch.setattr(extract_module, "load_trained", spied)
    out = extract(tiny_trained, tiny_cub, "test", tmp_path / "ext", size=64, batch_size=16, saliency=True,
                  progress=False)  # fmt: skip
    assert layouts and all(layouts)
    _, arrays = load_extracted(out)
    model, _ = load_trained(tiny_trained)  # NCHW
    data = WSOLDataset(tiny_cub, "test", TransformSpec(train=False, crop=64, flip=False))
    images = collate([data[i] for i in range(4)])["image"]
    classes = torch.from_numpy(arrays["cam_classes"][:4])
    expected = torch.stack([backprop_saliency(model, images, classes[:, j]) for j in range(classes.shape[1])], 1)
    np.testing.assert_allclose(arrays["saliency"][:4].astype(np.float32), expected.numpy(), rtol=2e-3,
                               atol=2e-3 * float(expected.abs().max()))  # fmt: skip
