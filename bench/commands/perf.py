"""`python -m bench perf [SPEC ...]`: the suite's training path (B) against the standard PyTorch recipe (A),
side by side in one process (perf.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import data as datasets
from .. import perf, standard
from ..errors import UserError
from ..execution import resolve_device
from . import Command
from .common import CACHE_DIR, DATA_DIR, DATASET, DEVICE, SKIP_CORRUPT

# Defaults by kind of data: (CPU, CUDA) for datasets whose images come at one small size (CIFAR), and for
# ImageNet-resolution ones, where a step costs about 16x more.
DEFAULTS = {
    True: dict(iters=(30, 200), warmup=(3, 20), batch_size=(128, 128), depths=perf.DEPTHS,
               batch_sizes=perf.BATCH_SIZES),
    False: dict(iters=(10, 100), warmup=(2, 20), batch_size=(64, 256), depths=(), batch_sizes=()),
}


def _sizes(text: str) -> list[int]:
    """--array 3 or --array 1,2,4,8: array sizes of 1 or more."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise UserError(f"--array {text} is not allowed: give array sizes of 1 or more, e.g. 3 or 1,2,4,8")
    return sizes


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="*", default=["resnet20"], metavar="SPEC",
                        help="variants to compare (default: resnet20)")
    for option in (DATASET, DATA_DIR, DEVICE):
        option.add(parser)
    parser.add_argument("--iters", type=int, metavar="N",
                        help="timed training iterations per measurement (default: 30 on CPU, 200 on CUDA; 10 and "
                             "100 at ImageNet resolution)")
    parser.add_argument("--warmup", type=int, metavar="N", help="untimed iterations first (default: 3 on CPU, 20 on CUDA)")
    parser.add_argument("--repeats", type=int, default=3, metavar="K", help="median of K measurements (default: 3)")
    parser.add_argument("--batch-size", type=int, metavar="B",
                        help="(default: the dataset's recipe's: 128 for CIFAR, the paper's; 256 for ImageNet-style)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="A's DataLoader worker processes (default: one per usable core)")
    parser.add_argument("--depths", nargs="*", metavar="SPEC",
                        help="specs for step time against depth (default: resnet/plain 20-110 on CIFAR, none on "
                             "other datasets; none: skip)")
    parser.add_argument("--batch-sizes", nargs="*", type=int, metavar="B",
                        help="batch sizes for step time against batch size (default: 64 128 256 512 1024 on "
                             "CIFAR, none on other datasets)")
    parser.add_argument("--scaling-steps", type=int, metavar="N",
                        help="timed steps per repeat of each depth / batch-size point (default: 10 on CPU, "
                             "50 on CUDA)")
    parser.add_argument("--scaling-repeats", type=int, default=5, metavar="K",
                        help="repeats of each depth / batch-size point, interleaved across the points; each "
                             "point is reported as the median with its min-max range, and residual against "
                             "plain differences inside that range as noise (default: 5)")
    parser.add_argument("--no-wandb", action="store_true",
                        help="skip the W&B logging-cost measurement (always skipped on other datasets than "
                             "CIFAR: the cost of logging does not depend on the data)")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: results/perf/<cpu|cuda>, or results/perf/<cpu|cuda>-<dataset> "
                             "for other datasets than cifar10)")
    parser.add_argument("--array", metavar="K[,K...]",
                        help="instead: for each K, K runs alone (seeds 0..K-1) trained one after another against one "
                             "run array of the same K seeds (bench train --seeds K), fused and in turn (--array-mode): aggregate img/s, peak memory and "
                             "on CUDA GPU utilisation, into OUT/array.md and OUT/array.csv (e.g. --array 1,2,4,8)")
    CACHE_DIR.add(parser)
    SKIP_CORRUPT.add(parser)


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    declared = datasets.info(args.dataset)
    defaults = DEFAULTS[declared.reader.one_size]
    on = 1 if device.type == "cuda" else 0

    def given(value, name):
        return value if value is not None else defaults[name][on]

    settings = perf.Settings(
        specs=args.specs, dataset=args.dataset, data_dir=args.data_dir, device=device,
        iters=given(args.iters, "iters"), warmup=given(args.warmup, "warmup"), repeats=args.repeats,
        batch_size=given(args.batch_size, "batch_size"),
        workers=args.workers if args.workers is not None else standard.default_workers(),
        depths=tuple(args.depths if args.depths is not None else defaults["depths"]),
        batch_sizes=tuple(args.batch_sizes if args.batch_sizes is not None else defaults["batch_sizes"]),
        wandb=declared.reader.one_size and not args.no_wandb,
        scaling_steps=args.scaling_steps if args.scaling_steps is not None else (50 if on else 10),
        scaling_repeats=args.scaling_repeats, cache_dir=args.cache_dir,
        out=Path(args.out or f"results/perf/{device.type}" + ("" if args.dataset == "cifar10" else f"-{declared.name}")),
        command=perf.command_line(args.argv),
    )
    if args.array is not None:
        written = perf.run_arrays(settings, _sizes(args.array))
        print("\n" + written.read_text())
        print(f"written: {written}, {written.with_name('array.csv')}")
        return 0
    written = perf.run(settings)
    print("\n" + written.read_text())
    print(f"written: {written}, {written.with_name('perf.csv')}" +
          (f", {written.with_name('scaling.png')}" if settings.depths or settings.batch_sizes else ""))
    return 0


COMMAND = Command(
    "perf", "training speed of the suite (B) against the standard PyTorch recipe (A), side by side", configure, run,
    description="Measure, in one process and alternating A B A B, training / data-pipeline / inference images/s and "
                "peak memory of the standard recipe (A: PIL + torchvision transforms + DataLoader workers, fp32 NCHW "
                "eager) and of the suite's own training path (B), the cost of W&B offline logging, and B's step time "
                "against depth and batch size. Writes perf.csv, perf.md and scaling.png to OUT.",
)
