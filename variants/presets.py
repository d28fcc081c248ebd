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
- Identity Mappings (He et al. 2016): the CIFAR bottleneck nets resnet164 and resnet1001 (9n+2, widths
  16/32/64 x 4, projection shortcuts, the stride in the 3x3 as in the paper's code); their pre-activation forms
  are `resnet164(unit=preact)` and `resnet1001(unit=preact)`.
- ResNeXt (Xie et al. 2017) and torchvision's wide ResNets: resnext50_32x4d, resnext101_32x8d,
  wide_resnet50_2, wide_resnet101_2, ResNet-B bottlenecks with other groups and base widths, as torchvision
  builds them.
- Wide ResNets (Zagoruyko & Komodakis 2016): wrn16_8, wrn28_10, wrn40_4, WRN-d-k with (d - 4) / 6 full
  pre-activation basic blocks a stage of widths 16k/32k/64k and 1x1 shortcuts where the width changes. The
  paper's d counts the convs of a stage's shortcut too; `depth` here counts as the ResNet papers do (6n + 2).
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


def cifar_spec(depth: int, shortcut: str = "A", block: str = "basic", **axes) -> Spec:
    n = cifar_depth_to_n(depth, block)
    return Spec(family="cifar", block=block, layers=(n, n, n), stem="3x3", shortcut=shortcut, **axes)


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
    # Identity Mappings' CIFAR bottleneck nets, as its code (fb.resnet.torch) builds them
    for depth in (164, 1001):
        presets.append(Preset(f"resnet{depth}", cifar_spec(depth, "B", "bottleneck", stride_in="3x3"),
                              f"CIFAR ResNet-{depth}, bottleneck units (Identity Mappings Table 3)"))
    resnet_b = {depth: replace(imagenet_spec(depth), stride_in="3x3") for depth in (50, 101)}
    for name, depth, groups, base_width, title in (
        ("resnext50_32x4d", 50, 32, 4, "ResNeXt-50 32x4d (ResNeXt Table 3)"),
        ("resnext101_32x8d", 101, 32, 8, "ResNeXt-101 32x8d (torchvision)"),
        ("wide_resnet50_2", 50, 1, 128, "Wide ResNet-50-2: bottlenecks twice as wide (torchvision)"),
        ("wide_resnet101_2", 101, 1, 128, "Wide ResNet-101-2: bottlenecks twice as wide (torchvision)"),
    ):
        presets.append(Preset(name, replace(resnet_b[depth], groups=groups, base_width=base_width), title))
    for depth, k in ((16, 8), (28, 10), (40, 4)):  # WRN-d-k: (d - 4) / 6 blocks a stage
        spec = cifar_spec(6 * ((depth - 4) // 6) + 2, "B", unit="preact", widen=k)
        presets.append(Preset(f"wrn{depth}_{k}", spec, f"WRN-{depth}-{k} (Wide ResNets; n = {spec.layers[0]} blocks a stage)"))
    return {p.name: p for p in presets}


PRESETS: dict[str, Preset] = _build_presets()
