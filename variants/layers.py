"""The parts a ResNet is built from: stems, shortcuts (options A/B/C, ResNet-D, none), the blocks, and the
attention modules a block can carry (squeeze-and-excitation).

Each kind of part is a registry, a dict from the value a `Spec` axis takes to the builder of that value:
`STEMS`, `SHORTCUTS`, `STRIDE_PLACEMENTS`, `BLOCKS`, `ATTENTION`. The Spec derives the values it allows from
these keys, and every lookup goes through `builder()`, which fails loudly for a value without a builder. So a
value added in one place is either built or rejected, never quietly built as something else.

A block kind is more than its module: `BLOCKS` holds a `BlockKind` per kind that says everything the rest of
the code needs to know about it (its expansion, the convolutions it adds to the paper's depth, the families
that use it, where it may stride, whether the net ends with a final norm). Nothing outside that entry tests
a block's name, so a new kind is one entry and its module.

Module names follow torchvision where a counterpart exists (conv1, bn1, ... in a block), so that a reader
can put the two side by side; weights line up in the same order, which the equivalence tests rely on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

T = TypeVar("T")


class MissingBuilderError(LookupError):
    """A spec value that the Spec allows but no registry can build: a bug in the variant code, not the user's."""


def builder(registry: Mapping[str, T], axis: str, value) -> T:
    """The registered builder of `axis=value`, or a loud error: never a fallback to some other part."""
    try:
        return registry[value]
    except KeyError:
        raise MissingBuilderError(
            f"{axis}={value} is allowed by the Spec but variants/layers.py has no builder for it "
            f"(registered: {', '.join(map(str, registry))})"
        ) from None


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [conv3x3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


# ---- stems: (family, stem) -> () -> (layers before the first stage, channels they output) -----------------

def cifar_stem() -> tuple[nn.Sequential, int]:
    """§4.2: "The first layer is 3x3 convolutions" with 16 filters, no pooling."""
    return nn.Sequential(*conv_bn_relu(3, 16)), 16


def cifar_deep_stem() -> tuple[nn.Sequential, int]:
    """A deep variant for CIFAR: three 3x3 convs at full resolution, as the ResNet-C stem but unstrided."""
    return nn.Sequential(*conv_bn_relu(3, 16), *conv_bn_relu(16, 16), *conv_bn_relu(16, 16)), 16


def imagenet_stem() -> tuple[nn.Sequential, int]:
    """Table 1, conv1: 7x7, 64, stride 2, then 3x3 max pool, stride 2."""
    conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(64), nn.ReLU(inplace=True), _stem_pool()), 64


def deep_stem() -> tuple[nn.Sequential, int]:
    """ResNet-C: three 3x3 convs of 32, 32, 64 channels, the first with stride 2, replace the 7x7."""
    return nn.Sequential(*conv_bn_relu(3, 32, stride=2), *conv_bn_relu(32, 32), *conv_bn_relu(32, 64), _stem_pool()), 64


def _stem_pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


STEMS: dict[str, dict[str, Callable[[], tuple[nn.Sequential, int]]]] = {
    "imagenet": {"7x7": imagenet_stem, "deep": deep_stem},
    "cifar": {"3x3": cifar_stem, "deep": cifar_deep_stem},
}


def make_stem(family: str, stem: str) -> tuple[nn.Sequential, int]:
    """The layers before the first stage, and the number of channels they output."""
    return builder(builder(STEMS, "family", family), "stem", stem)()


# ---- shortcuts: option -> (in, out, stride) -> module, or None for a plain net ------------------------------

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


def where_shape_changes(build: Callable[[int, int, int], nn.Module]) -> Callable[[int, int, int], nn.Module]:
    """A shortcut that is the identity, except where the block changes the shape: there, `build`'s module."""
    def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
        if stride == 1 and in_channels == out_channels:
            return nn.Identity()
        return build(in_channels, out_channels, stride)

    return shortcut


def no_shortcut(in_channels: int, out_channels: int, stride: int) -> None:
    return None


SHORTCUTS: dict[str, Callable[[int, int, int], nn.Module | None]] = {
    "A": where_shape_changes(ZeroPadShortcut),
    "B": where_shape_changes(projection),
    "C": projection,  # on every block
    "D": where_shape_changes(avg_pool_projection),
    "none": no_shortcut,
}

