"""How a process of the suite stops, whatever stops it, the way Ctrl-C does.

SIGTERM (what `kill`, SLURM's `scancel` and time limits, `docker stop` and systemd send) and SIGHUP (a closed
terminal) reach a process alone, not its process group as Ctrl-C does, and Python's default action ends it
without running a single `finally`. Under `on_signals()` they, and Ctrl-C's SIGINT, raise `Stop` in the main
thread instead: a KeyboardInterrupt, so everything that handles Ctrl-C handles them (a training records
`interrupted` and can be resumed; a suite asks its children to do the same, then prints its summary).

Once stopping, the process finishes stopping: later signals (SLURM and systemd signal every process, and the
suite then signals its children again; Ctrl-C twice) are let pass, so that no cleanup is cut short. A step
that must not be cut in two (a child started but not yet counted) runs `deferred()`: a signal that arrives
within it takes effect at its end. After SIGHUP the terminal is gone, so the standard streams that wrote to it
are sent to /dev/null rather than fail. The exit status is the shell's for a process a signal ended, 128 + the
signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP (`exit_status`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(KeyboardInterrupt):
    """A stopping signal, raised where the main thread was."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    def __reduce__(self):  # picklable, for the worker processes that may see one
        return type(self), (self.signum,)


_state = {"stopping": None, "deferring": 0, "pending": None}


def _handler(signum, frame) -> None:
    if _state["stopping"] is not None:  # already stopping: let the cleanup finish
        return
    if signum == signal.SIGHUP:
        _quiet_closed_terminal()
    if _state["deferring"]:
        _state["pending"] = signum
        return
    _state["stopping"] = signum
    raise Stop(signum)


def _quiet_closed_terminal() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream.isatty():
                stream.flush()
                os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
    os.close(devnull)


@contextlib.contextmanager
def on_signals(signals=SIGNALS):
    """Within the block, the first of `signals` raises Stop in the main thread (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {number: signal.signal(number, _handler) for number in signals}
    try:
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)
        _state.update(stopping=None, deferring=0, pending=None)


@contextlib.contextmanager
def deferred():
    """A step that a signal must not cut in two: one that arrives within it raises Stop at its end."""
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
    if not _state["deferring"] and _state["pending"] is not None and _state["stopping"] is None:
        signum, _state["pending"], _state["stopping"] = _state["pending"], None, _state["pending"]
        raise Stop(signum)


def stopping() -> bool:
    """Whether a stopping signal has arrived (cleanup is under way)."""
    return _state["stopping"] is not None


def exit_status(interrupt: BaseException) -> int:
    """128 + the signal that stopped the process: Ctrl-C's SIGINT unless a Stop says another."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)
