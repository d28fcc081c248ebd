"""The parts a ResNet is built from: stems, shortcuts (options A/B/C, ResNet-D, none, and the designs of
Identity Mappings Table 1), the units (where BN and ReLU sit, Identity Mappings Table 2), the blocks (basic,
bottleneck with ResNeXt's groups), and the attention modules a block can carry (squeeze-and-excitation).

Each kind of part is a registry, a dict from the value a `Spec` axis takes to the builder of that value:
`STEMS`, `SHORTCUTS`, `STRIDE_PLACEMENTS`, `UNITS`, `BLOCKS`, `ATTENTION`. The Spec derives the values it allows from
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

import functools
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


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [conv3x3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


# ---- stems: (family, stem) -> (norm) -> (layers before the first stage, channels they output) ---------------
# `norm=False` leaves out the stem's last BN + ReLU: in a full pre-activation net the first unit's own BN-ReLU
# follows the stem's last conv (Identity Mappings; timm's resnetv2 stems end the same way).

def _ending(layers: list[nn.Module], norm: bool) -> list[nn.Module]:
    return layers if norm else layers[:-2]


def cifar_stem(norm: bool = True) -> tuple[nn.Sequential, int]:
    """§4.2: "The first layer is 3x3 convolutions" with 16 filters, no pooling."""
    return nn.Sequential(*_ending(conv_bn_relu(3, 16), norm)), 16


def cifar_deep_stem(norm: bool = True) -> tuple[nn.Sequential, int]:
    """A deep variant for CIFAR: three 3x3 convs at full resolution, as the ResNet-C stem but unstrided."""
    return nn.Sequential(*conv_bn_relu(3, 16), *conv_bn_relu(16, 16), *_ending(conv_bn_relu(16, 16), norm)), 16


def imagenet_stem(norm: bool = True) -> tuple[nn.Sequential, int]:
    """Table 1, conv1: 7x7, 64, stride 2, then 3x3 max pool, stride 2."""
    conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return nn.Sequential(*_ending([conv, nn.BatchNorm2d(64), nn.ReLU(inplace=True)], norm), _stem_pool()), 64


def deep_stem(norm: bool = True) -> tuple[nn.Sequential, int]:
    """ResNet-C: three 3x3 convs of 32, 32, 64 channels, the first with stride 2, replace the 7x7."""
    layers = [*conv_bn_relu(3, 32, stride=2), *conv_bn_relu(32, 32), *_ending(conv_bn_relu(32, 64), norm)]
    return nn.Sequential(*layers, _stem_pool()), 64


def _stem_pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


STEMS: dict[str, dict[str, Callable[..., tuple[nn.Sequential, int]]]] = {
    "imagenet": {"7x7": imagenet_stem, "deep": deep_stem},
    "cifar": {"3x3": cifar_stem, "deep": cifar_deep_stem},
}


def make_stem(family: str, stem: str, norm: bool = True) -> tuple[nn.Sequential, int]:
    """The layers before the first stage, and the number of channels they output."""
    return builder(builder(STEMS, "family", family), "stem", stem)(norm=norm)


# ---- shortcuts: option -> (in, out, stride, *, norm, gate_bias) -> module, or None for a plain net ------------
# A shortcut module maps the block's input to what is added to the residual branch; a `Join` also weighs the
# branch itself (Identity Mappings Table 1), so it takes both. `norm=False` builds projections without BN, as
# full pre-activation nets have them; `gate_bias` is the gates' b_g.

class ZeroPadShortcut(nn.Module):
    """Option A: the identity, subsampled with stride 2 and zero-padded to the new width. No parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, **_):
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"extra_channels={self.extra_channels}, stride={self.stride}"


class Projection(nn.Sequential):
    """A shortcut with weights (options B, C, D). In pre-activation units it takes the pre-activated input, as
    the paper's code and timm's resnetv2 do; identity shortcuts always take the block's input itself."""


def projection(in_channels: int, out_channels: int, stride: int, norm: bool = True, **_) -> Projection:
    """Options B and C: a strided 1x1 conv and BN (no BN in a full pre-activation net)."""
    conv = conv1x1(in_channels, out_channels, stride)
    return Projection(conv, nn.BatchNorm2d(out_channels)) if norm else Projection(conv)


def avg_pool_projection(in_channels: int, out_channels: int, stride: int, norm: bool = True, **_) -> Projection:
    """ResNet-D: average the 2x2 neighbourhood instead of skipping 3/4 of it, then an unstrided 1x1 conv + BN."""
    pool = (
        nn.AvgPool2d(kernel_size=2, stride=stride, ceil_mode=True, count_include_pad=False)
        if stride > 1
        else nn.Identity()
    )
    conv = conv1x1(in_channels, out_channels)
    return Projection(pool, conv, nn.BatchNorm2d(out_channels)) if norm else Projection(pool, conv)


