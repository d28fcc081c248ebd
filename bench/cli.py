"""Command line of the suite: ``python -m bench COMMAND``.

User mistakes (a bad spec, a bad option) end as one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

import variants

from . import cost

EPILOG = """\
spec strings: NAME or NAME(key=value,...), e.g. resnet56, resnet34(shortcut=A),
resnet50(stem=deep,shortcut=D), cifar(depth=38), timm/resnet50d.
keys: depth, blocks, block, stride_in, stem, shortcut, zero_init (see README).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark suite for ResNet variants (He et al. 2015, Bag of Tricks).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    list_parser = commands.add_parser("list", help="list the named variants with one-line descriptions")
    list_parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet5*' (default: all)")
    list_parser.set_defaults(run=run_list)

    measure_parser = commands.add_parser(
        "measure",
        help="parameters and multiply-adds (MACs = the paper's FLOPs) of a variant, per stage",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    measure_parser.add_argument("spec", help="variant spec string, e.g. resnet50 or 'resnet34(shortcut=A)'")
    measure_parser.add_argument("--image-size", type=int, metavar="N",
                                help="input is N x N (default: 32 for cifar nets, 224 otherwise)")
    measure_parser.add_argument("--num-classes", type=int, metavar="K",
                                help="classes of the fc layer (default: 10 for cifar nets, 1000 otherwise)")
    measure_parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    measure_parser.set_defaults(run=run_measure)
    return parser


def run_list(args: argparse.Namespace) -> int:
    names = variants.available(args.pattern)
    if not names:
        print(f"error: no variant matches {args.pattern!r} (try: python -m bench list)", file=sys.stderr)
        return 2
    width = max(map(len, names))
    for name in names:
        preset = variants.PRESETS[name]
        print(f"{name:<{width}}  {preset.title}: {variants.describe(preset.spec)}")
    if args.pattern == "*":
        print("\nAny name takes overrides, e.g. resnet34(shortcut=A); cifar(depth=N) and "
              "imagenet(blocks=a-b-c-d,block=...) build other sizes; timm/NAME builds a timm model.")
    return 0


def run_measure(args: argparse.Namespace) -> int:
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except variants.SpecError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
