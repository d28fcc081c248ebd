"""The commands of `python -m bench`, one module each, in the order `python -m bench` lists them.

Each module has a `COMMAND`: its name, one line of help, what `--help` says about it, the function that adds
its options to its parser (mostly groups declared once in common.py) and the one that runs it. bench/cli.py
builds the parser from `commands()` and turns user mistakes into one line; a new command is one module here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # one line, beside the name in `python -m bench`
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]  # the exit status
    description: str | None = None
    epilog: str | None = None


def commands() -> tuple[Command, ...]:
    from . import catalog, compare, dashboard, measure, perf, report, suite, train

    return tuple(module.COMMAND for module in (catalog, measure, train, suite, compare, report, perf, dashboard))
