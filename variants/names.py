"""Spec strings: how a variant is named on the command line, in results/ and in W&B.

Grammar: ``NAME`` or ``NAME(key=value,...)``, where NAME is a preset (``resnet50d``), a family
(``cifar``, ``imagenet``: they need ``depth=`` or ``blocks=``), or ``timm/MODEL`` for a timm model. The
keys are ``depth=N`` (cifar: 6n+2, or 9n+2 with block=bottleneck; imagenet: one of Table 1's
18/34/50/101/152), ``blocks=a-b-c[-d]`` (blocks per stage) and the `Spec` axes declared in `variants.spec`
(block, stride_in, stem, shortcut, zero_init, se, unit, groups, base_width, widen, dropout, gate_bias), each
with the values its builder registry or its rule allows.

Parsing is strict (unknown names and keys, repeated keys and bad values are errors that say what is
allowed), and every spec has one canonical string: the closest preset plus the axes that differ from it,
so ``resnet50(stride_in=3x3,stem=deep,shortcut=D)`` and ``resnet50d`` are recognised as the same net (and a
family form, ``cifar(depth=38)``, where no preset of the same blocks is nearer).
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass, replace

from .presets import IMAGENET_DEPTHS, PRESETS, cifar_spec
from .spec import STAGE_WIDTHS, Spec, SpecError, block_kind, cifar_depth_to_n

FAMILY_NAMES = ("cifar", "imagenet")
# Size keys, then every axis a spec string may set, as the Spec declares them.
KEYS = ("depth", "blocks") + tuple(axis.name for axis in Spec.chosen_axes() if axis.key)

_SPEC_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.\-/]+)(?:\((?P<args>[^()]*)\))?$")


@dataclass(frozen=True)
class TimmSpec:
    """A timm model joining a comparison under its timm name (built with timm.create_model)."""

    name: str

    def __str__(self) -> str:
        return f"timm/{self.name}"


def parse(text: str) -> Spec | TimmSpec:
    """Turn a spec string into a validated Spec (or TimmSpec); raises SpecError saying what is wrong."""
    match = _SPEC_RE.match(text.strip())
    if not match:
        raise SpecError(
            f"cannot parse variant spec {text!r}: write NAME or NAME(key=value,...), e.g. resnet34(shortcut=A)"
        )
    name, args = match["name"], match["args"]
    if name.startswith("timm/"):
        return _parse_timm(name[len("timm/"):], args)
    options = _parse_options(args, text) if args is not None else {}
    if name in FAMILY_NAMES:
        if "depth" not in options and "blocks" not in options:
            example = "cifar(depth=38)" if name == "cifar" else "imagenet(blocks=2-2-2-2,block=bottleneck)"
            raise SpecError(f"{name} needs depth= or blocks= to know its size, e.g. {example}")
        return _apply(_family_default(name), options)
    if name not in PRESETS:
        raise SpecError(_unknown_name_message(name))
    return _apply(PRESETS[name].spec, options)


def canonical(spec: Spec | TimmSpec) -> str:
    """The one string that names this spec: nearest preset of the same structure plus differing axes."""
    if isinstance(spec, TimmSpec):
        return str(spec)
    same_shape = [
        p for p in PRESETS.values() if (p.spec.family, p.spec.block, p.spec.layers) == (spec.family, spec.block, spec.layers)
    ]
    base = replace(_family_default(spec.family), block=spec.block, layers=spec.layers,
                   stride_in=spec.kind.default_stride_in)
    family_form = _style_diff(base, spec)
    nearest = None
    if same_shape:
        # min() keeps the first of equals, so the base net wins ties over its tweaked relatives.
        nearest = min(same_shape, key=lambda p: len(_style_diff(p.spec, spec)))
    # A preset names the spec unless the family's own defaults are nearer: cifar(depth=38) is not
    # wrn40_4(shortcut=A,unit=original,widen=1), although the two have the same blocks.
    if nearest is not None and len(_style_diff(nearest.spec, spec)) <= len(family_form):
        name, options = nearest.name, _style_diff(nearest.spec, spec)
    else:
        name, options = spec.family, _structure_options(spec) + family_form
    if not options:
        return name
    return f"{name}({','.join(f'{key}={value}' for key, value in options)})"


def describe(spec: Spec | TimmSpec) -> str:
    """One line saying what the net is, axis by axis."""
    if isinstance(spec, TimmSpec):
        return f"timm model {spec.name} (built by timm.create_model)"
    parts = [
        f"{spec.family}, {spec.depth} layers",
        f"{spec.block} blocks {'-'.join(map(str, spec.layers))}",
    ]
    for axis in Spec.option_axes():
        words = axis.describe(getattr(spec, axis.name))
        if words:
            parts.append(words)
    return ", ".join(parts)


def _parse_timm(model: str, args: str | None):
    if args is not None:
        raise SpecError(f"timm/{model} takes no options here: write timm/NAME with a name timm knows")
    timm = import_timm()
    if not timm.is_model(model):
        close = difflib.get_close_matches(model, timm.list_models(), n=5, cutoff=0.6)
        hint = f"closest: {', '.join('timm/' + c for c in close)}" if close else "see timm.list_models()"
        raise SpecError(f"unknown timm model {model!r}; {hint}")
    return TimmSpec(model)


def import_timm():
    """timm, imported on first use (it costs seconds), without the torch.jit deprecation warnings it triggers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import timm
    return timm


