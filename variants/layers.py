"""The parts a ResNet is built from: stems, shortcuts (options A/B/C, ResNet-D, none) and the two blocks.

Module names follow torchvision where a counterpart exists (conv1, bn1, ... in a block), so that a reader
can put the two side by side; weights line up in the same order, which the equivalence tests rely on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [conv3x3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


# ---- stems -------------------------------------------------------------------------------------------------

def make_stem(family: str, stem: str) -> tuple[nn.Sequential, int]:
    """The layers before the first stage, and the number of channels they output."""
    if family == "cifar":
        if stem == "3x3":  # §4.2: "The first layer is 3x3 convolutions" with 16 filters, no pooling.
            return nn.Sequential(*conv_bn_relu(3, 16)), 16
        # A deep variant for CIFAR: three 3x3 convs at full resolution, as the ResNet-C stem but unstrided.
        return nn.Sequential(*conv_bn_relu(3, 16), *conv_bn_relu(16, 16), *conv_bn_relu(16, 16)), 16
    max_pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    if stem == "7x7":  # Table 1, conv1: 7x7, 64, stride 2, then 3x3 max pool, stride 2.
        conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(64), nn.ReLU(inplace=True), max_pool), 64
    # ResNet-C: three 3x3 convs of 32, 32, 64 channels, the first with stride 2, replace the 7x7.
    return nn.Sequential(*conv_bn_relu(3, 32, stride=2), *conv_bn_relu(32, 32), *conv_bn_relu(32, 64), max_pool), 64


# ---- shortcuts -----------------------------------------------------------------------------------------

class ZeroPadShortcut(nn.Module):
    """Option A: the identity, subsampled with stride 2 and zero-padded to the new width. No parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra_channels}, stride={self.stride}"


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Options B and C: a strided 1x1 conv and BN."""
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


def avg_pool_projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """ResNet-D: average the 2x2 neighbourhood instead of skipping 3/4 of it, then an unstrided 1x1 conv + BN."""
    pool = (
        nn.AvgPool2d(kernel_size=2, stride=stride, ceil_mode=True, count_include_pad=False)
        if stride > 1
        else nn.Identity()
    )
    return nn.Sequential(pool, conv1x1(in_channels, out_channels), nn.BatchNorm2d(out_channels))


def make_shortcut(option: str, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The shortcut of one block, or None for a plain net."""
    if option == "none":
        return None
    reshapes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and reshapes):
        return projection(in_channels, out_channels, stride)
    if not reshapes:
        return nn.Identity()
    if option == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return avg_pool_projection(in_channels, out_channels, stride)


# ---- blocks --------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """Fig. 2 / Fig. 5 left: two 3x3 convs, the first strided when the block downsamples."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: str, stride_in: str | None = None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.shortcut = make_shortcut(shortcut, in_channels, width, stride)
        self.relu = nn.ReLU(inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """Fig. 5 right: 1x1 reduce, 3x3, 1x1 expand (x4). The stride sits in the first 1x1 in the paper,
    in the 3x3 in ResNet-B (where the 1x1 would otherwise ignore 3/4 of its input)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, shortcut: str, stride_in: str | None = "1x1"):
        super().__init__()
        out_channels = width * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in == "1x1" else (1, stride)
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride_3x3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


BLOCK_TYPES = {"basic": BasicBlock, "bottleneck": Bottleneck}
