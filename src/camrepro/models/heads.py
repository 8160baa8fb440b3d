"""Global pooling heads: GAP and GMP (Zhou et al. 2016) and TAP (Bae et al. 2020, Eq. 4)."""

from __future__ import annotations

import torch
from torch import nn

POOLS = ("gap", "gmp", "tap")


class GlobalPool(nn.Module):
    """(N, C, H, W) features -> (N, C) pooled vector.

    gap: mean over positions (Eq. 1 of Bae et al.). gmp: max over positions.
    tap: thresholded average pooling, Eq. 4 of Bae et al.:
        p_c = sum_hw 1(F_c > tau) F_c / sum_hw 1(F_c > tau),  tau = theta_tap * max_hw F_c,
    per image and channel; a channel with no position above tau (all-zero after ReLU) pools to 0
    instead of 0/0.
    """

    def __init__(self, kind: str = "gap", theta_tap: float = 0.0) -> None:
        super().__init__()
        if kind not in POOLS:
            raise ValueError(f"unknown pooling {kind!r}; use one of {', '.join(POOLS)}")
        if not 0.0 <= theta_tap < 1.0:
            raise ValueError(f"theta_tap must be in [0, 1), got {theta_tap}")
        self.kind, self.theta_tap = kind, float(theta_tap)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.kind == "gap":
            return features.mean(dim=(2, 3))
        if self.kind == "gmp":
            return features.amax(dim=(2, 3))
        flat = features.flatten(2)
        tau = self.theta_tap * flat.amax(dim=2, keepdim=True)
        keep = (flat > tau).to(flat.dtype)
        count = keep.sum(dim=2)
        return (flat * keep).sum(dim=2) / count.clamp_min(1.0)

    def extra_repr(self) -> str:
        return self.kind + (f", theta_tap={self.theta_tap}" if self.kind == "tap" else "")
