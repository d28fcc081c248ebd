"""What a ResNet variant is, as data: the axes along which He et al. 2015, Bag of Tricks and the follow-up papers
(Identity Mappings, ResNeXt, Wide ResNets) vary the net.

A `Spec` fixes every design choice that changes the network. Each choice is an *axis*, declared once, as a
field of the Spec with an `Axis` in its metadata: its name (the key in spec strings, the W&B config key and
tag), what it means, the values it allows (for the parts, the keys of the builder registries in
`variants.layers`), how it is parsed from and printed into a spec string, and how it is titled in reports.
Spec-string parsing (`names.py`), the runner's W&B config and tags (`bench/train.py`) and the report pages
all read the axes from here, by name; adding an axis is one field here plus its builder.

- family: ``imagenet`` (Table 1: 4 stages of widths 64/128/256/512) or ``cifar`` (§4.2: 3 stages of
  widths 16/32/64 on 32/16/8 maps, depth 6n+2);
- block: a kind of `variants.layers.BLOCKS`, ``basic`` (two 3x3 convs) or ``bottleneck`` (1x1, 3x3, 1x1
  with 4x expansion), and ``layers``, the number of blocks in each stage; what a kind implies (its depth
  rule, the families and stride placements it allows) is read from its `BlockKind`, never from its name;
- stride_in: where a downsampling bottleneck strides, ``1x1`` (the paper's original) or ``3x3`` (the
  ResNet-B tweak); basic blocks always stride in their first 3x3 conv, so they leave it as None;
- stem: ``7x7`` (the paper's 7x7/2 conv + 3x3/2 max-pool), ``deep`` (ResNet-C: three 3x3 convs), or
  ``3x3`` (the CIFAR nets' single 3x3 conv);
- shortcut: the paper's options ``A`` (zero-padded identity), ``B`` (projection where the shape changes),
  ``C`` (projection everywhere), the Bag-of-Tricks ``D`` (2x2 avg-pool, then 1x1 projection, where the
  shape changes), or ``none`` (the plain nets of Table 2 / Figure 6);
- zero_init: start each block's last BN at gamma = 0 (Bag of Tricks §3.1; off in the paper);
- se: squeeze-and-excitation (Hu et al. 2018, SE-ResNet) after each block's last BN, reduction 16;
- unit: where BN and ReLU sit in a residual unit (Identity Mappings, He et al. 2016, Fig. 4), a key of
  `variants.layers.UNITS`, ``original`` to ``preact`` (full pre-activation); the shortcut designs of its
  Table 1 are further values of ``shortcut`` (``scaled``, ``exclusive_gate``, ``shortcut_gate``, ``dropout``)
  and ``gate_bias`` the gates' b_g;
- groups, base_width: the bottleneck's grouped 3x3 (ResNeXt, Xie et al. 2017; torchvision's width rule);
- widen, dropout: Wide ResNets' k for the CIFAR stages and their dropout between a block's convs
  (Zagoruyko & Komodakis 2016).

Number axes (groups, base_width, widen, dropout, gate_bias) declare a `convert` from text and a `rule` that
names what is wrong with a value, or with it on a net it does not apply to.

Derived axes, read-only: depth (the paper's layer count), tweak (the Bag-of-Tricks level), plain.

Two different alphabets meet here and must not be confused: the *shortcut options* A/B/C are the paper's
(§3.3), the *tweaks* ResNet-B/C/D are Bag of Tricks' (§4). Only ``shortcut=D`` is shared, because the
ResNet-D tweak is a shortcut change. `Spec.tweak` names the tweak level a spec amounts to.

Validation happens here, on construction, so a bad combination fails before any module is built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from . import layers as parts

STAGE_WIDTHS = {"imagenet": (64, 128, 256, 512), "cifar": (16, 32, 64)}
SE_REDUCTION = 16

SHORTCUT_MEANING = {
    "A": "shortcut option A: identity, zero-padded channels, stride-2 subsampling (no parameters)",
    "B": "shortcut option B: 1x1 projection + BN where the shape changes, identity elsewhere",
    "C": "shortcut option C: 1x1 projection + BN on every block",
    "D": "ResNet-D avg-pool shortcut: 2x2 avg-pool then 1x1 projection + BN where the shape changes",
    "none": "no shortcuts (plain net)",
    "scaled": "constant scaling: 0.5 x the identity + 0.5 x the residual (Identity Mappings Table 1)",
    "exclusive_gate": "exclusive gating: (1 - g) x the identity + g x the residual, g = sigmoid(1x1 conv + gate_bias)",
    "shortcut_gate": "shortcut-only gating: (1 - g) x the identity + the residual, g = sigmoid(1x1 conv + gate_bias)",
    "dropout": "dropout shortcut: dropout 0.5 on the identity (Identity Mappings Table 1)",
}
WIDENED_FAMILIES = ("cifar",)  # the families whose stage widths `widen` multiplies (Wide ResNets' k)


class SpecError(ValueError):
    """A variant spec that names something that does not exist or combines axes that do not fit."""


FLAG_WORDS = {"true": True, "false": False}


@dataclass(frozen=True)
class Axis:
    """One design choice of a ResNet variant, declared once on the `Spec` (see the module docstring).

    `values(spec)` lists what the axis allows given the spec's other axes (None for derived axes, which
    are computed, not chosen). `key`: written as key=value in spec strings. `option`: printed in a canonical
    spec string when it differs from the nearest preset (structure is named by the preset or depth=/blocks=
    instead). `tag`: a W&B tag ``name:value``. `describe(value)` is its words in `bench list`, or None.
    """

    name: str
    title: str
    meaning: str
    values: Callable[["Spec"], tuple] | None = None
    key: bool = True
    option: bool = True
    tag: bool = False
    flag: bool = False
    describe: Callable[[Any], str | None] = lambda value: None
    convert: Callable[[str], Any] | None = None  # a number axis: its value from the text, or a SpecError
    rule: Callable[["Spec"], str | None] | None = None  # a number axis: what is wrong with its value, or None

    def choices(self, spec: "Spec") -> tuple:
        return (True, False) if self.flag else self.values(spec)

    def parse(self, text: str):
        """The value `text` names in a spec string; choices are checked by the Spec as a whole."""
        if self.convert is not None:
            return self.convert(self.name, text)
        if not self.flag:
            return text
        if text not in FLAG_WORDS:
            raise SpecError(f"{self.name}={text} is not allowed; choose one of: true, false")
        return FLAG_WORDS[text]

    def show(self, value) -> str:
        """The value as a spec string, a tag and a report cell write it."""
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, tuple):
            return "-".join(map(str, value))
        if isinstance(value, float):
            return f"{value:g}"
        return "none" if value in (None, "") else str(value)

    def check(self, spec: "Spec") -> None:
        if self.rule is not None:
            wrong = self.rule(spec)
            if wrong:
                raise SpecError(wrong)
        if self.values is None and not self.flag:
            return
        value = getattr(spec, self.name)
        allowed = self.choices(spec)
        if value not in allowed or (self.flag and not isinstance(value, bool)):
            shown = ", ".join(self.show(a) for a in allowed)
            raise SpecError(f"{self.name}={self.show(value)} is not allowed; choose one of: {shown}")


def axis_field(**declaration):
    """A Spec field that is an axis (keyword-only; `default=` for optional ones)."""
    default = declaration.pop("default", dataclasses.MISSING)
    return dataclasses.field(default=default, metadata={"axis": Axis(**declaration)})


def block_kind(family: str, block: str) -> parts.BlockKind | None:
    """The registered kind of `block`, checked against the family; a SpecError saying what is allowed. None for a
    value the Spec allows that has no entry in BLOCKS: a bug in the variant code, caught when the net is built."""
    allowed = Spec.axis("block").choices(None)
    if block not in allowed:
        raise SpecError(f"block={block} is not allowed; choose one of: {', '.join(allowed)}")
    kind = parts.BLOCKS.get(block)
    if kind is not None and family not in kind.families:
        fitting = [name for name, other in parts.BLOCKS.items() if family in other.families]
        raise SpecError(f"block={block} is not allowed for the {family} family: its nets use "
                        f"{' or '.join(fitting)} blocks")
    return kind


def cifar_depth_to_n(depth: int, block: str = "basic") -> int:
    """Blocks per stage of the CIFAR net of this depth: depth = 3 stages x convs per block x n + 2 (6n+2 for
    basic blocks, Table 6)."""
    kind = block_kind("cifar", block)
    if kind is None:  # allowed without an entry: no depth rule to count with (builder() says so, loudly)
        kind = parts.builder(parts.BLOCKS, "block", block)
    step = len(STAGE_WIDTHS["cifar"]) * kind.convs
    if depth < step + 2 or (depth - 2) % step:
        examples = ", ".join(str(step * n + 2) for n in (3, 5, 7, 9, 18, 200))  # basic: Table 6's depths
        raise SpecError(f"depth={depth} is not a CIFAR ResNet depth: it must be {step}n+2 with n >= 1 "
                        f"({examples}, ...)")
    return (depth - 2) // step


def whole_number(name: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise SpecError(f"{name}={text} is not allowed: expected a whole number of at least 1")
    return int(text)


def decimal_number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"{name}={text} is not allowed: expected a number, e.g. {name}=0.3") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SpecError(f"{name}={text} is not allowed: expected a finite number")
    return value


def _inner_width_rule(name: str, default: int):
    """groups= and base_width=: whole numbers, for blocks with an inner width (the bottleneck's grouped 3x3)."""
    def rule(spec: "Spec") -> str | None:
        value = getattr(spec, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return f"{name}={value} is not allowed: expected a whole number of at least 1"
        kind = parts.BLOCKS.get(spec.block)
        if value != default and kind is not None and not kind.inner_width:
            having = [block for block, other in parts.BLOCKS.items() if other.inner_width]
            return (f"{name}={value} is not allowed with {spec.block} blocks: only {' or '.join(having)} blocks have "
                    f"an inner 3x3 that groups= and base_width= shape (ResNeXt, wide ResNets), e.g. "
                    f"resnet50b(groups=32,base_width=4)")
        return None
    return rule


def _widen_rule(spec: "Spec") -> str | None:
    if not isinstance(spec.widen, int) or isinstance(spec.widen, bool) or spec.widen < 1:
        return f"widen={spec.widen} is not allowed: expected a whole number of at least 1"
    if spec.widen != 1 and spec.family not in WIDENED_FAMILIES:
        return (f"widen={spec.widen} is not allowed for the {spec.family} family: it multiplies the "
                f"{' and '.join(WIDENED_FAMILIES)} nets' stage widths (WRN-d-k); an ImageNet net is widened by "
                f"base_width= (wide_resnet50_2 is resnet50b(base_width=128))")
    return None


def _dropout_rule(spec: "Spec") -> str | None:
    if not isinstance(spec.dropout, (int, float)) or not 0 <= spec.dropout < 1:
        shown = f"{spec.dropout:g}" if isinstance(spec.dropout, (int, float)) else spec.dropout
        return f"dropout={shown} is not allowed: a probability from 0 up to (not including) 1, e.g. dropout=0.3"
    return None


def _gate_bias_rule(spec: "Spec") -> str | None:
    if spec.gate_bias and spec.shortcut not in parts.GATED_SHORTCUTS:
        return (f"gate_bias={spec.gate_bias:g} is not allowed with shortcut={spec.shortcut}: only "
                f"the gated shortcuts ({', '.join(parts.GATED_SHORTCUTS)}) have a gate")
    return None


def _unit_rule(spec: "Spec") -> str | None:
    unit = parts.UNITS.get(spec.unit)
    if unit is not None and spec.zero_init and not unit.zero_init:
        return (f"zero_init=true is not allowed with unit={spec.unit}: its last BN follows the addition, so at "
                f"gamma = 0 the unit outputs zeros, not its shortcut")
    return None


@dataclass(frozen=True, kw_only=True)
class Spec:
    # Field order is the order of the canonical string's options (stride_in, stem, shortcut, zero_init, se):
    # run ids are derived from canonical strings, so new axes go at the end.
    family: str = axis_field(name="family", title="family", meaning="imagenet (Table 1) or cifar (§4.2)",
                       values=lambda spec: tuple(STAGE_WIDTHS), key=False, option=False, tag=True)
    block: str = axis_field(name="block", title="block",
                            meaning="; ".join(f"{name}: {kind.meaning}" for name, kind in parts.BLOCKS.items()),
                            values=lambda spec: tuple(parts.BLOCKS), option=False, tag=True)
    layers: tuple[int, ...] = axis_field(name="layers", title="blocks per stage", meaning="blocks per stage (blocks=a-b-c)",
                                   key=False, option=False)
    stride_in: str | None = axis_field(
        name="stride_in", title="stride in", default=None,
        meaning="where a downsampling bottleneck strides: 1x1 (the paper's) or 3x3 (ResNet-B)",
        values=lambda spec: (parts.BLOCKS[spec.block].stride_placements or (None,)) if spec.block in parts.BLOCKS
        else (None,),
        describe=lambda value: None if value is None else
        "stride in 1x1 (original)" if value == "1x1" else f"stride in {value} (ResNet-B)",
    )
    stem: str = axis_field(name="stem", title="stem", tag=True,
                     meaning="imagenet: 7x7 or deep (ResNet-C's three 3x3); cifar: 3x3 or deep (three unstrided 3x3)",
                     values=lambda spec: tuple(parts.STEMS.get(spec.family, ())),
                     describe=lambda value: f"{value} stem")
    shortcut: str = axis_field(name="shortcut", title="shortcut", tag=True,
                         meaning="options A/B/C of §3.3, D (ResNet-D avg-pool), none (plain)",
                         values=lambda spec: tuple(parts.SHORTCUTS),
                         describe=lambda value: SHORTCUT_MEANING.get(value, value).split(":")[0])
    zero_init: bool = axis_field(name="zero_init", title="zero-init", default=False, flag=True,
                           meaning="start each block's last BN at gamma = 0",
                           describe=lambda value: "zero-init last BN" if value else None)
    se: bool = axis_field(name="se", title="SE", default=False, flag=True, tag=True,
                    meaning=f"squeeze-and-excitation after each block's last BN (reduction {SE_REDUCTION})",
                    describe=lambda value: f"squeeze-and-excitation (reduction {SE_REDUCTION})" if value else None)
    # The follow-up papers' axes (Identity Mappings, ResNeXt, Wide ResNets).
    unit: str = axis_field(name="unit", title="unit", default="original", tag=True,
                           meaning="where BN and ReLU sit (Identity Mappings Fig. 4): "
                                   + "; ".join(f"{name}: {unit.meaning}" for name, unit in parts.UNITS.items()),
                           values=lambda spec: tuple(parts.UNITS), rule=_unit_rule,
                           describe=lambda value: None if value == "original" else
                           f"{value} units ({parts.UNITS[value].meaning.split(' (')[0]})" if value in parts.UNITS
                           else None)
    groups: int = axis_field(name="groups", title="groups", default=1, convert=whole_number,
                             rule=_inner_width_rule("groups", 1),
                             meaning="groups of the bottleneck's 3x3 (ResNeXt's cardinality)",
                             describe=lambda value: f"{value} groups" if value != 1 else None)
    base_width: int = axis_field(name="base_width", title="base width", default=64, convert=whole_number,
                                 rule=_inner_width_rule("base_width", 64),
                                 meaning="the bottleneck's inner width per group at 64 planes: inner = "
                                         "int(planes x base_width / 64) x groups (torchvision's rule)",
                                 describe=lambda value: f"base width {value}" if value != 64 else None)
    widen: int = axis_field(name="widen", title="widen", default=1, convert=whole_number, rule=_widen_rule,
                            meaning="Wide ResNets' k: the CIFAR stages' widths 16k/32k/64k",
                            describe=lambda value: f"widened x{value}" if value != 1 else None)
    dropout: float = axis_field(name="dropout", title="dropout", default=0.0, convert=decimal_number,
                                rule=_dropout_rule,
                                meaning="dropout before each conv of a block after its first (Wide ResNets: 0.3)",
                                describe=lambda value: f"dropout {value:g} between convs" if value else None)
    gate_bias: float = axis_field(name="gate_bias", title="gate bias", default=0.0, convert=decimal_number,
                                  rule=_gate_bias_rule,
                                  meaning="b_g, the gated shortcuts' initial gate bias (Identity Mappings: -6)",
                                  describe=lambda value: f"gate bias {value:g}" if value else None)

    # Computed from the fields above: recorded, tagged and shown like the others, but never chosen.
    DERIVED: ClassVar[tuple[Axis, ...]] = (
        Axis(name="depth", title="depth", meaning="weighted layers as the paper counts them", key=False,
             option=False, tag=True),
        Axis(name="tweak", title="tweak", meaning="the Bag-of-Tricks level: none, B, C, D or custom", key=False,
             option=False, tag=True),
        Axis(name="plain", title="plain", meaning="no shortcuts", key=False, option=False),
    )

    def __post_init__(self) -> None:
        chosen = {axis.name: axis for axis in self.chosen_axes()}
        chosen["family"].check(self)
        kind = block_kind(self.family, self.block)
        placements = kind.stride_placements if kind is not None else ()
        stages = len(STAGE_WIDTHS[self.family])
        if len(self.layers) != stages or not all(isinstance(n, int) and n >= 1 for n in self.layers):
            raise SpecError(
                f"blocks={'-'.join(map(str, self.layers))} is not allowed: the {self.family} family has "
                f"{stages} stages, each with at least one block (e.g. blocks={'-'.join(['2'] * stages)})"
            )
        if not placements and self.stride_in is not None:
            choosing = [name for name, other in parts.BLOCKS.items() if other.stride_placements]
            raise SpecError(
                f"stride_in={self.stride_in} is not allowed with {self.block} blocks: it places the stride inside "
                f"a {' or '.join(choosing)}; {self.block} blocks always stride in their first conv"
            )
        for axis in chosen.values():
            if axis.values is not None or axis.flag or axis.rule is not None:
                axis.check(self)

    # ---- the axes ----------------------------------------------------------------------------------------
    @classmethod
    def chosen_axes(cls) -> tuple[Axis, ...]:
        """The axes that are fields, in declaration order."""
        return tuple(f.metadata["axis"] for f in dataclasses.fields(cls) if "axis" in f.metadata)

    @classmethod
    def axes(cls) -> tuple[Axis, ...]:
        """Every axis, chosen then derived: what records, W&B and reports describe a variant by."""
        return cls.chosen_axes() + cls.DERIVED

    @classmethod
    def axis(cls, name: str) -> Axis:
        return next(axis for axis in cls.axes() if axis.name == name)

    @classmethod
    def option_axes(cls) -> tuple[Axis, ...]:
        """Axes a spec string sets by key=value on top of a preset, in canonical order."""
        return tuple(axis for axis in cls.chosen_axes() if axis.option)

    def axis_values(self) -> dict[str, Any]:
        """Every axis and its value, JSON-ready (layers as a list, an empty tweak as 'none')."""
        values = {}
        for axis in self.axes():
            value = getattr(self, axis.name)
            if isinstance(value, tuple):
                value = list(value)
            elif axis.name == "tweak":
                value = value or "none"
            values[axis.name] = value
        return values

    def tags(self) -> list[str]:
        """W&B tags `name:value` of the tagged axes."""
        return [f"{axis.name}:{axis.show(getattr(self, axis.name))}" for axis in self.axes() if axis.tag]

    # ---- derived -----------------------------------------------------------------------------------------
    @property
    def kind(self) -> parts.BlockKind:
        """The block kind's registry entry: everything the spec's block implies."""
        return parts.builder(parts.BLOCKS, "block", self.block)

    @property
    def expansion(self) -> int:
        return self.kind.expansion

    @property
    def widths(self) -> tuple[int, ...]:
        """Width of each stage (the bottleneck's output is `expansion` times this), `widen` times the family's."""
        return tuple(self.widen * width for width in STAGE_WIDTHS[self.family])

    @property
    def depth(self) -> int:
        """Weighted layers, counted as the paper does: convs on the main path plus the fc."""
        return self.kind.convs * sum(self.layers) + 2

    @property
    def plain(self) -> bool:
        return self.shortcut == "none"

    @property
    def tweak(self) -> str:
        """The Bag-of-Tricks level this spec amounts to: '', 'B', 'C', 'D', or 'custom' for other mixes.

        The tweaks are cumulative: B moves the stride to the 3x3 (blocks with a stride placement to choose,
        the bottlenecks), C adds the deep stem, D adds the avg-pool shortcut. Blocks without that choice
        (basic blocks) have no B step, so for them C = deep stem.
        """
        if self.family == "cifar":  # the tweaks are defined for the ImageNet nets only
            return "" if self.stem == "3x3" and self.shortcut != "D" else "custom"
        b = not self.kind.stride_placements or self.stride_in == "3x3"
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
        if self.stride_in == "3x3":
            return "B"
        return ""
