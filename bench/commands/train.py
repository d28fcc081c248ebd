"""`python -m bench train SPEC`: train one run (train.py), alone or as one rank of a torchrun world, or with
`--seeds N` several seeds of it as one run array (paths.py: fused or in turn, --array-mode)."""

from __future__ import annotations

import argparse
import sys

from .. import distributed, records, stopping
from .. import train as training
from ..errors import UserError
from ..options import Option
from . import Command
from .common import DATA, EXECUTION, RECORDS, RUN, SPEC_EPILOG, execution, request, source

SEEDS = Option("--seeds", type=int, metavar="N",
               help="train N seeds (--seed S up to S+N-1; default S is 0) together as one run array in this "
                    "process: each seed is its own run, with the run id, records and W&B run it has alone "
                    "(finished ones are skipped); a net with dropout trains its seeds one after another")

TORCHRUN_EPILOG = """\
data-parallel (one run over several GPUs or nodes; rank 0 writes the records, the run id is unchanged):
  torchrun --nproc-per-node 8 -m bench train resnet50 --dataset imagenet --data-dir D
  a re-run of the same command resumes from the last checkpoint
"""
EXIT_FOR_STATUS = {"finished": 0, "failed": 1, "diverged": 3}
ARRAY_EPILOG = """\
run arrays (the seeds of one spec trained together; on a GPU, several seeds for about the price of one):
  python -m bench train resnet20 --seeds 3        seeds 0, 1, 2: the same records as three runs alone
  ... --seeds 3 --array-mode in-turn              on a GPU too, the runs alone's numbers to the last bit
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="variant spec string, e.g. resnet20 or 'resnet32(shortcut=B)'")
    for group in (RUN, DATA, RECORDS, EXECUTION):
        group.add(parser)
    SEEDS.add(parser)


def run(args: argparse.Namespace) -> int:
    world = distributed.World.from_environment()
    try:
        with stopping.on_signals():  # SIGTERM and SIGHUP as Ctrl-C: the run records `interrupted`
            if args.seeds is not None:
                if args.seeds < 1:
                    raise UserError(f"--seeds {args.seeds} is not allowed: it must be at least 1")
                outcomes = training.run_seeds(request(args.spec, args), list(range(args.seed, args.seed + args.seeds)),
                                              source(args), args.results_dir, execution(args),
                                              wandb_mode=args.wandb, force=args.force)
                return max(EXIT_FOR_STATUS[outcome.status] for outcome in outcomes)
            outcome = training.run(request(args.spec, args), source(args), args.results_dir, execution(args),
                                   wandb_mode=args.wandb, force=args.force)
    except (KeyboardInterrupt, distributed.Stopped) as stopped:
        if world.main:  # rank 0 speaks for the run
            print("\ninterrupted: the run resumes from its last checkpoint when the same command is run again",
                  file=sys.stderr)
        return 143 if isinstance(stopped, distributed.Stopped) else stopping.exit_status(stopped)
    except records.RunHeld as error:  # not a failure: a suite waits for the other process (suite.Scheduler)
        print(f"error: {error}", file=sys.stderr)
        return records.EXIT_HELD
    except distributed.RankLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:
        if world.main or not distributed.lost_peer(error):
            raise
        print(f"rank {world.rank}: stopped, another rank is gone (rank 0 records which)", file=sys.stderr)
        return 1
    return EXIT_FOR_STATUS[outcome.status]


COMMAND = Command(
    "train", "train a variant on a dataset with a recipe; records in RESULTS/runs/<run_id>/, mirrored to W&B",
    configure, run,
    description="Train one variant. The run id is derived from (spec, dataset, recipe, scale, seed): asking for a "
                "finished run again does nothing, an interrupted one resumes from its last checkpoint. Exit status: "
                "0 finished (or already finished), 1 failed (or out of space), 2 a mistake in the request, 3 "
                "diverged, 75 being trained by another process right now, 130 interrupted by Ctrl-C, 143 by "
                "SIGTERM (129 SIGHUP).",
    epilog=SPEC_EPILOG + "\n" + TORCHRUN_EPILOG + "\n" + ARRAY_EPILOG,
)
