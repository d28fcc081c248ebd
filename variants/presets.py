"""The named variants: the paper's nets, their plain twins and the Bag-of-Tricks ResNet-B/C/D, as a table.

Each preset is one `Spec`; a name plus overrides (`resnet34(shortcut=A)`) reaches every other
combination, so nothing here is a class of its own.

- CIFAR (§4.2, Table 6): resnet20 ... resnet1202 with option-A shortcuts, as in the paper, and their plain
  twins plain20 ... plain110 (Figure 6), which have exactly the same parameters.
- ImageNet (Table 1): resnet18 ... resnet152 as published: 7x7 stem, stride in the bottleneck's first 1x1,
  option-B shortcuts (the paper's choice for its deeper nets, Table 3); plain18 and plain34 (Table 2).
- Bag of Tricks (Table 5), cumulative as there and in timm: resnet50b moves the stride to the 3x3
  (ResNet-B), resnet50c adds the deep stem (ResNet-C), resnet50d adds the avg-pool shortcut (ResNet-D).
  Same for 101 and 152; 18 and 34 have basic blocks, so they have no -B step, only -C and -D.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .layers import BLOCKS
from .spec import Spec, cifar_depth_to_n

# Table 1 of the paper: block kind and blocks per stage of each ImageNet depth.
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


@dataclass(frozen=True)
class Preset:
    name: str
    spec: Spec
    title: str


def cifar_spec(depth: int, shortcut: str = "A") -> Spec:
    n = cifar_depth_to_n(depth)
    return Spec(family="cifar", block="basic", layers=(n, n, n), stem="3x3", shortcut=shortcut)


def imagenet_spec(depth: int, shortcut: str = "B") -> Spec:
    block, layers = IMAGENET_DEPTHS[depth]
    return Spec(family="imagenet", block=block, layers=layers, stem="7x7", shortcut=shortcut,
                stride_in=BLOCKS[block].default_stride_in)


def _build_presets() -> dict[str, Preset]:
    presets: list[Preset] = []
    for depth in (20, 32, 44, 56, 110, 1202):
        presets.append(Preset(f"resnet{depth}", cifar_spec(depth), f"CIFAR ResNet-{depth} (Table 6)"))
    for depth in (20, 32, 44, 56, 110):
        presets.append(Preset(f"plain{depth}", cifar_spec(depth, "none"), f"CIFAR plain-{depth} (Figure 6)"))
    for depth in IMAGENET_DEPTHS:
        presets.append(Preset(f"resnet{depth}", imagenet_spec(depth), f"ResNet-{depth} (Table 1, original)"))
    for depth in (18, 34):
        presets.append(Preset(f"plain{depth}", imagenet_spec(depth, "none"), f"plain-{depth} (Table 2)"))
    for depth in IMAGENET_DEPTHS:
        base = imagenet_spec(depth)
        if base.kind.stride_placements:  # a block that chooses where to stride (the bottleneck) has a -B
            base = replace(base, stride_in="3x3")
            presets.append(Preset(f"resnet{depth}b", base, f"ResNet-{depth}-B tweak (Bag of Tricks)"))
        c = replace(base, stem="deep")
        presets.append(Preset(f"resnet{depth}c", c, f"ResNet-{depth}-C tweak (Bag of Tricks)"))
        presets.append(Preset(f"resnet{depth}d", replace(c, shortcut="D"), f"ResNet-{depth}-D tweak (Bag of Tricks)"))
    return {p.name: p for p in presets}


PRESETS: dict[str, Preset] = _build_presets()
