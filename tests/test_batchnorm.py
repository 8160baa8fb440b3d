"""camrepro.models.batchnorm: BatchNorm inserted for training, folded into the plain network."""

from __future__ import annotations

import torch

from camrepro.models import build_model
from camrepro.models.batchnorm import fold_batchnorm, has_batchnorm, insert_batchnorm


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
