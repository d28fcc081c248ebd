"""`python -m bench measure SPEC`: parameters and multiply-adds of a variant, per stage (cost.py)."""

from __future__ import annotations

import argparse
import json
import sys

import variants

from .. import cost
from . import Command
from .common import SPEC_EPILOG


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="variant spec string, e.g. resnet50 or 'resnet34(shortcut=A)'")
    parser.add_argument("--image-size", type=int, metavar="N",
                        help="input is N x N (default: 32 for cifar nets, 224 otherwise)")
    parser.add_argument("--num-classes", type=int, metavar="K",
                        help="classes of the fc layer (default: 10 for cifar nets, 1000 otherwise)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    for option, value in (("--image-size", args.image_size), ("--num-classes", args.num_classes)):
        if value is not None and value < 1:
            print(f"error: {option} {value} is not allowed: it must be at least 1", file=sys.stderr)
            return 2
    spec = variants.parse(args.spec)
    try:
        result = cost.measure(spec, image_size=args.image_size, num_classes=args.num_classes)
    except RuntimeError as error:  # e.g. an image too small for the net's downsampling
        first_line = str(error).strip().splitlines()[0]
        print(f"error: cannot run {variants.canonical(spec)} at this size: {first_line}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"{result.spec}: {variants.describe(spec)}")
    print(f"input {result.image_size}x{result.image_size}, {result.num_classes} classes, batch 1, eval mode")
    print(f"params  {result.params:>15,}  ({result.params / 1e6:.2f} M)")
    print(f"MACs    {result.macs:>15,}  ({result.macs / 1e9:.3f} G; the paper's \"FLOPs\" are multiply-adds)")
    print(f"\n{'part':<12}{'params':>15}{'MACs':>18}{'share':>8}")
    for stage in result.stages:
        share = stage.macs / result.macs if result.macs else 0.0
        print(f"{stage.name:<12}{stage.params:>15,}{stage.macs:>18,}{share:>8.1%}")
    skipped = ", ".join(f"{op} x{count}" for op, count in result.not_counted.items()) or "nothing"
    print(f"\nnot counted by fvcore: ReLU (ignored by design); ops without a handler: {skipped}")
    return 0


COMMAND = Command("measure", "parameters and multiply-adds (MACs = the paper's FLOPs) of a variant, per stage",
                  configure, run, epilog=SPEC_EPILOG)
