"""`python -m bench list [PATTERN]`: the named variants (presets), a line each."""

from __future__ import annotations

import argparse
import re
import sys

import variants

from . import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet5*' (default: all)")


def natural_order(name: str) -> list:
    """resnet50 before resnet56 before resnet101: the digits in a name compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def run(args: argparse.Namespace) -> int:
    names = sorted(variants.available(args.pattern), key=natural_order)
    if not names:
        print(f"error: no variant matches {args.pattern!r} (try: python -m bench list)", file=sys.stderr)
        return 2
    width = max(map(len, names))
    for name in names:
        preset = variants.PRESETS[name]
        print(f"{name:<{width}}  {preset.title}: {variants.describe(preset.spec)}")
    if args.pattern == "*":
        print("\nAny name takes overrides, e.g. resnet34(shortcut=A); unit=preact makes any of them a pre-activation "
              "net (resnet164(unit=preact), Identity Mappings); groups= and base_width= shape a bottleneck's 3x3 "
              "(resnet50b(groups=8,base_width=14)); cifar(depth=N) and imagenet(blocks=a-b-c-d,block=...) build "
              "other sizes; timm/NAME builds a timm model. Every axis and its values: docs/variants.md.")
    return 0


COMMAND = Command("list", "list the named variants with one-line descriptions", configure, run)
