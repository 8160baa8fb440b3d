"""BatchNorm folding for pretraining, and CAMs from a standardised linear SVM's weights."""

from __future__ import annotations

import numpy as np
import torch

from camrepro.models import build_model
from camrepro.models.batchnorm import fold_batchnorm, has_batchnorm, insert_batchnorm
from camrepro.svm import fit_svm, svm_cam_weights


def test_folding_gives_the_plain_network_computing_what_the_batchnorm_one_computes():
    torch.manual_seed(0)
    model = build_model("vgg16-gap", 5, width=0.0625)
    plain_keys = set(model.state_dict())
    insert_batchnorm(model)
    assert has_batchnorm(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):  # training moves the affine parameters and the running statistics
        loss = model(torch.randn(4, 3, 48, 48) * 2 + 0.5).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x = torch.randn(3, 3, 48, 48)
    with torch.no_grad():
        expected = model(x)
        fold_batchnorm(model)
        folded = model(x)
    assert not has_batchnorm(model)
    assert set(model.state_dict()) == plain_keys  # loads into the plain architecture by name
    torch.testing.assert_close(folded, expected, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(expected, torch.zeros_like(expected))


def test_svm_cam_weights_give_maps_whose_mean_is_the_decision_function_up_to_a_constant():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 12)
    maps = rng.normal(size=(36, 8, 4, 4)).astype(np.float32) * rng.uniform(0.5, 5, size=(1, 8, 1, 1))
    maps[np.arange(36), labels] += 2.0  # class c lights up channel c
    features = maps.mean(axis=(2, 3))  # GAP
    search = fit_svm(features, labels)
    weights = svm_cam_weights(search).numpy()
    cams = np.einsum("ck,nkhw->nchw", weights, maps)
    offset = search.decision_function(features) - cams.mean(axis=(2, 3))
    assert np.allclose(offset, offset[0], atol=1e-4)  # the same constant for every image, per class
    assert search.score(features, labels) > 0.9
