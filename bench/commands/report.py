"""`python -m bench report SUITE`: the Markdown/CSV/PNG reports of a suite, rebuilt from RESULTS/runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import report
from .. import suite as suites
from . import Command


def report_suite(suite: str | suites.Suite, results_dir: str | Path = "results", recipe: str | None = None,
                 scale: float = 1.0, seeds: int = 1, expensive: bool = False, wandb_mode: str | None = None) -> Path:
    """The reports of every experiment of a suite (a name, a path or a Suite; its own recipe when None),
    whatever subset was trained: runs without a record show as missing. Returns the report folder."""
    suite = suite if isinstance(suite, suites.Suite) else suites.load(suite)
    recipe = suite.recipe_or_default(recipe)
    planned = suites.expand(suite, recipe, scale, seeds, expensive=expensive)
    return report.build(suite, planned, results_dir, recipe, scale, seeds, wandb_mode)


def configure(parser: argparse.ArgumentParser) -> None:
    from .suite import add_selection

    add_selection(parser)


def run(args: argparse.Namespace) -> int:
    out_dir = report_suite(args.suite, args.results_dir, args.recipe, args.scale, args.seeds, args.expensive,
                           args.wandb)
    print(f"reports: {out_dir / 'index.md'}")
    return 0


COMMAND = Command("report", "build the Markdown/CSV/PNG reports of a suite from RESULTS/runs (and mirror them to W&B)",
                  configure, run)