# Where a downsampling bottleneck strides: stride -> (stride of the first 1x1, stride of the 3x3).
STRIDE_PLACEMENTS: dict[str, Callable[[int], tuple[int, int]]] = {
    "1x1": lambda stride: (stride, 1),  # the paper's original
    "3x3": lambda stride: (1, stride),  # ResNet-B: the 1x1 would otherwise skip 3/4 of its input
}


# ---- attention: what a block may apply to its residual branch before the addition -------------------------

class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): global average pool, 1x1 conv down by `reduction`, ReLU, 1x1
    conv back up, sigmoid, and each channel of the input scaled by its gate. Laid out as timm's SEModule."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        reduced = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc2(self.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


ATTENTION: dict[str, Callable[[int], nn.Module]] = {"se": SqueezeExcite}


# ---- blocks --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockConfig:
    """Everything one block is built from: its place in the net (channels in, width, stride) and the design
    choices of the Spec. `attn_layer`, when set, builds a module from the block's output width that the
    block applies after its last BN, before the shortcut is added (timm's `attn_layer` slot)."""

    in_channels: int
    width: int
    stride: int = 1
    shortcut: str = "B"
    stride_in: str | None = None  # bottlenecks only: a key of STRIDE_PLACEMENTS
    attn_layer: Callable[[int], nn.Module] | None = None


class BasicBlock(nn.Module):
    """Fig. 2 / Fig. 5 left: two 3x3 convs, the first strided when the block downsamples."""

    expansion = 1

    def __init__(self, config: BlockConfig):
        super().__init__()
        width = config.width
        self.conv1 = conv3x3(config.in_channels, width, config.stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.attn = config.attn_layer(width) if config.attn_layer else None
        self.shortcut = builder(SHORTCUTS, "shortcut", config.shortcut)(config.in_channels, width, config.stride)
        self.relu = nn.ReLU(inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.attn is not None:
            out = self.attn(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """Fig. 5 right: 1x1 reduce, 3x3, 1x1 expand (x4). The stride sits in the first 1x1 in the paper,
    in the 3x3 in ResNet-B (where the 1x1 would otherwise ignore 3/4 of its input)."""

    expansion = 4

    def __init__(self, config: BlockConfig):
        super().__init__()
        width = config.width
        out_channels = width * self.expansion
        stride_1x1, stride_3x3 = builder(STRIDE_PLACEMENTS, "stride_in", config.stride_in)(config.stride)
        self.conv1 = conv1x1(config.in_channels, width, stride_1x1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride_3x3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.attn = config.attn_layer(out_channels) if config.attn_layer else None
        self.shortcut = builder(SHORTCUTS, "shortcut", config.shortcut)(config.in_channels, out_channels, config.stride)
        self.relu = nn.ReLU(inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.attn is not None:
            out = self.attn(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.relu(out)


@dataclass(frozen=True)
class BlockKind:
    """One kind of block, as everything outside its module sees it.

    `module` is built from one `BlockConfig` and has `expansion` (its output is that many times the stage's
    width) and `last_bn` (the norm that zero-init starts at gamma = 0). `convs` is the weighted layers it
    puts on the main path: the paper's depth is `convs` x blocks + 2 (the first conv and the fc), so a CIFAR
    net of these blocks has depth 3 x `convs` x n + 2 (6n+2 for basic blocks). `stride_placements` lists
    where a downsampling block may stride (keys of STRIDE_PLACEMENTS, the first its default; empty: it has
    no such choice). `final_norm`: the net puts BN + ReLU after its last stage (pre-activation nets, whose
    blocks end without one)."""

    module: type[nn.Module]
    meaning: str
    convs: int
    families: tuple[str, ...]
    stride_placements: tuple[str, ...] = ()
    final_norm: bool = False

    @property
    def expansion(self) -> int:
        return self.module.expansion

    @property
    def default_stride_in(self) -> str | None:
        """Where a downsampling block of this kind strides unless a spec says otherwise (None: no choice)."""
        return self.stride_placements[0] if self.stride_placements else None


BLOCKS: dict[str, BlockKind] = {
    "basic": BlockKind(BasicBlock, "two 3x3 convs", convs=2, families=("imagenet", "cifar")),
    "bottleneck": BlockKind(Bottleneck, "1x1-3x3-1x1, 4x expansion", convs=3, families=("imagenet",),
                            stride_placements=tuple(STRIDE_PLACEMENTS)),
}
