"""What a ResNet variant is, as data: the axes along which He et al. 2015 and Bag of Tricks vary the net.

A `Spec` fixes every design choice that changes the network:

- family: ``imagenet`` (Table 1: 4 stages of widths 64/128/256/512) or ``cifar`` (§4.2: 3 stages of
  widths 16/32/64 on 32/16/8 maps, depth 6n+2);
- block: ``basic`` (two 3x3 convs) or ``bottleneck`` (1x1, 3x3, 1x1 with 4x expansion), and ``layers``,
  the number of blocks in each stage;
- stem: ``7x7`` (the paper's 7x7/2 conv + 3x3/2 max-pool), ``deep`` (ResNet-C: three 3x3 convs), or
  ``3x3`` (the CIFAR nets' single 3x3 conv);
- stride_in: where a downsampling bottleneck strides, ``1x1`` (the paper's original) or ``3x3`` (the
  ResNet-B tweak); basic blocks always stride in their first 3x3 conv, so they leave it as None;
- shortcut: the paper's options ``A`` (zero-padded identity), ``B`` (projection where the shape changes),
  ``C`` (projection everywhere), the Bag-of-Tricks ``D`` (2x2 avg-pool, then 1x1 projection, where the
  shape changes), or ``none`` (the plain nets of Table 2 / Figure 6);
- zero_init: start each block's last BN at gamma = 0 (Bag of Tricks §3.1; off in the paper).

Two different alphabets meet here and must not be confused: the *shortcut options* A/B/C are the paper's
(§3.3), the *tweaks* ResNet-B/C/D are Bag of Tricks' (§4). Only ``shortcut=D`` is shared, because the
ResNet-D tweak is a shortcut change. `Spec.tweak` names the tweak level a spec amounts to.

Validation happens here, on construction, so a bad combination fails before any module is built.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("imagenet", "cifar")
BLOCKS = ("basic", "bottleneck")
STEMS = {"imagenet": ("7x7", "deep"), "cifar": ("3x3", "deep")}
STRIDE_IN = ("1x1", "3x3")
SHORTCUTS = ("A", "B", "C", "D", "none")

STAGE_WIDTHS = {"imagenet": (64, 128, 256, 512), "cifar": (16, 32, 64)}
BOTTLENECK_EXPANSION = 4

# Table 1 of the paper: block type and blocks per stage of each ImageNet depth.
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}

SHORTCUT_MEANING = {
    "A": "shortcut option A: identity, zero-padded channels, stride-2 subsampling (no parameters)",
    "B": "shortcut option B: 1x1 projection + BN where the shape changes, identity elsewhere",
    "C": "shortcut option C: 1x1 projection + BN on every block",
    "D": "ResNet-D avg-pool shortcut: 2x2 avg-pool then 1x1 projection + BN where the shape changes",
    "none": "no shortcuts (plain net)",
}


class SpecError(ValueError):
    """A variant spec that names something that does not exist or combines axes that do not fit."""


def _choice(axis: str, value, allowed) -> None:
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise SpecError(f"{axis}={value} is not allowed; choose one of: {shown}")


def cifar_depth_to_n(depth: int) -> int:
    """Blocks per stage of the CIFAR net of this depth (depth = 6n + 2)."""
    if depth < 8 or (depth - 2) % 6:
        raise SpecError(
            f"depth={depth} is not a CIFAR ResNet depth: it must be 6n+2 with n >= 1 "
            f"(20, 32, 44, 56, 110, 1202, ...)"
        )
    return (depth - 2) // 6


@dataclass(frozen=True)
class Spec:
    family: str
    block: str
    layers: tuple[int, ...]
    stem: str
    shortcut: str
    stride_in: str | None = None
    zero_init: bool = False

    def __post_init__(self) -> None:
        _choice("family", self.family, FAMILIES)
        _choice("block", self.block, BLOCKS)
        _choice("stem", self.stem, STEMS[self.family])
        _choice("shortcut", self.shortcut, SHORTCUTS)
        if not isinstance(self.zero_init, bool):
            raise SpecError(f"zero_init={self.zero_init} is not allowed; choose one of: true, false")
        stages = len(STAGE_WIDTHS[self.family])
        if len(self.layers) != stages or not all(isinstance(n, int) and n >= 1 for n in self.layers):
            raise SpecError(
                f"blocks={'-'.join(map(str, self.layers))} is not allowed: the {self.family} family has "
                f"{stages} stages, each with at least one block (e.g. blocks={'-'.join(['2'] * stages)})"
            )
        if self.family == "cifar" and self.block != "basic":
            raise SpecError("block=bottleneck is not allowed for the cifar family: its nets use basic blocks")
        if self.block == "bottleneck":
            _choice("stride_in", self.stride_in, STRIDE_IN)
        elif self.stride_in is not None:
            raise SpecError(
                f"stride_in={self.stride_in} is not allowed with basic blocks: it places the stride inside "
                f"a bottleneck; basic blocks always stride in their first 3x3 conv"
            )

    @property
    def expansion(self) -> int:
        return BOTTLENECK_EXPANSION if self.block == "bottleneck" else 1

    @property
    def widths(self) -> tuple[int, ...]:
        """Inner width of each stage (the bottleneck's output is `expansion` times this)."""
        return STAGE_WIDTHS[self.family]

    @property
    def depth(self) -> int:
        """Weighted layers, counted as the paper does: convs on the main path plus the fc."""
        convs_per_block = 3 if self.block == "bottleneck" else 2
        return convs_per_block * sum(self.layers) + 2

    @property
    def plain(self) -> bool:
        return self.shortcut == "none"

    @property
    def tweak(self) -> str:
        """The Bag-of-Tricks level this spec amounts to: '', 'B', 'C', 'D', or 'custom' for other mixes.

        The tweaks are cumulative: B moves the stride to the 3x3 (bottlenecks only), C adds the deep
        stem, D adds the avg-pool shortcut. Basic blocks have no B step, so for them C = deep stem.
        """
        if self.family == "cifar":  # the tweaks are defined for the ImageNet nets only
            return "" if self.stem == "3x3" and self.shortcut != "D" else "custom"
        b = self.block == "basic" or self.stride_in == "3x3"
        c = b and self.stem == "deep"
        d = c and self.shortcut == "D"
        if d:
            return "D"
        if self.shortcut == "D":
            return "custom"
        if c:
            return "C"
        if self.stem == "deep":
            return "custom"
        if self.block == "bottleneck" and self.stride_in == "3x3":
            return "B"
        return ""
