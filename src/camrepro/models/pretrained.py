"""Loading ImageNet weights into the truncated backbones.

Backbones keep torchvision's parameter names for the layers they keep (see backbones.py), so the
key mapping is the identity on the kept names (checkpoints in other layouts, SENet's and timm's,
are mapped to these names when downloaded: camrepro.weights); layers the CAM networks add
(``extra.*``, the new classifier) are not taken from the file. Every kept name must be present in the
file with the same shape, or loading stops with an error naming the file and the first mismatches.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from camrepro.errors import CamreproError
from camrepro.models import WSOLModel


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], bool]:
    """(state_dict, whether the weights expect torchvision's GoogLeNet input transform).

    camrepro's weights files are {"state_dict": ..., "transform_input": bool}; a bare state_dict
    is taken as torchvision's (GoogLeNet keys then mean the transform is expected).
    """
    path = Path(path)
    raw = _load(path)
    state = _unwrap(path, raw)
    if isinstance(raw, dict) and "transform_input" in raw:
        return state, bool(raw["transform_input"])
    return state, any(k.startswith("inception") for k in state)


def _load(path: Path) -> object:
    if not path.exists():
        raise CamreproError(
            f"{path} not found: pretrained weights are missing. Run `camrepro weights ARCH --out {path}` "
            "(torchvision's ImageNet weights) or `camrepro pretrain` (the embedded benchmark), or build "
            "without `pretrained`."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (torch raises many types for a bad file)
        raise CamreproError(
            f"{path} is not a readable PyTorch state_dict ({exc}); download it again."
        ) from exc


def _unwrap(path: Path, state: object) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CamreproError(f"{path} does not hold a state_dict (found {type(state).__name__}).")
    return state


def load_state_into(model: WSOLModel, state: dict[str, torch.Tensor], source: str = "state_dict") -> int:
    """Copy every kept name from `state` into the part of the model ImageNet weights fill (a CAM
    network's backbone, an FC original as a whole); returns how many tensors.

    A backbone-only file (no `classifier.*` at all: what `camrepro pretrain` writes) loads into the
    convolutional part of an FC original, whose FC layers then start fresh.
    """
    module = model.pretrained_module()
    keys = module.torchvision_keys()
    if not any(k.startswith("classifier.") for k in state):
        keys = {k for k in keys if not k.startswith("classifier.")}
    own = module.state_dict()
    missing = sorted(k for k in keys if k not in state)
    wrong = sorted(k for k in keys if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or wrong:
        detail = []
        if missing:
            detail.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if wrong:
            k = wrong[0]
            detail.append(
                f"{len(wrong)} with another shape (e.g. {k}: file {tuple(state[k].shape)}, "
                f"model {tuple(own[k].shape)})"
            )
        arch = getattr(module, "torchvision_arch", None)
        raise CamreproError(
            f"{source} does not fit this backbone: {'; '.join(detail)}. Expected {arch or 'its'} ImageNet "
            f"weights at width 1.0 (`camrepro weights {arch or 'ARCH'}` writes them)."
        )
    module.load_state_dict({k: state[k] for k in keys}, strict=False)
    return len(keys)


def save_weights(
    path: str | os.PathLike, state: dict[str, torch.Tensor], transform_input: bool,
    network: dict | None = None,
) -> None:
    """Write a weights artifact (atomically) in the format `read_weights` reads. `network`: the whole
    network the weights were pretrained as, head included (model, width, pool, state_dict), for using
    it as it is (`camrepro.models.io.load_as_is`)."""
    from camrepro.fsutil import atomic_path

    doc = {"state_dict": state, "transform_input": transform_input}
    with atomic_path(path) as tmp:
        torch.save(doc | ({"network": network} if network else {}), tmp)
