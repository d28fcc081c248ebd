"""`python -m bench compare SPEC SPEC ...`: is X better than Y? The specs become a one-experiment suite
(compare.py), trained over several seeds through the suite's scheduler, then the comparison page is built and
its verdicts printed."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from .. import compare, launch, stopping
from .. import suite as suites
from . import Command
from .common import CACHE_DIR, DATA_DIR, DATASET, DEVICE, RECIPE, RECORDS, SCALE, SKIP_CORRUPT
from .report import report_suite
from .suite import SEEDS, print_summary, train_runs


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC",
                        help="two or more variant specs; the first is the baseline the others are tested against")
    for option in (DATASET, replace(SEEDS, default=3, help="seeds 0..N-1 of every spec (default: 3; at least 2 for "
                                                           "any claim)"),
                   replace(RECIPE, help="(default: the dataset's: paper for CIFAR, bot for Imagenette)"), SCALE,
                   DATA_DIR, CACHE_DIR, SKIP_CORRUPT, *RECORDS.options, DEVICE):
        option.add(parser)
    launch.add_options(parser, backends=False)


def run(args: argparse.Namespace) -> int:
    suite = compare.comparison_suite(args.specs, args.dataset)
    planned = suites.expand(suite, args.recipe, args.scale, args.seeds)
    try:
        result = train_runs(suite, planned, args)
    except KeyboardInterrupt as stopped:  # before any run started
        print("\ninterrupted before any run started: run the same command again", file=sys.stderr)
        return stopping.exit_status(stopped)
    if result.stopped_by is not None:
        print_summary(suite.name, result, args.results_dir)
        print("interrupted: run the same command again to continue where the comparison stopped", file=sys.stderr)
        return stopping.exit_status(result.stopped_by)
    out_dir = report_suite(suite, args.results_dir, args.recipe, args.scale, args.seeds, wandb_mode=args.wandb)
    print(f"comparison: {out_dir / (compare.EXPERIMENT + '.md')}")
    for line in compare.verdicts(out_dir):
        print(f"  {line}")
    return 1 if result.failed else 0


COMMAND = Command(
    "compare", "is X better than Y? train what is missing over several seeds, then test the difference",
    configure, run,
    description="Train each spec over seeds 0..N-1 (finished runs are reused, through the same records as suites), "
                "then write a comparison page (table with mean, std, 95% CI, n; the difference from the first spec "
                "with its 95% CI and Welch's t-test; curves; final errors with CIs) under "
                "RESULTS/reports/compare-.../ and print the verdicts.",
    epilog="example: python -m bench compare resnet20 'resnet20(shortcut=B)' --seeds 3 --scale 0.01 --data-dir D",
)
