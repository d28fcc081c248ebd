"""How a process of the suite stops, whatever stops it, the way Ctrl-C does.

SIGTERM (what `kill`, SLURM's `scancel` and time limits, `docker stop` and systemd send) and SIGHUP (a closed
terminal) reach a process alone, not its process group as Ctrl-C does, and Python's default action ends it
without running a single `finally`. Under `on_signals()` they raise `Stop` in the main thread instead: a
KeyboardInterrupt, so everything that handles Ctrl-C handles them (a training records `interrupted` and
can be resumed; a suite asks its children to do the same, then prints its summary). The exit status is the
shell's for a process a signal ended, 128 + the signal's number: 143 for SIGTERM, 129 for SIGHUP, 130 for
Ctrl-C (`exit_status`).
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stop(KeyboardInterrupt):
    """A stopping signal, raised where the main thread was."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def on_signals(signals=SIGNALS):
    """Within the block, the first of `signals` raises Stop; later ones wait for the stopping to finish."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    stopping = []

    def handler(signum, frame):
        if stopping:
            return
        stopping.append(signum)
        raise Stop(signum)

    previous = {number: signal.signal(number, handler) for number in signals}
    try:
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def exit_status(interrupt: BaseException) -> int:
    """128 + the signal that stopped the process: Ctrl-C's SIGINT unless a Stop says another."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)
