"""Encoders to probe with ``vinfo probe --repr examples.encoders:FUNCTION`` (run from the
repository root; see ``examples/README.md``).

Each function takes no argument and returns a ``torch.nn.Module`` that maps images
``(B, 3, H, W)`` in ``[0, 1]`` to features ``(B, C, h, w)``; vinfo runs it in eval mode without
gradients and caches the features (keyed by this file and the module's weights).

- :func:`space_to_depth` is a *control*: every pixel of each 16×16 block moved to a channel,
  losslessly. A linear probe can read the image back exactly, so its reconstruction I_V is the
  most any representation at stride 16 can show on the data.
- :func:`resnet18_stride16` is a frozen torchvision ResNet-18 cut after ``layer3`` (stride 16,
  256 channels), the usual way to probe a vision backbone. Its weights come from the file named
  by ``$VINFO_RESNET18_WEIGHTS`` (a torchvision state dict, e.g. ``resnet18-f37072fd.pth``);
  without it the network keeps its seeded random initialisation, the random-features baseline
  of the probing literature.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torchvision.models import resnet18

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def space_to_depth() -> nn.Module:
    """``(B, 3, H, W) → (B, 768, H/16, W/16)``: each 16×16 block as channels (lossless)."""
    return nn.PixelUnshuffle(16)


class _Standardise(nn.Module):
    """ImageNet standardisation, as torchvision's backbones expect their inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def resnet18_stride16() -> nn.Module:
    """A ResNet-18 up to ``layer3``: ``(B, 3, H, W) → (B, 256, H/16, W/16)``."""
    torch.manual_seed(0)  # the random-features baseline is the same network on every call
    network = resnet18(weights=None)
    weights = os.environ.get("VINFO_RESNET18_WEIGHTS")
    if weights:
        network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return nn.Sequential(_Standardise(), network.conv1, network.bn1, network.relu,
                         network.maxpool, network.layer1, network.layer2, network.layer3)