def _parse_options(args: str, text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in args.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key or not value:
            raise SpecError(f"bad option {item.strip()!r} in {text!r}: options are key=value, separated by commas")
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SpecError(f"unknown axis {key!r}{hint}; allowed: {', '.join(KEYS)}")
        if key in options:
            raise SpecError(f"{key} is given twice in {text!r}")
        options[key] = value
    return options


def _family_default(family: str) -> Spec:
    """The family's paper defaults; the structure is a placeholder that options must replace."""
    if family == "cifar":
        return cifar_spec(20)
    return Spec(family="imagenet", block="basic", layers=(2, 2, 2, 2), stem="7x7", shortcut="B")


def _apply(base: Spec, options: dict[str, str]) -> Spec:
    """Base spec with the options applied, validated as a whole by Spec itself."""
    family = base.family
    block, layers = options.get("block", base.block), base.layers
    if "depth" in options and "blocks" in options:
        raise SpecError("give depth= or blocks=, not both")
    if "depth" in options:
        depth = _int("depth", options["depth"])
        if family == "cifar":
            n = cifar_depth_to_n(depth, block)  # the depth rule of the block kind: 6n+2 for basic blocks
            layers = (n, n, n)
        else:
            if depth not in IMAGENET_DEPTHS:
                raise SpecError(
                    f"depth={depth} is not an ImageNet depth of Table 1 (18, 34, 50, 101, 152); "
                    f"for another net give blocks=a-b-c-d and block=basic|bottleneck"
                )
            if "block" in options:
                raise SpecError(f"depth={depth} already fixes the block type; use blocks= with block= instead")
            block, layers = IMAGENET_DEPTHS[depth]
    if "blocks" in options:
        layers = tuple(_int("blocks", part, options["blocks"]) for part in options["blocks"].split("-"))
        if len(layers) != len(STAGE_WIDTHS[family]):
            raise SpecError(
                f"blocks={options['blocks']} has {len(layers)} stages; the {family} family has "
                f"{len(STAGE_WIDTHS[family])}"
            )
    kind = block_kind(family, block)
    values = {axis.name: getattr(base, axis.name) for axis in Spec.option_axes()}
    # A block that chooses where to stride keeps its base's choice (or takes its kind's default: the paper's
    # 1x1 for a bottleneck); a block without that choice has none.
    values["stride_in"] = (base.stride_in or kind.default_stride_in) if kind and kind.stride_placements else None
    for axis in Spec.option_axes():
        if axis.name in options:
            values[axis.name] = axis.parse(options[axis.name])
    return Spec(family=family, block=block, layers=layers, **values)


def _int(key: str, value: str, whole: str | None = None) -> int:
    if not value.isdigit():
        raise SpecError(f"{key}={whole or value} is not allowed: expected whole numbers")
    return int(value)


def _style_diff(base: Spec, spec: Spec) -> list[tuple[str, str]]:
    """The option axes on which `spec` differs from `base`, as (key, value) in canonical order."""
    return [(axis.name, axis.show(getattr(spec, axis.name))) for axis in Spec.option_axes()
            if getattr(base, axis.name) != getattr(spec, axis.name)]


def _structure_options(spec: Spec) -> list[tuple[str, str]]:
    if spec.family == "cifar" and len(set(spec.layers)) == 1:
        options = [("depth", str(spec.depth))]
    else:
        options = [("blocks", "-".join(map(str, spec.layers)))]
    # ImageNet names always say the block (blocks= leaves it open); CIFAR names only when it is not the
    # family's own, so that cifar(depth=38) stays what it always was.
    if spec.family == "imagenet" or spec.block != _family_default(spec.family).block:
        options.append(("block", spec.block))
    return options


def _unknown_name_message(name: str) -> str:
    known = list(PRESETS) + list(FAMILY_NAMES)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"closest: {', '.join(close)}" if close else "no close match"
    return f"unknown variant {name!r}; {hint} (all names: python -m bench list; timm models: timm/NAME)"

