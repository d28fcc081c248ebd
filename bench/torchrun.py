"""`python -m bench.torchrun ...`: torchrun, with a stop that reads like the rest of the project.

torchrun's own launcher (the elastic agent) turns Ctrl-C or SIGTERM into a `SignalException` and ends with its
25-line traceback and exit 1, after the ranks have already recorded `interrupted` and printed the project's
line. This entry point runs the same launcher (`torch.distributed.run.main`, every argument as torchrun takes
it) and ends such a stop with the shell's status for the signal instead: 130 for Ctrl-C, 143 for SIGTERM.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import main as torchrun

    try:
        torchrun(argv)
    except SignalException as stop:
        print(f"torchrun: stopped by {stop.sigval.name}; the ranks recorded where they were", file=sys.stderr)
        return 128 + int(stop.sigval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
