"""`python -m bench suite SUITE` (what `./run_all.sh cifar10` runs): train every run of a suite that has no
finished record, each in a child process a launcher starts (suite.py, launch.py), then build its reports."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .. import launch, stopping
from .. import suite as suites
from ..errors import UserError
from ..options import Group, Option
from . import Command
from .common import (ARRAY_MODE, CACHE_DIR, CHECKPOINT_EVERY, COMPILE, DATA_DIR, DETERMINISTIC, DEVICE, PRECISION,
                     RECIPE, RECORDS, SCALE, SKIP_CORRUPT, source, train_arguments)
from .report import report_suite

SUITE = Option("suite", help=f"suite name ({', '.join(suites.available_suites())}) or path to a .toml file; "
                             f"`./run_all.sh cifar10 ARGS` runs `python -m bench suite cifar10 ARGS`")
SEEDS = Option("--seeds", type=int, default=1, metavar="N", help="seeds 0..N-1 of every run (default: 1)")
EXPENSIVE = Option("--expensive", switch=True, help="also the runs a suite marks expensive (cifar10: resnet1202, "
                                                   "wrn28_10; identity: resnet1001 and its pre-activation form)")
ARRAY = Option("--array", default="auto", metavar="auto|off|K",
               help="train the seeds of a spec together, as one run array in one process (up to K seeds each; "
                    "the records are the runs alone's). auto (default): up to 4 seeds, on a GPU fused (each array "
                    "checking that they fit in its memory), on the CPU in turn (--array-mode), which saves a "
                    "process start and data load per seed. off: every run in its own process")
ONLY = Option("--only", metavar="EXPERIMENT[,EXPERIMENT]",
              help="train only these experiments (the reports still cover the whole suite)")
# Which runs of a suite, and their records: `bench suite`, `bench report` and `bench dashboard` share it.
SELECTION = Group((replace(RECIPE, help="(default: the suite's: paper for cifar10, bot for imagenette, imagenet for "
                                        "imagenet)"), SCALE, SEEDS, EXPENSIVE, *RECORDS.options))


def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(SUITE.flag, help=SUITE.help)
    SELECTION.add(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    add_selection(parser)
    ONLY.add(parser)
    Group((DATA_DIR, CACHE_DIR, SKIP_CORRUPT), "data").add(parser)
    Group((DEVICE, PRECISION, COMPILE, DETERMINISTIC, replace(CHECKPOINT_EVERY, help="as for train (default: the recipe's); not "
                                                                       "part of the run ids")),
          "each run", "as for `bench train`; passed on to every training process").add(parser)
    ARRAY.add(parser)
    ARRAY_MODE.add(parser)
    launch.add_options(parser)


def only(args: argparse.Namespace) -> list[str] | None:
    if args.only is None:
        return None
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    if not names:
        raise UserError(f"--only {args.only!r} names no experiment")
    return names


def train_runs(suite: suites.Suite, planned: list[suites.PlannedRun], args: argparse.Namespace) -> suites.SuiteResult:
    """Train the planned runs where the options say (the launcher), each child given its run and the options it
    shares with `bench train`. Ctrl-C, SIGTERM and SIGHUP stop it the same way (stopping.py): the children
    record `interrupted`, and the result says what stopped it."""
    launcher = launch.from_options(args)
    try:
        with stopping.on_signals():
            return suites.run_suite(suite, planned, launcher, source=source(args), results_dir=args.results_dir,
                                    child_arguments=lambda run, device, share: train_arguments(run, args, device,
                                                                                               share),
                                    array=getattr(args, "array", "auto"))  # bench compare has no --array
    finally:
        launcher.close()


def print_summary(name: str, result: suites.SuiteResult, results_dir: str) -> None:
    print(f"suite {name}: {len(result.finished)} trained, {len(result.skipped)} already done, "
          f"{len(result.diverged)} diverged (a result, not a failure), {len(result.failed)} failed"
          + (f"; {len(result.elsewhere)} trained by another process meanwhile" if result.elsewhere else "")
          + (f"; {len(result.interrupted)} interrupted" if result.interrupted else "")
          + (f"; {len(result.waiting)} left to the process that trains them" if result.waiting else ""))
    for label, runs in (("diverged", result.diverged), ("failed", result.failed), ("interrupted", result.interrupted),
                        ("trained elsewhere, not waited for", result.waiting)):
        for planned_run in runs:
            where = Path(results_dir) / "runs" / planned_run.run_id
            print(f"  {label}: {planned_run.spec} seed {planned_run.seed} ({where})")


def run(args: argparse.Namespace) -> int:
    suite = suites.load(args.suite)
    # resolved here, once: a bad --checkpoint-every or spec fails before any training process starts
    planned = suites.expand(suite, args.recipe, args.scale, args.seeds, only(args), args.expensive,
                            args.checkpoint_every)
    try:
        result = train_runs(suite, planned, args)
    except KeyboardInterrupt as stopped:  # before any run started (reading the data, starting Ray)
        print("\ninterrupted before any run started: run the same command again", file=sys.stderr)
        return stopping.exit_status(stopped)
    print_summary(suite.name, result, args.results_dir)
    if result.stopped_by is not None:
        print("interrupted: run the same command again to continue where the suite stopped", file=sys.stderr)
        return stopping.exit_status(result.stopped_by)
    try:
        out_dir = report_suite(suite, args.results_dir, args.recipe, args.scale, args.seeds, args.expensive, args.wandb)
    except Exception as error:  # the runs are recorded; a report can be rebuilt with `python -m bench report`
        print(f"error: building the reports failed ({type(error).__name__}: {error}); the runs are recorded, "
              f"retry with: python -m bench report {args.suite} ...", file=sys.stderr)
        return 1
    print(f"reports: {out_dir / 'index.md'}")
    return 1 if result.failed else 0


COMMAND = Command(
    "suite", "train every run of a suite that has no finished record, then build its reports", configure, run,
    description="Train the runs of a suite (skipping those already finished or diverged; an interrupted suite "
                "continues where it stopped), then build the reports. One failed run is recorded and the suite "
                "goes on; the exit status is 1 when any run failed.",
)
