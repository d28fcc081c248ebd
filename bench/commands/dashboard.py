"""`python -m bench dashboard SUITE`: the W&B workspace and report of a suite, written as JSON definitions or
saved to W&B (dashboard.py)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from .. import dashboard, tracking
from .. import suite as suites
from . import Command
from .common import RECIPE, RESULTS_DIR, SCALE



def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", help=f"suite name ({', '.join(suites.available_suites())}) or path to a .toml file")
    replace(RECIPE, help="the recipe whose runs to show (default: the suite's: paper for cifar10)").add(parser)
    replace(SCALE, help="the schedule scale whose runs to show, as given to `bench suite` (default: 1)").add(parser)
    replace(RESULTS_DIR, help="where reports/ is; the definitions go to DIR/reports/<suite>/<recipe>-x<scale>/wandb/ "
                              "(default: results)").add(parser)
    parser.add_argument("--entity", metavar="E",
                        help=f"W&B user or team that owns the project (default: your default entity when "
                             f"publishing; the placeholder {dashboard.PLACEHOLDER_ENTITY} in written definitions)")
    parser.add_argument("--project", default=tracking.PROJECT, metavar="P",
                        help=f"W&B project the runs are logged to (default: {tracking.PROJECT}, or $WANDB_PROJECT)")
    parser.add_argument("--publish", action="store_true",
                        help="also save the workspace and the report to W&B and print their URLs (needs `wandb "
                             "login` or WANDB_API_KEY, and network)")


def run(args: argparse.Namespace) -> int:
    suite = suites.load(args.suite)
    recipe = suite.recipe_or_default(args.recipe)
    if args.publish:
        urls = dashboard.publish(suite, recipe, args.scale, args.results_dir, args.entity, args.project)
        print(f"definitions: {dashboard.definitions_folder(suite, recipe, args.scale, args.results_dir)}/")
        print(f"W&B workspace: {urls['workspace']}")
        print(f"W&B report: {urls['report']}")
        return 0
    paths = dashboard.write(suite, recipe, args.scale, args.results_dir, args.entity or dashboard.PLACEHOLDER_ENTITY,
                            args.project)
    print(f"W&B workspace definition: {paths['workspace']}")
    print(f"W&B report definition: {paths['report']}")
    print(f"to save them to W&B: python -m bench dashboard {args.suite} --recipe {recipe} --scale {args.scale:g} "
          f"--results-dir {args.results_dir} --publish (needs `wandb login` or WANDB_API_KEY, and network)")
    return 0


COMMAND = Command(
    "dashboard", "W&B workspace and report of a suite: write their definitions (JSON), or save them to W&B",
    configure, run,
    description="Define a W&B workspace (one section per experiment) and a W&B report (the Markdown pages' text and "
                "tables, with the same charts) for the training runs of a suite: error curves against iteration and "
                "final errors per spec (mean ± std over seeds), MACs against final error, and the variant axes "
                "against final error. The definitions are written to RESULTS/reports/<suite>/<recipe>-x<scale>/wandb/; "
                "--publish also saves them to W&B.",
    epilog="filter and group runs in W&B by the config keys spec, seed, dataset_name, recipe_name, recipe_scale and "
           "variant_<axis> (variant_depth, variant_shortcut, ...); summary keys test_error_final, test_error_min, "
           "macs, params",
)