def where_shape_changes(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """A shortcut that is the identity, except where the block changes the shape: there, `build`'s module."""
    def shortcut(in_channels: int, out_channels: int, stride: int, **options) -> nn.Module:
        if stride == 1 and in_channels == out_channels:
            return nn.Identity()
        return build(in_channels, out_channels, stride, **options)

    return shortcut


def no_shortcut(in_channels: int, out_channels: int, stride: int, **_) -> None:
    return None


# Identity Mappings Table 1 varies what the identity carries on ResNet-110, whose shortcuts are option A's: its
# designs act on that identity (zero-padded where the shape changes).
identity_path = where_shape_changes(ZeroPadShortcut)
DROPPED_SHORTCUT = 0.5  # Table 1: "dropout shortcut", dropout 0.5 on the identity
SCALED_SHORTCUT = 0.5  # Table 1: constant scaling, 0.5 on both branches (the only constant row that trains)


class Join(nn.Module):
    """A shortcut that also weighs the residual branch: forward(residual, x) is the unit's sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.path = identity_path(in_channels, out_channels, stride)


class ScaledShortcut(Join):
    """Constant scaling: 0.5 x identity + 0.5 x residual, which the paper finds hampers optimisation."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, **_):
        super().__init__(in_channels, out_channels, stride)

    def forward(self, residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return SCALED_SHORTCUT * self.path(x) + (1 - SCALED_SHORTCUT) * residual


class GatedShortcut(Join):
    """Gating: g(x) = sigmoid(1x1 conv(x) + b_g), per channel and position, weighs the identity by 1 - g(x) and,
    when `exclusive` (a Highway network's gate), the residual by g(x); otherwise the residual by 1. A negative b_g
    starts the gates near 0, the identity near fully on: the paper's working rows are at b_g = -6."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, gate_bias: float = 0.0,
                 exclusive: bool = True, **_):
        super().__init__(in_channels, out_channels, stride)
        self.gate = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=True)
        nn.init.constant_(self.gate.bias, gate_bias)
        self.exclusive = exclusive

    def forward(self, residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(x))
        return (1 - gate) * self.path(x) + (gate * residual if self.exclusive else residual)

    def extra_repr(self) -> str:
        return f"exclusive={self.exclusive}"


def dropped_shortcut(in_channels: int, out_channels: int, stride: int, **_) -> nn.Module:
    """Dropout 0.5 on the identity (a stochastic version of scaling it by 0.5 while training)."""
    return nn.Sequential(identity_path(in_channels, out_channels, stride), nn.Dropout(DROPPED_SHORTCUT))


SHORTCUTS: dict[str, Callable[..., nn.Module | None]] = {
    "A": where_shape_changes(ZeroPadShortcut),
    "B": where_shape_changes(projection),
    "C": projection,  # on every block: Identity Mappings Table 1's "1x1 conv shortcut"
    "D": where_shape_changes(avg_pool_projection),
    "none": no_shortcut,
    "scaled": ScaledShortcut,
    "exclusive_gate": GatedShortcut,
    "shortcut_gate": functools.partial(GatedShortcut, exclusive=False),
    "dropout": dropped_shortcut,
}
GATED_SHORTCUTS = ("exclusive_gate", "shortcut_gate")  # the values that take a gate bias


def join(residual: torch.Tensor, x: torch.Tensor, shortcut: nn.Module | None, carried: torch.Tensor) -> torch.Tensor:
    """The unit's addition: residual + shortcut(carried), or what a `Join` makes of the two; the residual alone
    in a plain net. `carried` is what the shortcut takes (the pre-activated input for a projection in a
    pre-activation unit, else x)."""
    if shortcut is None:
        return residual
    if isinstance(shortcut, Join):
        return shortcut(residual, x)
    return residual + shortcut(carried)


# Where a downsampling bottleneck strides: stride -> (stride of the first 1x1, stride of the 3x3).
STRIDE_PLACEMENTS: dict[str, Callable[[int], tuple[int, int]]] = {
    "1x1": lambda stride: (stride, 1),  # the paper's original
    "3x3": lambda stride: (1, stride),  # ResNet-B: the 1x1 would otherwise skip 3/4 of its input
}


# ---- units: where BN and ReLU sit around a block's convs and the addition (Identity Mappings Fig. 4) ---------

@dataclass(frozen=True)
class Unit:
    """One arrangement of a residual unit. `preactivation`: what the unit applies to its input before the first
    conv ('' none, 'relu', 'bn_relu'); `norm_first`: each BN precedes its conv (full pre-activation) instead of
    following it; `norm_after_add`: the last BN comes after the addition; `relu_on_branch`: the branch ends in
    a ReLU before the addition; `relu_after_add`: a ReLU follows the addition. `final`: what the net adds after
    the last unit ('' , 'relu', 'bn_relu'), so that the pool sees activated features; `stem_norm`: the stem ends
    with BN + ReLU (not where the first unit pre-activates with its own BN); `projection_norm`: projection
    shortcuts carry BN; `zero_init`: whether starting the last norm (or conv) at zero leaves the unit its
    shortcut."""

    meaning: str
    preactivation: str = ""
    norm_first: bool = False
    norm_after_add: bool = False
    relu_on_branch: bool = False
    relu_after_add: bool = True
    final: str = ""
    stem_norm: bool = True
    projection_norm: bool = True
    zero_init: bool = True


UNITS: dict[str, Unit] = {
    "original": Unit("conv-BN-ReLU-conv-BN, add, ReLU (Fig. 4a, the 2015 paper's)"),
    # BN after the addition alters the signal the shortcut passes on: Table 2's 8.17% against 6.61%
    "bn_after_add": Unit("conv-BN-ReLU-conv, add, BN, ReLU (Fig. 4b)", norm_after_add=True, zero_init=False),
    # the branch can only add, never subtract: Table 2's 7.84%
    "relu_before_add": Unit("conv-BN-ReLU-conv-BN-ReLU, add (Fig. 4c)", relu_on_branch=True, relu_after_add=False),
    "relu_preact": Unit("ReLU-conv-BN-ReLU-conv-BN, add (Fig. 4d, ReLU-only pre-activation)", preactivation="relu",
                        relu_after_add=False, final="relu"),
    # the shortcut carries the identity untouched: Table 2's 6.37%, and it trains ResNet-1001 (Table 3)
    "preact": Unit("BN-ReLU-conv-BN-ReLU-conv, add (Fig. 4e, full pre-activation)", preactivation="bn_relu",
                   norm_first=True, relu_after_add=False, final="bn_relu", stem_norm=False, projection_norm=False),
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
    block applies to its residual branch before the shortcut is added (timm's `attn_layer` slot). `groups` and
    `base_width` set a bottleneck's 3x3 as torchvision does (ResNeXt, wide ResNets); `dropout` is the
    probability of dropout before each conv after the first (Wide ResNets' dropout between the convs)."""

    in_channels: int
    width: int
    stride: int = 1
    shortcut: str = "B"
    stride_in: str | None = None  # bottlenecks only: a key of STRIDE_PLACEMENTS
    attn_layer: Callable[[int], nn.Module] | None = None
    unit: str = "original"
    groups: int = 1
    base_width: int = 64
    dropout: float = 0.0
    gate_bias: float = 0.0


class ResidualBlock(nn.Module):
    """A residual unit of convs conv1, conv2, ... with one BN each (bn1, bn2, ...), arranged as its `Unit` says.

    Subclasses give the convs as (in, out, kernel, stride, groups). Modules are registered in the order
    torchvision's blocks have (conv1, bn1, ..., shortcut), or BN before conv in a full pre-activation unit, so
    weights copy across in order."""

    expansion = 1

    def __init__(self, config: BlockConfig, convs: list[tuple[int, int, int, int, int]], out_channels: int):
        super().__init__()
        self.unit = builder(UNITS, "unit", config.unit)
        self.conv_count = len(convs)
        for index, (inputs, outputs, kernel, stride, groups) in enumerate(convs, 1):
            conv = (conv3x3(inputs, outputs, stride, groups) if kernel == 3 else conv1x1(inputs, outputs, stride))
            parts = {"conv": conv, "bn": nn.BatchNorm2d(inputs if self.unit.norm_first else outputs)}
            for name in ("bn", "conv") if self.unit.norm_first else ("conv", "bn"):  # registration order
                setattr(self, f"{name}{index}", parts[name])
        self.dropout = nn.Dropout(config.dropout) if config.dropout else None
        self.attn = config.attn_layer(out_channels) if config.attn_layer else None
        self.shortcut = builder(SHORTCUTS, "shortcut", config.shortcut)(
            config.in_channels, out_channels, config.stride, norm=self.unit.projection_norm,
            gate_bias=config.gate_bias)
        self.relu = nn.ReLU(inplace=True)

    def conv(self, index: int) -> nn.Conv2d:
        return getattr(self, f"conv{index}")

    def bn(self, index: int) -> nn.BatchNorm2d:
        return getattr(self, f"bn{index}")

    def zero_init_last(self) -> None:
        """Start the unit as its shortcut (Bag of Tricks §3.1): the last BN at gamma = 0, or in a full
        pre-activation unit, whose last layer is a conv, that conv at 0 (as timm's resnetv2 does)."""
        last = self.conv(self.conv_count) if self.unit.norm_first else self.bn(self.conv_count)
        nn.init.zeros_(last.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unit = self.unit
        if unit.preactivation == "bn_relu":
            pre = self.relu(self.bn1(x))
        elif unit.preactivation == "relu":
            pre = torch.relu(x)  # not in place: x itself goes on along the shortcut
        else:
            pre = x
        out = pre
        for index in range(1, self.conv_count + 1):
            if index > 1:
                if unit.norm_first:
                    out = self.relu(self.bn(index)(out))
                if self.dropout is not None:
                    out = self.dropout(out)
            out = self.conv(index)(out)
            last = index == self.conv_count
            if not unit.norm_first and not (last and unit.norm_after_add):
                out = self.bn(index)(out)
                if not last or unit.relu_on_branch:
                    out = self.relu(out)
        if self.attn is not None:
            out = self.attn(out)
        out = join(out, x, self.shortcut, pre if isinstance(self.shortcut, Projection) else x)
        if unit.norm_after_add:
            out = self.bn(self.conv_count)(out)
        return self.relu(out) if unit.relu_after_add else out


class BasicBlock(ResidualBlock):
    """Fig. 2 / Fig. 5 left: two 3x3 convs, the first strided when the block downsamples."""

    expansion = 1

    def __init__(self, config: BlockConfig):
        width = config.width
        super().__init__(config, [(config.in_channels, width, 3, config.stride, 1), (width, width, 3, 1, 1)], width)


class Bottleneck(ResidualBlock):
    """Fig. 5 right: 1x1 reduce, 3x3, 1x1 expand (x4). The stride sits in the first 1x1 in the paper, in the
    3x3 in ResNet-B (where the 1x1 would otherwise ignore 3/4 of its input). The 3x3 may be grouped: its width
    is int(width x base_width / 64) x groups, torchvision's rule, so ResNeXt's 32x4d and the wide ResNets'
    doubled bottleneck are this block with other numbers."""

    expansion = 4

    def __init__(self, config: BlockConfig):
        inner = int(config.width * config.base_width / 64) * config.groups
        out_channels = config.width * self.expansion
        stride_1x1, stride_3x3 = builder(STRIDE_PLACEMENTS, "stride_in", config.stride_in)(config.stride)
        super().__init__(config, [(config.in_channels, inner, 1, stride_1x1, 1),
                                  (inner, inner, 3, stride_3x3, config.groups),
                                  (inner, out_channels, 1, 1, 1)], out_channels)


@dataclass(frozen=True)
class BlockKind:
    """One kind of block, as everything outside its module sees it.

    `module` is built from one `BlockConfig` and has `expansion` (its output is that many times the stage's
    width) and `zero_init_last()` (zero-init: start the block as its shortcut). `convs` is the weighted layers it
    puts on the main path: the paper's depth is `convs` x blocks + 2 (the first conv and the fc), so a CIFAR
    net of these blocks has depth 3 x `convs` x n + 2 (6n+2 for basic blocks). `stride_placements` lists
    where a downsampling block may stride (keys of STRIDE_PLACEMENTS, the first its default; empty: it has
    no such choice). `final_norm`: the net puts BN + ReLU after its last stage (pre-activation nets, whose
    blocks end without one). `inner_width`: its inner 3x3 takes `groups` and `base_width` (ResNeXt)."""

    module: type[nn.Module]
    meaning: str
    convs: int
    families: tuple[str, ...]
    stride_placements: tuple[str, ...] = ()
    final_norm: bool = False
    inner_width: bool = False

    @property
    def expansion(self) -> int:
        return self.module.expansion

    @property
    def default_stride_in(self) -> str | None:
        """Where a downsampling block of this kind strides unless a spec says otherwise (None: no choice)."""
        return self.stride_placements[0] if self.stride_placements else None


BLOCKS: dict[str, BlockKind] = {
    "basic": BlockKind(BasicBlock, "two 3x3 convs", convs=2, families=("imagenet", "cifar")),
    "bottleneck": BlockKind(Bottleneck, "1x1-3x3-1x1, 4x expansion", convs=3, families=("imagenet", "cifar"),
                            stride_placements=tuple(STRIDE_PLACEMENTS), inner_width=True),
}
